/**
 * Keeps the leases of the jobs this process runs. One statement renews them all every third
 * of a lease, on a connection reserved for it when the pool has room (a pool busy with 200
 * requests must not delay a renewal past the expiry and let another process take a live job
 * over). A job whose lease could not be renewed for a whole lease period is fenced here too:
 * it is aborted, because another worker may own it by now. The same statement reports which
 * held jobs somebody asked to cancel, so a job waiting inside a step hears of it within a third
 * of a lease without a query of its own.
 */
import type { ReservedSql, Sql } from "postgres";
import type { Logger } from "../../shared/log/logger.ts";
import { LeaseLostError, renewLeases } from "./queue.ts";

interface Held {
  token: string;
  /** When the lease was last known to be extended (local clock). */
  renewedAt: number;
  lost(err: LeaseLostError): void;
  /** Told once when somebody asked to cancel the job (`by`: who). */
  cancel?(by: string): void;
  cancelSeen?: boolean;
}

/** Pools smaller than this share their connections with renewals instead of giving one up. */
const MIN_POOL_FOR_RESERVE = 3;

/** The lease keeper of one process's workers. */
export class LeaseKeeper {
  readonly #sql: Sql;
  readonly #leaseMs: number;
  readonly #log: Logger;
  readonly #held = new Map<string, Held>();
  #reserved: Promise<ReservedSql | undefined> | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;
  #ticking = false;

  constructor(sql: Sql, leaseMs: number, log: Logger) {
    this.#sql = sql;
    this.#leaseMs = leaseMs;
    this.#log = log;
  }

  /**
   * Keeps job `id` (held with `token`) until the returned function is called; `lost` hears of
   * a lost lease, `cancel` of a cancel request.
   */
  hold(
    id: string,
    token: string,
    lost: (err: LeaseLostError) => void,
    cancel?: (by: string) => void,
  ): () => void {
    this.#held.set(id, { token, renewedAt: Date.now(), lost, cancel });
    this.#timer ??= setInterval(() => this.tick(), Math.max(50, Math.floor(this.#leaseMs / 3)));
    return () => {
      this.#held.delete(id);
      if (this.#held.size === 0) {
        clearInterval(this.#timer);
        this.#timer = undefined;
      }
    };
  }

  /** Renews every held lease once; fences those lost or not renewed for a lease period. */
  async tick(): Promise<void> {
    if (this.#ticking || this.#held.size === 0) return;
    this.#ticking = true;
    const held = [...this.#held.entries()];
    try {
      const db = (await this.#connection()) ?? this.#sql;
      const renewed = await renewLeases(
        db,
        held.map(([id, h]) => ({ id, token: h.token })),
        this.#leaseMs,
      );
      const now = Date.now();
      for (const [id, h] of held) {
        if (!renewed.has(id)) {
          this.#lose(id, h, new LeaseLostError(`job ${id}: lease lost`));
          continue;
        }
        h.renewedAt = now;
        const by = renewed.get(id);
        if (by != null && !h.cancelSeen && this.#held.get(id) === h) {
          h.cancelSeen = true;
          h.cancel?.(by);
        }
      }
    } catch (err) {
      this.#log.warn("lease renewal failed", { err, jobs: held.length });
      this.#fence();
    } finally {
      this.#ticking = false;
    }
  }

  #fence(): void {
    const now = Date.now();
    for (const [id, h] of this.#held) {
      if (now - h.renewedAt >= this.#leaseMs) {
        this.#lose(
          id,
          h,
          new LeaseLostError(`job ${id}: lease not renewed for ${this.#leaseMs} ms`),
        );
      }
    }
  }

  /** Reports a lease lost once and stops keeping it. */
  #lose(id: string, h: Held, err: LeaseLostError): void {
    if (this.#held.get(id) !== h) return;
    this.#held.delete(id);
    h.lost(err);
  }

  #connection(): Promise<ReservedSql | undefined> {
    const max = this.#sql.options?.max ?? 1;
    if (max < MIN_POOL_FOR_RESERVE) return Promise.resolve(undefined);
    this.#reserved ??= this.#sql.reserve().catch((err) => {
      this.#reserved = undefined;
      throw err;
    });
    return this.#reserved;
  }

  /** Stops renewing and gives the reserved connection back. */
  async close(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#held.clear();
    const reserved = await this.#reserved?.catch(() => undefined);
    this.#reserved = undefined;
    reserved?.release();
  }
}

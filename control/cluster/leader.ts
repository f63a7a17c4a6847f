/**
 * Leader election among the control-plane processes on one database: a row in `leases`
 * (name `leader`) held by one process until it expires, renewed every third of the lease. The
 * leader runs the monitors (so probes and status observations are not doubled); any process
 * takes over once a dead leader's lease runs out. A plain row works on the embedded database
 * too, where advisory locks do not exclude.
 */
import type { Sql } from "postgres";
import type { Logger } from "../../shared/log/logger.ts";
import { run } from "../db/query.ts";

/** Takes or renews the lease `name` for `owner`; true when `owner` holds it now. */
export async function acquireLease(
  sql: Sql,
  name: string,
  owner: string,
  leaseMs: number,
): Promise<boolean> {
  const rows = await run(() =>
    sql`
      insert into leases (name, owner, expires_at)
      values (${name}, ${owner}, now() + ${leaseMs} * interval '1 millisecond')
      on conflict (name) do update
        set owner = excluded.owner, expires_at = excluded.expires_at,
            acquired_at = case when leases.owner = excluded.owner then leases.acquired_at
                               else now() end
        where leases.owner = excluded.owner or leases.expires_at < now()
      returning owner`
  );
  return rows.length > 0;
}

/** Gives the lease up (another process can take it at once). */
export async function releaseLease(sql: Sql, name: string, owner: string): Promise<void> {
  await run(() => sql`delete from leases where name = ${name} and owner = ${owner}`);
}

/** Who holds a lease now (undefined when nobody or expired). */
export async function leaseHolder(sql: Sql, name: string): Promise<string | undefined> {
  const [row] = await run(() =>
    sql<{ owner: string }[]>`
      select owner from leases where name = ${name} and expires_at > now()`
  );
  return row?.owner;
}

/** Runs `onLead` while this process is the leader and `onFollow` when it stops being it. */
export class Leadership {
  readonly #sql: Sql;
  readonly #owner: string;
  readonly #leaseMs: number;
  readonly #log: Logger;
  readonly #onLead: () => Promise<void> | void;
  readonly #onFollow: () => Promise<void> | void;
  #leader = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #stopped = false;
  #lastRenewal = 0;
  #tick: Promise<void> = Promise.resolve();

  constructor(options: {
    sql: Sql;
    owner: string;
    leaseMs: number;
    logger: Logger;
    onLead: () => Promise<void> | void;
    onFollow: () => Promise<void> | void;
  }) {
    this.#sql = options.sql;
    this.#owner = options.owner;
    this.#leaseMs = options.leaseMs;
    this.#log = options.logger.child({ component: "leader" });
    this.#onLead = options.onLead;
    this.#onFollow = options.onFollow;
  }

  get isLeader(): boolean {
    return this.#leader;
  }

  /** Starts competing for the lease. */
  start(): void {
    this.#schedule(0);
  }

  /** Stops, releasing the lease if held. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#tick;
    if (this.#leader) {
      this.#leader = false;
      await Promise.resolve(this.#onFollow()).catch(() => {});
      await releaseLease(this.#sql, "leader", this.#owner).catch(() => {});
    }
  }

  #schedule(ms: number) {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#tick = this.#round().finally(() => this.#schedule(Math.floor(this.#leaseMs / 3)));
    }, ms);
  }

  async #round(): Promise<void> {
    let held = false;
    try {
      held = await acquireLease(this.#sql, "leader", this.#owner, this.#leaseMs);
      if (held) this.#lastRenewal = Date.now();
    } catch (err) {
      this.#log.warn("leader lease check failed", { err });
      // Keep leading only while the last renewal is still valid.
      held = this.#leader && Date.now() - this.#lastRenewal < this.#leaseMs;
    }
    if (this.#stopped) return;
    if (held && !this.#leader) {
      this.#leader = true;
      this.#log.info("this process is the leader: running the monitors", { owner: this.#owner });
      await Promise.resolve(this.#onLead()).catch((err) =>
        this.#log.error("starting monitors failed", { err })
      );
    } else if (!held && this.#leader) {
      this.#leader = false;
      this.#log.info("leadership lost: stopping the monitors");
      await Promise.resolve(this.#onFollow()).catch(() => {});
    }
  }
}

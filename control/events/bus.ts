/**
 * The event bus of one control-plane process: transactions that record events
 * (`bus.transaction`), and fan-out of every committed event — from this process or any other
 * on the same database — to in-process subscribers (SSE streams, job long-polls, idle
 * workers). New events are read from the `events` table in id order, woken by LISTEN/NOTIFY on
 * PostgreSQL, by this process's own commits (the embedded database has no NOTIFY), and by a
 * slow poll as the backstop.
 */
import type { Sql, TransactionSql } from "postgres";
import type { Logger } from "../../shared/log/logger.ts";
import { transaction } from "../db/query.ts";
import {
  type EventFilter,
  type EventRow,
  EVENTS_CHANNEL,
  eventsAfter,
  insertEvents,
  latestEventId,
  matches,
  type NewEvent,
} from "./store.ts";

/** Records an event in the current transaction (inserted when the work is done). */
export type Emit = (event: NewEvent) => void;

/** Receives committed events in id order. */
export type Listener = (event: EventRow) => void;

export interface EventBusOptions {
  sql: Sql;
  /** Use LISTEN/NOTIFY (PostgreSQL; not the embedded database). */
  listen: boolean;
  /** Backstop poll period. */
  pollMs?: number;
  logger: Logger;
}

interface Subscription {
  filter: EventFilter;
  listener: Listener;
}

/** Fan-out of committed events plus the transaction helper that records them. */
export class EventBus {
  readonly #sql: Sql;
  readonly #listen: boolean;
  readonly #pollMs: number;
  readonly #log: Logger;
  readonly #subs = new Set<Subscription>();
  #last = 0;
  #started = false;
  #stopped = false;
  #fetching: Promise<void> | null = null;
  #again = false;
  #timer: ReturnType<typeof setInterval> | undefined;
  #unlisten: (() => Promise<void>) | undefined;

  constructor(options: EventBusOptions) {
    this.#sql = options.sql;
    this.#listen = options.listen;
    this.#pollMs = options.pollMs ?? 1000;
    this.#log = options.logger.child({ component: "events" });
  }

  /** Id of the newest event dispatched so far. */
  get lastId(): number {
    return this.#last;
  }

  /** Starts from the current end of the log (older events are read from the table). */
  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    this.#last = await latestEventId(this.#sql);
    if (this.#listen) {
      const { unlisten } = await this.#sql.listen(EVENTS_CHANNEL, () => this.poke());
      this.#unlisten = unlisten;
    }
    this.#timer = setInterval(() => this.poke(), this.#pollMs);
  }

  /** Stops fan-out; subscribers get nothing more. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#timer);
    await this.#unlisten?.().catch(() => {});
    await this.#fetching;
    this.#subs.clear();
  }

  /** Calls `listener` for every later event passing `filter`; returns the unsubscribe. */
  subscribe(filter: EventFilter, listener: Listener): () => void {
    const sub = { filter, listener };
    this.#subs.add(sub);
    return () => this.#subs.delete(sub);
  }

  /** Reads and dispatches new events soon (coalesced). */
  poke(): void {
    if (!this.#started || this.#stopped) return;
    if (this.#fetching) {
      this.#again = true;
      return;
    }
    this.#fetching = this.#drain().finally(() => {
      this.#fetching = null;
      if (this.#again) {
        this.#again = false;
        this.poke();
      }
    });
  }

  /** Resolves once every event committed before the call has been dispatched. */
  async flush(): Promise<void> {
    this.poke();
    while (this.#fetching) await this.#fetching;
  }

  /**
   * Runs `fn` in one transaction; the events it emits are inserted at the end (under the
   * ordering lock, held only until commit) and dispatched once committed.
   */
  async transaction<T>(fn: (tx: TransactionSql, emit: Emit) => Promise<T> | T): Promise<T> {
    const pending: NewEvent[] = [];
    const out = await transaction(this.#sql, async (tx) => {
      pending.length = 0;
      const result = await fn(tx, (e) => pending.push(e));
      await insertEvents(tx, pending);
      return result;
    });
    if (pending.length) this.poke();
    return out;
  }

  async #drain(): Promise<void> {
    try {
      for (;;) {
        const rows = await eventsAfter(this.#sql, this.#last, {}, 500);
        for (const row of rows) {
          this.#last = row.id;
          for (const sub of this.#subs) {
            if (!matches(sub.filter, row)) continue;
            try {
              sub.listener(row);
            } catch (err) {
              this.#log.warn("event listener failed", { err });
            }
          }
        }
        if (rows.length < 500 || this.#stopped) return;
      }
    } catch (err) {
      if (!this.#stopped) this.#log.warn("reading new events failed", { err });
    }
  }
}

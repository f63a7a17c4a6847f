/**
 * The event log (`events` table): what happened to VMs, hosts and jobs, in commit order.
 * Writers insert at the very end of their transaction under one transaction-scoped advisory
 * lock, so ids become visible in increasing order: a reader that has seen id N and asks for
 * `id > N` later never misses an event (the SSE `Last-Event-ID` contract). Each insert also
 * NOTIFYs `qarax_events` so other processes on the same PostgreSQL wake up at once.
 */
import type { Db } from "../db/query.ts";
import { and, run } from "../db/query.ts";

/** Event types; the family (before the dot) is what `?type=vm` matches. */
export const EVENT_TYPES = [
  "vm.status_changed",
  "vm.deleted",
  "host.status_changed",
  "host.stray_vms",
  "network.sync_failed",
  "job.created",
  "job.started",
  "job.progress",
  "job.retrying",
  "job.succeeded",
  "job.failed",
  "job.cancelled",
] as const;
export type EventType = typeof EVENT_TYPES[number];

/** The NOTIFY channel of new events (payload: the newest id). */
export const EVENTS_CHANNEL = "qarax_events";

/** Key of the advisory lock that orders event inserts ("qarax events" as an int8). */
const EVENTS_LOCK = 0x71617261_78657674n;

/** An event to record. */
export interface NewEvent {
  type: EventType;
  resource_type: string;
  resource_id: string | null;
  data: Record<string, unknown>;
}

/** A recorded event. */
export interface EventRow extends NewEvent {
  id: number;
  time: Date;
}

/** Which events a reader wants; empty lists mean "all". */
export interface EventFilter {
  /** Exact types (`vm.status_changed`) or families (`vm`). */
  types?: string[];
  /** The event's resource, or (for job events) the resource the job works on. */
  resource_ids?: string[];
  resource_types?: string[];
}

/** Appends events (call last in the transaction: the lock is held until commit). */
export async function insertEvents(tx: Db, events: readonly NewEvent[]): Promise<number[]> {
  if (events.length === 0) return [];
  const rows = events.map((e) => ({
    type: e.type,
    resource_type: e.resource_type,
    resource_id: e.resource_id,
    data: tx.json(e.data as never),
  }));
  // The lock first, in its own statement: ids must be drawn only once it is held.
  await run(() => tx`select pg_advisory_xact_lock(${EVENTS_LOCK.toString()}::int8)`);
  const ids = await run(() =>
    tx<{ id: number }[]>`
      with ins as (insert into events ${tx(rows)} returning id)
      select ins.id::int8 as id, pg_notify(${EVENTS_CHANNEL}, ins.id::text)
      from ins order by ins.id`
  );
  return ids.map((r) => Number(r.id));
}

/** True when `event` passes `filter` (the in-memory twin of `filterSql`). */
export function matches(filter: EventFilter, event: NewEvent): boolean {
  if (filter.types?.length) {
    const family = event.type.slice(0, event.type.indexOf("."));
    if (!filter.types.some((t) => t === event.type || t === family)) return false;
  }
  if (filter.resource_types?.length && !filter.resource_types.includes(event.resource_type)) {
    return false;
  }
  if (filter.resource_ids?.length) {
    const subject = typeof event.data.resource_id === "string" ? event.data.resource_id : null;
    if (
      !filter.resource_ids.some((id) => id === event.resource_id || (subject && id === subject))
    ) return false;
  }
  return true;
}

function filterSql(db: Db, f: EventFilter) {
  const where = [];
  if (f.types?.length) {
    where.push(db`(type = any(${db.array(f.types)}::text[])
                   or split_part(type, '.', 1) = any(${db.array(f.types)}::text[]))`);
  }
  if (f.resource_types?.length) {
    where.push(db`resource_type = any(${db.array(f.resource_types)}::text[])`);
  }
  if (f.resource_ids?.length) {
    where.push(db`(resource_id = any(${db.array(f.resource_ids)}::uuid[])
                   or data->>'resource_id' = any(${db.array(f.resource_ids)}::text[]))`);
  }
  return where;
}

/** Events after `afterId` in id order (at most `limit`). */
export function eventsAfter(
  db: Db,
  afterId: number,
  filter: EventFilter = {},
  limit = 1000,
): Promise<EventRow[]> {
  return run(async () => {
    const rows = await db<EventRow[]>`
      select id::int8 as id, time, type, resource_type, resource_id, data from events
      where ${and(db, [db`id > ${afterId}`, ...filterSql(db, filter)])}
      order by id limit ${limit}`;
    return rows.map((r) => ({ ...r, id: Number(r.id) }));
  });
}

/** The newest event id (0 when there is none). */
export async function latestEventId(db: Db): Promise<number> {
  const [row] = await run(() =>
    db<{ id: number | null }[]>`select max(id)::int8 as id from events`
  );
  return Number(row?.id ?? 0);
}

/** The oldest retained event id (null when the log is empty). */
export async function oldestEventId(db: Db): Promise<number | null> {
  const [row] = await run(() =>
    db<{ id: number | null }[]>`select min(id)::int8 as id from events`
  );
  return row?.id === null || row?.id === undefined ? null : Number(row.id);
}

/** Deletes events older than `before`; returns how many. */
export async function deleteEventsBefore(db: Db, before: Date): Promise<number> {
  const rows = await run(() => db`delete from events where time < ${before} returning id`);
  return rows.length;
}

/**
 * The durable job queue over the `jobs` table. Jobs are enqueued with their `job.created`
 * event (an Idempotency-Key returns the job it created before); workers claim one at a time
 * with `FOR UPDATE SKIP LOCKED` — an expired lease first (its worker died: the plan resumes
 * from its checkpoint), else the oldest runnable pending job — under a lease token that fences
 * every later write: a worker that lost its lease can no longer change the job.
 */
import { AlreadyExistsError, ConflictError } from "../../shared/errors/errors.ts";
import { type Emit } from "../events/bus.ts";
import type { EventBus } from "../events/bus.ts";
import type { NewEvent } from "../events/store.ts";
import type { Db } from "../db/query.ts";
import { run } from "../db/query.ts";
import {
  insertJob,
  JOB_COLUMNS,
  jobByIdempotencyKey,
  type JobRow,
  type NewJob,
} from "../db/jobs.ts";

/** A claimed job: the row (with its checkpoint) and the lease token fencing its writes. */
export interface Claimed {
  job: JobRow & { checkpoint: Checkpoint };
  token: string;
}

/** What a plan has done so far: finished steps and the values they hand to later steps. */
export interface Checkpoint {
  done?: string[];
  data?: Record<string, unknown>;
}

/** The worker no longer holds the job's lease (it expired and another worker took it). */
export class LeaseLostError extends ConflictError {}

const CLAIM_COLUMNS = [...JOB_COLUMNS, "checkpoint"];

/** The event of a job's lifecycle step. */
export function jobEvent(
  type: NewEvent["type"],
  job: Pick<
    JobRow,
    | "id"
    | "type"
    | "status"
    | "resource_type"
    | "resource_id"
    | "progress"
    | "progress_message"
    | "attempts"
  >,
  extra: Record<string, unknown> = {},
): NewEvent {
  return {
    type,
    resource_type: "job",
    resource_id: job.id,
    data: {
      job_id: job.id,
      job_type: job.type,
      status: job.status,
      resource_type: job.resource_type,
      resource_id: job.resource_id,
      progress: job.progress,
      progress_message: job.progress_message,
      attempt: job.attempts,
      ...extra,
    },
  };
}

/**
 * Queues a job in the caller's transaction. With an idempotency key already used for the same
 * type and resource, returns that job (`existing: true`); for anything else the key is a 409.
 * A second active job on the same resource is a 409 naming the active one.
 */
export async function enqueueJob(
  tx: Db,
  emit: Emit,
  job: NewJob,
): Promise<{ job: JobRow; existing: boolean }> {
  if (job.idempotency_key) {
    const prior = await priorJob(tx, job.idempotency_key, job);
    if (prior) return { job: prior, existing: true };
  }
  let row: JobRow;
  try {
    row = await insertJob(tx, job);
  } catch (err) {
    if (err instanceof AlreadyExistsError && job.idempotency_key) {
      throw new ConflictError(
        `a request with Idempotency-Key ${job.idempotency_key} is being processed; retry it`,
        { cause: err },
      );
    }
    throw err;
  }
  emit(jobEvent("job.created", row, { actor: row.actor }));
  return { job: row, existing: false };
}

/**
 * The job an Idempotency-Key already created for the same request (type and resource), if
 * any; the key used for a different request is a 409.
 */
export async function priorJob(
  tx: Db,
  key: string,
  request: { type: string; resource_id?: string | null },
): Promise<JobRow | undefined> {
  const prior = await jobByIdempotencyKey(tx, key);
  const sameResource = request.resource_id === undefined ||
    prior?.resource_id === request.resource_id;
  if (prior && (prior.type !== request.type || !sameResource)) {
    throw new ConflictError(
      `Idempotency-Key ${key} was already used for job ${prior.id} ` +
        `(${prior.type} on ${prior.resource_type} ${prior.resource_id}); use a new key`,
      { details: [{ field: "Idempotency-Key", message: "used for another request" }] },
    );
  }
  return prior;
}

/** A lease token for `owner` (unique per claim, so a re-claim by the same process is fenced). */
export function leaseToken(owner: string): string {
  return `${owner}#${crypto.randomUUID().slice(0, 8)}`;
}

/**
 * Claims one job: a running job whose lease expired (its worker died) first, else the oldest
 * pending job that may run now. A lease of this same process is never taken over: its worker
 * is alive (it hands jobs back when it stops), merely slow to renew. Records `job.started`. Returns null when there is none.
 */
export async function claimJob(
  bus: EventBus,
  owner: string,
  leaseMs: number,
  types?: readonly string[],
): Promise<Claimed | null> {
  const token = leaseToken(owner);
  return await bus.transaction(async (tx, emit) => {
    const typeFilter = types ? tx`and type = any(${tx.array([...types])}::text[])` : tx``;
    const set = tx`
      status = 'running', lease_owner = ${token},
      lease_expires_at = now() + ${leaseMs} * interval '1 millisecond',
      attempts = j.attempts + 1, started_at = coalesce(j.started_at, now())`;
    let rows = await tx<Claimed["job"][]>`
      update jobs j set ${set}
      where j.id = (select id from jobs
                    where status = 'running' and lease_expires_at < now() ${typeFilter}
                      and split_part(lease_owner, '#', 1) <> ${owner}
                    order by lease_expires_at limit 1 for update skip locked)
      returning ${tx(CLAIM_COLUMNS)}`;
    const recovered = rows.length > 0;
    if (!recovered) {
      rows = await tx<Claimed["job"][]>`
        update jobs j set ${set}
        where j.id = (select id from jobs
                      where status = 'pending' and run_after <= now() ${typeFilter}
                      order by run_after, created_at limit 1 for update skip locked)
        returning ${tx(CLAIM_COLUMNS)}`;
    }
    const job = rows[0];
    if (!job) return null;
    emit(jobEvent("job.started", job, { owner: token, recovered }));
    return { job, token };
  });
}

/**
 * Extends the leases of many jobs in one statement; returns the ids still ours, each with who
 * asked to cancel it (null when nobody did).
 */
export async function renewLeases(
  db: Db,
  leases: readonly { id: string; token: string }[],
  leaseMs: number,
): Promise<Map<string, string | null>> {
  if (leases.length === 0) return new Map();
  const rows = await run(() =>
    db<{ id: string; cancel_requested_by: string | null }[]>`
      update jobs j set lease_expires_at = now() + ${leaseMs} * interval '1 millisecond'
      from unnest(${leases.map((l) => l.id)}::uuid[], ${leases.map((l) => l.token)}::text[])
        as held(id, token)
      where j.id = held.id and j.lease_owner = held.token and j.status = 'running'
      returning j.id, case when j.cancel_requested_at is not null
                           then coalesce(j.cancel_requested_by, '') end as cancel_requested_by`
  );
  return new Map(rows.map((r) => [r.id, r.cancel_requested_by]));
}

/** Locks the job row in `tx` and throws LeaseLostError unless `token` still holds it. */
export async function checkLease(tx: Db, id: string, token: string): Promise<JobRow> {
  const rows = await run(() =>
    tx<JobRow[]>`
      select ${tx(JOB_COLUMNS as unknown as string[])} from jobs
      where id = ${id} and lease_owner = ${token} and status = 'running' for no key update`
  );
  if (!rows[0]) throw new LeaseLostError(`job ${id}: lease lost to another worker`);
  return rows[0];
}

/** Saves the checkpoint and/or progress of a job we hold; records `job.progress`. */
export async function saveProgress(
  tx: Db,
  emit: Emit,
  claimed: Claimed,
  update: { checkpoint?: Checkpoint; progress?: number; message?: string; step?: string },
): Promise<void> {
  await checkLease(tx, claimed.job.id, claimed.token);
  const fields: Record<string, unknown> = {};
  if (update.checkpoint) fields.checkpoint = tx.json(update.checkpoint as never);
  if (update.progress !== undefined) {
    fields.progress = Math.max(0, Math.min(100, Math.round(update.progress)));
  }
  if (update.message !== undefined) fields.progress_message = update.message;
  const [row] = await run(() =>
    tx<JobRow[]>`update jobs set ${tx(fields)} where id = ${claimed.job.id}
                 returning ${tx(JOB_COLUMNS as unknown as string[])}`
  );
  Object.assign(claimed.job, row, update.checkpoint ? { checkpoint: update.checkpoint } : {});
  emit(jobEvent("job.progress", row, update.step ? { step: update.step } : {}));
}

/** The error stored in a job that ended or retries. */
export type JobError = { code: string; message: string; details?: unknown[] };

/** Ends a job we hold: succeeded with a result, or failed or cancelled with an error. */
export async function finishJob(
  tx: Db,
  emit: Emit,
  claimed: Claimed,
  outcome:
    | { status: "succeeded"; result: Record<string, unknown> }
    | { status: "failed" | "cancelled"; error: JobError },
): Promise<JobRow> {
  await checkLease(tx, claimed.job.id, claimed.token);
  const [row] = await run(() =>
    outcome.status === "succeeded"
      ? tx<JobRow[]>`
        update jobs set status = 'succeeded', progress = 100, result = ${
        tx.json(outcome.result as never)
      },
          error = null, finished_at = now(), lease_owner = null, lease_expires_at = null
        where id = ${claimed.job.id} returning ${tx(JOB_COLUMNS as unknown as string[])}`
      : tx<JobRow[]>`
        update jobs set status = ${outcome.status}, error = ${tx.json(outcome.error as never)},
          finished_at = now(), lease_owner = null, lease_expires_at = null
        where id = ${claimed.job.id} returning ${tx(JOB_COLUMNS as unknown as string[])}`
  );
  emit(
    outcome.status === "succeeded"
      ? jobEvent("job.succeeded", row, { result: outcome.result })
      : jobEvent(`job.${outcome.status}`, row, { error: outcome.error }),
  );
  return row;
}

/** Puts a job we hold back in the queue to run again after `delayMs` (checkpoint kept). */
export async function retryJob(
  tx: Db,
  emit: Emit,
  claimed: Claimed,
  error: { code: string; message: string },
  delayMs: number,
): Promise<void> {
  await checkLease(tx, claimed.job.id, claimed.token);
  const [row] = await run(() =>
    tx<JobRow[]>`
      update jobs set status = 'pending', error = ${tx.json(error as never)},
        run_after = now() + ${delayMs} * interval '1 millisecond',
        lease_owner = null, lease_expires_at = null
      where id = ${claimed.job.id} returning ${tx(JOB_COLUMNS as unknown as string[])}`
  );
  emit(jobEvent("job.retrying", row, { error, retry_in_ms: delayMs }));
}

/**
 * Hands a job we hold back to the queue at once without charging an attempt (this process is
 * shutting down); any process may claim it right away.
 */
export async function releaseJob(db: Db, claimed: Claimed): Promise<void> {
  await run(() =>
    db`update jobs set status = 'pending', attempts = greatest(attempts - 1, 0),
         lease_owner = null, lease_expires_at = null, run_after = now()
       where id = ${claimed.job.id} and lease_owner = ${claimed.token} and status = 'running'`
  );
}

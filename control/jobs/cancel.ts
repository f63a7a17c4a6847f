/**
 * Cancelling a job (as Incus cancels an operation). A pending job that never ran ends
 * `cancelled` at once, in the caller's transaction, with its plan's `release` giving back what
 * enqueueing took. A running job — or a pending retry that already did part of its plan — gets
 * a cancel request instead: the worker running it stops before its next step, runs the plan's
 * undo and ends it `cancelled` (see plan.ts, worker.ts). Cancelling twice is harmless; a job
 * that already succeeded or failed cannot be cancelled.
 */
import { FailedPreconditionError, NotFoundError } from "../../shared/errors/errors.ts";
import { JOB_COLUMNS, type JobRow } from "../db/jobs.ts";
import { run } from "../db/query.ts";
import type { Emit } from "../events/bus.ts";
import type { TransactionSql } from "postgres";
import { JobCancelledError, type Plan } from "./plan.ts";
import { type Checkpoint, jobEvent } from "./queue.ts";

/** What cancelling did. */
export interface Cancelled {
  job: JobRow;
  /** A worker still has to stop the job. */
  requested: boolean;
  /** This call ended the job (it was pending). */
  ended: boolean;
}

const COLUMNS = JOB_COLUMNS as unknown as string[];
const LOCK_COLUMNS = [...JOB_COLUMNS, "checkpoint"];

/** Cancels job `id` for `actor` (see the module comment). */
export async function cancelJob(
  tx: TransactionSql,
  emit: Emit,
  id: string,
  actor: string,
  plans: Readonly<Record<string, Plan>>,
): Promise<Cancelled> {
  // The row lock orders this against a worker claiming, checkpointing or finishing the job.
  const [row] = await run(() =>
    tx<(JobRow & { checkpoint: Checkpoint })[]>`
      select ${tx(LOCK_COLUMNS)} from jobs where id = ${id} for update`
  );
  if (!row) throw NotFoundError.of("job", id);
  const { checkpoint, ...job } = row;
  if (job.status === "cancelled") return { job, requested: false, ended: false };
  if (job.status === "succeeded" || job.status === "failed") {
    throw new FailedPreconditionError(`cannot cancel job ${id} (${job.type}): it ${job.status}`);
  }
  const began = (checkpoint.done?.length ?? 0) > 0 || Object.keys(checkpoint.data ?? {}).length > 0;
  if (job.status === "running" || began) {
    if (job.cancel_requested_at) return { job, requested: true, ended: false };
    // A waiting retry is made runnable now, so a worker undoes it without delay.
    const [marked] = await run(() =>
      tx<JobRow[]>`
        update jobs set cancel_requested_at = now(), cancel_requested_by = ${actor},
          run_after = least(run_after, now())
        where id = ${id} returning ${tx(COLUMNS)}`
    );
    return { job: marked, requested: true, ended: false };
  }
  const error = new JobCancelledError(actor);
  await plans[job.type]?.release?.(tx, emit, job, error.message);
  const stored = { code: error.code, message: error.message };
  const [done] = await run(() =>
    tx<JobRow[]>`
      update jobs set status = 'cancelled', error = ${tx.json(stored)}, finished_at = now(),
        cancel_requested_at = now(), cancel_requested_by = ${actor}
      where id = ${id} returning ${tx(COLUMNS)}`
  );
  emit(jobEvent("job.cancelled", done, { error: stored, actor }));
  return { job: done, requested: false, ended: true };
}

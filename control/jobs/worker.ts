/**
 * The job workers of one process: up to `jobs.workers` jobs at a time, claimed from the
 * shared queue (any process may run any job; SKIP LOCKED and the lease make each run exactly
 * once), woken at once by `job.created`/`job.retrying` events and by a poll as the backstop.
 * While a job runs its lease is kept (leases.ts); a lost lease aborts it. Failures that may pass
 * (node unreachable, deadline, conflict) are retried with backoff up to the job's
 * `max_attempts`; anything else, or the last attempt, fails the job with its reason after the
 * plan's clean-up. A job somebody asked to cancel (heard with the lease renewal or read at a
 * checkpoint) stops before its next step, is undone like a failure and ends `cancelled`. On
 * shutdown running jobs are aborted and handed back to the queue.
 */
import {
  asQaraxError,
  InternalError,
  type QaraxError,
  UnimplementedError,
} from "../../shared/errors/errors.ts";
import type { Logger } from "../../shared/log/logger.ts";
import type { Services } from "../services.ts";
import { LeaseKeeper } from "./leases.ts";
import { type JobCancelledError, JobRun, type Plan } from "./plan.ts";
import {
  type Claimed,
  claimJob,
  finishJob,
  type JobError,
  LeaseLostError,
  releaseJob,
  retryJob,
} from "./queue.ts";

/** Errors worth another attempt. */
const RETRYABLE = new Set(["unavailable", "deadline_exceeded", "resource_exhausted", "conflict"]);

export interface WorkerOptions {
  /** This process's name in lease tokens. */
  owner: string;
  plans: Readonly<Record<string, Plan>>;
}

/** The error stored in a failed job. */
export function jobError(err: QaraxError): JobError {
  let message = err.message;
  // Bugs keep their cause's text: the job is the operator's only record of what went wrong.
  if (err instanceof InternalError && err.cause instanceof Error && message === "internal error") {
    message = `internal error: ${err.cause.message}`;
  }
  return err.details.length
    ? { code: err.code, message, details: err.details }
    : { code: err.code, message };
}

/** The workers of one control-plane process. */
export class JobWorkers {
  readonly #svc: Services;
  readonly #opts: WorkerOptions;
  readonly #log: Logger;
  readonly #running = new Map<
    string,
    { claimed: Claimed; ac: AbortController; done: Promise<void> }
  >();
  #filling = false;
  #again = false;
  #stopped = false;
  #timer: ReturnType<typeof setInterval> | undefined;
  #unsubscribe: (() => void) | undefined;
  readonly #leases: LeaseKeeper;

  constructor(svc: Services, options: WorkerOptions) {
    this.#svc = svc;
    this.#opts = options;
    this.#log = svc.logger.child({ component: "jobs" });
    this.#leases = new LeaseKeeper(svc.sql, svc.config.jobs.lease_ms, this.#log);
  }

  /** Jobs running now. */
  get active(): number {
    return this.#running.size;
  }

  /** Starts claiming. */
  start(): void {
    if (this.#svc.config.jobs.workers === 0) return;
    this.#unsubscribe = this.#svc.events.subscribe(
      { types: ["job.created", "job.retrying", "job.succeeded", "job.failed"] },
      () => this.wake(),
    );
    this.#timer = setInterval(() => this.wake(), this.#svc.config.jobs.poll_interval_ms);
    this.wake();
  }

  /** Looks for work now. */
  wake(): void {
    if (this.#stopped) return;
    if (this.#filling) {
      this.#again = true;
      return;
    }
    this.#filling = true;
    this.#fill().catch((err) => this.#log.warn("claiming jobs failed", { err })).finally(() => {
      this.#filling = false;
      if (this.#again) {
        this.#again = false;
        this.wake();
      }
    });
  }

  /** Stops claiming, aborts running jobs and hands them back to the queue. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#timer);
    this.#unsubscribe?.();
    const running = [...this.#running.values()];
    for (const r of running) r.ac.abort(new Error("shutting down"));
    await Promise.all(running.map((r) => r.done));
    for (const r of running) {
      await releaseJob(this.#svc.sql, r.claimed).catch(() => {});
    }
    await this.#leases.close();
  }

  async #fill(): Promise<void> {
    const { workers, lease_ms } = this.#svc.config.jobs;
    while (!this.#stopped && this.#running.size < workers) {
      const claimed = await claimJob(this.#svc.events, this.#opts.owner, lease_ms);
      if (!claimed) return;
      if (this.#stopped) {
        await releaseJob(this.#svc.sql, claimed);
        return;
      }
      const ac = new AbortController();
      const done = this.#execute(claimed, ac).finally(() => {
        this.#running.delete(claimed.job.id);
        this.wake();
      });
      this.#running.set(claimed.job.id, { claimed, ac, done });
    }
  }

  async #execute(claimed: Claimed, ac: AbortController): Promise<void> {
    const { job } = claimed;
    const log = this.#log.child({ job_id: job.id, job_type: job.type });
    const run = new JobRun(this.#svc, claimed, ac.signal);
    const unhold = this.#leases.hold(
      job.id,
      claimed.token,
      (err) => ac.abort(err),
      (by) => run.requestCancel(by),
    );
    try {
      const plan = this.#opts.plans[job.type];
      if (!plan) {
        throw new UnimplementedError(`job type ${job.type} is not known to this version`);
      }
      if (job.attempts > job.max_attempts) {
        // Every earlier worker died holding it: do not try again, only clean up.
        const cancelled = run.cancelRequest;
        if (cancelled) return await this.#end(run, plan, cancelled, "cancelled");
        const why = `gave up after ${job.max_attempts} attempt(s): the worker running the job ` +
          "stopped (lease expired)";
        return await this.#end(run, plan, new InternalError(why), "failed");
      }
      log.info("job running", { attempt: job.attempts, resource_id: job.resource_id });
      const result = await run.run(plan);
      const finished = await this.#svc.events.transaction((tx, emit) =>
        finishJob(tx, emit, claimed, { status: "succeeded", result })
      );
      this.#svc.metrics.observeJobFinished(finished, "succeeded");
      log.info("job succeeded", { attempt: job.attempts });
    } catch (thrown) {
      if (ac.signal.aborted || thrown instanceof LeaseLostError) {
        log.info("job interrupted", { reason: String(ac.signal.reason ?? thrown) });
        return;
      }
      const err = asQaraxError(thrown);
      // Whatever stopped it, a job somebody asked to cancel is not retried: it is undone.
      const cancelled = run.cancelRequest;
      if (err instanceof InternalError && !cancelled) {
        log.error("job failed on a bug", { err: thrown });
      }
      try {
        if (cancelled) {
          await this.#end(run, this.#opts.plans[job.type], cancelled, "cancelled");
        } else if (RETRYABLE.has(err.code) && job.attempts < job.max_attempts) {
          const delay = this.#svc.config.jobs.retry_delay_ms * 2 ** (job.attempts - 1);
          log.info("job will retry", {
            attempt: job.attempts,
            delay_ms: delay,
            error: err.message,
          });
          await this.#svc.events.transaction((tx, emit) =>
            retryJob(tx, emit, claimed, jobError(err), delay)
          );
          this.#svc.metrics.jobRetries.inc({ type: job.type });
        } else {
          await this.#end(run, this.#opts.plans[job.type], err, "failed");
        }
      } catch (e) {
        if (!(e instanceof LeaseLostError)) log.warn("recording the job's outcome failed", { e });
      }
    } finally {
      unhold();
    }
  }

  /** Runs the plan's undo, then ends the job failed or cancelled with `err`. */
  async #end(
    run: JobRun,
    plan: Plan | undefined,
    err: QaraxError | JobCancelledError,
    status: "failed" | "cancelled",
  ): Promise<void> {
    const log = run.log;
    try {
      await plan?.onFailure?.(run, err);
    } catch (e) {
      if (e instanceof LeaseLostError) throw e;
      log.warn(`clean-up after the job ${status} failed`, { err: e });
    }
    const finished = await this.#svc.events.transaction((tx, emit) =>
      finishJob(tx, emit, run.claimed, { status, error: jobError(err) })
    );
    this.#svc.metrics.observeJobFinished(finished, status);
    log.info(`job ${status}`, { code: err.code, error: err.message });
  }
}

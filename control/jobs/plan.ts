/**
 * Plans and their runner. A plan is an ordered list of small steps; each step is idempotent
 * (running it again after a crash is safe) and its completion is checkpointed in the job row
 * with the values it hands to later steps, so a job taken over by another worker resumes at
 * the first step not done. Every write a step makes goes through `ctx.transaction`, which
 * first checks the lease: a worker that lost its job cannot change anything any more. A job
 * somebody asked to cancel stops at the next step boundary (a step in progress finishes: its
 * node calls are left to complete, so the plan's undo sees what they did) with a
 * JobCancelledError; waits between calls watch `waitSignal` and stop at once.
 */
import type { TransactionSql } from "postgres";
import { CancelledError, type QaraxError } from "../../shared/errors/errors.ts";
import type { Logger } from "../../shared/log/logger.ts";
import type { JobRow } from "../db/jobs.ts";
import type { Emit } from "../events/bus.ts";
import type { Cause } from "../events/status.ts";
import type { Services } from "../services.ts";
import { checkLease, type Claimed, saveProgress } from "./queue.ts";

/** What a step sees. */
export interface JobContext {
  readonly svc: Services;
  readonly job: Claimed["job"];
  readonly log: Logger;
  /** Aborted when the lease is lost or the process stops. */
  readonly signal: AbortSignal;
  /**
   * Aborted like `signal`, and also when somebody asks to cancel the job: what a step waits
   * for between its calls (polls, pauses, a long transfer) watches this one.
   */
  readonly waitSignal: AbortSignal;
  /** Values steps hand to later steps (saved with each checkpoint). */
  readonly data: Record<string, unknown>;
  /** The cause recorded with status changes this job makes. */
  readonly cause: Cause;
  /** A transaction that first checks this worker still holds the job. */
  transaction<T>(fn: (tx: TransactionSql, emit: Emit) => Promise<T>): Promise<T>;
  /** Saves `data` now (before a call whose effect a retry must know about). */
  save(): Promise<void>;
  /** Progress within the current step (0..1), throttled. */
  progress(fraction: number, message?: string): Promise<void>;
}

/** One small idempotent step. */
export interface Step {
  name: string;
  run(ctx: JobContext): Promise<void>;
}

/** The plan of a job type. */
export interface Plan {
  steps: readonly Step[];
  /**
   * Best-effort clean-up after the job finally fails or is cancelled while it runs (e.g. put
   * the VM's status back).
   */
  onFailure?(ctx: JobContext, error: QaraxError): Promise<void>;
  /**
   * Gives back what enqueueing the job took (e.g. a status set by the route), when the job is
   * cancelled before it ran; runs in the cancel's transaction.
   */
  release?(tx: TransactionSql, emit: Emit, job: JobRow, reason: string): Promise<void>;
  /** The job's result once every step is done. */
  result?(ctx: JobContext): Record<string, unknown>;
}

/** The job was cancelled (`cancelled by <actor>`); the worker undoes and ends it `cancelled`. */
export class JobCancelledError extends CancelledError {
  constructor(by: string) {
    super(`cancelled by ${by || "unknown"}`);
  }
}

/** Minimum gap between two progress writes within a step. */
const PROGRESS_THROTTLE_MS = 500;

/** The context of one claimed job (the worker creates it; tests too). */
export class JobRun implements JobContext {
  readonly data: Record<string, unknown>;
  readonly done: string[];
  readonly log: Logger;
  readonly cause: Cause;
  #stepIndex = 0;
  #steps = 1;
  #lastProgress = 0;
  readonly #cancel = new AbortController();
  readonly waitSignal: AbortSignal;

  constructor(
    readonly svc: Services,
    readonly claimed: Claimed,
    readonly signal: AbortSignal,
  ) {
    this.waitSignal = AbortSignal.any([signal, this.#cancel.signal]);
    const cp = claimed.job.checkpoint ?? {};
    this.data = { ...(cp.data ?? {}) };
    this.done = [...(cp.done ?? [])];
    this.log = svc.logger.child({
      job_id: claimed.job.id,
      job_type: claimed.job.type,
      [`${claimed.job.resource_type}_id`]: claimed.job.resource_id,
    });
    this.cause = { source: "job", job_id: claimed.job.id };
  }

  get job() {
    return this.claimed.job;
  }

  /**
   * The cancel request, if somebody asked: heard from the lease keeper (`requestCancel`) or
   * read with the job row (at the claim and at each checkpoint).
   */
  get cancelRequest(): JobCancelledError | undefined {
    if (this.#cancel.signal.aborted) return this.#cancel.signal.reason;
    if (this.claimed.job.cancel_requested_at) {
      this.requestCancel(this.claimed.job.cancel_requested_by ?? "");
      return this.#cancel.signal.reason;
    }
    return undefined;
  }

  /** Somebody asked to cancel the job: stop waiting, and stop before the next step. */
  requestCancel(by: string): void {
    if (!this.#cancel.signal.aborted) this.#cancel.abort(new JobCancelledError(by));
  }

  transaction<T>(fn: (tx: TransactionSql, emit: Emit) => Promise<T>): Promise<T> {
    return this.svc.events.transaction(async (tx, emit) => {
      await checkLease(tx, this.claimed.job.id, this.claimed.token);
      return await fn(tx, emit);
    });
  }

  async save(): Promise<void> {
    await this.svc.events.transaction((tx, emit) =>
      saveProgress(tx, emit, this.claimed, { checkpoint: this.#checkpoint() })
    );
  }

  async progress(fraction: number, message?: string): Promise<void> {
    const now = Date.now();
    if (now - this.#lastProgress < PROGRESS_THROTTLE_MS) return;
    this.#lastProgress = now;
    const base = (100 * this.#stepIndex) / this.#steps;
    const pct = Math.min(99, base + (100 / this.#steps) * Math.max(0, Math.min(1, fraction)));
    await this.svc.events.transaction((tx, emit) =>
      saveProgress(tx, emit, this.claimed, { progress: pct, message })
    );
  }

  #checkpoint() {
    return { done: [...this.done], data: { ...this.data } };
  }

  /** Runs the steps not done yet, checkpointing after each; returns the job's result. */
  async run(plan: Plan): Promise<Record<string, unknown>> {
    this.#steps = plan.steps.length || 1;
    for (const [i, step] of plan.steps.entries()) {
      if (this.done.includes(step.name)) continue;
      this.signal.throwIfAborted();
      const cancelled = this.cancelRequest;
      if (cancelled) throw cancelled;
      this.#stepIndex = i;
      this.log.debug("step", { step: step.name });
      await step.run(this);
      this.done.push(step.name);
      const progress = Math.min(99, Math.round((100 * (i + 1)) / this.#steps));
      await this.svc.events.transaction((tx, emit) =>
        saveProgress(tx, emit, this.claimed, {
          checkpoint: this.#checkpoint(),
          progress,
          message: `${step.name} done`,
          step: step.name,
        })
      );
    }
    return plan.result?.(this) ?? {};
  }
}

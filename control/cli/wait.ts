/**
 * Following a job until it ends: long-polls `GET /v1/jobs/{id}?wait=N` (falling back to
 * plain polling when the server answers at once), shows a live progress line on a terminal
 * (plain lines otherwise, one per change), and turns a failed job into its domain error.
 */
import {
  CancelledError,
  DeadlineExceededError,
  errorFromCode,
  isErrorCode,
  type QaraxError,
} from "../../shared/errors/errors.ts";
import { type ApiClient, ServerAnswer } from "./client.ts";
import type { Io } from "./framework.ts";
import { formatDuration } from "./units.ts";

/** A job as the API returns it (the fields the CLI reads). */
export interface Job {
  id: string;
  type: string;
  status: string;
  resource_type: string;
  resource_id: string | null;
  progress: number;
  progress_message: string | null;
  error: { code: string; message: string; details?: unknown[] } | null;
  result: Record<string, unknown> | null;
  request_id: string | null;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  [more: string]: unknown;
}

/** Statuses after which a job never changes. */
export const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);

/**
 * How long one long-poll asks the server to hold the request. The server answers early when
 * the job ends, so this only bounds how stale the progress line can get.
 */
export const LONG_POLL_S = 3;

/** The job an action answered with: a Job body, `{job}`, `{job_id}` or a Location header. */
export function jobOf(body: unknown, headers?: Headers): { id: string; job?: Job } | undefined {
  const b = body && typeof body === "object" ? body as Record<string, unknown> : {};
  if (typeof b.id === "string" && typeof b.status === "string" && typeof b.type === "string") {
    return { id: b.id, job: b as Job };
  }
  if (b.job && typeof b.job === "object" && typeof (b.job as Job).id === "string") {
    return { id: (b.job as Job).id, job: b.job as Job };
  }
  if (typeof b.job_id === "string") return { id: b.job_id };
  const m = /\/v1\/jobs\/([0-9a-f-]{36})$/i.exec(headers?.get("location") ?? "");
  return m ? { id: m[1] } : undefined;
}

/** The domain error of a failed or cancelled job. */
export function jobError(job: Job): QaraxError {
  const answer = new ServerAnswer(null, job.request_id, job.id);
  if (job.status === "cancelled") {
    // The server records who cancelled it ("cancelled by alice").
    const why = job.error?.message ?? "was cancelled";
    return new CancelledError(`job ${job.id} (${job.type}) ${why}`, { cause: answer });
  }
  const code = isErrorCode(job.error?.code) ? job.error.code : "internal";
  const message = job.error?.message ?? "no error recorded";
  const details = (job.error?.details ?? []).filter((d): d is { message: string } =>
    !!d && typeof d === "object" && typeof (d as { message?: unknown }).message === "string"
  );
  return errorFromCode(code, `job ${job.id} (${job.type}) failed: ${message}`, {
    details,
    cause: answer,
  });
}

/** One line describing a job's state. */
export function jobLine(job: Job): string {
  const pct = job.status === "running" || job.progress > 0 ? ` ${job.progress}%` : "";
  const msg = job.progress_message ? ` ${job.progress_message}` : "";
  return `job ${job.id} ${job.type} ${job.status}${pct}${msg}`;
}

const SPINNER = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

/** The live line on a terminal, or one plain line per change elsewhere. */
class Progress {
  readonly #io: Io;
  readonly #started = Date.now();
  #job?: Job;
  #last = "";
  #frame = 0;
  #timer?: ReturnType<typeof setInterval>;

  constructor(io: Io) {
    this.#io = io;
    if (io.errIsTty) this.#timer = setInterval(() => this.#draw(), 120);
  }

  update(job: Job): void {
    this.#job = job;
    if (this.#io.errIsTty) return this.#draw();
    const line = jobLine(job);
    if (line !== this.#last) this.#io.err(line + "\n");
    this.#last = line;
  }

  #draw(): void {
    const job = this.#job;
    if (!job) return;
    const filled = Math.round(job.progress / 10);
    const bar = "█".repeat(filled) + "░".repeat(10 - filled);
    const spin = SPINNER[this.#frame++ % SPINNER.length];
    const elapsed = formatDuration(Date.now() - this.#started);
    let line = `${spin} ${job.type} ${bar} ${String(job.progress).padStart(3)}% ${job.status}${
      job.progress_message ? ` · ${job.progress_message}` : ""
    } (${elapsed})`;
    let columns = 100;
    try {
      columns = Deno.consoleSize().columns;
    } catch { /* not a terminal after all */ }
    if ([...line].length >= columns) line = [...line].slice(0, columns - 2).join("") + "…";
    this.#io.err(`\r\x1b[2K${line}`);
  }

  /** Stops redrawing and clears the line. */
  close(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    if (this.#io.errIsTty && this.#job) this.#io.err("\r\x1b[2K");
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal.reason);
    };
    const t = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

export interface WaitOptions {
  io: Io;
  /** Give up (DeadlineExceededError) after this long. */
  timeoutMs: number;
  signal: AbortSignal;
  /** Show progress (false: wait silently). */
  progress?: boolean;
  /** Return the job however it ended (instead of throwing the error of a failed one). */
  anyOutcome?: boolean;
}

/**
 * Waits until job `id` ends; returns it when it succeeded, throws its error when it failed,
 * DeadlineExceededError on timeout and CancelledError on Ctrl-C (the job keeps running).
 */
export async function waitForJob(client: ApiClient, id: string, opts: WaitOptions): Promise<Job> {
  const deadline = Date.now() + opts.timeoutMs;
  const progress = opts.progress === false ? undefined : new Progress(opts.io);
  let job: Job | undefined;
  const hint = `follow it with: qarax job wait ${id}`;
  try {
    for (let delay = 200;; delay = Math.min(delay * 2, 2000)) {
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new DeadlineExceededError(
          `gave up after ${formatDuration(opts.timeoutMs)}: job ${id} is still ${
            job?.status ?? "pending"
          }; ${hint}`,
        );
      }
      const wait = Math.max(1, Math.min(LONG_POLL_S, Math.floor(left / 1000)));
      const asked = Date.now();
      job = await client.get<Job>(`/v1/jobs/${id}`, { wait }, {
        timeoutMs: (wait + 20) * 1000,
        signal: opts.signal,
      });
      progress?.update(job);
      if (TERMINAL.has(job.status)) break;
      // A server that does not hold the request is polled with a growing pause.
      if (Date.now() - asked < 500) {
        await sleep(Math.min(delay, Math.max(0, deadline - Date.now())), opts.signal);
      }
    }
  } catch (err) {
    if (opts.signal.aborted) {
      throw new CancelledError(`interrupted; job ${id} continues on the server; ${hint}`);
    }
    throw err;
  } finally {
    progress?.close();
  }
  if (job.status !== "succeeded" && !opts.anyOutcome) throw jobError(job);
  return job;
}

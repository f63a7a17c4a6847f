/**
 * `/v1/jobs`: durable jobs (everything that needs a node), with long-polling
 * (`GET /v1/jobs/{id}?wait=30` answers as soon as the job ends), and `acceptJob`, the one way
 * a route queues a job: Idempotency-Key handling, the route's own checks with the resource
 * locked, the job and its audit row in one transaction, then `202` + `Location`. And
 * `POST /v1/jobs/{id}/cancel` (control/jobs/cancel.ts): a pending job is cancelled at once
 * (200), a running one is asked to stop (202) and ends `cancelled` after its plan's undo.
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { TransactionSql } from "postgres";
import { NotFoundError } from "../../shared/errors/errors.ts";
import { getJob, JOB_STATUSES, type JobRow, type JobType, listJobs } from "../db/jobs.ts";
import type { Emit } from "../events/bus.ts";
import { cancelJob } from "../jobs/cancel.ts";
import { PLANS } from "../jobs/plans.ts";
import { enqueueJob, priorJob } from "../jobs/queue.ts";
import { audit } from "./audit.ts";
import {
  errors,
  Id,
  IdParams,
  json,
  ListOf,
  PageQuery,
  Timestamp,
  validationHook,
  withEtag,
} from "./common.ts";
import type { AppDeps, AppEnv } from "./deps.ts";

export const Job = z.object({
  id: Id,
  type: z.string().openapi({ example: "vm_start" }),
  status: z.enum(JOB_STATUSES),
  resource_type: z.string().openapi({ example: "vm" }),
  resource_id: Id.nullable(),
  params: z.record(z.string(), z.unknown()),
  progress: z.int().min(0).max(100),
  progress_message: z.string().nullable(),
  attempts: z.int(),
  max_attempts: z.int(),
  error: z.object({
    code: z.string(),
    message: z.string(),
    details: z.array(z.unknown()).optional(),
  })
    .nullable().openapi({
      description: "Why the job failed or was cancelled (code `cancelled`), or why its last " +
        "attempt failed while it retries",
    }),
  result: z.record(z.string(), z.unknown()).nullable(),
  idempotency_key: z.string().nullable(),
  actor: z.string(),
  request_id: z.string().nullable(),
  lease_owner: z.string().nullable().openapi({ description: "The process running it" }),
  lease_expires_at: Timestamp.nullable(),
  cancel_requested_at: Timestamp.nullable().openapi({
    description: "When cancelling it was asked for (`POST /v1/jobs/{id}/cancel`)",
  }),
  cancel_requested_by: z.string().nullable().openapi({ description: "Who asked" }),
  created_at: Timestamp,
  started_at: Timestamp.nullable(),
  finished_at: Timestamp.nullable(),
  updated_at: Timestamp,
}).openapi("Job");

/** The Idempotency-Key header of job-creating requests. */
export const IdempotencyHeaders = z.object({
  "idempotency-key": z.string().regex(/^[\x21-\x7e]{1,255}$/, "1-255 printable ASCII characters")
    .optional().openapi({
      description: "Retrying with the same key returns the job the first request created",
    }),
});

const ListQuery = z.object({
  ...PageQuery,
  status: z.enum(JOB_STATUSES).optional(),
  type: z.string().optional(),
  resource_type: z.string().optional(),
  resource_id: Id.optional(),
});

const WaitQuery = z.object({
  wait: z.coerce.number().min(0).max(60).default(0).openapi({
    description: "Seconds (≤ 60) to wait for the job to end before answering",
  }),
});

/** True once a job can no longer change. */
export function finished(job: Pick<JobRow, "status">): boolean {
  return job.status === "succeeded" || job.status === "failed" || job.status === "cancelled";
}

/** What a job-creating route supplies. */
export interface JobRequest {
  type: JobType;
  resource_type: string;
  resource_id: string;
  params?: Record<string, unknown>;
  /** The job creates its resource (a retry with the key matches on type alone). */
  creates?: boolean;
  /** Audit action, e.g. `start`. */
  action: string;
  /**
   * The route's checks (and work) with the resource locked; returns the audit summary, and
   * the job's params when they depend on what it found.
   */
  check(
    tx: TransactionSql,
    emit: Emit,
  ): Promise<{ summary: Record<string, unknown>; params?: Record<string, unknown> }>;
}

/** Queues a job for a request (see the module comment); answers 202 + the job. */
export async function acceptJob(
  c: Context<AppEnv>,
  deps: AppDeps,
  req: JobRequest,
): Promise<Response> {
  const key = c.req.header("idempotency-key") || null;
  const job = await deps.events.transaction(async (tx, emit) => {
    if (key) {
      const prior = await priorJob(tx, key, {
        type: req.type,
        resource_id: req.creates ? undefined : req.resource_id,
      });
      if (prior) return prior;
    }
    const { summary, params } = await req.check(tx, emit);
    const { job } = await enqueueJob(tx, emit, {
      type: req.type,
      resource_type: req.resource_type,
      resource_id: req.resource_id,
      params: params ?? req.params ?? {},
      actor: c.get("actor"),
      request_id: c.get("requestId"),
      idempotency_key: key,
      max_attempts: deps.config.jobs.max_attempts,
    });
    await audit(tx, c, {
      action: req.action,
      resource_type: req.resource_type,
      resource_id: req.resource_id,
      summary: { ...summary, job_id: job.id },
    });
    return job;
  });
  c.header("Location", `/v1/jobs/${job.id}`);
  return c.json(withEtag(c, job), 202);
}

/** Waits until job `id` ends, `ms` pass, or the process shuts down. */
export async function waitForJob(deps: AppDeps, id: string, ms: number): Promise<void> {
  if (ms <= 0 || deps.shutdown.aborted) return;
  const { promise, resolve } = Promise.withResolvers<void>();
  const unsubscribe = deps.events.subscribe({ resource_ids: [id], types: ["job"] }, (e) => {
    if (["job.succeeded", "job.failed", "job.cancelled"].includes(e.type)) resolve();
  });
  const timer = setTimeout(resolve, ms);
  const onShutdown = () => resolve();
  deps.shutdown.addEventListener("abort", onShutdown);
  try {
    // It may have ended between the caller's read and the subscription.
    const now = await getJob(deps.sql, id);
    if (!now || finished(now)) return;
    await promise;
  } finally {
    unsubscribe();
    clearTimeout(timer);
    deps.shutdown.removeEventListener("abort", onShutdown);
  }
}

const tags = ["jobs"];

/** The jobs router. */
export function jobsRouter(deps: AppDeps) {
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });
  app.openapi(
    createRoute({
      method: "get",
      path: "/jobs",
      tags,
      summary: "List jobs (newest first)",
      request: { query: ListQuery },
      responses: { 200: json(ListOf(Job, "JobList"), "A page of jobs"), ...errors(422) },
    }),
    async (c) => {
      const { limit, cursor, ...filters } = c.req.valid("query");
      return c.json(await listJobs(deps.sql, filters, { limit, cursor }), 200);
    },
  );
  app.openapi(
    createRoute({
      method: "get",
      path: "/jobs/{id}",
      tags,
      summary: "Get a job (optionally waiting for it to end)",
      description: "With `wait`, answers as soon as the job succeeds or fails, or after `wait` " +
        "seconds with the job as it is then.",
      request: { params: IdParams, query: WaitQuery },
      responses: { 200: json(Job, "The job", true), ...errors(404, 422) },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const { wait } = c.req.valid("query");
      let row = await getJob(deps.sql, id);
      if (!row) throw NotFoundError.of("job", id);
      if (wait > 0 && !finished(row)) {
        await waitForJob(deps, id, wait * 1000);
        row = (await getJob(deps.sql, id)) ?? row;
      }
      return c.json(withEtag(c, row), 200);
    },
  );
  app.openapi(
    createRoute({
      method: "post",
      path: "/jobs/{id}/cancel",
      tags,
      summary: "Cancel a job",
      description: "A pending job is cancelled at once (200; what queueing it took, such as a " +
        "disk's `creating` object or a host's `installing` status, is given back). A running " +
        "job is asked to stop (202, `cancel_requested_at` set): its worker lets the step in " +
        "progress finish, undoes what the job did (e.g. a VM being started goes back to its " +
        "previous status), and ends the job `cancelled` with error code `cancelled`; a job " +
        "whose last step completes first still succeeds. Follow it with `GET " +
        "/v1/jobs/{id}?wait=`. Cancelling again is harmless; a job that already succeeded or " +
        "failed is a 409.",
      request: { params: IdParams },
      responses: {
        200: json(Job, "The job, cancelled (or cancelled before)", true),
        202: json(Job, "The running job, asked to stop", true),
        ...errors(404, 409, 422),
      },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const { job, requested, ended } = await deps.events.transaction(async (tx, emit) => {
        const out = await cancelJob(tx, emit, id, c.get("actor"), PLANS);
        await audit(tx, c, {
          action: "cancel",
          resource_type: "job",
          resource_id: id,
          summary: {
            type: out.job.type,
            resource_type: out.job.resource_type,
            resource_id: out.job.resource_id,
            status: out.job.status,
          },
        });
        return out;
      });
      if (ended) deps.metrics.observeJobFinished(job, "cancelled");
      return c.json(withEtag(c, job), requested ? 202 : 200);
    },
  );
  return app;
}

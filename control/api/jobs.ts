/** `/v1/jobs`: read access to durable jobs (created by actions that need a node). */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { NotFoundError } from "../../shared/errors/errors.ts";
import { getJob, JOB_STATUSES, listJobs } from "../db/jobs.ts";
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
  type: z.string().openapi({ example: "disk_create" }),
  status: z.enum(JOB_STATUSES),
  resource_type: z.string().openapi({ example: "storage_object" }),
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
    .nullable(),
  result: z.record(z.string(), z.unknown()).nullable(),
  idempotency_key: z.string().nullable(),
  actor: z.string(),
  request_id: z.string().nullable(),
  lease_owner: z.string().nullable(),
  lease_expires_at: Timestamp.nullable(),
  created_at: Timestamp,
  started_at: Timestamp.nullable(),
  finished_at: Timestamp.nullable(),
  updated_at: Timestamp,
}).openapi("Job");

const ListQuery = z.object({
  ...PageQuery,
  status: z.enum(JOB_STATUSES).optional(),
  type: z.string().optional(),
  resource_type: z.string().optional(),
  resource_id: Id.optional(),
});

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
      summary: "Get a job",
      request: { params: IdParams },
      responses: { 200: json(Job, "The job", true), ...errors(404) },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const row = await getJob(deps.sql, id);
      if (!row) throw NotFoundError.of("job", id);
      return c.json(withEtag(c, row), 200);
    },
  );
  return app;
}

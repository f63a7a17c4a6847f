/**
 * Queries of `jobs`: creating and reading them. Claiming, leases and completion are the
 * queue's (`control/jobs/queue.ts`).
 */
import { ConflictError } from "../../shared/errors/errors.ts";
import type { Db, Page, PageOf } from "./query.ts";
import { getById, listPage, run } from "./query.ts";

export const JOB_STATUSES = ["pending", "running", "succeeded", "failed", "cancelled"] as const;
export type JobStatus = typeof JOB_STATUSES[number];

/** Job types known to this version; a job's `type` selects its plan. */
export const JOB_TYPES = [
  "vm_start",
  "vm_stop",
  "vm_force_stop",
  "vm_pause",
  "vm_resume",
  "vm_reboot",
  "vm_delete",
  "vm_snapshot",
  "vm_restore",
  "vm_snapshot_delete",
  "vm_resize",
  "disk_resize",
  "disk_create",
  "host_deploy",
] as const;
export type JobType = typeof JOB_TYPES[number];

/** A job row. */
export interface JobRow {
  id: string;
  type: string;
  status: JobStatus;
  resource_type: string;
  resource_id: string | null;
  params: Record<string, unknown>;
  progress: number;
  progress_message: string | null;
  attempts: number;
  max_attempts: number;
  error: { code: string; message: string; details?: unknown[] } | null;
  result: Record<string, unknown> | null;
  idempotency_key: string | null;
  actor: string;
  request_id: string | null;
  lease_owner: string | null;
  lease_expires_at: Date | null;
  /** When cancelling was asked for (a running job stops before its next step). */
  cancel_requested_at: Date | null;
  /** Who asked for it. */
  cancel_requested_by: string | null;
  created_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
  updated_at: Date;
  version: number;
}

/** What creating a job takes. */
export interface NewJob {
  type: JobType;
  resource_type: string;
  resource_id: string | null;
  params: Record<string, unknown>;
  actor: string;
  request_id: string | null;
  idempotency_key?: string | null;
  max_attempts?: number;
}

const TABLE = "jobs";
/** Columns served by the API (internal: checkpoint, run_after, version). */
export const JOB_COLUMNS = [
  "id",
  "type",
  "status",
  "resource_type",
  "resource_id",
  "params",
  "progress",
  "progress_message",
  "attempts",
  "max_attempts",
  "error",
  "result",
  "idempotency_key",
  "actor",
  "request_id",
  "lease_owner",
  "lease_expires_at",
  "cancel_requested_at",
  "cancel_requested_by",
  "created_at",
  "started_at",
  "finished_at",
  "updated_at",
  "version",
] as const;
const LIST_COLUMNS = JOB_COLUMNS.filter((c) => c !== "version");

/** Exact-match filters of the job list. */
export interface JobFilters {
  status?: JobStatus;
  type?: string;
  resource_type?: string;
  resource_id?: string;
}

/**
 * Inserts a pending job. A second active job on the same resource is refused with a
 * ConflictError naming the active one (the partial unique index makes this race-free).
 */
export async function insertJob(db: Db, job: NewJob): Promise<JobRow> {
  const rows = await run(() =>
    db<JobRow[]>`
      insert into jobs (type, resource_type, resource_id, params, actor, request_id,
                        idempotency_key, max_attempts)
      values (${job.type}, ${job.resource_type}, ${job.resource_id}, ${
      db.json(job.params as never)
    },
              ${job.actor}, ${job.request_id}, ${job.idempotency_key ?? null},
              ${job.max_attempts ?? 3})
      on conflict (resource_type, resource_id)
        where status in ('pending', 'running') and resource_id is not null
      do nothing
      returning ${db(JOB_COLUMNS as unknown as string[])}`
  );
  if (rows[0]) return rows[0];
  const active = await activeJobFor(db, job.resource_type, job.resource_id!);
  throw new ConflictError(
    `${job.resource_type} ${job.resource_id} has an active job ${active?.id ?? "(finishing)"}` +
      (active ? ` (${active.type}, ${active.status})` : ""),
    { details: active ? [{ field: "job_id", message: "active job", job_id: active.id }] : [] },
  );
}

/** The pending or running job on a resource, if any. */
export async function activeJobFor(
  db: Db,
  resourceType: string,
  resourceId: string,
): Promise<JobRow | undefined> {
  const rows = await run(() =>
    db<JobRow[]>`
      select ${db(JOB_COLUMNS as unknown as string[])} from jobs
      where resource_type = ${resourceType} and resource_id = ${resourceId}
        and status in ('pending', 'running')`
  );
  return rows[0];
}

/** The job created with an idempotency key, if any. */
export async function jobByIdempotencyKey(db: Db, key: string): Promise<JobRow | undefined> {
  const rows = await run(() =>
    db<JobRow[]>`
      select ${db(JOB_COLUMNS as unknown as string[])} from jobs where idempotency_key = ${key}`
  );
  return rows[0];
}

/** One job. */
export function getJob(db: Db, id: string): Promise<JobRow | undefined> {
  return getById<JobRow>(db, TABLE, JOB_COLUMNS, id);
}

/** Newest first. */
export function listJobs(db: Db, f: JobFilters, page: Page): Promise<PageOf<JobRow>> {
  const where = [];
  if (f.status !== undefined) where.push(db`status = ${f.status}`);
  if (f.type !== undefined) where.push(db`type = ${f.type}`);
  if (f.resource_type !== undefined) where.push(db`resource_type = ${f.resource_type}`);
  if (f.resource_id !== undefined) where.push(db`resource_id = ${f.resource_id}`);
  return listPage<JobRow>(db, {
    list: "jobs",
    table: TABLE,
    columns: LIST_COLUMNS,
    where,
    page,
    descending: true,
  });
}

/** `qarax job …` (list, get, wait, cancel) and `qarax audit …` (the audit log). */
import { FailedPreconditionError } from "../../../shared/errors/errors.ts";
import type { Field } from "../fields.ts";
import type { GroupSpec } from "../framework.ts";
import {
  followJob,
  getCommand,
  listCommand,
  type ResourceDef,
  WAIT_OPTIONS,
  waitTimeoutMs,
} from "../resource.ts";
import { type Names, resolveId } from "../resolve.ts";
import { formatAge, formatDuration } from "../units.ts";
import { type Job, jobError, waitForJob } from "../wait.ts";

/** Filters by the resource a job or audit entry is about. */
const RESOURCE_FILTERS: Field[] = [
  {
    flag: "resource-type",
    path: "resource_type",
    type: "string",
    value: "TYPE",
    help: "e.g. vm, host, storage_object",
    on: ["filter"],
  },
  {
    flag: "resource-id",
    path: "resource_id",
    type: "string",
    value: "ID",
    help: "the resource's id",
    on: ["filter"],
  },
];

const JOB_FIELDS: Field[] = [
  {
    flag: "status",
    path: "status",
    type: "string",
    value: "STATUS",
    help: "pending | running | succeeded | failed | cancelled",
    on: ["filter"],
  },
  {
    flag: "type",
    path: "type",
    type: "string",
    value: "TYPE",
    help: "e.g. vm_start, disk_create",
    on: ["filter"],
  },
  ...RESOURCE_FILTERS,
];

/** `vm/web-1`: a resource by name when it is a VM or host. */
function resourceText(names: Names, type: string, id: string | null): string {
  if (!id) return `${type}/-`;
  return `${type}/${type === "vm" || type === "host" ? names.of(type, id) : id}`;
}

const jobDef: ResourceDef<Job> = {
  kind: "job",
  plural: "jobs",
  fields: JOB_FIELDS,
  nameKinds: ["vm", "host"],
  columns: (names) => [
    { header: "ID", value: (j) => j.id },
    { header: "TYPE", value: (j) => j.type },
    { header: "STATUS", value: (j) => j.status },
    { header: "PROGRESS", value: (j) => `${j.progress}%`, right: true },
    { header: "RESOURCE", value: (j) => resourceText(names, j.resource_type, j.resource_id) },
    { header: "AGE", value: (j) => formatAge(j.created_at, new Date()) },
    { header: "MESSAGE", value: (j) => j.error?.message ?? j.progress_message },
  ],
};

/** The `job` group. */
export const jobGroup: GroupSpec = {
  name: "job",
  aliases: ["jobs"],
  summary: "Jobs: work the control plane does on nodes (newest first)",
  children: [
    listCommand(jobDef),
    getCommand(jobDef),
    {
      name: "wait",
      summary: "Follow a job until it ends; exit 1 if it fails, 5 on --timeout",
      args: ["job"],
      options: { timeout: WAIT_OPTIONS.timeout },
      async run(ctx, input) {
        const id = await resolveId(await ctx.client(), "job", input.args.job!);
        return await followJob(
          ctx,
          { ...input, opts: { ...input.opts, wait: true } },
          id,
          undefined,
          "",
        );
      },
    },
    {
      name: "cancel",
      summary: "Cancel a job: a pending one at once, a running one before its next step (what " +
        "it did is undone); --wait follows it until it ends, exit 1 if it ended otherwise",
      args: ["job"],
      options: WAIT_OPTIONS,
      async run(ctx, input) {
        const client = await ctx.client();
        const id = await resolveId(client, "job", input.args.job!);
        const started = Date.now();
        const answer = await client.request<Job>("POST", `/v1/jobs/${id}/cancel`);
        let job = answer.body;
        if (answer.status === 202 && input.opts.wait) {
          job = await waitForJob(client, id, {
            io: ctx.io,
            timeoutMs: waitTimeoutMs(input),
            signal: ctx.signal,
            anyOutcome: true,
          });
          if (job.status === "failed") throw jobError(job);
          if (job.status !== "cancelled") {
            throw new FailedPreconditionError(
              `job ${id} (${job.type}) ${job.status} before the cancel took effect`,
            );
          }
          const took = formatDuration(Date.now() - started);
          ctx.print(job, () => `job ${id} ${job.type} cancelled in ${took}\n`);
          return 0;
        }
        ctx.print(
          job,
          () =>
            job.status === "cancelled"
              ? `job ${id} ${job.type} cancelled\n`
              : `job ${id} ${job.type} ${job.status}: cancel requested; it stops before its ` +
                `next step\n(follow it with: qarax job wait ${id})\n`,
        );
        return 0;
      },
    },
  ],
};

interface AuditLog {
  id: string;
  created_at: string;
  actor: string;
  action: string;
  resource_type: string;
  resource_id: string | null;
  request_id: string | null;
  summary: Record<string, unknown>;
  [k: string]: unknown;
}

const AUDIT_FIELDS: Field[] = [
  {
    flag: "actor",
    path: "actor",
    type: "string",
    value: "NAME",
    help: "token name (or anonymous)",
    on: ["filter"],
  },
  {
    flag: "action",
    path: "action",
    type: "string",
    value: "ACTION",
    help: "create | update | delete | …",
    on: ["filter"],
  },
  ...RESOURCE_FILTERS,
  {
    flag: "request-id",
    path: "request_id",
    type: "string",
    value: "ID",
    help: "the request's id",
    on: ["filter"],
  },
];

const auditDef: ResourceDef<AuditLog> = {
  kind: "audit",
  plural: "audit log entries",
  fields: AUDIT_FIELDS,
  nameKinds: ["vm", "host"],
  columns: (names) => [
    { header: "TIME", value: (a) => a.created_at },
    { header: "ACTOR", value: (a) => a.actor },
    { header: "ACTION", value: (a) => a.action },
    { header: "RESOURCE", value: (a) => resourceText(names, a.resource_type, a.resource_id) },
    { header: "REQUEST", value: (a) => a.request_id },
    { header: "SUMMARY", value: (a) => JSON.stringify(a.summary) },
  ],
};

/** The `audit` group. */
export const auditGroup: GroupSpec = {
  name: "audit",
  aliases: ["audit-log", "audit-logs"],
  summary: "The audit log: every change, with its actor and request id",
  children: [listCommand(auditDef), getCommand(auditDef)],
};

/**
 * `/v1/hosts`: hypervisor hosts (registration, metadata, maintenance), initialisation against
 * their node (`POST /v1/hosts/{id}/init`, synchronous with the node call's deadline) and their
 * resource ledger. After init the health monitor keeps the status current by itself.
 * `POST /v1/hosts/{id}/deploy` queues a `host_deploy` job that installs qarax-node over SSH
 * (bootc image or binary) and then initialises the host.
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import {
  ConflictError,
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
} from "../../shared/errors/errors.ts";
import { isIpv4 } from "../../shared/net/ip.ts";
import {
  allocatedOnHost,
  deleteHost,
  getHost,
  HOST_STATUSES,
  type HostRow,
  insertHost,
  listHosts,
  vmsOnHost,
} from "../db/hosts.ts";
import { transaction } from "../db/query.ts";
import { objectsOnHost } from "../db/storage_objects.ts";
import { initHost } from "../nodes/hosts.ts";
import { changeHostStatus, vmIdsOnHost } from "../events/status.ts";
import { credentialRefProblem } from "../domain/credential_ref.ts";
import { audit } from "./audit.ts";
import {
  Architecture,
  body,
  checkIfMatch,
  ErrorBody,
  errors,
  Id,
  IdParams,
  IfMatchHeaders,
  json,
  Labels,
  mergePatch,
  Name,
  PageQuery,
  patchBody,
  Timestamp,
  validationHook,
  withEtag,
} from "./common.ts";
import { deleteRoute, getRoute, listRoute, postRoute } from "./crud.ts";
import type { AppDeps, AppEnv } from "./deps.ts";
import { acceptJob, IdempotencyHeaders, Job } from "./jobs.ts";

const HOSTNAME =
  /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/** An IPv4/IPv6 literal or a DNS name. */
const Address = z.string().max(253).refine(
  (a) => isIpv4(a) || HOSTNAME.test(a) || z.ipv6().safeParse(a).success,
  "expected an IPv4 or IPv6 address or a DNS name",
);
const Port = z.int().min(1).max(65535);
const HostStatus = z.enum(HOST_STATUSES);

export const Host = z.object({
  id: Id,
  name: z.string(),
  address: z.string(),
  port: z.int().openapi({ description: "gRPC port of qarax-node" }),
  status: HostStatus,
  status_reason: z.string().nullable(),
  labels: z.record(z.string(), z.string()),
  reservation_class: z.string().nullable(),
  architecture: z.string().nullable(),
  total_cpus: z.int().nullable(),
  total_memory_bytes: z.int().nullable(),
  available_memory_bytes: z.int().nullable(),
  load_average: z.number().nullable(),
  cloud_hypervisor_version: z.string().nullable(),
  kernel_version: z.string().nullable(),
  node_version: z.string().nullable(),
  cloud_hypervisor_emulated: z.boolean().nullable().openapi({
    description: "True when the node runs the qarax Cloud Hypervisor emulator (no real VMs)",
  }),
  kvm_available: z.boolean().nullable(),
  disk_total_bytes: z.int().nullable(),
  disk_available_bytes: z.int().nullable(),
  last_seen_at: Timestamp.nullable().openapi({ description: "Last answer from the node" }),
  created_at: Timestamp,
  updated_at: Timestamp,
}).openapi("Host");

const ReservationClass = z.string().regex(
  /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/,
  "1-63 of A-Z a-z 0-9 _ . -",
);

const NewHost = z.strictObject({
  name: Name,
  address: Address,
  port: Port.default(50051),
  labels: Labels.default({}),
  reservation_class: ReservationClass.nullable().optional(),
  architecture: Architecture.nullable().optional(),
}).openapi("NewHost");

const HostPatch = z.strictObject({
  name: Name.optional(),
  address: Address.optional(),
  port: Port.optional(),
  labels: z.record(z.string(), z.string().nullable()).optional().openapi({
    description: "Merged key by key; a null value removes the label.",
  }),
  reservation_class: ReservationClass.nullable().optional(),
  status: z.enum(["maintenance", "up"]).optional().openapi({
    description:
      "`maintenance` takes the host out of scheduling; `up` returns it from maintenance.",
  }),
}).openapi("HostPatch");

const HostResources = z.object({
  host_id: Id,
  architecture: z.string().nullable(),
  total_cpus: z.int().nullable(),
  total_memory_bytes: z.int().nullable(),
  cpu_overcommit_ratio: z.number(),
  memory_overcommit_ratio: z.number(),
  vcpu_capacity: z.int().nullable().openapi({ description: "total_cpus × cpu_overcommit_ratio" }),
  memory_capacity_bytes: z.int().nullable(),
  allocated_vcpus: z.int(),
  allocated_memory_bytes: z.int(),
  available_vcpus: z.int().nullable(),
  available_memory_bytes: z.int().nullable(),
  vm_count: z.int().openapi({ description: "VMs holding resources on the host" }),
}).openapi("HostResources");

const HostInit = z.object({
  host: Host,
  attachments: z.object({
    networks: z.int().openapi({ description: "Network attachments applied on the node" }),
    storage_pools: z.int().openapi({ description: "Storage pool attachments applied" }),
    failed: z.array(z.object({
      kind: z.enum(["network", "storage_pool"]),
      id: Id,
      error: z.string(),
    })).openapi({ description: "Attachments the node refused (also marked failed)" }),
  }),
}).openapi("HostInit");

/** A credential reference (checked here, resolved only when the job runs). */
const CredentialRef = z.string().max(4200).superRefine((ref, ctx) => {
  const problem = credentialRefProblem(ref);
  if (problem) ctx.addIssue({ code: "custom", message: problem });
}).openapi({ example: "file:///etc/qarax/id_ed25519" });

/** A container image reference as bootc takes it (no shell metacharacters). */
const ImageRef = z.string().regex(
  /^[A-Za-z0-9][A-Za-z0-9._\/:@+-]{0,254}$/,
  "an image reference like registry.example/qarax-host:0.1.0",
);

const HostDeploy = z.strictObject({
  mode: z.enum(["bootc", "binary"]).default("bootc").openapi({
    description: "`bootc`: switch the host to `image` and reboot into it; `binary` " +
      "(development): copy `binary_path`, the default config and the unit, restart the service",
  }),
  image: ImageRef.optional().openapi({ description: "bootc image (required in bootc mode)" }),
  ssh_user: z.string().regex(/^[a-z_][a-z0-9_.-]{0,31}$/, "a user name").default("root")
    .openapi({ description: "SSH user: root, or a user with passwordless sudo" }),
  ssh_port: Port.default(22),
  ssh_key_ref: CredentialRef.optional().openapi({
    description: "Private key as `env://NAME` (a variable of the control plane) or " +
      "`file:///abs/path` (a file on its host); read only when the job runs, never stored. " +
      "Absent: ssh's own default identities.",
  }),
  binary_path: z.string().regex(/^\/[^\0]{0,4095}$/, "an absolute path").optional().openapi({
    description: "binary mode: qarax-node (compiled binary, or a `.js` bundle run with deno) " +
      "as a file on the control plane host",
  }),
  timeout_s: z.int().min(10).max(7200).default(900).openapi({
    description: "How long to wait for the reboot (bootc) and for qarax-node to answer",
  }),
}).superRefine((d, ctx) => {
  if (d.mode === "bootc" && !d.image) {
    ctx.addIssue({ code: "custom", path: ["image"], message: "required in bootc mode" });
  }
  if (d.mode === "binary" && !d.binary_path) {
    ctx.addIssue({ code: "custom", path: ["binary_path"], message: "required in binary mode" });
  }
  if (d.mode === "binary" && d.image) {
    ctx.addIssue({ code: "custom", path: ["image"], message: "only in bootc mode" });
  }
  if (d.mode === "bootc" && d.binary_path) {
    ctx.addIssue({ code: "custom", path: ["binary_path"], message: "only in binary mode" });
  }
}).openapi("HostDeploy");

/** VM statuses that a deploy (node restart, reboot) would disturb. */
const BUSY_VM_STATUSES = ["pending", "running", "paused", "migrating"] as const;

const ListQuery = z.object({
  ...PageQuery,
  name: z.string().optional(),
  status: HostStatus.optional(),
  architecture: z.string().optional(),
  reservation_class: z.string().optional(),
});

const tags = ["hosts"];

/** The hosts router. */
export function hostsRouter(deps: AppDeps) {
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });
  const notFound = (id: string) => NotFoundError.of("host", id);

  listRoute(app, deps, {
    path: "/hosts",
    tags,
    summary: "List hosts",
    item: Host,
    listName: "HostList",
    page: "A page of hosts",
    query: ListQuery,
    list: listHosts,
  });

  postRoute(app, deps, {
    path: "/hosts",
    tags,
    summary: "Register a host",
    description: "The host starts as `unknown`; `POST /v1/hosts/{id}/init` connects to its node.",
    body: NewHost,
    schema: Host,
    created: "The registered host",
    resourceType: "host",
    insert: (tx, input) => insertHost(tx, { ...input }),
    auditSummary: (host) => ({ name: host.name, address: host.address, port: host.port }),
  });

  getRoute(app, deps, {
    path: "/hosts/{id}",
    tags,
    summary: "Get a host",
    schema: Host,
    found: "The host",
    resourceType: "host",
    get: getHost,
  });

  app.openapi(
    createRoute({
      method: "patch",
      path: "/hosts/{id}",
      tags,
      summary: "Update a host (JSON merge patch)",
      request: { params: IdParams, headers: IfMatchHeaders, body: patchBody(HostPatch) },
      responses: { 200: json(Host, "The updated host", true), ...errors(400, 404, 409, 412, 422) },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const patch = c.req.valid("json");
      const row = await deps.events.transaction(async (tx, emit) => {
        const current = await getHost(tx, id, true);
        if (!current) throw notFound(id);
        checkIfMatch(c, current.version, `host ${id}`);
        const fields: Partial<HostRow> = {};
        if (patch.name !== undefined) fields.name = patch.name;
        if (patch.address !== undefined) fields.address = patch.address;
        if (patch.port !== undefined) fields.port = patch.port;
        if (patch.reservation_class !== undefined) {
          fields.reservation_class = patch.reservation_class;
        }
        if (patch.labels !== undefined) {
          const labels = mergePatch(current.labels, patch.labels) as Record<string, string>;
          const parsed = Labels.safeParse(labels);
          if (!parsed.success) {
            throw InvalidArgumentError.field("labels", parsed.error.issues[0].message);
          }
          fields.labels = parsed.data;
        }
        let status: HostRow["status"] | undefined;
        let reason: string | null | undefined;
        if (patch.status === "maintenance" && current.status !== "maintenance") {
          status = "maintenance";
          reason = `maintenance requested by ${c.get("actor")}`;
        } else if (patch.status === "up" && current.status !== "up") {
          if (current.status !== "maintenance") {
            throw new FailedPreconditionError(
              `host ${id} is ${current.status}; only a host in maintenance can be set back to up (its node reports the rest)`,
              { details: [{ field: "status", message: `is ${current.status}` }] },
            );
          }
          // The health monitor takes it down again if its node does not answer.
          status = "up";
          reason = null;
        }
        // Status changes are recorded as events like every other host status change.
        const { row: updated } = await changeHostStatus(tx, emit, id, status, reason, {
          source: "api",
        }, { facts: fields });
        if (!updated) throw notFound(id);
        if (status) fields.status = status;
        await audit(tx, c, {
          action: "update",
          resource_type: "host",
          resource_id: id,
          summary: { name: updated.name, fields: Object.keys(fields) },
        });
        return updated;
      });
      return c.json(withEtag(c, row), 200);
    },
  );

  deleteRoute(app, deps, {
    path: "/hosts/{id}",
    tags,
    summary: "Remove a host",
    description:
      "Refused (409) while VMs are placed on it or it holds storage objects of local pools.",
    deleted: "Removed",
    resourceType: "host",
    get: getHost,
    guard: async (tx, current, id) => {
      const placed = await vmsOnHost(tx, id);
      if (placed.count > 0) {
        throw new ConflictError(
          `host ${current.name} has ${placed.count} vm(s) placed on it (${placed.names.join(", ")}${
            placed.count > placed.names.length ? ", …" : ""
          }); move or delete them first`,
        );
      }
      // A local-pool file lives only on this host: forgetting the host would orphan it.
      const held = await objectsOnHost(tx, id);
      if (held.count > 0) {
        throw new ConflictError(
          `host ${current.name} holds ${held.count} storage object(s) of local pools (${
            held.names.join(", ")
          }${held.count > held.names.length ? ", …" : ""}); delete or unregister them first`,
        );
      }
    },
    remove: deleteHost,
  });

  app.openapi(
    createRoute({
      method: "post",
      path: "/hosts/{id}/init",
      tags,
      summary: "Initialise a host from its node",
      description: "Connects to the host's qarax-node (within `nodes.call_timeout_ms`), stores " +
        "its capacity and versions, sets it `up` (a host in maintenance stays there) and " +
        "re-applies its network and storage pool attachments. An unreachable node answers 503 " +
        "and leaves the host `down`; the health monitor brings it up once it answers.",
      request: { params: IdParams },
      responses: {
        200: json(HostInit, "The initialised host and its attachments"),
        ...errors(404, 409),
        503: json(ErrorBody, "The node did not answer"),
      },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const result = await initHost(deps, id, { source: "api" });
      await transaction(deps.sql, (tx) =>
        audit(tx, c, {
          action: "init",
          resource_type: "host",
          resource_id: id,
          summary: {
            name: result.host.name,
            status: result.host.status,
            failed_attachments: result.attachments.failed.length,
          },
        }));
      const { version: _, ...host } = result.host;
      return c.json({
        host,
        attachments: {
          networks: result.attachments.networks,
          storage_pools: result.attachments.pools,
          failed: result.attachments.failed,
        },
      }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/hosts/{id}/deploy",
      tags,
      summary: "Install qarax-node on a host over SSH, then initialise it",
      description: "Queues a `host_deploy` job (202 + `Location: /v1/jobs/{id}`). `bootc` mode " +
        "runs `bootc switch <image>` (or `bootc upgrade` when the host already follows it), " +
        "reboots, waits for the host and its node; `binary` mode copies the node, its default " +
        "config and systemd unit with scp and restarts the service. Both write the control " +
        "plane's node token to /etc/qarax/node.env and finish with the host init. Host keys " +
        "are trusted on first use and pinned under the data directory; a changed key fails " +
        "the job. The host is `installing` meanwhile (`installation_failed` if the job fails; " +
        "a host in maintenance stays there). Refused while VMs run on the host.",
      request: { params: IdParams, headers: IdempotencyHeaders, body: body(HostDeploy) },
      responses: { 202: json(Job, "The queued job", true), ...errors(404, 409, 422) },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const input = c.req.valid("json");
      if (input.binary_path) {
        const st = await Deno.stat(input.binary_path).catch(() => null);
        if (!st?.isFile) {
          throw InvalidArgumentError.field(
            "binary_path",
            "not a file on the control plane host",
          );
        }
      }
      const params = {
        mode: input.mode,
        image: input.image ?? null,
        ssh_user: input.ssh_user,
        ssh_port: input.ssh_port,
        ssh_key_ref: input.ssh_key_ref ?? null,
        binary_path: input.binary_path ?? null,
        timeout_s: input.timeout_s,
      };
      return await acceptJob(c, deps, {
        type: "host_deploy",
        resource_type: "host",
        resource_id: id,
        params,
        action: "deploy",
        async check(tx, emit) {
          const host = await getHost(tx, id, true);
          if (!host) throw notFound(id);
          const busy = await vmIdsOnHost(tx, id, BUSY_VM_STATUSES);
          if (busy.length) {
            throw new ConflictError(
              `host ${host.name} runs ${busy.length} vm(s); stop or move them before deploying`,
            );
          }
          if (host.status !== "maintenance") {
            await changeHostStatus(
              tx,
              emit,
              id,
              "installing",
              `deploying qarax-node (${input.mode}${input.image ? ` ${input.image}` : ""})`,
              { source: "api" },
            );
          }
          return {
            summary: {
              name: host.name,
              mode: input.mode,
              ...(input.image ? { image: input.image } : {}),
            },
            // Restored when the deploy is cancelled before it ran.
            params: { ...params, host_status: host.status },
          };
        },
      }) as never;
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/hosts/{id}/resources",
      tags,
      summary: "Allocated vs total resources of a host",
      request: { params: IdParams },
      responses: { 200: json(HostResources, "The host's ledger"), ...errors(404) },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const host = await getHost(deps.sql, id);
      if (!host) throw notFound(id);
      const used = await allocatedOnHost(deps.sql, id);
      const { cpu_overcommit_ratio, memory_overcommit_ratio } = deps.config.scheduling;
      const vcpuCap = host.total_cpus === null
        ? null
        : Math.floor(host.total_cpus * cpu_overcommit_ratio);
      const memCap = host.total_memory_bytes === null
        ? null
        : Math.floor(host.total_memory_bytes * memory_overcommit_ratio);
      return c.json({
        host_id: id,
        architecture: host.architecture,
        total_cpus: host.total_cpus,
        total_memory_bytes: host.total_memory_bytes,
        cpu_overcommit_ratio,
        memory_overcommit_ratio,
        vcpu_capacity: vcpuCap,
        memory_capacity_bytes: memCap,
        allocated_vcpus: used.vcpus,
        allocated_memory_bytes: used.memory_bytes,
        available_vcpus: vcpuCap === null ? null : vcpuCap - used.vcpus,
        available_memory_bytes: memCap === null ? null : memCap - used.memory_bytes,
        vm_count: used.vms,
      }, 200);
    },
  );

  return app;
}

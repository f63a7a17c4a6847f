/**
 * `/v1/storage-pools`: pools (local now, nfs reserved), their host attachments, and the disk
 * creation routes (blank raw/qcow2, linked clone, download). Attaching and detaching reach the
 * host's node synchronously when it is `up` (like networks: a refusal changes nothing; a host
 * that is not up gets the attachment `pending`). Disk creation validates, records the object
 * as `creating` and queues a `disk_create` job that a node attached to the pool runs.
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import {
  ConflictError,
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
} from "../../shared/errors/errors.ts";
import { absolutePath } from "../../shared/net/names.ts";
import { getHost } from "../db/hosts.ts";
import {
  attachPool,
  detachPool,
  getPoolAttachment,
  listPoolAttachments,
  poolHosts,
} from "../db/host_storage_pools.ts";
import { objectHost } from "../domain/object_host.ts";
import { equalTo, transaction } from "../db/query.ts";
import { applyPool, detachPoolOnNode, talksToNode } from "../nodes/attachments.ts";
import { assertPathFree, objectsOnHost, storageObjects } from "../db/storage_objects.ts";
import { poolUsage, type StoragePoolRow, storagePools } from "../db/storage_pools.ts";
import { defaultDiskPath, objectPathInPool } from "../domain/storage_paths.ts";
import { audit } from "./audit.ts";
import {
  body,
  Bytes,
  Description,
  errors,
  ForceQuery,
  Id,
  IdParams,
  json,
  ListOf,
  mergePatch,
  Name,
  PageQuery,
  Timestamp,
  validationHook,
  withEtag,
} from "./common.ts";
import { deleteRoute, getRoute, listRoute, patchRoute, postRoute } from "./crud.ts";
import type { AppDeps, AppEnv } from "./deps.ts";
import { acceptJob, IdempotencyHeaders, Job } from "./jobs.ts";

const PoolType = z.enum(["local", "nfs"]);
const PoolStatus = z.enum(["active", "inactive", "error"]);

export const StoragePool = z.object({
  id: Id,
  name: z.string(),
  description: z.string().nullable(),
  type: PoolType,
  status: PoolStatus,
  path: z.string().openapi({ description: "Directory of the pool on each host" }),
  config: z.record(z.string(), z.unknown()),
  capacity_bytes: z.int().nullable(),
  created_at: Timestamp,
  updated_at: Timestamp,
}).openapi("StoragePool");

const PoolPath = z.string().max(4096).refine((p) => {
  try {
    absolutePath(p);
    return p !== "/";
  } catch {
    return false;
  }
}, "must be a clean absolute directory path (not /)");

const NewStoragePool = z.strictObject({
  name: Name,
  description: Description.nullable().optional(),
  type: PoolType.default("local").refine(
    (t) => t === "local",
    "only local pools are supported in this version (nfs is reserved)",
  ),
  path: PoolPath,
  config: z.record(z.string(), z.unknown()).default({}),
  capacity_bytes: Bytes.min(1).nullable().optional(),
}).openapi("NewStoragePool");

const StoragePoolPatch = z.strictObject({
  name: Name.optional(),
  description: Description.nullable().optional(),
  status: z.enum(["active", "inactive"]).optional(),
  capacity_bytes: Bytes.min(1).nullable().optional(),
  config: z.record(z.string(), z.unknown()).optional(),
}).openapi("StoragePoolPatch");

const PoolAttachment = z.object({
  storage_pool_id: Id,
  host_id: Id,
  status: z.enum(["pending", "ready", "failed"]),
  status_reason: z.string().nullable(),
  created_at: Timestamp,
  updated_at: Timestamp,
}).openapi("StoragePoolAttachment");

const AttachBody = z.strictObject({ host_id: Id }).openapi("AttachStoragePool");

const HostParams = z.object({
  id: Id.openapi({ param: { name: "id", in: "path" } }),
  host_id: Id.openapi({ param: { name: "host_id", in: "path" } }),
});

const Sha256 = z.string().regex(/^[0-9a-fA-F]{64}$/, "64 hex digits").transform((s) =>
  s.toLowerCase()
);

const CreateDisk = z.strictObject({
  name: Name,
  format: z.enum(["raw", "qcow2"]).optional().openapi({
    description: "raw (default for blank and download) or qcow2 (required for a linked clone)",
  }),
  size_bytes: Bytes.min(1).optional().openapi({
    description: "Required for a blank disk; optional (≥ the base) for a clone",
  }),
  base_object_id: Id.optional().openapi({
    description: "Linked clone: a qcow2 overlay backed by this image or disk of the same pool",
  }),
  source_url: z.url({ protocol: /^https?$/ }).max(2048).optional().openapi({
    description: "Download the object from this http(s) URL",
  }),
  sha256: Sha256.optional().openapi({ description: "Expected sha256 of the download" }),
  type: z.enum(["disk", "image", "iso", "kernel", "initrd", "firmware"]).optional().openapi({
    description: "Object type of a download (default disk); blank disks and clones are disks",
  }),
  path: z.string().max(4096).optional().openapi({
    description: "File path inside the pool (default: <object id>.img / .qcow2)",
  }),
  host_id: Id.optional().openapi({
    description: "Local pools: the host to create the file on (it must have the pool " +
      "attached; a clone must be on its base's host). Default: the base's host for a clone, " +
      "otherwise an up host with the pool chosen by the job",
  }),
}).openapi("CreateDisk");

const ListQuery = z.object({
  ...PageQuery,
  name: z.string().optional(),
  type: PoolType.optional(),
  status: PoolStatus.optional(),
});
const tags = ["storage"];
const RT = "storage_pool";

/** The storage pools router. */
export function storagePoolsRouter(deps: AppDeps) {
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });
  const poolOr404 = async (
    id: string,
    lock = false,
    db = deps.sql as Parameters<typeof storagePools.get>[0],
  ) => {
    const pool = await storagePools.get(db, id, lock);
    if (!pool) throw NotFoundError.of("storage pool", id);
    return pool;
  };

  listRoute(app, deps, {
    path: "/storage-pools",
    tags,
    summary: "List storage pools",
    item: StoragePool,
    listName: "StoragePoolList",
    query: ListQuery,
    list: (db, f, page) => storagePools.list(db, equalTo(db, f), page),
  });

  postRoute(app, deps, {
    path: "/storage-pools",
    tags,
    summary: "Create a storage pool",
    description: "A local pool is a directory on each host it is attached to.",
    body: NewStoragePool,
    schema: StoragePool,
    resourceType: RT,
    insert: (tx, input) =>
      storagePools.insert(tx, { ...input, path: input.path.replace(/\/+$/, "") }),
    auditSummary: (p) => ({ name: p.name, type: p.type, path: p.path }),
  });

  getRoute(app, deps, {
    path: "/storage-pools/{id}",
    tags,
    summary: "Get a storage pool",
    schema: StoragePool,
    found: "The pool",
    resourceType: RT,
    get: storagePools.get,
  });

  patchRoute(app, deps, {
    path: "/storage-pools/{id}",
    tags,
    summary: "Update a storage pool (JSON merge patch)",
    body: StoragePoolPatch,
    schema: StoragePool,
    resourceType: RT,
    get: storagePools.get,
    update: (tx, id, patch, cur) => {
      const fields: Record<string, unknown> = { ...patch };
      if (patch.config) fields.config = mergePatch(cur.config, patch.config) ?? {};
      return storagePools.update(tx, id, fields);
    },
  });

  deleteRoute(app, deps, {
    path: "/storage-pools/{id}",
    tags,
    summary: "Delete a storage pool",
    description: "Refused (409) while it holds objects or is attached to hosts.",
    resourceType: RT,
    get: storagePools.get,
    guard: async (tx, pool, id) => {
      const use = await poolUsage(tx, id);
      if (use.objects > 0) {
        throw new FailedPreconditionError(
          `storage pool ${pool.name} holds ${use.objects} storage object(s); delete them first`,
        );
      }
      if (use.hosts > 0) {
        throw new FailedPreconditionError(
          `storage pool ${pool.name} is attached to ${use.hosts} host(s); detach it first`,
        );
      }
    },
    remove: storagePools.remove,
  });

  // ---- host attachments ----

  app.openapi(
    createRoute({
      method: "get",
      path: "/storage-pools/{id}/hosts",
      tags,
      summary: "Hosts the pool is attached to",
      request: { params: IdParams },
      responses: {
        200: json(ListOf(PoolAttachment, "StoragePoolAttachmentList"), "All attachments"),
        ...errors(404),
      },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      await poolOr404(id);
      const items = (await listPoolAttachments(deps.sql, id)).map(({ version: _, ...r }) => r);
      return c.json({ items, next_cursor: null }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/storage-pools/{id}/hosts",
      tags,
      summary: "Attach the pool to a host",
      description: "On an `up` host the node makes the pool available now (`ready`); " +
        "otherwise the attachment is `pending` until the host is initialised or comes back up.",
      request: { params: IdParams, body: body(AttachBody) },
      responses: { 201: json(PoolAttachment, "Attached", true), ...errors(400, 404, 409, 422) },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const { host_id } = c.req.valid("json");
      const { pool, host, att } = await transaction(deps.sql, async (tx) => {
        const pool = await poolOr404(id, true, tx);
        const host = await getHost(tx, host_id);
        if (!host) throw InvalidArgumentError.field("host_id", `host ${host_id} not found`);
        return { pool, host, att: await attachPool(tx, id, host_id) };
      });
      let row = att;
      if (talksToNode(host.status)) {
        try {
          row = (await applyPool(deps, host, id)) ?? att;
        } catch (err) {
          await detachPool(deps.sql, id, host.id);
          throw err;
        }
      }
      await transaction(deps.sql, (tx) =>
        audit(tx, c, {
          action: "attach_host",
          resource_type: RT,
          resource_id: id,
          summary: { name: pool.name, host_id, host: host.name, status: row.status },
        }));
      c.header("Location", `/v1/storage-pools/${id}/hosts/${host_id}`);
      return c.json(withEtag(c, row), 201);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/storage-pools/{id}/hosts/{host_id}",
      tags,
      summary: "One attachment",
      request: { params: HostParams },
      responses: { 200: json(PoolAttachment, "The attachment", true), ...errors(404) },
    }),
    async (c) => {
      const { id, host_id } = c.req.valid("param");
      const row = await getPoolAttachment(deps.sql, id, host_id);
      if (!row) throw new NotFoundError(`storage pool ${id} is not attached to host ${host_id}`);
      return c.json(withEtag(c, row), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "delete",
      path: "/storage-pools/{id}/hosts/{host_id}",
      tags,
      summary: "Detach the pool from a host",
      description:
        "The node forgets the pool first (its files stay); a `down` host refuses (409) " +
        "unless `force=true`, which only forgets the attachment. Refused (409) while the " +
        "pool's objects live on that host (local pools).",
      request: { params: HostParams, query: ForceQuery },
      responses: { 204: { description: "Detached" }, ...errors(404, 409) },
    }),
    async (c) => {
      const { id, host_id } = c.req.valid("param");
      const force = c.req.valid("query").force === "true";
      const pool = await poolOr404(id);
      const att = await getPoolAttachment(deps.sql, id, host_id);
      if (!att) throw new NotFoundError(`storage pool ${id} is not attached to host ${host_id}`);
      const host = await getHost(deps.sql, host_id);
      // The pool's files on this host would stay registered but unreachable: VMs using them
      // could never be placed again.
      const held = await objectsOnHost(deps.sql, host_id, { poolId: id });
      if (held.count > 0) {
        throw new ConflictError(
          `host ${
            host?.name ?? host_id
          } holds ${held.count} storage object(s) of pool ${pool.name} (${held.names.join(", ")}${
            held.count > held.names.length ? ", …" : ""
          }); delete or unregister them first`,
        );
      }
      // A pending attachment never reached the node: there is nothing to undo there.
      if (host && att.status !== "pending" && talksToNode(host.status)) {
        await detachPoolOnNode(deps, host, pool);
      } else if (host && att.status !== "pending" && host.status === "down" && !force) {
        throw new FailedPreconditionError(
          `host ${host.name} is ${host.status}: its node cannot release pool ${pool.name} now; ` +
            "retry when it is up, or pass force=true to forget the attachment anyway",
        );
      }
      await transaction(deps.sql, async (tx) => {
        if (!await detachPool(tx, id, host_id)) {
          throw new NotFoundError(`storage pool ${id} is not attached to host ${host_id}`);
        }
        await audit(tx, c, {
          action: "detach_host",
          resource_type: RT,
          resource_id: id,
          summary: { name: pool.name, host_id },
        });
      });
      return c.body(null, 204);
    },
  );

  // ---- disk creation ----

  app.openapi(
    createRoute({
      method: "post",
      path: "/storage-pools/{id}/disks",
      tags,
      summary: "Create a disk: blank (raw/qcow2), linked clone, or download",
      description:
        "Records the storage object as `creating` and queues a `disk_create` job that a " +
        "node attached to the pool executes. Poll the job (`Location`) for progress.",
      request: { params: IdParams, headers: IdempotencyHeaders, body: body(CreateDisk) },
      responses: { 202: json(Job, "The queued job", true), ...errors(400, 404, 409, 422) },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const input = c.req.valid("json");
      const objectId = crypto.randomUUID();
      return await acceptJob(c, deps, {
        type: "disk_create",
        resource_type: "storage_object",
        resource_id: objectId,
        creates: true,
        action: "create_disk",
        async check(tx) {
          const pool = await poolOr404(id, true, tx);
          const plan = await planDisk(tx, pool, input);
          // Pinned now when the pool is local and something decides it (the clone's base
          // lives on one host, or the caller said); otherwise the job picks an up host.
          const host = objectHost({
            pool,
            attached: await poolHosts(tx, pool.id),
            requested: input.host_id,
            parent: plan.base ?? null,
          }) ?? null;
          const path = input.path === undefined
            ? defaultDiskPath(objectId, plan.format)
            : objectPathInPool(pool.path, input.path);
          await assertPathFree(tx, pool, path, host);
          const object = await storageObjects.insert(tx, {
            id: objectId,
            name: input.name,
            storage_pool_id: id,
            type: plan.type,
            format: plan.format,
            path,
            size_bytes: plan.size_bytes,
            parent_id: plan.base?.id ?? null,
            host_id: host,
            status: "creating",
            source_url: input.source_url ?? null,
            sha256: input.sha256 ?? null,
          });
          return {
            summary: { name: object.name, kind: plan.kind, pool: pool.name },
            params: {
              kind: plan.kind,
              storage_pool_id: id,
              pool_path: pool.path,
              path,
              format: plan.format,
              size_bytes: plan.size_bytes,
              base_path: plan.base?.path ?? null,
              base_format: plan.base?.format ?? null,
              base_object_id: plan.base?.id ?? null,
              host_id: host,
              source_url: input.source_url ?? null,
              sha256: input.sha256 ?? null,
            },
          };
        },
      }) as never;
    },
  );

  return app;
}

type CreateDiskInput = z.infer<typeof CreateDisk>;

/** Checks a disk creation request against the pool and its base image; pure apart from reads. */
async function planDisk(
  tx: Parameters<typeof storageObjects.get>[0],
  pool: StoragePoolRow,
  input: CreateDiskInput,
) {
  if (pool.status !== "active") {
    throw new FailedPreconditionError(`storage pool ${pool.name} is ${pool.status}`);
  }
  const conflict = (field: string, other: string) =>
    InvalidArgumentError.field(field, `cannot be combined with ${other}`);
  if (input.source_url !== undefined) {
    if (input.base_object_id !== undefined) throw conflict("source_url", "base_object_id");
    if (input.size_bytes !== undefined) throw conflict("size_bytes", "source_url");
    return {
      kind: "download" as const,
      type: input.type ?? "disk",
      format: input.format ?? "raw",
      size_bytes: null,
      base: undefined,
    };
  }
  if (input.sha256 !== undefined) {
    throw InvalidArgumentError.field("sha256", "only applies to a download (source_url)");
  }
  if (input.type !== undefined && input.type !== "disk") {
    throw InvalidArgumentError.field("type", "blank disks and clones are of type disk");
  }
  if (input.base_object_id !== undefined) {
    if (input.format === "raw") {
      throw InvalidArgumentError.field("format", "a linked clone is a qcow2 overlay");
    }
    const base = await storageObjects.get(tx, input.base_object_id);
    if (!base || base.storage_pool_id !== pool.id) {
      throw InvalidArgumentError.field(
        "base_object_id",
        `storage object ${input.base_object_id} not found in pool ${pool.name}`,
      );
    }
    if (base.type !== "image" && base.type !== "disk") {
      throw InvalidArgumentError.field("base_object_id", `is a ${base.type}, not an image or disk`);
    }
    if (base.status !== "ready") {
      throw new FailedPreconditionError(`base object ${base.name} is ${base.status}, not ready`);
    }
    if (
      input.size_bytes !== undefined && base.size_bytes !== null &&
      input.size_bytes < base.size_bytes
    ) {
      throw InvalidArgumentError.field(
        "size_bytes",
        `must be at least the base's size (${base.size_bytes})`,
      );
    }
    return {
      kind: "clone" as const,
      type: "disk" as const,
      format: "qcow2" as const,
      size_bytes: input.size_bytes ?? base.size_bytes,
      base,
    };
  }
  if (input.size_bytes === undefined) {
    throw InvalidArgumentError.field("size_bytes", "required for a blank disk");
  }
  if (input.size_bytes % 512 !== 0) {
    throw InvalidArgumentError.field("size_bytes", "must be a multiple of 512");
  }
  return {
    kind: "blank" as const,
    type: "disk" as const,
    format: input.format ?? "raw",
    size_bytes: input.size_bytes,
    base: undefined,
  };
}

/**
 * `/v1/storage-objects`: files in storage pools (disks, kernels, images, …). POST registers a
 * file that already exists in the pool (a local pool's file on one host: `host_id`, see
 * domain/object_host.ts); disks are created through `/v1/storage-pools/{id}/disks`.
 * Deleting removes the record (the file stays; removing files is node work).
 */
import { OpenAPIHono, z } from "@hono/zod-openapi";
import { FailedPreconditionError, InvalidArgumentError } from "../../shared/errors/errors.ts";
import { activeJobFor } from "../db/jobs.ts";
import { type Db, equalTo } from "../db/query.ts";
import {
  assertPathFree,
  objectUsers,
  STORAGE_OBJECT_STATUSES,
  STORAGE_OBJECT_TYPES,
  type StorageObjectRow,
  storageObjects,
} from "../db/storage_objects.ts";
import { poolHosts } from "../db/host_storage_pools.ts";
import { ambiguousHost, objectHost } from "../domain/object_host.ts";
import { storagePools } from "../db/storage_pools.ts";
import { objectPathInPool } from "../domain/storage_paths.ts";
import { Bytes, Id, Name, PageQuery, Timestamp, validationHook } from "./common.ts";
import { deleteRoute, getRoute, listRoute, patchRoute, postRoute } from "./crud.ts";
import type { AppDeps, AppEnv } from "./deps.ts";

const ObjectType = z.enum(STORAGE_OBJECT_TYPES);
const Format = z.enum(["raw", "qcow2"]);

export const StorageObject = z.object({
  id: Id,
  name: z.string(),
  storage_pool_id: Id,
  type: ObjectType,
  format: Format.nullable(),
  path: z.string().openapi({ description: "Path relative to the pool's directory" }),
  size_bytes: z.int().nullable(),
  parent_id: Id.nullable().openapi({ description: "Backing image of a qcow2 overlay" }),
  host_id: Id.nullable().openapi({
    description: "Host whose pool directory holds the file (local pools); null when the pool " +
      "is shared or the file is on every host (or its host is unknown)",
  }),
  status: z.enum(STORAGE_OBJECT_STATUSES),
  status_reason: z.string().nullable(),
  source_url: z.string().nullable(),
  sha256: z.string().nullable(),
  created_at: Timestamp,
  updated_at: Timestamp,
}).openapi("StorageObject");

/** Types whose files have a disk image format. */
const FORMATTED = new Set(["disk", "image", "snapshot"]);

const NewStorageObject = z.strictObject({
  name: Name,
  storage_pool_id: Id,
  type: ObjectType,
  path: z.string().min(1).max(4096).openapi({
    description: "Relative to the pool, or absolute under the pool's directory",
  }),
  format: Format.optional().openapi({ description: "disk/image/snapshot only (default raw)" }),
  size_bytes: Bytes.nullable().optional(),
  parent_id: Id.nullable().optional(),
  host_id: Id.nullable().optional().openapi({
    description: "Local pools: the host holding the file. Defaults to the parent's host, or " +
      "to the only host the pool is attached to; required when it is attached to several " +
      "(null declares the file present on every host). Must be omitted for shared pools.",
  }),
  sha256: z.string().regex(/^[0-9a-fA-F]{64}$/, "64 hex digits").nullable().optional(),
}).openapi("NewStorageObject");

const StorageObjectPatch = z.strictObject({
  name: Name.optional(),
  size_bytes: Bytes.nullable().optional(),
}).openapi("StorageObjectPatch");

const ListQuery = z.object({
  ...PageQuery,
  name: z.string().optional(),
  storage_pool_id: Id.optional(),
  type: ObjectType.optional(),
  status: z.enum(STORAGE_OBJECT_STATUSES).optional(),
  parent_id: Id.optional(),
  host_id: Id.optional(),
});
const tags = ["storage"];
const RT = "storage_object";

/** The storage objects router. */
export function storageObjectsRouter(deps: AppDeps) {
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });

  listRoute(app, deps, {
    path: "/storage-objects",
    tags,
    summary: "List storage objects",
    item: StorageObject,
    listName: "StorageObjectList",
    query: ListQuery,
    list: (db, f, page) => storageObjects.list(db, equalTo(db, f), page),
  });

  postRoute(app, deps, {
    path: "/storage-objects",
    tags,
    summary: "Register an existing file of a pool",
    body: NewStorageObject,
    schema: StorageObject,
    created: "Registered",
    resourceType: RT,
    insert: async (tx, input) => {
      const pool = await storagePools.get(tx, input.storage_pool_id);
      if (!pool) {
        throw InvalidArgumentError.field(
          "storage_pool_id",
          `storage pool ${input.storage_pool_id} not found`,
        );
      }
      const path = objectPathInPool(pool.path, input.path);
      if (input.format !== undefined && !FORMATTED.has(input.type)) {
        throw InvalidArgumentError.field("format", `a ${input.type} has no disk format`);
      }
      const format = FORMATTED.has(input.type) ? input.format ?? "raw" : null;
      const parent = input.parent_id
        ? await checkParent(tx, input.parent_id, pool.id, format)
        : null;
      const attached = await poolHosts(tx, pool.id);
      const host = objectHost({ pool, attached, requested: input.host_id, parent });
      if (host === undefined) throw ambiguousHost(pool, attached);
      await assertPathFree(tx, pool, path, host);
      return storageObjects.insert(tx, {
        ...input,
        host_id: host,
        sha256: input.sha256?.toLowerCase() ?? null,
        path,
        format,
        status: "ready",
      });
    },
    auditSummary: (o) => ({ name: o.name, type: o.type, path: o.path }),
  });

  getRoute(app, deps, {
    path: "/storage-objects/{id}",
    tags,
    summary: "Get a storage object",
    schema: StorageObject,
    found: "The object",
    resourceType: RT,
    get: storageObjects.get,
  });

  patchRoute(app, deps, {
    path: "/storage-objects/{id}",
    tags,
    summary: "Rename a storage object or correct its size (JSON merge patch)",
    body: StorageObjectPatch,
    schema: StorageObject,
    resourceType: RT,
    get: storageObjects.get,
    update: (tx, id, patch) => storageObjects.update(tx, id, patch),
  });

  deleteRoute(app, deps, {
    path: "/storage-objects/{id}",
    tags,
    summary: "Unregister a storage object",
    description:
      "Refused (409) while a VM disk, a boot source or another object (as backing image) " +
      "uses it, or while a job is creating it. The file itself is left in place.",
    resourceType: RT,
    get: storageObjects.get,
    guard: async (tx, obj, id) => {
      const job = await activeJobFor(tx, "storage_object", id);
      if (job) {
        throw new FailedPreconditionError(
          `storage object ${obj.name} has an active job ${job.id} (${job.type}, ${job.status})`,
        );
      }
      const users = await objectUsers(tx, id);
      if (users.length) {
        throw new FailedPreconditionError(
          `storage object ${obj.name} is in use by ${users.join(", ")}`,
        );
      }
    },
    remove: storageObjects.remove,
  });

  return app;
}

async function checkParent(
  tx: Db,
  parentId: string,
  poolId: string,
  format: string | null,
): Promise<StorageObjectRow> {
  if (format !== "qcow2") {
    throw InvalidArgumentError.field("parent_id", "only a qcow2 object has a backing image");
  }
  const parent = await storageObjects.get(tx, parentId);
  if (!parent || parent.storage_pool_id !== poolId) {
    throw InvalidArgumentError.field(
      "parent_id",
      `storage object ${parentId} not found in the pool`,
    );
  }
  if (!FORMATTED.has(parent.type)) {
    throw InvalidArgumentError.field("parent_id", `is a ${parent.type}, not a disk image`);
  }
  return parent;
}

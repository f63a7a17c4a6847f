/**
 * A VM's snapshots: `POST /v1/vms/{id}/snapshots` records a snapshot (`creating`) in a
 * directory of the pool asked for (or of the VM's first disk) and queues `vm_snapshot` (202 + job);
 * `GET` lists or reads them; `DELETE` queues `vm_snapshot_delete` (the node removes its
 * files, then the record and its directory object go). `POST /v1/vms/{id}/restore` queues
 * `vm_restore` for a stopped VM from one of its ready snapshots. All three jobs take the VM's
 * one-active-job slot, so they never overlap another action on it.
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import {
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
} from "../../shared/errors/errors.ts";
import { getPoolAttachment } from "../db/host_storage_pools.ts";
import type { Db } from "../db/query.ts";
import { storageObjects } from "../db/storage_objects.ts";
import { storagePools } from "../db/storage_pools.ts";
import { vmDiskFiles } from "../db/vm_resources.ts";
import { SNAPSHOT_STATUSES, type SnapshotRow, vmSnapshots } from "../db/vm_snapshots.ts";
import { type VmRow, vms } from "../db/vms.ts";
import { assertVmAction } from "../domain/vm_status.ts";
import { restoreHost } from "../jobs/snapshot_steps.ts";
import { getResource } from "./crud.ts";
import {
  body,
  checkIfMatch,
  errors,
  Id,
  IfMatchHeaders,
  json,
  ListOf,
  Name,
  PageQuery,
  Timestamp,
  validationHook,
} from "./common.ts";
import type { AppDeps, AppEnv } from "./deps.ts";
import { acceptJob, IdempotencyHeaders, Job } from "./jobs.ts";

const tags = ["vms"];

export const Snapshot = z.object({
  id: Id,
  vm_id: Id,
  name: z.string().openapi({ example: "before-upgrade" }),
  status: z.enum(SNAPSHOT_STATUSES),
  status_reason: z.string().nullable().openapi({ description: "Why it failed" }),
  host_id: Id.nullable().openapi({ description: "The host holding its files" }),
  storage_object_id: Id.openapi({ description: "Its directory (a `snapshot` storage object)" }),
  created_at: Timestamp,
  updated_at: Timestamp,
}).openapi("VmSnapshot");

const NewSnapshot = z.strictObject({
  name: Name.optional().openapi({ description: "Unique per VM; default `snapshot-<8 hex>`" }),
  storage_pool_id: Id.optional().openapi({
    description: "The pool to hold it: active and attached (ready) to the VM's host. " +
      "Default: the pool of the VM's first disk",
  }),
}).openapi("NewVmSnapshot");

const RestoreBody = z.strictObject({
  snapshot_id: Id.openapi({ description: "A ready snapshot of this VM" }),
}).openapi("VmRestore");

const VmParams = z.object({ id: Id.openapi({ param: { name: "id", in: "path" } }) });
const SnapshotParams = VmParams.extend({
  snapshot_id: Id.openapi({ param: { name: "snapshot_id", in: "path" } }),
});
const ForceDeleteQuery = z.object({
  force: z.enum(["true", "false"]).optional().openapi({
    description: "Delete the records even when the node cannot remove the files (they stay)",
  }),
});
const ListQuery = z.object({
  ...PageQuery,
  name: z.string().max(63).optional(),
  status: z.enum(SNAPSHOT_STATUSES).optional(),
});

async function vmOr404(db: Db, id: string, lock = false): Promise<VmRow> {
  const vm = await vms.get(db, id, lock);
  if (!vm) throw NotFoundError.of("vm", id);
  return vm;
}

async function snapshotOf(
  db: Db,
  vmId: string,
  id: string,
  lock = false,
): Promise<SnapshotRow | undefined> {
  const snap = await vmSnapshots.get(db, id, lock);
  return snap?.vm_id === vmId ? snap : undefined;
}

/**
 * Where a VM's snapshot goes: a directory `snapshots/<vm>/<snapshot>` in the pool asked for
 * (active and attached, ready, to the VM's host: the node writes there) or else the pool of
 * its first disk, on its host (a local pool's files belong to that host).
 */
async function snapshotPool(db: Db, vm: VmRow, poolId: string | undefined) {
  if (poolId !== undefined) {
    const pool = await storagePools.get(db, poolId);
    if (!pool) {
      throw InvalidArgumentError.field("storage_pool_id", `storage pool ${poolId} not found`);
    }
    const attachment = vm.host_id ? await getPoolAttachment(db, pool.id, vm.host_id) : undefined;
    const problem = pool.status !== "active"
      ? `is ${pool.status}`
      : !attachment
      ? "is not attached to the VM's host"
      : attachment.status !== "ready"
      ? `is ${attachment.status} on the VM's host`
      : null;
    if (problem) {
      throw new FailedPreconditionError(
        `storage pool ${pool.name} ${problem}: it cannot hold a snapshot of vm ${vm.name}`,
        { details: [{ field: "storage_pool_id", message: problem }] },
      );
    }
    return pool;
  }
  const [disk] = await vmDiskFiles(db, vm.id);
  const pool = disk ? await storagePools.get(db, disk.pool_id) : undefined;
  if (!pool) {
    throw new FailedPreconditionError(
      `vm ${vm.name} has no disk in a storage pool to hold its snapshot; pass storage_pool_id`,
    );
  }
  return pool;
}

/** The snapshot routes. */
export function vmSnapshotsRouter(deps: AppDeps) {
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });

  app.openapi(
    createRoute({
      method: "post",
      path: "/vms/{id}/snapshots",
      tags,
      summary: "Snapshot a running or paused VM",
      description: "Records the snapshot (`creating`) in a directory of the pool asked for " +
        "(`storage_pool_id`: active and attached to the VM's host, else 409) or of the pool of " +
        "the VM's first disk, on the VM's host, and queues `vm_snapshot`: a running VM is paused, its " +
        "node writes Cloud Hypervisor's snapshot files, the VM is resumed and the snapshot " +
        "becomes `ready` (`failed` with the reason otherwise, the VM resumed). 409 when the VM " +
        "is not running or paused, or the name is taken.",
      request: { params: VmParams, headers: IdempotencyHeaders, body: body(NewSnapshot) },
      responses: { 202: json(Job, "The queued job", true), ...errors(400, 404, 409, 422) },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const input = c.req.valid("json");
      return await acceptJob(c, deps, {
        type: "vm_snapshot",
        resource_type: "vm",
        resource_id: id,
        action: "snapshot",
        async check(tx) {
          const vm = await vmOr404(tx, id, true);
          assertVmAction(vm, "snapshot");
          const pool = await snapshotPool(tx, vm, input.storage_pool_id);
          const snapshotId = crypto.randomUUID();
          const name = input.name ?? `snapshot-${snapshotId.slice(0, 8)}`;
          const object = await storageObjects.insert(tx, {
            name: `snapshot-${snapshotId}`,
            storage_pool_id: pool.id,
            type: "snapshot",
            path: `snapshots/${vm.id}/${snapshotId}`,
            status: "creating",
            host_id: pool.type === "local" ? vm.host_id : null,
          });
          await vmSnapshots.insert(tx, {
            id: snapshotId,
            vm_id: vm.id,
            name,
            host_id: vm.host_id,
            storage_object_id: object.id,
          });
          return {
            summary: { name: vm.name, snapshot: name, snapshot_id: snapshotId },
            params: { snapshot_id: snapshotId },
          };
        },
      }) as never;
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/vms/{id}/snapshots",
      tags,
      summary: "List a VM's snapshots (oldest first)",
      request: { params: VmParams, query: ListQuery },
      responses: {
        200: json(ListOf(Snapshot, "VmSnapshotList"), "A page of snapshots"),
        ...errors(404, 422),
      },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const { limit, cursor, name, status } = c.req.valid("query");
      await vmOr404(deps.sql, id);
      const db = deps.sql;
      const where = [db`vm_id = ${id}`];
      if (name !== undefined) where.push(db`name = ${name}`);
      if (status !== undefined) where.push(db`status = ${status}`);
      return c.json(await vmSnapshots.list(db, where, { limit, cursor }), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/vms/{id}/snapshots/{snapshot_id}",
      tags,
      summary: "Get a snapshot",
      request: { params: SnapshotParams },
      responses: { 200: json(Snapshot, "The snapshot", true), ...errors(404, 422) },
    }),
    async (c) => {
      const { id, snapshot_id } = c.req.valid("param");
      const row = await getResource(
        c,
        "snapshot",
        snapshot_id,
        () => snapshotOf(deps.sql, id, snapshot_id),
      );
      return c.json(row, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "delete",
      path: "/vms/{id}/snapshots/{snapshot_id}",
      tags,
      summary: "Delete a snapshot and its files",
      description: "Queues `vm_snapshot_delete`: the node holding the snapshot's files removes " +
        "its directory (`snapshots/<vm>/<snapshot>` in the pool), then the snapshot and its " +
        "directory object go. An unreachable node fails the job and keeps the snapshot, unless " +
        "`force=true` (the records go, the files stay; the job's result says why). Not while " +
        "the snapshot is being made or the VM has another active job (409).",
      request: {
        params: SnapshotParams,
        headers: IfMatchHeaders.extend(IdempotencyHeaders.shape),
        query: ForceDeleteQuery,
      },
      responses: { 202: json(Job, "The queued job", true), ...errors(404, 409, 412, 422) },
    }),
    async (c) => {
      const { id, snapshot_id } = c.req.valid("param");
      const { force } = c.req.valid("query");
      return await acceptJob(c, deps, {
        type: "vm_snapshot_delete",
        resource_type: "vm",
        resource_id: id,
        params: { snapshot_id, ...(force === "true" ? { force: true } : {}) },
        action: "snapshot_delete",
        async check(tx) {
          await vmOr404(tx, id, true);
          const snap = await snapshotOf(tx, id, snapshot_id, true);
          if (!snap) throw NotFoundError.of("snapshot", snapshot_id);
          checkIfMatch(c, snap.version, `snapshot ${snapshot_id}`);
          if (snap.status === "creating") {
            throw new FailedPreconditionError(`snapshot ${snap.name} is being made`);
          }
          return { summary: { snapshot: snap.name, snapshot_id, host_id: snap.host_id } };
        },
      }) as never;
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/vms/{id}/restore",
      tags,
      summary: "Restore a stopped VM from one of its snapshots",
      description: "Queues `vm_restore`: the VM goes `pending` on the host holding the " +
        "snapshot's files, its networks and pools are attached there, and its node restores it " +
        "into a fresh Cloud Hypervisor (which restores paused) and resumes it, so the VM ends " +
        "`running`; on failure it gets its previous status back. 409 unless the VM is created " +
        "or shut down and the snapshot is ready; 404 for a snapshot of another VM.",
      request: { params: VmParams, headers: IdempotencyHeaders, body: body(RestoreBody) },
      responses: { 202: json(Job, "The queued job", true), ...errors(400, 404, 409, 422) },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const { snapshot_id } = c.req.valid("json");
      return await acceptJob(c, deps, {
        type: "vm_restore",
        resource_type: "vm",
        resource_id: id,
        params: { snapshot_id },
        action: "restore",
        async check(tx) {
          const vm = await vmOr404(tx, id, true);
          const snap = await snapshotOf(tx, id, snapshot_id);
          if (!snap) throw NotFoundError.of("snapshot", snapshot_id);
          assertVmAction(vm, "restore");
          if (snap.status !== "ready") {
            throw new FailedPreconditionError(
              `snapshot ${snap.name} is ${snap.status}, not ready`,
              { details: [{ field: "snapshot_id", message: `is ${snap.status}` }] },
            );
          }
          restoreHost(vm, snap);
          return { summary: { name: vm.name, snapshot: snap.name, snapshot_id } };
        },
      }) as never;
    },
  );

  return app;
}

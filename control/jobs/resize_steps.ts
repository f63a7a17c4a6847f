/**
 * The steps of `vm_resize` (hotplug vCPUs/memory of a running VM) and `disk_resize` (grow a
 * VM's disk). Resize: check the rules (domain/resize.ts) and the host's capacity and reserve
 * the sizes on the VM's record in one transaction with the host locked (the placement
 * ledger), have the node resize the VM (`ResizeVm`), then record the final sizes; a failure
 * puts the old sizes back (`undoResize`). Disk: choose where the file is grown (through the VMM on the VM's host when
 * it runs, else the file on the VM's host, the object's host or an up host of its pool), have
 * the node grow it (`ResizeDisk`), then record the object's size. Every step can run again.
 */
import type { TransactionSql } from "postgres";
import { FailedPreconditionError, NotFoundError } from "../../shared/errors/errors.ts";
import { getHost, type HostRow } from "../db/hosts.ts";
import { poolHosts } from "../db/host_storage_pools.ts";
import { placementHosts } from "../db/placement.ts";
import { storageObjects } from "../db/storage_objects.ts";
import { storagePools } from "../db/storage_pools.ts";
import { getDisk } from "../db/vm_disks.ts";
import { type VmRow, vms } from "../db/vms.ts";
import { objectFile } from "../domain/node_spec.ts";
import { capacityRejection, formatBytes } from "../domain/placement.ts";
import {
  checkDiskGrowth,
  type NewSizing,
  reservedSizing,
  resizedSizing,
  sameSizing,
  sizingOf,
} from "../domain/resize.ts";
import { assertVmAction } from "../domain/vm_status.ts";
import { applyPool } from "../nodes/attachments.ts";
import type { JobContext, Step } from "./plan.ts";
import { loadVm, vmOnNode } from "./vm_steps.ts";

/** The params `POST /v1/vms/{id}/resize` queues. */
export interface VmResizeParams {
  desired_vcpus?: number;
  desired_ram?: number;
}

/** The params `POST /v1/vms/{id}/disks/{device_id}/resize` queues. */
export interface DiskResizeParams {
  device_id: string;
  storage_object_id: string;
  size_bytes: number;
}

// ---- vm_resize ----------------------------------------------------------------------------

/** The VM's sizes before the resize, kept by the check step (the undo puts them back). */
function previousOf(ctx: JobContext): NewSizing | undefined {
  return ctx.data.previous as NewSizing | undefined;
}

/** The sizes the resize leads to and those the record holds meanwhile, from the old ones. */
function resizePlan(ctx: JobContext, vm: VmRow, previous: NewSizing) {
  const target = resizedSizing({ ...vm, ...previous }, ctx.job.params as VmResizeParams, true);
  return { target, reserved: reservedSizing(previous, target) };
}

/**
 * Resize: the VM runs, the sizes obey the rules, and its host has room for what grows; in the
 * same transaction, with the host locked (like a placement), the VM's record takes the larger
 * of the old and new sizes, so the ledger counts them before the node is asked and a resize
 * or a start placing onto the host at the same moment sees them. The old sizes are saved
 * first, so a retry after a crash (record already changed) knows them.
 */
export const resizeCheckStep: Step = {
  name: "check",
  async run(ctx) {
    const id = ctx.job.resource_id ?? "";
    if (previousOf(ctx) === undefined) {
      const vm = await vms.get(ctx.svc.sql, id);
      if (!vm) throw NotFoundError.of("vm", id);
      ctx.data.previous = sizingOf(vm);
      await ctx.save();
    }
    const previous = previousOf(ctx)!;
    const { scheduling } = ctx.svc.config;
    await ctx.transaction(async (tx) => {
      const vm = await vms.get(tx, id, true);
      if (!vm) throw NotFoundError.of("vm", id);
      assertVmAction(vm, "resize");
      if (vm.status !== "running" || !vm.host_id) {
        throw new FailedPreconditionError(
          `vm ${vm.name} is ${vm.status}: only a running vm is resized by a job`,
        );
      }
      const { target, reserved } = resizePlan(ctx, vm, previous);
      ctx.data.host_id = vm.host_id;
      ctx.data.sizing = target;
      const now = sizingOf(vm);
      if (sameSizing(now, reserved)) return; // reserved already (a retry)
      if (!sameSizing(now, previous)) {
        throw new FailedPreconditionError(
          `vm ${vm.name}'s sizes changed while it was being resized; resize it again`,
        );
      }
      const [host] = await placementHosts(tx, {
        vmId: vm.id,
        hostId: vm.host_id,
        networks: [],
        pools: [],
        tags: [],
      });
      if (!host) throw new FailedPreconditionError(`host ${vm.host_id} no longer exists`);
      const short = capacityRejection(reserved, host, scheduling);
      if (short) {
        const want = `${target.boot_vcpus} vCPU, ${formatBytes(target.memory_size)}`;
        throw new FailedPreconditionError(
          `host ${host.name} cannot fit vm ${vm.name} resized to ${want}: ${short.filter}: ` +
            `${host.name} ${short.reason}`,
          {
            details: [{
              field: short.filter,
              message: `${host.name}: ${short.reason}`,
              host_id: host.id,
            }],
          },
        );
      }
      await vms.update(tx, vm.id, { ...reserved });
    });
  },
};

/** Resize: the node hotplugs the vCPUs/memory (asking again for the same sizes is harmless). */
export const resizeOnNodeStep: Step = {
  name: "resize_on_node",
  async run(ctx) {
    const { vm, client } = await vmOnNode(ctx);
    const p = ctx.job.params as VmResizeParams;
    const req = {
      vmId: vm.id,
      ...(p.desired_vcpus !== undefined ? { desiredVcpus: p.desired_vcpus } : {}),
      ...(p.desired_ram !== undefined ? { desiredRam: p.desired_ram } : {}),
    };
    await client.call("ResizeVm", (o, n) => n.vm.resizeVm(req, o), { signal: ctx.signal });
    ctx.data.resized = true;
  },
};

/** Writes `sizing` on the VM's record unless it already holds it. */
async function recordSizing(tx: TransactionSql, vm: VmRow, sizing: NewSizing) {
  if (!sameSizing(sizingOf(vm), sizing)) await vms.update(tx, vm.id, { ...sizing });
}

/** Resize: the VM's record has the new sizes (vCPUs given back are free from now on). */
export const recordSizingStep: Step = {
  name: "record_sizing",
  async run(ctx) {
    const sizing = ctx.data.sizing as NewSizing;
    await ctx.transaction(async (tx) => {
      const vm = await vms.get(tx, ctx.job.resource_id!, true);
      if (!vm) throw NotFoundError.of("vm", ctx.job.resource_id!);
      await recordSizing(tx, vm, sizing);
    });
  },
};

/**
 * After a failed or cancelled resize: the VM's record gets its old sizes back (the new ones
 * when the node had already resized it), unless its sizes are no longer the ones this job
 * wrote.
 */
export async function undoResize(ctx: JobContext, _error: Error): Promise<void> {
  const previous = previousOf(ctx);
  if (!previous) return;
  await ctx.transaction(async (tx) => {
    const vm = await vms.get(tx, ctx.job.resource_id ?? "", true);
    if (!vm) return;
    const { target, reserved } = resizePlan(ctx, vm, previous);
    const now = sizingOf(vm);
    if (!sameSizing(now, reserved) && !sameSizing(now, target)) return;
    await recordSizing(tx, vm, ctx.data.resized ? target : previous);
  });
}

// ---- disk_resize --------------------------------------------------------------------------

/** Where the file of a stopped VM's disk is grown: the VM's host, the object's, or a pool host. */
async function fileHost(
  ctx: Parameters<Step["run"]>[0],
  candidates: (string | null)[],
  poolId: string,
): Promise<HostRow> {
  for (const id of candidates) {
    if (!id) continue;
    const host = await getHost(ctx.svc.sql, id);
    if (!host) throw new FailedPreconditionError(`host ${id} no longer exists`);
    return host;
  }
  for (const { host_id } of await poolHosts(ctx.svc.sql, poolId)) {
    const host = await getHost(ctx.svc.sql, host_id);
    if (host?.status === "up") return host;
  }
  throw new FailedPreconditionError(
    `no up host has storage pool ${poolId} attached; attach it to a host (POST ` +
      `/v1/storage-pools/${poolId}/hosts) or bring one up`,
  );
}

/**
 * Disk: the VM may have the disk grown, the disk still holds the object, the size still grows
 * it (or equals it: a retry), and where to grow it is decided.
 */
export const diskResizeCheckStep: Step = {
  name: "check",
  async run(ctx) {
    if (ctx.data.mode !== undefined) return;
    const p = ctx.job.params as unknown as DiskResizeParams;
    const vm = await loadVm(ctx);
    assertVmAction(vm, "resize_disk");
    const disk = await getDisk(ctx.svc.sql, vm.id, p.device_id);
    if (!disk || disk.storage_object_id !== p.storage_object_id) {
      throw new FailedPreconditionError(`vm ${vm.name} has no disk ${p.device_id} any more`);
    }
    const object = await storageObjects.get(ctx.svc.sql, p.storage_object_id);
    if (!object) throw NotFoundError.of("storage object", p.storage_object_id);
    if (object.size_bytes !== p.size_bytes) checkDiskGrowth(object.size_bytes, p.size_bytes);
    const pool = await storagePools.get(ctx.svc.sql, object.storage_pool_id);
    if (!pool) throw NotFoundError.of("storage pool", object.storage_pool_id);
    const live = vm.status === "running" || vm.status === "paused";
    const host = live && vm.host_id
      ? (await getHost(ctx.svc.sql, vm.host_id))
      : await fileHost(ctx, [vm.host_id, object.host_id], pool.id);
    if (!host) throw new FailedPreconditionError(`host ${vm.host_id} no longer exists`);
    ctx.data.mode = live ? "vmm" : "file";
    ctx.data.host_id = host.id;
    ctx.data.pool_id = pool.id;
    ctx.data.path = objectFile(pool.path, object.path);
  },
};

/** Disk: a stopped VM's file is grown by the node directly, so its pool must be attached. */
export const diskResizePoolStep: Step = {
  name: "ensure_pool",
  async run(ctx) {
    if (ctx.data.mode !== "file") return;
    const host = await getHost(ctx.svc.sql, ctx.data.host_id as string);
    if (!host) throw new FailedPreconditionError(`host ${ctx.data.host_id} no longer exists`);
    await applyPool(ctx.svc, host, ctx.data.pool_id as string, ctx.signal);
  },
};

/**
 * Disk: the node grows it: through CH (`vm.resize-disk`, the guest sees the new size) when the
 * VM runs, else the file itself. Growing to the size it has is harmless.
 */
export const diskResizeOnNodeStep: Step = {
  name: "resize_on_node",
  async run(ctx) {
    const p = ctx.job.params as unknown as DiskResizeParams;
    const host = await getHost(ctx.svc.sql, ctx.data.host_id as string);
    if (!host) throw new FailedPreconditionError(`host ${ctx.data.host_id} no longer exists`);
    const req = ctx.data.mode === "vmm"
      ? { vmId: ctx.job.resource_id!, diskId: p.device_id, newSize: p.size_bytes }
      : { path: ctx.data.path as string, newSize: p.size_bytes };
    await ctx.svc.nodes.get(host).call("ResizeDisk", (o, n) => n.vm.resizeDisk(req, o), {
      signal: ctx.signal,
    });
  },
};

/** Disk: the storage object records its new size. */
export const diskRecordSizeStep: Step = {
  name: "record_size",
  async run(ctx) {
    const p = ctx.job.params as unknown as DiskResizeParams;
    await ctx.transaction((tx) =>
      storageObjects.update(tx, p.storage_object_id, { size_bytes: p.size_bytes })
    );
  },
};

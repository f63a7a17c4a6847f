/**
 * The steps of `vm_snapshot` and `vm_restore`. A snapshot pauses a running VM, has its node
 * write Cloud Hypervisor's snapshot (config, device state, memory) into the snapshot's
 * directory in a storage pool, resumes the VM and marks the snapshot ready; a failure resumes
 * the VM if the job paused it and marks the snapshot failed. A restore puts a stopped VM back
 * on the host holding the snapshot's files (`pending`), makes sure its networks and pools are
 * there and the node has its spec, and has the node restore it into a fresh VMM; CH restores
 * paused, and the node resumes it, so the VM ends `running`. A failed restore gives the VM
 * its previous status back. Deleting a snapshot (`vm_snapshot_delete`, and every snapshot of a
 * VM in `vm_delete`) has the node holding its files remove its directory (`DeleteSnapshot`),
 * then drops its directory object (the snapshot record goes with it).
 */
import {
  DeadlineExceededError,
  FailedPreconditionError,
  NotFoundError,
  UnavailableError,
} from "../../shared/errors/errors.ts";
import type { TransactionSql } from "postgres";
import { node } from "../../shared/proto/mod.ts";
import { getHost } from "../db/hosts.ts";
import { run } from "../db/query.ts";
import { storageObjects } from "../db/storage_objects.ts";
import type { JobRow } from "../db/jobs.ts";
import {
  setSnapshotStatus,
  snapshotLocation,
  type SnapshotRow,
  vmSnapshots,
} from "../db/vm_snapshots.ts";
import { vms } from "../db/vms.ts";
import { assertVmAction, type VmStatus } from "../domain/vm_status.ts";
import type { Emit } from "../events/bus.ts";
import { changeVmStatus } from "../events/status.ts";
import { applyPool } from "../nodes/attachments.ts";
import { JobCancelledError, type JobContext, type Step } from "./plan.ts";
import { loadVm, nodeActionSteps, nodeVmState, vmNeeds, vmOnNode } from "./vm_steps.ts";

const S = node.VmStatus;

/** The params of both jobs. */
export interface SnapshotParams {
  snapshot_id: string;
}

function snapshotId(ctx: { job: { params: Record<string, unknown> } }): string {
  return (ctx.job.params as unknown as SnapshotParams).snapshot_id;
}

/** The job's snapshot (fresh), or NotFound. */
async function loadSnapshot(ctx: JobContext): Promise<SnapshotRow> {
  const id = snapshotId(ctx);
  const snap = await vmSnapshots.get(ctx.svc.sql, id);
  if (!snap) throw NotFoundError.of("snapshot", id);
  return snap;
}

/** `file://` URL of the snapshot's directory. */
async function snapshotUrl(ctx: JobContext): Promise<string> {
  const loc = await snapshotLocation(ctx.svc.sql, snapshotId(ctx));
  if (!loc) throw new FailedPreconditionError(`snapshot ${snapshotId(ctx)} has no directory`);
  return `file://${loc.dir}`;
}

async function setVmStatus(ctx: JobContext, status: VmStatus, onlyFrom?: VmStatus[]) {
  await ctx.transaction((tx, emit) =>
    changeVmStatus(
      tx,
      emit,
      ctx.job.resource_id!,
      { status, reason: null },
      ctx.cause,
      onlyFrom ? { onlyFrom } : {},
    )
  );
}

function reasonOf(verb: string, error: Error): string {
  return error instanceof JobCancelledError
    ? `${verb} ${error.message}`
    : `${verb} failed: ${error.message}`;
}

// ---- snapshot -----------------------------------------------------------------------------

/** Snapshot: the VM is running or paused and its snapshot is being made (first run only). */
export const snapshotCheck: Step = {
  name: "check",
  async run(ctx) {
    if (ctx.data.from !== undefined) return;
    const vm = await loadVm(ctx);
    assertVmAction(vm, "snapshot");
    const snap = await loadSnapshot(ctx);
    if (snap.status !== "creating") {
      throw new FailedPreconditionError(`snapshot ${snap.name} is ${snap.status}`);
    }
    ctx.data.from = vm.status;
    ctx.data.host_id = vm.host_id;
  },
};

const [, pauseOnNode, confirmPaused] = nodeActionSteps("pause");
const [, resumeOnNode, confirmResumed] = nodeActionSteps("resume");

/** Snapshot: a running VM is paused first (the job remembers it did, to resume it after). */
export const pauseStep: Step = {
  name: "pause",
  async run(ctx) {
    if (ctx.data.from !== "running") return;
    ctx.data.paused = true;
    await ctx.save();
    await pauseOnNode.run(ctx);
    await confirmPaused.run(ctx);
  },
};

/** Snapshot: the node writes the snapshot files into the snapshot's directory. */
export const snapshotOnNodeStep: Step = {
  name: "snapshot_on_node",
  async run(ctx) {
    const { vm, client } = await vmOnNode(ctx);
    const url = await snapshotUrl(ctx);
    await client.call(
      "SnapshotVM",
      (o, n) => n.vm.snapshotVM({ vmId: vm.id, snapshotUrl: url }, o),
      { signal: ctx.signal, timeoutMs: ctx.svc.config.nodes.snapshot_timeout_ms },
    );
    ctx.data.path = url.slice("file://".length);
  },
};

/** Snapshot: a VM the job paused runs again. */
export const resumeStep: Step = {
  name: "resume",
  async run(ctx) {
    if (!ctx.data.paused) return;
    await resumeOnNode.run(ctx);
    await confirmResumed.run(ctx);
    ctx.data.paused = false;
  },
};

/** Snapshot: the snapshot (and its directory object) is ready. */
export const markSnapshotReadyStep: Step = {
  name: "mark_ready",
  async run(ctx) {
    await ctx.transaction((tx) => setSnapshotStatus(tx, snapshotId(ctx), "ready", null));
  },
};

/** After a failed or cancelled snapshot: resume the VM if the job paused it; mark it failed. */
export async function undoSnapshot(ctx: JobContext, error: Error): Promise<void> {
  if (ctx.data.paused) {
    try {
      const { vm, client } = await vmOnNode(ctx);
      const state = await nodeVmState(ctx, client, vm.id);
      if (state?.status === S.VM_STATUS_PAUSED) {
        await client.call("ResumeVM", (o, n) => n.vm.resumeVM({ id: vm.id }, o));
      }
      const after = await nodeVmState(ctx, client, vm.id);
      if (after?.status === S.VM_STATUS_RUNNING) await setVmStatus(ctx, "running", ["paused"]);
    } catch (err) {
      ctx.log.warn("resume after failed snapshot", { err });
    }
  }
  await ctx.transaction((tx) =>
    setSnapshotStatus(tx, snapshotId(ctx), "failed", reasonOf("snapshot", error))
  );
}

/** A snapshot job cancelled before it ran: its snapshot is marked failed. */
export async function releaseSnapshot(
  tx: TransactionSql,
  _emit: Emit,
  job: JobRow,
  reason: string,
): Promise<void> {
  await setSnapshotStatus(tx, snapshotId({ job }), "failed", `snapshot ${reason}`);
}

// ---- restore ------------------------------------------------------------------------------

/**
 * Restore: the VM is stopped, the snapshot is ready and its own; the VM goes `pending` on the
 * snapshot's host (a VM placed elsewhere cannot use files of another host's local pool).
 */
export const restoreCheck: Step = {
  name: "check",
  async run(ctx) {
    if (ctx.data.from !== undefined) return;
    const vm = await loadVm(ctx);
    const snap = await loadSnapshot(ctx);
    assertVmAction(vm, "restore");
    const target = restoreHost(vm, snap);
    if (snap.status !== "ready") {
      throw new FailedPreconditionError(`snapshot ${snap.name} is ${snap.status}, not ready`);
    }
    await ctx.transaction(async (tx, emit) => {
      const current = await vms.get(tx, vm.id, true);
      if (!current) throw NotFoundError.of("vm", vm.id);
      assertVmAction(current, "restore");
      await changeVmStatus(
        tx,
        emit,
        vm.id,
        { status: "pending", reason: null, host_id: target },
        ctx.cause,
      );
    });
    ctx.data.from = vm.status;
    ctx.data.had_host = vm.host_id !== null;
    ctx.data.host_id = target;
  },
};

/** The host a restore runs on: the snapshot's (which must be the VM's, if it has one). */
export function restoreHost(
  vm: { name: string; host_id: string | null },
  snap: { name: string; host_id: string | null },
): string {
  const host = snap.host_id ?? vm.host_id;
  if (!host) throw new FailedPreconditionError(`snapshot ${snap.name} is on no known host`);
  if (vm.host_id && vm.host_id !== host) {
    throw new FailedPreconditionError(
      `snapshot ${snap.name} is on host ${host} but vm ${vm.name} is placed on host ` +
        `${vm.host_id}`,
    );
  }
  return host;
}

/** Restore: the snapshot's pool is attached on the host (with the VM's own pools). */
export const ensureRestorePoolsStep: Step = {
  name: "ensure_pools",
  async run(ctx) {
    const { vm, host } = await vmOnNode(ctx);
    const { pools } = await vmNeeds(ctx, vm);
    const loc = await snapshotLocation(ctx.svc.sql, snapshotId(ctx));
    if (!loc) throw new FailedPreconditionError(`snapshot ${snapshotId(ctx)} has no directory`);
    for (const id of new Set([...pools, loc.storage_pool_id])) {
      await applyPool(ctx.svc, host, id, ctx.signal);
    }
  },
};

/** Restore: the node restores the VM into a fresh VMM and resumes it (done if it runs). */
export const restoreOnNodeStep: Step = {
  name: "restore_on_node",
  async run(ctx) {
    const { vm, client } = await vmOnNode(ctx);
    if (ctx.data.restored) {
      const state = await nodeVmState(ctx, client, vm.id);
      if (state?.status === S.VM_STATUS_RUNNING) return;
    }
    const url = await snapshotUrl(ctx);
    ctx.data.restored = true;
    await ctx.save();
    await client.call(
      "RestoreVM",
      (o, n) =>
        n.vm.restoreVM({
          vmId: vm.id,
          sourceUrl: url,
          hypervisor: node.HypervisorType.HYPERVISOR_TYPE_CLOUD_HV,
        }, o),
      { signal: ctx.signal, timeoutMs: ctx.svc.config.nodes.snapshot_timeout_ms },
    );
  },
};

/**
 * After a failed or cancelled restore: a VMM the restore may have left is stopped, and the VM
 * goes back to the status (and host) it had, with the error as its reason.
 */
export async function undoRestore(ctx: JobContext, error: Error): Promise<void> {
  const from = ctx.data.from as VmStatus | undefined;
  if (from === undefined) return;
  const vm = await vms.get(ctx.svc.sql, ctx.job.resource_id ?? "");
  if (!vm || vm.status !== "pending") return;
  if (vm.host_id && (ctx.data.created_on_node || ctx.data.restored)) {
    const host = await getHost(ctx.svc.sql, vm.host_id);
    if (host) {
      await ctx.svc.nodes.get(host).call(
        "ForceStopVM",
        (o, n) => n.vm.forceStopVM({ id: vm.id }, o),
      )
        .catch((err) => ctx.log.warn("cleanup after failed restore", { err }));
    }
  }
  await ctx.transaction((tx, emit) =>
    changeVmStatus(
      tx,
      emit,
      vm.id,
      {
        status: from,
        reason: reasonOf("restore", error),
        ...(ctx.data.had_host ? {} : { host_id: null }),
      },
      ctx.cause,
      { onlyFrom: ["pending"] },
    )
  );
}

// ---- delete -------------------------------------------------------------------------------

/** Has the node holding a snapshot's files remove its directory (a missing one is fine). */
async function deleteSnapshotFiles(
  ctx: JobContext,
  snap: { id: string; name: string; host_id: string | null },
): Promise<void> {
  const loc = await snapshotLocation(ctx.svc.sql, snap.id);
  if (!loc) return;
  const host = snap.host_id ? await getHost(ctx.svc.sql, snap.host_id) : undefined;
  if (!host) {
    throw new FailedPreconditionError(
      `snapshot ${snap.name}: the host holding ${loc.dir} is unknown, its files cannot be removed`,
    );
  }
  await ctx.svc.nodes.get(host).call(
    "DeleteSnapshot",
    (o, n) => n.files.deleteSnapshot({ path: loc.dir }, o),
    { signal: ctx.signal },
  );
}

/** The snapshot's directory object goes, and the snapshot record with it (cascade). */
async function removeSnapshotRecord(ctx: JobContext, id: string): Promise<void> {
  await ctx.transaction(async (tx) => {
    const snap = await vmSnapshots.get(tx, id, true);
    if (snap) await storageObjects.remove(tx, snap.storage_object_id);
  });
}

/** Snapshot delete: the snapshot exists (else nothing to do) and is not being made. */
export const snapshotDeleteCheck: Step = {
  name: "check",
  async run(ctx) {
    const snap = await vmSnapshots.get(ctx.svc.sql, snapshotId(ctx));
    if (!snap) {
      ctx.data.gone = true;
      return;
    }
    if (snap.status === "creating") {
      throw new FailedPreconditionError(`snapshot ${snap.name} is being made`);
    }
    ctx.data.name = snap.name;
    ctx.data.host_id = snap.host_id;
    ctx.data.path = (await snapshotLocation(ctx.svc.sql, snap.id))?.dir;
  },
};

/**
 * Snapshot delete: the node removes the directory. Without `force`, an unreachable node (or
 * any node error) keeps the snapshot; with it, the error is noted and the record goes anyway.
 */
export const deleteSnapshotFilesStep: Step = {
  name: "delete_files",
  async run(ctx) {
    if (ctx.data.gone) return;
    const snap = await vmSnapshots.get(ctx.svc.sql, snapshotId(ctx));
    if (!snap) return;
    try {
      await deleteSnapshotFiles(ctx, snap);
    } catch (err) {
      if (ctx.signal.aborted) throw err;
      if (!ctx.job.params.force) {
        if (err instanceof UnavailableError || err instanceof DeadlineExceededError) {
          throw new UnavailableError(
            `${err.message} (the snapshot is kept until its node answers; DELETE with ` +
              "force=true removes the record and leaves the files)",
            { cause: err },
          );
        }
        throw err;
      }
      ctx.data.node_error = (err as Error).message;
      ctx.log.warn("deleting a snapshot without its files (force)", { err });
    }
  },
};

/** Snapshot delete: the record and its directory object go. */
export const removeSnapshotStep: Step = {
  name: "remove_record",
  async run(ctx) {
    if (!ctx.data.gone) await removeSnapshotRecord(ctx, snapshotId(ctx));
  },
};

/**
 * VM delete: each of the VM's snapshots loses its files (best effort: a node that cannot do it
 * is noted in `snapshot_errors`, the files stay) and its directory object. Runs before the VM
 * record goes, which would take only the snapshot records with it.
 */
export const deleteVmSnapshotsStep: Step = {
  name: "delete_snapshots",
  async run(ctx) {
    if (ctx.data.gone) return;
    const snaps = await run(() =>
      ctx.svc.sql<SnapshotRow[]>`select * from vm_snapshots
        where vm_id = ${ctx.job.resource_id!} order by created_at, id`
    );
    const errors = (ctx.data.snapshot_errors ?? []) as string[];
    for (const snap of snaps) {
      try {
        await deleteSnapshotFiles(ctx, snap);
      } catch (err) {
        if (ctx.signal.aborted) throw err;
        errors.push(`snapshot ${snap.name}: ${(err as Error).message}`);
        ctx.log.warn("snapshot files left behind", { err, snapshot_id: snap.id });
      }
      await removeSnapshotRecord(ctx, snap.id);
      ctx.data.snapshots_deleted = ((ctx.data.snapshots_deleted as number) ?? 0) + 1;
      if (errors.length) ctx.data.snapshot_errors = errors;
      await ctx.save();
    }
  },
};

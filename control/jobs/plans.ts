/**
 * One plan per job type, built from the steps in vm_steps.ts, resize_steps.ts,
 * snapshot_steps.ts, disk_steps.ts and host_steps.ts. VM jobs need no `release` (their routes
 * change nothing before the job runs), except `vm_snapshot`, whose route records the snapshot:
 * a cancelled one is marked failed.
 */
import type { JobType } from "../db/jobs.ts";
import {
  chooseNodeStep,
  createDiskStep,
  ensurePoolStep,
  markReadyStep,
  releaseDisk,
  undoDisk,
} from "./disk_steps.ts";
import { hostDeployPlan } from "./host_steps.ts";
import {
  deleteSnapshotFilesStep,
  deleteVmSnapshotsStep,
  ensureRestorePoolsStep,
  markSnapshotReadyStep,
  pauseStep,
  releaseSnapshot,
  removeSnapshotStep,
  restoreCheck,
  restoreOnNodeStep,
  resumeStep,
  snapshotCheck,
  snapshotDeleteCheck,
  snapshotOnNodeStep,
  undoRestore,
  undoSnapshot,
} from "./snapshot_steps.ts";
import type { Plan } from "./plan.ts";
import {
  diskRecordSizeStep,
  diskResizeCheckStep,
  diskResizeOnNodeStep,
  diskResizePoolStep,
  recordSizingStep,
  resizeCheckStep,
  resizeOnNodeStep,
  undoResize,
} from "./resize_steps.ts";
import {
  bootStep,
  confirmRunningStep,
  confirmStoppedStep,
  createOnNodeStep,
  deleteCheck,
  deleteOnNodeStep,
  ensureNetworksStep,
  ensurePoolsStep,
  nodeActionSteps,
  placeStep,
  releaseReservationsStep,
  removeRecordStep,
  startCheck,
  stopCheck,
  stopOnNodeStep,
  undoStart,
} from "./vm_steps.ts";

/** The plan of each job type. */
export const PLANS: Readonly<Record<JobType, Plan>> = {
  vm_start: {
    steps: [
      startCheck,
      placeStep,
      ensureNetworksStep,
      ensurePoolsStep,
      createOnNodeStep,
      bootStep,
      confirmRunningStep,
    ],
    onFailure: undoStart,
    result: (ctx) => ({ host_id: ctx.data.host_id }),
  },
  vm_stop: { steps: [stopCheck("stop"), stopOnNodeStep(false), confirmStoppedStep] },
  vm_force_stop: { steps: [stopCheck("force_stop"), stopOnNodeStep(true), confirmStoppedStep] },
  vm_pause: { steps: nodeActionSteps("pause") },
  vm_resume: { steps: nodeActionSteps("resume") },
  vm_reboot: { steps: nodeActionSteps("reboot") },
  vm_delete: {
    steps: [
      deleteCheck,
      deleteOnNodeStep,
      deleteVmSnapshotsStep,
      removeRecordStep,
      releaseReservationsStep,
    ],
    result: (ctx) => ({
      ...(ctx.data.node_error ? { node_error: ctx.data.node_error } : {}),
      ...(ctx.data.snapshots_deleted ? { snapshots_deleted: ctx.data.snapshots_deleted } : {}),
      ...(ctx.data.snapshot_errors ? { snapshot_errors: ctx.data.snapshot_errors } : {}),
    }),
  },
  vm_snapshot: {
    steps: [snapshotCheck, pauseStep, snapshotOnNodeStep, resumeStep, markSnapshotReadyStep],
    onFailure: undoSnapshot,
    release: releaseSnapshot,
    result: (ctx) => ({
      snapshot_id: ctx.job.params.snapshot_id,
      host_id: ctx.data.host_id,
      path: ctx.data.path,
    }),
  },
  vm_restore: {
    steps: [
      restoreCheck,
      ensureNetworksStep,
      ensureRestorePoolsStep,
      createOnNodeStep,
      restoreOnNodeStep,
      confirmRunningStep,
    ],
    onFailure: undoRestore,
    result: (ctx) => ({ snapshot_id: ctx.job.params.snapshot_id, host_id: ctx.data.host_id }),
  },
  vm_snapshot_delete: {
    steps: [snapshotDeleteCheck, deleteSnapshotFilesStep, removeSnapshotStep],
    result: (ctx) => ({
      snapshot_id: ctx.job.params.snapshot_id,
      host_id: ctx.data.host_id,
      path: ctx.data.path,
      ...(ctx.data.node_error ? { node_error: ctx.data.node_error } : {}),
    }),
  },
  vm_resize: {
    steps: [resizeCheckStep, resizeOnNodeStep, recordSizingStep],
    onFailure: undoResize,
    result: (ctx) => ({ ...(ctx.data.sizing as Record<string, unknown>) }),
  },
  disk_resize: {
    steps: [diskResizeCheckStep, diskResizePoolStep, diskResizeOnNodeStep, diskRecordSizeStep],
    result: (ctx) => ({ host_id: ctx.data.host_id, size_bytes: ctx.job.params.size_bytes }),
  },
  disk_create: {
    steps: [chooseNodeStep, ensurePoolStep, createDiskStep, markReadyStep],
    onFailure: undoDisk,
    release: releaseDisk,
    result: (ctx) => ({ host_id: ctx.data.host_id, bytes: ctx.data.bytes }),
  },
  host_deploy: hostDeployPlan(),
};

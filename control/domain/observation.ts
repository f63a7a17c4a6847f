/**
 * What a node's view of a VM means for the VM's status, pure: the status mapping (a crashed
 * VMM makes the VM `unknown` with the reason; a VM the node no longer knows is `unknown`
 * too), which observations may change a VM (not while a start owns it as `pending`), and the
 * changes a reconciliation makes from one `ListVms` answer.
 */
import { node } from "../../shared/proto/mod.ts";
import type { VmStatus } from "./vm_status.ts";

const S = node.VmStatus;

/** A status and why. */
export interface Observed {
  status: VmStatus;
  reason: string | null;
}

/** The VM status a node status means. */
export function observedStatus(status: node.VmStatus, reason: string): Observed {
  switch (status) {
    case S.VM_STATUS_RUNNING:
      return { status: "running", reason: null };
    case S.VM_STATUS_PAUSED:
      return { status: "paused", reason: null };
    case S.VM_STATUS_SHUTDOWN:
    case S.VM_STATUS_CREATED:
      // Defined on its node and not running (a guest poweroff ends here).
      return { status: "shutdown", reason: reason || null };
    case S.VM_STATUS_CRASHED:
      return { status: "unknown", reason: `VMM crashed${reason ? `: ${reason}` : ""}` };
    default:
      return {
        status: "unknown",
        reason: `its node reports an unknown state${reason ? `: ${reason}` : ""}`,
      };
  }
}

/**
 * Whether an observation may change a VM in `status`: never-provisioned VMs have nothing on a
 * node, and a `pending` VM belongs to the start job that confirms it itself.
 */
export function observable(status: VmStatus): boolean {
  return status !== "created" && status !== "pending" && status !== "migrating";
}

/** A VM of the host as the database has it. */
export interface KnownVm {
  id: string;
  status: VmStatus;
  status_reason: string | null;
  version: number;
  /** A job is working on it (reconciliation leaves it to the job). */
  busy: boolean;
}

/** One change a reconciliation makes. */
export interface Reconciled extends Observed {
  vm_id: string;
  /** Applied only if the row is still at this version. */
  version: number;
}

/** The changes that make `known` agree with the node's `listed` VMs; and the node's strays. */
export function reconcile(
  known: readonly KnownVm[],
  listed: readonly { id: string; status: node.VmStatus; reason: string }[],
  hostName: string,
): { changes: Reconciled[]; unknownToDb: string[] } {
  const byId = new Map(listed.map((v) => [v.id, v]));
  const changes: Reconciled[] = [];
  for (const vm of known) {
    if (vm.busy || !observable(vm.status)) continue;
    const seen = byId.get(vm.id);
    const o = seen
      ? observedStatus(seen.status, seen.reason)
      : { status: "unknown" as const, reason: `its node ${hostName} does not know it` };
    if (o.status !== vm.status || (o.status === "unknown" && o.reason !== vm.status_reason)) {
      changes.push({ vm_id: vm.id, version: vm.version, ...o });
    }
  }
  const ids = new Set(known.map((v) => v.id));
  return { changes, unknownToDb: listed.filter((v) => !ids.has(v.id)).map((v) => v.id) };
}

/**
 * VM status and the one table of which actions are allowed in which status. The API refuses a
 * disallowed action up front (409 naming the current status), and the jobs of the
 * orchestration layer check the same table before each action.
 */
import { FailedPreconditionError } from "../../shared/errors/errors.ts";

/** What a VM is, as last observed (see DESIGN.md "VM status"). */
export const VM_STATUSES = [
  "unknown",
  "created",
  "pending",
  "running",
  "paused",
  "shutdown",
  "migrating",
] as const;
export type VmStatus = typeof VM_STATUSES[number];

/** Everything a user (or a job) can ask of a VM. */
export const VM_ACTIONS = [
  "start",
  "stop",
  "force_stop",
  "pause",
  "resume",
  "reboot",
  "delete",
  /** boot_vcpus, max_vcpus, memory_* */
  "update_sizing",
  /** boot mode/source, cloud-init, placement, hypervisor, architecture, config */
  "update_config",
  /** name, description, tags */
  "update_metadata",
  "attach_disk",
  "detach_disk",
  "add_nic",
  "remove_nic",
  /** a NIC's address, MAC or MTU */
  "update_nic",
  /** take a snapshot (paused around it when running) */
  "snapshot",
  /** bring the VM back from one of its snapshots */
  "restore",
  /** vCPUs/memory: hotplug when running, new boot sizes when stopped */
  "resize",
  /** grow a disk: through the VMM when running or paused, the file otherwise */
  "resize_disk",
] as const;
export type VmAction = typeof VM_ACTIONS[number];

const ALL = VM_STATUSES;
const STOPPED: readonly VmStatus[] = ["created", "shutdown"];

/** Statuses in which each action is allowed. */
export const VM_ACTION_TABLE: Readonly<Record<VmAction, readonly VmStatus[]>> = {
  start: STOPPED,
  stop: ["running", "paused"],
  force_stop: ["running", "paused", "unknown"],
  pause: ["running"],
  resume: ["paused"],
  reboot: ["running"],
  // Deleting stops the VM first when it runs (issue 6); not while it is being started/moved.
  delete: ["unknown", "created", "running", "paused", "shutdown"],
  update_sizing: STOPPED,
  update_config: STOPPED,
  update_metadata: ALL,
  attach_disk: STOPPED,
  detach_disk: STOPPED,
  add_nic: STOPPED,
  remove_nic: STOPPED,
  update_nic: STOPPED,
  snapshot: ["running", "paused"],
  restore: STOPPED,
  resize: ["created", "running", "shutdown"],
  resize_disk: ["created", "running", "paused", "shutdown"],
};

/** Statuses in which a VM holds CPU and memory on its host (the capacity ledger counts them). */
export const HOLDS_RESOURCES: readonly VmStatus[] = [
  "pending",
  "running",
  "paused",
  "migrating",
  "unknown",
];

/** True when `action` is allowed in `status`. */
export function canDo(status: VmStatus, action: VmAction): boolean {
  return VM_ACTION_TABLE[action].includes(status);
}

/** The actions allowed in `status`. */
export function allowedActions(status: VmStatus): VmAction[] {
  return VM_ACTIONS.filter((a) => canDo(status, a));
}

/** Throws a FailedPreconditionError (409) naming the VM's current status when not allowed. */
export function assertVmAction(vm: { id: string; status: VmStatus }, action: VmAction): void {
  if (canDo(vm.status, action)) return;
  const allowed = VM_ACTION_TABLE[action].join(", ");
  throw new FailedPreconditionError(
    `cannot ${
      action.replaceAll("_", " ")
    } vm ${vm.id}: it is ${vm.status} (allowed when ${allowed})`,
    { details: [{ field: "status", message: `is ${vm.status}`, current_status: vm.status }] },
  );
}

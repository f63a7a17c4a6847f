/**
 * The node's view of a VM's status and the pure rules that move it: what CH's `vm.info` state
 * means, what each event-monitor event implies, and how a VMM exit is classified. CH itself
 * reports `Created` both before the first boot and after a shutdown; the node says `created`
 * for a VM that never ran and `shutdown` for one that ran and stopped (what the control plane
 * stores), and `crashed` when the VMM process died without the node ending it.
 */
import type { VmmEvent, VmState } from "../vmm/types.ts";

export const VM_STATUSES = [
  "unknown",
  "created",
  "running",
  "paused",
  "shutdown",
  "crashed",
] as const;
export type VmStatusName = typeof VM_STATUSES[number];

/** The status for CH's `vm.info` state; `booted` says whether the VM ever ran. */
export function statusFromChState(state: VmState, booted: boolean): VmStatusName {
  switch (state) {
    case "Running":
    case "BreakPoint":
      return "running";
    case "Paused":
      return "paused";
    case "Shutdown":
      return "shutdown";
    case "Created":
      return booted ? "shutdown" : "created";
  }
}

/** The status an event-monitor event implies, or undefined when it does not change it. */
export function statusAfterEvent(event: VmmEvent): VmStatusName | undefined {
  if (event.source !== "vm") return undefined;
  switch (event.event) {
    case "booted":
    case "resumed":
    case "rebooted":
      return "running";
    case "paused":
    case "restored":
      return "paused";
    case "shutdown":
      return "shutdown";
    default:
      return undefined;
  }
}

/** True for statuses in which the guest is not running (and StopVM has nothing to do). */
export function isStopped(status: VmStatusName): boolean {
  return status === "created" || status === "shutdown" || status === "crashed";
}

/** Status of a VM whose VMM is gone: stopped on purpose, or crashed. */
export function statusWithoutVmm(expected: boolean, booted: boolean): VmStatusName {
  if (!expected) return "crashed";
  return booted ? "shutdown" : "created";
}

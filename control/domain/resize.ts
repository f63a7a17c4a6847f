/**
 * The rules of resizing a VM (vCPUs, memory) and growing one of its disks, pure. A running VM
 * is resized by hotplug, so CH's rules apply: vCPUs from 1 to `max_vcpus`; memory only grows
 * (ACPI hotplug cannot give memory back before a reboot), in steps of 128 MiB, up to the
 * ceiling `memory_size + memory_hotplug_size`. The new sizes are recorded with that ceiling
 * kept (`memory_hotplug_size` shrinks by what was plugged), so the next start boots with the
 * same total and the same room left. A stopped VM just gets new boot sizes (any whole MiB of
 * at least 128 MiB), applied at its next start. While a running VM's resize is under way its
 * record holds the larger of the old and new sizes (`reservedSizing`), so the capacity ledger
 * never counts less than the host may be using at any moment of the change.
 */
import { InvalidArgumentError } from "../../shared/errors/errors.ts";

const MiB = 1024 ** 2;

/** Smallest memory a VM may be resized to. */
export const MIN_RESIZE_RAM = 128 * MiB;
/** Memory hotplug granularity of Cloud Hypervisor. */
export const RAM_HOTPLUG_STEP = 128 * MiB;
/** Disk sizes are whole MiB. */
export const DISK_SIZE_STEP = MiB;

/** What is asked. */
export interface ResizeRequest {
  desired_vcpus?: number;
  desired_ram?: number;
}

/** The VM's sizing fields. */
export interface VmSizing {
  boot_vcpus: number;
  max_vcpus: number;
  memory_size: number;
  memory_hotplug_size: number | null;
}

/** The sizing fields to record once the resize is done. */
export type NewSizing = Pick<VmSizing, "boot_vcpus" | "memory_size" | "memory_hotplug_size">;

/**
 * Checks a resize against the VM's sizing (`running`: hotplug rules) and returns the fields to
 * record; throws a 422 naming the field otherwise.
 */
export function resizedSizing(vm: VmSizing, req: ResizeRequest, running: boolean): NewSizing {
  const { desired_vcpus: vcpus, desired_ram: ram } = req;
  if (vcpus === undefined && ram === undefined) {
    throw InvalidArgumentError.field("desired_vcpus", "give desired_vcpus or desired_ram");
  }
  if (vcpus !== undefined && (vcpus < 1 || vcpus > vm.max_vcpus)) {
    throw InvalidArgumentError.field(
      "desired_vcpus",
      `must be from 1 to max_vcpus (${vm.max_vcpus})`,
    );
  }
  const out: NewSizing = {
    boot_vcpus: vcpus ?? vm.boot_vcpus,
    memory_size: vm.memory_size,
    memory_hotplug_size: vm.memory_hotplug_size,
  };
  if (ram === undefined || ram === vm.memory_size) return out;
  if (ram < MIN_RESIZE_RAM || ram % MiB) {
    throw InvalidArgumentError.field(
      "desired_ram",
      `must be a whole number of MiB, at least ${MIN_RESIZE_RAM / MiB} MiB`,
    );
  }
  if (!running) return { ...out, memory_size: ram };
  const hotplug = vm.memory_hotplug_size ?? 0;
  const ceiling = vm.memory_size + hotplug;
  if (ram < vm.memory_size) {
    throw InvalidArgumentError.field(
      "desired_ram",
      `a running vm's memory cannot shrink (it has ${vm.memory_size} bytes); stop it first`,
    );
  }
  if (hotplug === 0) {
    throw InvalidArgumentError.field(
      "desired_ram",
      "the vm has no memory_hotplug_size, so its memory cannot grow while it runs; stop it first",
    );
  }
  if (ram > ceiling) {
    throw InvalidArgumentError.field(
      "desired_ram",
      `must be at most memory_size + memory_hotplug_size (${ceiling} bytes)`,
    );
  }
  if ((ram - vm.memory_size) % RAM_HOTPLUG_STEP) {
    throw InvalidArgumentError.field(
      "desired_ram",
      `must grow the memory (${vm.memory_size} bytes) by a multiple of 128 MiB (134217728)`,
    );
  }
  return { ...out, memory_size: ram, memory_hotplug_size: ceiling - ram };
}

/** The sizing fields of a VM row. */
export function sizingOf(vm: NewSizing): NewSizing {
  return {
    boot_vcpus: vm.boot_vcpus,
    memory_size: vm.memory_size,
    memory_hotplug_size: vm.memory_hotplug_size,
  };
}

/** Whether two sizings are the same. */
export function sameSizing(a: NewSizing, b: NewSizing): boolean {
  return a.boot_vcpus === b.boot_vcpus && a.memory_size === b.memory_size &&
    (a.memory_hotplug_size ?? null) === (b.memory_hotplug_size ?? null);
}

/**
 * What a running VM's record holds while it is resized from `before` to `after`: the larger
 * vCPU count (vCPUs given back are only free once the node has unplugged them) and the new
 * memory (a running VM's memory only grows).
 */
export function reservedSizing(before: NewSizing, after: NewSizing): NewSizing {
  const memory = after.memory_size >= before.memory_size ? after : before;
  return {
    boot_vcpus: Math.max(before.boot_vcpus, after.boot_vcpus),
    memory_size: memory.memory_size,
    memory_hotplug_size: memory.memory_hotplug_size,
  };
}

/** Checks a disk's new size against its current one (grow only, whole MiB); 422 otherwise. */
export function checkDiskGrowth(current: number | null, size: number): void {
  if (size % DISK_SIZE_STEP) {
    throw InvalidArgumentError.field("size_bytes", "must be a multiple of 1 MiB (1048576)");
  }
  if (current !== null && size <= current) {
    throw InvalidArgumentError.field(
      "size_bytes",
      size === current
        ? `the disk is already ${current} bytes`
        : `must be larger than the disk (${current} bytes); shrinking is not supported`,
    );
  }
}

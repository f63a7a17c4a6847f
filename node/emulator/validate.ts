/**
 * CH's `VmConfig::validate`, run at `vm.boot` and on every `vm.add-*` (never at
 * `vm.create`): the checks a management agent can trip, with CH's messages. Duplicate ids and
 * paths are 409, everything else 400; the chain below "Failed to validate config" is returned.
 */
import type { VmConfig } from "../vmm/types.ts";

/** A failed validation: HTTP status and the causes under "Failed to validate config". */
export interface ValidationProblem {
  status: 400 | 409;
  causes: string[];
}

const invalid = (...causes: string[]): ValidationProblem => ({ status: 400, causes });
const duplicate = (cause: string): ValidationProblem => ({ status: 409, causes: [cause] });

/** Device lists that carry user-chosen ids, in CH's device creation order. */
export const ID_LISTS = [
  "disks",
  "net",
  "fs",
  "pmem",
  "vdpa",
  "devices",
  "user_devices",
  "generic_vhost_user",
] as const;

/** Every explicitly set device id in the config. */
export function explicitIds(c: VmConfig): string[] {
  const ids: string[] = [];
  for (const list of ID_LISTS) {
    for (const d of (c[list] ?? []) as { id?: string }[]) if (d.id) ids.push(d.id);
  }
  if (c.vsock?.id) ids.push(c.vsock.id);
  if (c.balloon?.id) ids.push(c.balloon.id);
  return ids;
}

/** Returns the first problem CH would report for this config, or null if it is valid. */
export function validateVmConfig(c: VmConfig): ValidationProblem | null {
  const payload = c.payload;
  if (!payload || !(payload.kernel || payload.firmware || payload.igvm)) {
    return invalid(
      "Payload configuration is not bootable",
      "No bootitem provided: neither firmware nor kernel",
    );
  }
  if (payload.firmware && (payload.kernel || payload.initramfs || payload.cmdline)) {
    return invalid(
      "Payload configuration is not bootable",
      "Specifying a kernel is not supported when a firmware is provided",
    );
  }
  for (const con of [c.serial, c.console]) {
    if (con?.mode === "File" && !con.file) {
      return invalid("Path missing when using file console mode");
    }
    if (con?.mode === "Socket" && !con.socket) {
      return invalid("Path missing when using socket console mode");
    }
  }
  if (c.console?.mode === "Socket") {
    return invalid("Socket mode is not supported for the virtio console");
  }
  const cpus = c.cpus!;
  if (cpus.max_vcpus < cpus.boot_vcpus) return invalid("Max CPUs lower than boot CPUs");
  if (cpus.boot_vcpus === 0) return invalid("Max CPUs lower than boot CPUs");
  const mem = c.memory!;
  if (mem.hugepage_size !== undefined && !mem.hugepages) {
    return invalid("Huge page size specified but huge pages not enabled");
  }
  const sharedMemory = mem.shared === true || mem.hugepages === true;
  for (const d of c.disks ?? []) {
    if (d.path && d.vhost_socket) return invalid("Disk path and vhost socket both provided");
    if (d.vhost_user && !sharedMemory) {
      return invalid("Using vhost-user requires using shared memory or huge pages");
    }
    if (d.vhost_user && !d.vhost_socket) return invalid("No socket provided when using vhost-user");
    if ((d.num_queues ?? 1) > cpus.boot_vcpus) {
      return invalid("Number of vCPUs is insufficient for number of queues");
    }
    if ((d.queue_size ?? 128) < 2) return invalid(`Queue size is smaller than 2: ${d.queue_size}`);
    if (d.serial !== undefined && d.serial.length > 20) {
      return invalid(
        `Block device serial length (${d.serial.length}) exceeds maximum allowed length (20)`,
      );
    }
    if (
      d.rate_limit_group !== undefined &&
      !(c.rate_limit_groups ?? []).some((g) => g.id === d.rate_limit_group)
    ) {
      return invalid("Invalid rate-limiter group");
    }
  }
  for (const n of c.net ?? []) {
    const queues = n.num_queues ?? 2;
    if (queues < 2) return invalid("Number of queues to virtio_net less than 2");
    if (queues / 2 > cpus.boot_vcpus) {
      return invalid("Number of vCPUs is insufficient for number of queues");
    }
    if (n.vhost_user && !sharedMemory) {
      return invalid("Using vhost-user requires using shared memory or huge pages");
    }
    if (n.vhost_user && !n.vhost_socket) return invalid("No socket provided when using vhost-user");
    if ((n.ip === undefined) !== (n.mask === undefined)) {
      return invalid("Both an IP address and a netmask are needed to configure the tap");
    }
    if (n.mtu !== undefined && n.mtu < 1280) {
      return invalid(`Provided MTU ${n.mtu} is lower than 1280 (expected by VIRTIO specification)`);
    }
    if ((n.offload_tso || n.offload_ufo) && n.offload_csum === false) {
      return invalid('"offload_tso" and "offload_ufo" depend on "offload_csum"');
    }
  }
  if ((c.fs ?? []).length > 0 && !sharedMemory) {
    return invalid("Using vhost-user requires using shared memory or huge pages");
  }
  if ((c.user_devices ?? []).length > 0 && !sharedMemory) {
    return invalid("Using user devices requires using shared memory or huge pages");
  }
  if (c.balloon && c.balloon.size >= totalRam(c)) {
    return invalid(`Ballon size (${c.balloon.size}) greater than RAM (${totalRam(c)})`);
  }
  if (c.vsock && c.vsock.cid < 3) return invalid(`${c.vsock.cid} is a special VSOCK CID`);
  const seen = new Set<string>();
  for (const id of explicitIds(c)) {
    if (id.startsWith("__")) return invalid(`Identifier ${id} is not invalid`);
    if (seen.has(id)) return duplicate(`Identifier ${id} is not unique`);
    seen.add(id);
  }
  const paths = new Set<string>();
  for (const p of [...(c.disks ?? []).map((d) => d.path), ...(c.pmem ?? []).map((p) => p.file)]) {
    if (!p) continue;
    if (paths.has(p)) return duplicate(`Duplicated device path: ${p}`);
    paths.add(p);
  }
  return null;
}

/** Boot RAM: base size plus memory zones. */
export function totalRam(c: VmConfig): number {
  return (c.memory?.size ?? 0) + (c.memory?.zones ?? []).reduce((a, z) => a + z.size, 0);
}

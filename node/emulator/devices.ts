/**
 * The emulated VM's device model: generated device ids (one counter shared by all device
 * types, `_disk0`, `_disk1`, `_net2`...), PCI slot allocation on segment 0 (slot 0 is the host
 * bridge; devices take slots in CH's creation order, hot-plugs the lowest free one), the
 * `device_tree` shown by `vm.info`, and plausible per-device counters.
 */
import type { DeviceNode, VmConfig, VmCounters } from "../vmm/types.ts";

/** Device lists with generated ids, CH's creation order, and their id prefixes. */
export const DEVICE_LISTS = [
  { list: "disks", prefix: "_disk" },
  { list: "net", prefix: "_net" },
  { list: "fs", prefix: "_fs" },
  { list: "generic_vhost_user", prefix: "_generic_vhost_user" },
  { list: "pmem", prefix: "_pmem" },
  { list: "vdpa", prefix: "_vdpa" },
  { list: "devices", prefix: "_vfio" },
  { list: "user_devices", prefix: "_vfio_user" },
] as const;

export type DeviceList = typeof DEVICE_LISTS[number]["list"];

/** Where a device lives in the config. */
export type DeviceRef =
  | { list: DeviceList; index: number }
  | { list: "vsock" };

/** Hands out `<prefix><n>` names from one counter, skipping names already taken. */
export class IdAllocator {
  #next = 0;

  /** The next free generated id with this prefix. */
  next(prefix: string, taken: Set<string>): string {
    for (;;) {
      const id = `${prefix}${this.#next++}`;
      if (!taken.has(id)) return id;
    }
  }
}

/** Every device id currently in the config (explicit or generated). */
export function configIds(c: VmConfig): Set<string> {
  const ids = new Set<string>();
  for (const { list } of DEVICE_LISTS) {
    for (const d of (c[list] ?? []) as { id?: string }[]) if (d.id) ids.add(d.id);
  }
  if (c.vsock?.id) ids.add(c.vsock.id);
  return ids;
}

/**
 * Gives every device without an id a generated one, in CH's creation order (disks, nets,
 * fs, ..., vsock between pmem and vdpa), writing it back into the config.
 */
export function assignIds(c: VmConfig, alloc: IdAllocator): void {
  const taken = configIds(c);
  const give = (d: { id?: string }, prefix: string) => {
    if (d.id) return;
    d.id = alloc.next(prefix, taken);
    taken.add(d.id);
  };
  for (const { list, prefix } of DEVICE_LISTS) {
    if (list === "vdpa" && c.vsock) give(c.vsock, "_vsock");
    for (const d of (c[list] ?? []) as { id?: string }[]) give(d, prefix);
  }
}

/** One PCI function the guest sees. */
export interface PciDevice {
  id: string;
  slot: number;
  barBase: number;
}

const MMIO64_BASE = 0x80_0000_0000;
const BAR_SIZE = 0x8_0000;

/** PCI segment 0: 32 slots, slot 0 = host bridge. */
export class PciBus {
  readonly #bySlot = new Map<number, PciDevice>();
  #nextBar = MMIO64_BASE;

  /** Places `id` in the lowest free slot; returns its BDF. */
  attach(id: string): string {
    for (let slot = 1; slot < 32; slot++) {
      if (this.#bySlot.has(slot)) continue;
      this.#bySlot.set(slot, { id, slot, barBase: this.#nextBar });
      this.#nextBar += BAR_SIZE;
      return bdf(slot);
    }
    throw new Error("No more PCI slots available on segment 0");
  }

  /** Frees the slot of `id`; returns its BDF, or null if it had none. */
  detach(id: string): string | null {
    for (const [slot, d] of this.#bySlot) {
      if (d.id === id) {
        this.#bySlot.delete(slot);
        return bdf(slot);
      }
    }
    return null;
  }

  /** The BDF of `id`, if attached. */
  bdfOf(id: string): string | null {
    for (const d of this.#bySlot.values()) if (d.id === id) return bdf(d.slot);
    return null;
  }

  /** Attached devices in slot order. */
  devices(): PciDevice[] {
    return [...this.#bySlot.values()].sort((a, b) => a.slot - b.slot);
  }
}

/** `0000:00:<slot>.0`. */
export function bdf(slot: number): string {
  return `0000:00:${slot.toString(16).padStart(2, "0")}.0`;
}

/** The PCI devices a booted config has, in CH's creation order (reserved ids included). */
export function bootDeviceOrder(c: VmConfig): string[] {
  const ids: string[] = [];
  if (c.console && c.console.mode !== "Off") ids.push("__console");
  for (const d of c.disks ?? []) ids.push(d.id!);
  for (const d of c.net ?? []) ids.push(d.id!);
  ids.push("__rng");
  if (c.balloon) ids.push("__balloon");
  if (c.watchdog) ids.push("__watchdog");
  for (const d of c.fs ?? []) ids.push(d.id!);
  for (const d of c.generic_vhost_user ?? []) ids.push(d.id!);
  for (const d of c.pmem ?? []) ids.push(d.id!);
  if (c.vsock) ids.push(c.vsock.id!);
  for (const d of c.vdpa ?? []) ids.push(d.id!);
  if (c.pvpanic) ids.push("__pvpanic");
  for (const d of c.devices ?? []) ids.push(d.id!);
  for (const d of c.user_devices ?? []) ids.push(d.id!);
  return ids;
}

/** The `device_tree` of `vm.info`: a transport node per PCI device, the device as its child. */
export function deviceTree(c: VmConfig, bus: PciBus): Record<string, DeviceNode> {
  const tree: Record<string, DeviceNode> = {};
  if (c.serial && c.serial.mode !== "Off") {
    tree["__serial"] = {
      id: "__serial",
      resources: [{ PioAddressRange: { base: 0x3f8, size: 8 } }],
      parent: null,
      children: [],
      pci_bdf: null,
    };
  }
  for (const d of bus.devices()) {
    const virtio = !(c.devices ?? []).some((v) => v.id === d.id) &&
      !(c.user_devices ?? []).some((v) => v.id === d.id) && d.id !== "__pvpanic";
    const transport = virtio ? `_virtio-pci-${d.id}` : d.id;
    tree[transport] = {
      id: transport,
      resources: [{
        PciBar: { index: 0, base: d.barBase, size: BAR_SIZE, type_: "Mmio64", prefetchable: false },
      }],
      parent: null,
      children: virtio ? [d.id] : [],
      pci_bdf: bdf(d.slot),
    };
    if (virtio) {
      tree[d.id] = { id: d.id, resources: [], parent: transport, children: [], pci_bdf: null };
    }
  }
  return tree;
}

/** Block and net counters after `runningMs` of guest run time (monotonic in it). */
export function deviceCounters(c: VmConfig, runningMs: number): VmCounters {
  const t = runningMs / 1000;
  const out: VmCounters = {};
  for (const d of c.disks ?? []) {
    if (!d.id) continue;
    const readOps = Math.floor(180 + t * 12);
    const writeOps = d.readonly ? 0 : Math.floor(t * 5);
    out[d.id] = {
      read_bytes: readOps * 4096 + 512 * 1024,
      write_bytes: writeOps * 4096,
      read_ops: readOps,
      write_ops: writeOps,
      read_latency_min: 12,
      read_latency_max: 4120,
      read_latency_avg: 95,
      write_latency_min: writeOps ? 18 : 0,
      write_latency_max: writeOps ? 5230 : 0,
      write_latency_avg: writeOps ? 140 : 0,
    };
  }
  for (const n of c.net ?? []) {
    if (!n.id) continue;
    const rxFrames = Math.floor(3 + t * 4);
    const txFrames = Math.floor(5 + t * 3);
    out[n.id] = {
      rx_bytes: rxFrames * 342,
      rx_frames: rxFrames,
      tx_bytes: txFrames * 298,
      tx_frames: txFrames,
    };
  }
  return out;
}

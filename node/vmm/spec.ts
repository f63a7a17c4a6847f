/**
 * Our VM spec (`node.VmConfig`) and its translation to Cloud Hypervisor's `VmConfig` JSON. Pure:
 * `normalizeVmConfig` validates a request (every name, id, path and number, each error naming
 * its field) and returns the canonical spec the node stores; `buildChConfig` turns a spec plus
 * what the host provided for it (resolved paths, detected image types, tap names, the VM's own
 * files) into the body of `vm.create`. Knobs upstream stored but never sent (CPU topology,
 * kvm_hyperv, mergeable, hugepage size, prefault, THP, rate limiters, offloads) are all sent.
 */
import { createHash } from "node:crypto";
import { InvalidArgumentError, UnimplementedError } from "../../shared/errors/errors.ts";
import { isUnicastMac, localMac, normalizeMac } from "../../shared/net/ip.ts";
import {
  absolutePath,
  deviceId,
  interfaceName,
  vmId as checkVmId,
} from "../../shared/net/names.ts";
import { node } from "../../shared/proto/mod.ts";
import { macvtapName, nicDeviceIndex, tapName, tapQueues } from "../net/tap.ts";
import type * as ch from "./types.ts";

/** A validated, canonical VM spec (see `normalizeVmConfig`). */
export type VmSpec = node.VmConfig.$Properties;
export type DiskSpec = node.DiskConfig.$Properties;
export type NicSpec = node.NetConfig.$Properties;

/** Id of the cloud-init seed disk the node appends; no user disk may take it. */
export const SEED_DISK_ID = "cidata";
export const DEFAULT_MEMORY_BYTES = 512 * 1024 * 1024;
/** Entropy sources a VM may read (devices, not pool files). */
export const RNG_SOURCES = ["/dev/urandom", "/dev/random", "/dev/hwrng"] as const;
export const MAX_VCPUS = 4096;
const MAX_CMDLINE = 4096;
const IMAGE_TYPES = ["raw", "qcow2"] as const;
export type ImageTypeName = typeof IMAGE_TYPES[number];

/** The NIC types the node knows. */
const TYPES: Record<number, string> = {
  [node.NetworkType.NETWORK_TYPE_BRIDGE]: "bridge",
  [node.NetworkType.NETWORK_TYPE_VLAN]: "vlan",
  [node.NetworkType.NETWORK_TYPE_MACVTAP]: "macvtap",
};

const MODES: Record<number, ch.ConsoleMode> = {
  [node.ConsoleMode.CONSOLE_MODE_OFF]: "Off",
  [node.ConsoleMode.CONSOLE_MODE_PTY]: "Pty",
  [node.ConsoleMode.CONSOLE_MODE_TTY]: "Tty",
  [node.ConsoleMode.CONSOLE_MODE_FILE]: "File",
  [node.ConsoleMode.CONSOLE_MODE_SOCKET]: "Socket",
  [node.ConsoleMode.CONSOLE_MODE_NULL]: "Null",
};

/** Drops keys whose value is undefined or null (proto "not set"), keeping key order. */
function compact<T extends Record<string, unknown>>(o: T): T {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined && v !== null) out[k] = v;
  return out as T;
}

function opt<T>(v: T | null | undefined): T | undefined {
  return v === null || v === undefined ? undefined : v;
}

function int(
  v: number | null | undefined,
  field: string,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number | undefined {
  if (v === null || v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw InvalidArgumentError.field(field, `must be an integer from ${min} to ${max}, got ${v}`);
  }
  return n;
}

function text(v: string | null | undefined, field: string, max: number): string | undefined {
  if (v === null || v === undefined || v === "") return undefined;
  if (v.length > max) throw InvalidArgumentError.field(field, `longer than ${max} characters`);
  // deno-lint-ignore no-control-regex
  if (/[\x00-\x1f\x7f]/.test(v)) {
    throw InvalidArgumentError.field(field, "must not contain control characters");
  }
  return v;
}

function path(v: string | null | undefined, field: string): string | undefined {
  if (v === null || v === undefined || v === "") return undefined;
  absolutePath(v, field);
  if (v.endsWith("/")) throw InvalidArgumentError.field(field, `${v} names a directory`);
  return v;
}

/** The guest MAC the node gives a NIC without one: stable per VM and NIC id. */
export function nicMac(vmId: string, nicId: string): string {
  const digest = createHash("sha256").update(`${vmId}/${nicId}`).digest();
  return localMac(new Uint8Array(digest.subarray(0, 5)));
}

/** The NIC index encoded in a node-managed tap or macvtap name (`qt<tag>n<i>`, `qm<tag>n<i>`). */
export function tapIndex(tap: string): number | undefined {
  return nicDeviceIndex(tap);
}

/** True for a NIC on a macvtap network (its queues reach CH as descriptors, not by name). */
export function isMacvtapNic(n: NicSpec): boolean {
  return n.type === node.NetworkType.NETWORK_TYPE_MACVTAP;
}

/** True when the node made the NIC's host device (a tap on a bridge, or a macvtap). */
export function hasManagedDevice(n: NicSpec): boolean {
  return !!n.tap && (!!n.bridge || isMacvtapNic(n)) && tapIndex(n.tap) !== undefined;
}

function tokenBucket(
  b: node.TokenBucket.$Properties | null | undefined,
  field: string,
): node.TokenBucket.$Properties | undefined {
  if (!b) return undefined;
  return compact({
    size: int(b.size ?? 0, `${field}.size`, 0),
    refillTime: int(b.refillTime ?? 0, `${field}.refill_time`, 0),
    oneTimeBurst: int(b.oneTimeBurst, `${field}.one_time_burst`, 0),
  });
}

function rateLimiter(
  r: node.RateLimiterConfig.$Properties | null | undefined,
  field: string,
): node.RateLimiterConfig.$Properties | undefined {
  if (!r) return undefined;
  const out = compact({
    bandwidth: tokenBucket(r.bandwidth, `${field}.bandwidth`),
    ops: tokenBucket(r.ops, `${field}.ops`),
  });
  return Object.keys(out).length ? out : undefined;
}

function imageType(v: string | null | undefined, field: string): string | undefined {
  if (!v) return undefined;
  const t = v.toLowerCase();
  if (!(IMAGE_TYPES as readonly string[]).includes(t)) {
    throw InvalidArgumentError.field(field, `must be raw or qcow2, got ${v}`);
  }
  return t;
}

/** Validates one disk (at position `index`, for messages and its default id). */
export function normalizeDisk(d: DiskSpec, index: number, field = `disks.${index}`): DiskSpec {
  const id = deviceId(d.id || `disk${index}`, `${field}.id`);
  const vhostUser = opt(d.vhostUser);
  const diskPath = path(d.path, `${field}.path`);
  const vhostSocket = path(d.vhostSocket, `${field}.vhost_socket`);
  if (vhostUser) {
    if (!vhostSocket) throw InvalidArgumentError.field(`${field}.vhost_socket`, "required");
    if (diskPath) {
      throw InvalidArgumentError.field(`${field}.path`, "a vhost-user disk has no path");
    }
  } else {
    if (!diskPath) throw InvalidArgumentError.field(`${field}.path`, "required");
    if (vhostSocket) {
      throw InvalidArgumentError.field(`${field}.vhost_socket`, "only for vhost-user disks");
    }
  }
  const queueSize = int(d.queueSize, `${field}.queue_size`, 2, 32768);
  if (queueSize !== undefined && (queueSize & (queueSize - 1)) !== 0) {
    throw InvalidArgumentError.field(`${field}.queue_size`, `must be a power of two`);
  }
  return compact({
    id,
    path: diskPath,
    readonly: opt(d.readonly),
    direct: opt(d.direct),
    vhostUser,
    vhostSocket,
    numQueues: int(d.numQueues, `${field}.num_queues`, 1, 64),
    queueSize,
    rateLimiter: rateLimiter(d.rateLimiter, `${field}.rate_limiter`),
    rateLimitGroup: d.rateLimitGroup
      ? deviceId(d.rateLimitGroup, `${field}.rate_limit_group`)
      : undefined,
    pciSegment: int(d.pciSegment, `${field}.pci_segment`, 0, 15),
    serial: text(d.serial, `${field}.serial`, 20),
    imageType: imageType(d.imageType, `${field}.image_type`),
  });
}

/**
 * Validates one NIC at tap index `index`. A NIC on a `bridge` gets a node-managed tap whose
 * name is derived from the VM and the index (a `tap` sent back must be that name); a `macvtap`
 * NIC names its `parent_interface` and gets a node-managed macvtap device (`qm…`) there; a NIC
 * with only `tap` uses that existing interface as is; vhost-user NICs have neither. NICs
 * without a MAC get a stable one, so the guest (and cloud-init's network-config) always know it.
 */
export function normalizeNic(
  vmId: string,
  n: NicSpec,
  index: number,
  field = `networks.${index}`,
): NicSpec {
  const id = deviceId(n.id || `net${index}`, `${field}.id`);
  const type = n.type ?? node.NetworkType.NETWORK_TYPE_BRIDGE;
  if (!(type in TYPES)) {
    throw InvalidArgumentError.field(`${field}.type`, `unknown network type ${type}`);
  }
  const vhostUser = opt(n.vhostUser);
  const bridge = n.bridge ? interfaceName(n.bridge, `${field}.bridge`) : undefined;
  let tap = n.tap ? interfaceName(n.tap, `${field}.tap`) : undefined;
  const parentInterface = n.parentInterface
    ? interfaceName(n.parentInterface, `${field}.parent_interface`)
    : undefined;
  if (type === node.NetworkType.NETWORK_TYPE_MACVTAP) {
    if (!parentInterface) {
      throw InvalidArgumentError.field(`${field}.parent_interface`, "a macvtap NIC needs one");
    }
    if (bridge || vhostUser) {
      throw InvalidArgumentError.field(
        `${field}.${bridge ? "bridge" : "vhost_user"}`,
        "a macvtap NIC sits on its parent_interface, not on a bridge or a vhost-user backend",
      );
    }
    if (n.ip || n.mask || n.hostMac) {
      throw InvalidArgumentError.field(
        `${field}.${n.hostMac ? "host_mac" : "ip"}`,
        "a macvtap NIC has no host-side tap to configure",
      );
    }
    const managed = macvtapName(vmId, index);
    if (tap && tap !== managed) {
      throw InvalidArgumentError.field(
        `${field}.tap`,
        `the node names the macvtap devices it creates (${managed}); leave tap empty`,
      );
    }
    tap = managed;
  } else if (vhostUser) {
    if (bridge || tap) {
      throw InvalidArgumentError.field(`${field}.vhost_user`, "a vhost-user NIC has no tap");
    }
    if (!n.vhostSocket) throw InvalidArgumentError.field(`${field}.vhost_socket`, "required");
  } else if (bridge) {
    const managed = tapName(vmId, index);
    if (tap && tap !== managed) {
      throw InvalidArgumentError.field(
        `${field}.tap`,
        `the node names the taps it creates on a bridge (${managed}); send either bridge or tap`,
      );
    }
    tap = managed;
  } else if (!tap) {
    throw InvalidArgumentError.field(
      `${field}.bridge`,
      "required (or tap, naming an existing interface)",
    );
  }
  let mac: string;
  try {
    mac = n.mac ? normalizeMac(n.mac) : nicMac(vmId, id);
  } catch (err) {
    throw InvalidArgumentError.field(`${field}.mac`, (err as Error).message);
  }
  if (!isUnicastMac(mac)) throw InvalidArgumentError.field(`${field}.mac`, "must be unicast");
  let hostMac: string | undefined;
  try {
    hostMac = n.hostMac ? normalizeMac(n.hostMac) : undefined;
  } catch (err) {
    throw InvalidArgumentError.field(`${field}.host_mac`, (err as Error).message);
  }
  const numQueues = int(n.numQueues, `${field}.num_queues`, 2, 256);
  if (numQueues !== undefined) {
    try {
      tapQueues(numQueues);
    } catch (err) {
      throw InvalidArgumentError.field(`${field}.num_queues`, (err as Error).message);
    }
  }
  if ((n.ip && !n.mask) || (!n.ip && n.mask)) {
    throw InvalidArgumentError.field(`${field}.ip`, "ip and mask go together");
  }
  return compact({
    id,
    tap,
    ip: text(n.ip, `${field}.ip`, 15),
    mask: text(n.mask, `${field}.mask`, 15),
    mac,
    hostMac,
    mtu: int(n.mtu, `${field}.mtu`, 1280, 65535),
    vhostUser,
    vhostSocket: path(n.vhostSocket, `${field}.vhost_socket`),
    vhostMode: opt(n.vhostMode),
    numQueues,
    queueSize: int(n.queueSize, `${field}.queue_size`, 2, 32768),
    rateLimiter: rateLimiter(n.rateLimiter, `${field}.rate_limiter`),
    offloadTso: opt(n.offloadTso),
    offloadUfo: opt(n.offloadUfo),
    offloadCsum: opt(n.offloadCsum),
    pciSegment: int(n.pciSegment, `${field}.pci_segment`, 0, 15),
    iommu: opt(n.iommu),
    bridge,
    guestIp: text(n.guestIp, `${field}.guest_ip`, 18),
    guestGateway: text(n.guestGateway, `${field}.guest_gateway`, 15),
    guestDns: (n.guestDns ?? []).length
      ? (n.guestDns ?? []).map((d, i) => text(d, `${field}.guest_dns.${i}`, 15) ?? "")
      : undefined,
    type: type === node.NetworkType.NETWORK_TYPE_BRIDGE ? undefined : type,
    parentInterface,
  });
}

function consoleSpec(
  c: node.ConsoleConfig.$Properties | null | undefined,
  field: string,
  allowSocket: boolean,
): node.ConsoleConfig.$Properties | undefined {
  if (!c) return undefined;
  const mode = c.mode ?? node.ConsoleMode.CONSOLE_MODE_OFF;
  if (!(mode in MODES)) throw InvalidArgumentError.field(`${field}.mode`, `unknown mode ${mode}`);
  if (mode === node.ConsoleMode.CONSOLE_MODE_TTY) {
    throw InvalidArgumentError.field(
      `${field}.mode`,
      "TTY is not available: the VMM has no terminal",
    );
  }
  if (mode === node.ConsoleMode.CONSOLE_MODE_SOCKET && !allowSocket) {
    throw InvalidArgumentError.field(
      `${field}.mode`,
      "SOCKET is only supported for the serial port",
    );
  }
  if (c.file || c.socket) {
    throw InvalidArgumentError.field(
      c.file ? `${field}.file` : `${field}.socket`,
      "the node places console files and sockets in the VM's runtime directory; leave it empty",
    );
  }
  return compact({ mode, iommu: opt(c.iommu) });
}

function unique(ids: string[], field: string): void {
  const seen = new Set<string>();
  ids.forEach((id, i) => {
    if (seen.has(id)) throw InvalidArgumentError.field(`${field}.${i}.id`, `duplicate id ${id}`);
    seen.add(id);
  });
}

/**
 * Validates a CreateVM request and returns the canonical spec: defaults made explicit (1 vCPU,
 * 512 MiB, device ids, MACs, managed tap names), unset fields absent, keys in a fixed order, so
 * two requests for the same VM give equal specs (`specKey`).
 */
export function normalizeVmConfig(req: node.VmConfig.$Properties): VmSpec {
  const vmId = checkVmId(req.vmId ?? "", "vm_id");
  if ((req.hypervisor ?? 0) !== node.HypervisorType.HYPERVISOR_TYPE_CLOUD_HV) {
    throw new UnimplementedError("this node only runs Cloud Hypervisor VMs");
  }
  const name = text(req.name, "name", 253);

  const c = req.cpus;
  const bootVcpus = int(c?.bootVcpus || 1, "cpus.boot_vcpus", 1, MAX_VCPUS)!;
  const maxVcpus = int(c?.maxVcpus || bootVcpus, "cpus.max_vcpus", 1, MAX_VCPUS)!;
  if (maxVcpus < bootVcpus) {
    throw InvalidArgumentError.field("cpus.max_vcpus", `${maxVcpus} is below boot_vcpus`);
  }
  let topology: node.CpuTopology.$Properties | undefined;
  if (c?.topology) {
    const t = c.topology;
    topology = {
      threadsPerCore: int(t.threadsPerCore || 1, "cpus.topology.threads_per_core", 1, 255),
      coresPerDie: int(t.coresPerDie || 1, "cpus.topology.cores_per_die", 1, 255),
      diesPerPackage: int(t.diesPerPackage || 1, "cpus.topology.dies_per_package", 1, 255),
      packages: int(t.packages || 1, "cpus.topology.packages", 1, 255),
    };
    const product = topology.threadsPerCore! * topology.coresPerDie! *
      topology.diesPerPackage! * topology.packages!;
    if (product !== maxVcpus) {
      throw InvalidArgumentError.field(
        "cpus.topology",
        `threads x cores x dies x packages is ${product}, must equal max_vcpus (${maxVcpus})`,
      );
    }
  }
  const cpus = compact({
    bootVcpus,
    maxVcpus,
    topology,
    kvmHyperv: opt(c?.kvmHyperv),
    maxPhysBits: int(c?.maxPhysBits, "cpus.max_phys_bits", 32, 64),
  });

  const m = req.memory;
  const size = int(m?.size || DEFAULT_MEMORY_BYTES, "memory.size", 1024 * 1024)!;
  if (size % 4096 !== 0) throw InvalidArgumentError.field("memory.size", "must be 4 KiB aligned");
  const hugepageSize = int(m?.hugepageSize, "memory.hugepage_size", 4096);
  if (hugepageSize !== undefined && !m?.hugepages) {
    throw InvalidArgumentError.field("memory.hugepage_size", "needs hugepages");
  }
  const memory = compact({
    size,
    hotplugSize: int(m?.hotplugSize, "memory.hotplug_size", 0),
    mergeable: opt(m?.mergeable),
    shared: opt(m?.shared),
    hugepages: opt(m?.hugepages),
    hugepageSize,
    prefault: opt(m?.prefault),
    thp: opt(m?.thp),
  });

  const p = req.payload ?? {};
  const payload = compact({
    kernel: path(p.kernel, "payload.kernel"),
    cmdline: text(p.cmdline, "payload.cmdline", MAX_CMDLINE),
    initramfs: path(p.initramfs, "payload.initramfs"),
    firmware: path(p.firmware, "payload.firmware"),
  });
  if (!payload.kernel && !payload.firmware) {
    throw InvalidArgumentError.field("payload", "needs a kernel or a firmware");
  }
  if (payload.kernel && payload.firmware) {
    throw InvalidArgumentError.field("payload.firmware", "cannot be combined with a kernel");
  }
  if (payload.firmware && (payload.initramfs || payload.cmdline)) {
    throw InvalidArgumentError.field("payload", "cmdline and initramfs need a kernel");
  }

  const rateLimitGroups = (req.rateLimitGroups ?? []).map((g, i) => {
    const config = rateLimiter(g.config, `rate_limit_groups.${i}.config`);
    if (!config) {
      throw InvalidArgumentError.field(`rate_limit_groups.${i}.config`, "needs bandwidth or ops");
    }
    return { id: deviceId(g.id ?? "", `rate_limit_groups.${i}.id`), config };
  });
  unique(rateLimitGroups.map((g) => g.id ?? ""), "rate_limit_groups");

  const disks = (req.disks ?? []).map((d, i) => normalizeDisk(d, i));
  unique(disks.map((d) => d.id ?? ""), "disks");
  const cloudInit = req.cloudInit && (req.cloudInit.userData || req.cloudInit.metaData ||
      req.cloudInit.networkConfig)
    ? compact({
      userData: req.cloudInit.userData || undefined,
      metaData: req.cloudInit.metaData || undefined,
      networkConfig: req.cloudInit.networkConfig || undefined,
    })
    : undefined;
  disks.forEach((d, i) => {
    if (d.rateLimitGroup && !rateLimitGroups.some((g) => g.id === d.rateLimitGroup)) {
      throw InvalidArgumentError.field(
        `disks.${i}.rate_limit_group`,
        `no rate limit group ${d.rateLimitGroup}`,
      );
    }
    if (cloudInit && d.id === SEED_DISK_ID) {
      throw InvalidArgumentError.field(`disks.${i}.id`, `${SEED_DISK_ID} is the cloud-init seed`);
    }
  });
  const paths = new Set<string>();
  disks.forEach((d, i) => {
    if (!d.path) return;
    if (paths.has(d.path)) throw InvalidArgumentError.field(`disks.${i}.path`, "used twice");
    paths.add(d.path);
  });

  const networks = (req.networks ?? []).map((n, i) => normalizeNic(vmId, n, i));
  unique(networks.map((n) => n.id ?? ""), "networks");
  const macs = new Set<string>();
  networks.forEach((n, i) => {
    if (macs.has(n.mac!)) throw InvalidArgumentError.field(`networks.${i}.mac`, "used twice");
    macs.add(n.mac!);
  });

  let rng: node.RngConfig.$Properties | undefined;
  if (req.rng) {
    const src = req.rng.src || RNG_SOURCES[0];
    if (!(RNG_SOURCES as readonly string[]).includes(src)) {
      throw InvalidArgumentError.field("rng.src", `must be one of ${RNG_SOURCES.join(", ")}`);
    }
    rng = compact({ src, iommu: opt(req.rng.iommu) });
  }

  let vsock: node.VsockConfig.$Properties | undefined;
  if (req.vsock) {
    if (req.vsock.socket) {
      throw InvalidArgumentError.field(
        "vsock.socket",
        "the node places the vsock socket in the VM's runtime directory; leave it empty",
      );
    }
    vsock = compact({
      cid: int(req.vsock.cid || 3, "vsock.cid", 3, 0xffffffff - 1),
      iommu: opt(req.vsock.iommu),
      pciSegment: int(req.vsock.pciSegment, "vsock.pci_segment", 0, 15),
      id: req.vsock.id ? deviceId(req.vsock.id, "vsock.id") : undefined,
    });
  }

  return compact({
    vmId,
    cpus,
    memory,
    payload,
    disks,
    networks,
    rng,
    serial: consoleSpec(req.serial, "serial", true),
    console: consoleSpec(req.console, "console", false),
    rateLimitGroups,
    cloudInit,
    vsock,
    name,
  });
}

/** A canonical string of a spec: equal for equal specs (CreateVM idempotency). */
export function specKey(spec: VmSpec): string {
  return JSON.stringify(spec);
}

/** What the host provides for one disk. */
export interface DiskBinding {
  /** The real path inside a pool (absent for vhost-user disks). */
  path?: string;
  imageType?: ch.ImageType;
  /** A qcow2 overlay whose backing chain was checked to stay inside the pools. */
  backingFiles?: boolean;
}

/** Everything host-specific `buildChConfig` needs besides the spec. */
export interface HostBindings {
  kernel?: string;
  initramfs?: string;
  firmware?: string;
  /** Per disk id. */
  disks: Record<string, DiskBinding>;
  /** The VM's own files: serial/console logs and sockets, vsock socket. */
  files: { serialLog: string; consoleLog: string; serialSocket: string; vsockSocket: string };
  /** The cloud-init seed image, appended as the read-only raw disk `cidata`. */
  seedPath?: string;
}

function chRateLimiter(
  r: node.RateLimiterConfig.$Properties | null | undefined,
): ch.RateLimiterConfig | undefined {
  if (!r) return undefined;
  const bucket = (b: node.TokenBucket.$Properties | null | undefined) =>
    b
      ? compact({
        size: Number(b.size ?? 0),
        one_time_burst: opt(b.oneTimeBurst) === undefined ? undefined : Number(b.oneTimeBurst),
        refill_time: Number(b.refillTime ?? 0),
      })
      : undefined;
  return compact({ bandwidth: bucket(r.bandwidth), ops: bucket(r.ops) });
}

/** CH's DiskConfig for one of our disks; the image type is always explicit. */
export function chDisk(d: DiskSpec, b: DiskBinding): ch.DiskConfig {
  return compact({
    path: b.path,
    readonly: opt(d.readonly),
    direct: opt(d.direct),
    num_queues: opt(d.numQueues),
    queue_size: opt(d.queueSize),
    vhost_user: opt(d.vhostUser),
    vhost_socket: opt(d.vhostSocket),
    rate_limiter_config: chRateLimiter(d.rateLimiter),
    pci_segment: opt(d.pciSegment),
    id: d.id!,
    serial: opt(d.serial),
    rate_limit_group: opt(d.rateLimitGroup),
    backing_files: b.backingFiles ? true : undefined,
    image_type: b.imageType,
  });
}

const VHOST_MODES: Record<number, "Client" | "Server"> = {
  [node.VhostMode.VHOST_MODE_CLIENT]: "Client",
  [node.VhostMode.VHOST_MODE_SERVER]: "Server",
};

/**
 * CH's NetConfig for one of our NICs (its tap is already in the spec). A macvtap NIC has no
 * `tap`: its queues go with the request as descriptors.
 */
export function chNet(n: NicSpec): ch.NetConfig {
  return compact({
    tap: isMacvtapNic(n) ? undefined : opt(n.tap),
    ip: opt(n.ip),
    mask: opt(n.mask),
    mac: n.mac!,
    host_mac: opt(n.hostMac),
    mtu: opt(n.mtu),
    iommu: opt(n.iommu),
    num_queues: opt(n.numQueues),
    queue_size: opt(n.queueSize),
    vhost_user: opt(n.vhostUser),
    vhost_socket: opt(n.vhostSocket),
    vhost_mode: n.vhostUser ? VHOST_MODES[n.vhostMode ?? 0] : undefined,
    id: n.id!,
    pci_segment: opt(n.pciSegment),
    rate_limiter_config: chRateLimiter(n.rateLimiter),
    offload_tso: opt(n.offloadTso),
    offload_ufo: opt(n.offloadUfo),
    offload_csum: opt(n.offloadCsum),
  });
}

/**
 * The console devices: the serial port defaults to a File in the VM's runtime dir (a console
 * log always exists, written by the VMM itself whether or not anyone reads it, and it survives
 * agent restarts); the virtio console defaults to Off (CH's default, Tty, would write into the
 * VMM's own output).
 */
function chConsoles(spec: VmSpec, files: HostBindings["files"]) {
  const serialMode = spec.serial ? MODES[spec.serial.mode ?? 0] : "File";
  const serial: ch.SerialConfig = compact({
    mode: serialMode,
    file: serialMode === "File" ? files.serialLog : undefined,
    socket: serialMode === "Socket" ? files.serialSocket : undefined,
  });
  const consoleMode = spec.console ? MODES[spec.console.mode ?? 0] : "Off";
  const console: ch.ConsoleConfig = compact({
    mode: consoleMode,
    file: consoleMode === "File" ? files.consoleLog : undefined,
    iommu: opt(spec.console?.iommu),
  });
  return { serial, console };
}

/** Where the serial port of `spec` goes on this host (mode and file or socket path). */
export function serialTarget(spec: VmSpec, files: HostBindings["files"]): ch.SerialConfig {
  return chConsoles(spec, files).serial;
}

/** The `vm.create` body for `spec` on this host. */
export function buildChConfig(spec: VmSpec, b: HostBindings): ch.VmConfig {
  const c = spec.cpus!;
  const m = spec.memory!;
  const disks = (spec.disks ?? []).map((d) => {
    const binding = b.disks[d.id!];
    if (!binding) throw new InvalidArgumentError(`disk ${d.id} has no host binding`);
    return chDisk(d, binding);
  });
  if (b.seedPath) {
    disks.push({ path: b.seedPath, readonly: true, id: SEED_DISK_ID, image_type: "Raw" });
  }
  const { serial, console } = chConsoles(spec, b.files);
  const nets = (spec.networks ?? []).filter((n) => !isMacvtapNic(n));
  return compact({
    cpus: compact({
      boot_vcpus: c.bootVcpus!,
      max_vcpus: c.maxVcpus!,
      topology: c.topology
        ? {
          threads_per_core: c.topology.threadsPerCore!,
          cores_per_die: c.topology.coresPerDie!,
          dies_per_package: c.topology.diesPerPackage!,
          packages: c.topology.packages!,
        }
        : undefined,
      kvm_hyperv: opt(c.kvmHyperv),
      max_phys_bits: opt(c.maxPhysBits),
    }),
    memory: compact({
      size: Number(m.size),
      hotplug_size: opt(m.hotplugSize) === undefined ? undefined : Number(m.hotplugSize),
      mergeable: opt(m.mergeable),
      shared: opt(m.shared),
      hugepages: opt(m.hugepages),
      hugepage_size: opt(m.hugepageSize) === undefined ? undefined : Number(m.hugepageSize),
      prefault: opt(m.prefault),
      thp: opt(m.thp),
    }),
    payload: compact({
      kernel: b.kernel,
      cmdline: opt(spec.payload?.cmdline),
      initramfs: b.initramfs,
      firmware: b.firmware,
    }),
    rate_limit_groups: spec.rateLimitGroups?.length
      ? spec.rateLimitGroups.map((g) => ({
        id: g.id!,
        rate_limiter_config: chRateLimiter(g.config)!,
      }))
      : undefined,
    disks: disks.length ? disks : undefined,
    // `vm.create` cannot carry descriptors: macvtap NICs are added right after it.
    net: nets.length ? nets.map(chNet) : undefined,
    rng: spec.rng ? compact({ src: spec.rng.src!, iommu: opt(spec.rng.iommu) }) : undefined,
    serial,
    console,
    vsock: spec.vsock
      ? compact({
        cid: Number(spec.vsock.cid),
        socket: b.files.vsockSocket,
        iommu: opt(spec.vsock.iommu),
        pci_segment: opt(spec.vsock.pciSegment),
        id: opt(spec.vsock.id),
      })
      : undefined,
  });
}

/**
 * Cloud Hypervisor's API structs as serde sees them: which fields are required, which have
 * serde defaults (and so appear in `vm.info` even when the client omitted them), which are
 * `Option`. Field order is the Rust struct order, which is the order CH serializes in.
 * Defaults follow the real VMM (not the YAML): no `ip`/`mask` defaults, payload optional,
 * a random locally administered MAC for each NIC.
 */
import type { Field, Schema } from "./serde.ts";

const u8: Schema = { t: "u8" };
const u16: Schema = { t: "u16" };
const u32: Schema = { t: "u32" };
const u64: Schema = { t: "u64" };
const i32: Schema = { t: "i32" };
const bool: Schema = { t: "bool" };
const str: Schema = { t: "string" };
const path: Schema = { t: "path" };
const any: Schema = { t: "any" };
const vec = (of: Schema): Schema => ({ t: "vec", of });
const struct = (name: string, fields: Record<string, Field>): Schema => ({
  t: "struct",
  name,
  fields,
});
const opt = (s: Schema): Field => ({ s });
const req = (s: Schema): Field => ({ s, required: true });
const def = (s: Schema, value: unknown): Field => ({ s, default: value });

/** The modes of serial, console and debug console. */
export const CONSOLE_MODES = ["Off", "Pty", "Tty", "File", "Socket", "Null"] as const;

/** A random unicast, locally administered MAC (what CH generates for a NIC without one). */
export function localRandomMac(): string {
  const b = crypto.getRandomValues(new Uint8Array(6));
  b[0] = (b[0] & 0xfe) | 0x02;
  return [...b].map((x) => x.toString(16).padStart(2, "0")).join(":");
}

const tokenBucket = struct("TokenBucket", {
  size: req(u64),
  one_time_burst: def(u64, 0),
  refill_time: req(u64),
});
const rateLimiter = struct("RateLimiterConfig", {
  bandwidth: opt(tokenBucket),
  ops: opt(tokenBucket),
});

const consoleMode: Schema = { t: "enum", name: "ConsoleOutputMode", variants: CONSOLE_MODES };

export const CpusConfig = struct("CpusConfig", {
  boot_vcpus: req(u32),
  max_vcpus: req(u32),
  topology: opt(struct("CpuTopology", {
    threads_per_core: req(u16),
    cores_per_die: req(u16),
    dies_per_package: req(u16),
    packages: req(u16),
  })),
  kvm_hyperv: def(bool, false),
  max_phys_bits: def(u8, 46),
  affinity: opt(vec(struct("CpuAffinity", { vcpu: req(u32), host_cpus: req(vec(u32)) }))),
  features: def(struct("CpuFeatures", { amx: def(bool, false) }), { amx: false }),
  nested: def(bool, true),
  core_scheduling: def(
    { t: "enum", name: "CoreScheduling", variants: ["Vm", "Vcpu", "Off"] },
    "Vm",
  ),
});

const memoryZone = struct("MemoryZoneConfig", {
  id: req(str),
  size: req(u64),
  file: opt(path),
  shared: def(bool, false),
  hugepages: def(bool, false),
  hugepage_size: opt(u64),
  host_numa_node: opt(u32),
  hotplug_size: opt(u64),
  hotplugged_size: opt(u64),
  prefault: def(bool, false),
  reserve: def(bool, false),
  mergeable: def(bool, false),
});

export const MemoryConfig = struct("MemoryConfig", {
  size: req(u64),
  mergeable: def(bool, false),
  hotplug_method: def(
    { t: "enum", name: "HotplugMethod", variants: ["Acpi", "VirtioMem"] },
    "Acpi",
  ),
  hotplug_size: opt(u64),
  hotplugged_size: opt(u64),
  shared: def(bool, false),
  hugepages: def(bool, false),
  hugepage_size: opt(u64),
  prefault: def(bool, false),
  zones: opt(vec(memoryZone)),
  thp: def(bool, true),
  reserve: def(bool, false),
});

export const PayloadConfig = struct("PayloadConfig", {
  firmware: opt(path),
  kernel: opt(path),
  cmdline: opt(str),
  initramfs: opt(path),
  igvm: opt(path),
  host_data: opt(str),
});

const virtQueueAffinity = struct("VirtQueueAffinity", {
  queue_index: req(u16),
  host_cpus: req(vec(u32)),
});

export const DiskConfig = struct("DiskConfig", {
  path: opt(path),
  readonly: def(bool, false),
  direct: def(bool, false),
  iommu: def(bool, false),
  num_queues: def(u32, 1),
  queue_size: def(u16, 128),
  vhost_user: def(bool, false),
  vhost_socket: opt(str),
  rate_limit_group: opt(str),
  rate_limiter_config: opt(rateLimiter),
  id: opt(str),
  disable_io_uring: def(bool, false),
  disable_aio: def(bool, false),
  pci_segment: def(u16, 0),
  pci_device_id: opt(u8),
  serial: opt(str),
  queue_affinity: opt(vec(virtQueueAffinity)),
  backing_files: def(bool, false),
  sparse: def(bool, true),
  image_type: opt({
    t: "enum",
    name: "ImageType",
    variants: ["FixedVhd", "Qcow2", "Raw", "Vhdx", "Unknown"],
  }),
  lock_granularity: def(
    { t: "enum", name: "LockGranularity", variants: ["ByteRange", "Full"] },
    "ByteRange",
  ),
});

export const NetConfig = struct("NetConfig", {
  tap: opt(str),
  ip: opt(str),
  mask: opt(str),
  mac: { s: str, default: localRandomMac },
  host_mac: opt(str),
  mtu: opt(u16),
  iommu: def(bool, false),
  num_queues: def(u32, 2),
  queue_size: def(u16, 256),
  vhost_user: def(bool, false),
  vhost_socket: opt(str),
  vhost_mode: def({ t: "enum", name: "VhostMode", variants: ["Client", "Server"] }, "Client"),
  id: opt(str),
  // fd numbers in a body are never valid (only SCM_RIGHTS fds are); CH resets them.
  fds: opt(vec(i32)),
  rate_limiter_config: opt(rateLimiter),
  pci_segment: def(u16, 0),
  pci_device_id: opt(u8),
  offload_tso: def(bool, true),
  offload_ufo: def(bool, true),
  offload_csum: def(bool, true),
});

export const RngConfig = struct("RngConfig", {
  src: req(path),
  iommu: def(bool, false),
});

export const BalloonConfig = struct("BalloonConfig", {
  id: opt(str),
  size: req(u64),
  deflate_on_oom: def(bool, false),
  free_page_reporting: def(bool, false),
  pci_segment: def(u16, 0),
});

export const FsConfig = struct("FsConfig", {
  tag: req(str),
  socket: req(path),
  num_queues: def(u32, 1),
  queue_size: def(u16, 1024),
  id: opt(str),
  pci_segment: def(u16, 0),
  pci_device_id: opt(u8),
});

export const GenericVhostUserConfig = struct("GenericVhostUserConfig", {
  socket: req(path),
  queue_sizes: req(vec(u16)),
  device_type: req(u32),
  id: opt(str),
  pci_segment: def(u16, 0),
  pci_device_id: opt(u8),
});

export const PmemConfig = struct("PmemConfig", {
  file: req(path),
  size: opt(u64),
  iommu: def(bool, false),
  discard_writes: def(bool, false),
  id: opt(str),
  pci_segment: def(u16, 0),
  pci_device_id: opt(u8),
});

export const ConsoleConfig = struct("ConsoleConfig", {
  file: opt(path),
  mode: req(consoleMode),
  iommu: def(bool, false),
  socket: opt(path),
});

export const DebugConsoleConfig = struct("DebugConsoleConfig", {
  file: opt(path),
  mode: req(consoleMode),
  iobase: def(u16, 0xe9),
});

export const DeviceConfig = struct("DeviceConfig", {
  path: opt(path),
  iommu: def(bool, false),
  id: opt(str),
  pci_segment: def(u16, 0),
  pci_device_id: opt(u8),
  x_nv_gpudirect_clique: opt(u8),
  x_exclude_mmap_bars: opt(vec(u64)),
});

export const UserDeviceConfig = struct("UserDeviceConfig", {
  socket: req(path),
  id: opt(str),
  pci_segment: def(u16, 0),
  pci_device_id: opt(u8),
});

export const VdpaConfig = struct("VdpaConfig", {
  path: req(path),
  num_queues: def(u32, 1),
  iommu: def(bool, false),
  id: opt(str),
  pci_segment: def(u16, 0),
  pci_device_id: opt(u8),
});

export const VsockConfig = struct("VsockConfig", {
  cid: req(u32),
  socket: req(path),
  iommu: def(bool, false),
  id: opt(str),
  pci_segment: def(u16, 0),
  pci_device_id: opt(u8),
});

export const VmConfig = struct("VmConfig", {
  cpus: def(CpusConfig, () => ({
    boot_vcpus: 1,
    max_vcpus: 1,
    kvm_hyperv: false,
    max_phys_bits: 46,
    features: { amx: false },
    nested: true,
    core_scheduling: "Vm",
  })),
  memory: def(MemoryConfig, () => ({
    size: 536870912,
    mergeable: false,
    hotplug_method: "Acpi",
    shared: false,
    hugepages: false,
    prefault: false,
    thp: true,
    reserve: false,
  })),
  payload: opt(PayloadConfig),
  rate_limit_groups: opt(vec(struct("RateLimitGroupConfig", {
    id: req(str),
    rate_limiter_config: req(rateLimiter),
  }))),
  disks: opt(vec(DiskConfig)),
  net: opt(vec(NetConfig)),
  rng: def(RngConfig, () => ({ src: "/dev/urandom", iommu: false })),
  balloon: opt(BalloonConfig),
  fs: opt(vec(FsConfig)),
  generic_vhost_user: opt(vec(GenericVhostUserConfig)),
  pmem: opt(vec(PmemConfig)),
  serial: def(ConsoleConfig, () => ({ mode: "Null", iommu: false })),
  console: def(ConsoleConfig, () => ({ mode: "Tty", iommu: false })),
  debug_console: def(DebugConsoleConfig, () => ({ mode: "Off", iobase: 0xe9 })),
  devices: opt(vec(DeviceConfig)),
  user_devices: opt(vec(UserDeviceConfig)),
  vdpa: opt(vec(VdpaConfig)),
  vsock: opt(VsockConfig),
  pvpanic: def(bool, false),
  iommu: def(bool, false),
  numa: opt(vec(any)),
  watchdog: def(bool, false),
  pci_segments: opt(vec(any)),
  platform: opt(any),
  tpm: opt(struct("TpmConfig", { socket: req(path) })),
  landlock_enable: def(bool, false),
  landlock_rules: opt(vec(struct("LandlockConfig", { path: req(path), access: req(str) }))),
});

export const VmResize = struct("VmResizeData", {
  desired_vcpus: opt(u32),
  desired_ram: opt(u64),
  desired_balloon: opt(u64),
});

export const VmResizeDisk = struct("VmResizeDiskData", {
  id: req(str),
  desired_size: req(u64),
});

export const VmResizeZone = struct("VmResizeZoneData", {
  id: req(str),
  desired_ram: req(u64),
});

export const VmRemoveDevice = struct("VmRemoveDeviceData", { id: req(str) });

export const VmSnapshotConfig = struct("VmSnapshotConfig", { destination_url: req(str) });

export const VmCoredumpData = struct("VmCoredumpData", { destination_url: req(str) });

export const RestoreConfig = struct("RestoreConfig", {
  source_url: req(path),
  prefault: def(bool, false),
  memory_restore_mode: def(
    { t: "enum", name: "MemoryRestoreMode", variants: ["Copy", "OnDemand"] },
    "Copy",
  ),
  resume: def(bool, false),
  net_fds: opt(vec(struct("RestoredNetConfig", {
    id: req(str),
    num_fds: req(u32),
    fds: opt(vec(i32)),
  }))),
  zone_updates: opt(vec(any)),
});

export const ReceiveMigrationData = struct("VmReceiveMigrationData", {
  receiver_url: req(str),
});

export const SendMigrationData = struct("VmSendMigrationData", {
  destination_url: req(str),
  local: def(bool, false),
});

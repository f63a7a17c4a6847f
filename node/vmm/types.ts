/**
 * The Cloud Hypervisor REST API types, hand-written from the upstream OpenAPI document
 * (`components/schemas`). Field names are CH's (snake_case) because these objects go over the
 * wire unchanged. Where the real VMM differs from the YAML (e.g. `payload` is optional, `ip` and
 * `mask` have no defaults, `RestoreConfig` also carries `net_fds`), the real behaviour wins.
 */

/** `GET /vmm.ping` answer. */
export interface VmmPingResponse {
  /** `git describe` of the build (`v53.0-246-g…`) or `v<version>`. */
  build_version?: string;
  /** The crate version (`54.0.0`): use this one for feature gating. */
  version: string;
  pid?: number;
  /** Compiled-in cargo features (default build: `kvm`, `io_uring`). */
  features?: string[];
}

export type VmState = "Created" | "Running" | "Shutdown" | "Paused" | "BreakPoint";

/** Every VmState, for validating answers. */
export const VM_STATES: readonly VmState[] = [
  "Created",
  "Running",
  "Shutdown",
  "Paused",
  "BreakPoint",
];

/** `GET /vm.info` answer. */
export interface VmInfo {
  config: VmConfig;
  state: VmState;
  memory_actual_size?: number;
  /** Present only while a VM object exists (booted or paused). */
  device_tree?: Record<string, DeviceNode>;
}

export interface DeviceNode {
  id?: string;
  /** Rust enum values (`{"PciBar": {...}}`, `{"MmioAddressRange": {...}}`...). */
  resources?: Record<string, unknown>[];
  parent?: string | null;
  children?: string[];
  pci_bdf?: string | null;
}

/** `GET /vm.counters` answer: device id → counter name → value. */
export type VmCounters = Record<string, Record<string, number>>;

/** Answer of a hot-plug (`vm.add-*` on a booted VM). */
export interface PciDeviceInfo {
  id: string;
  bdf: string;
}

export interface PayloadConfig {
  firmware?: string;
  kernel?: string;
  cmdline?: string;
  initramfs?: string;
  igvm?: string;
  host_data?: string;
}

export interface VmConfig {
  cpus?: CpusConfig;
  memory?: MemoryConfig;
  /** Required by the YAML, optional in reality: `vm.create` accepts a config without it. */
  payload?: PayloadConfig;
  rate_limit_groups?: RateLimitGroupConfig[];
  disks?: DiskConfig[];
  net?: NetConfig[];
  rng?: RngConfig;
  balloon?: BalloonConfig;
  fs?: FsConfig[];
  generic_vhost_user?: GenericVhostUserConfig[];
  pmem?: PmemConfig[];
  serial?: SerialConfig;
  console?: ConsoleConfig;
  debug_console?: DebugConsoleConfig;
  devices?: DeviceConfig[];
  user_devices?: UserDeviceConfig[];
  vdpa?: VdpaConfig[];
  vsock?: VsockConfig;
  numa?: NumaConfig[];
  iommu?: boolean;
  watchdog?: boolean;
  rtc?: RtcConfig;
  pvpanic?: boolean;
  pci_segments?: PciSegmentConfig[];
  platform?: PlatformConfig;
  tpm?: TpmConfig;
  landlock_enable?: boolean;
  landlock_rules?: LandlockConfig[];
}

export interface CpuAffinity {
  vcpu: number;
  host_cpus: number[];
}

export interface CpuFeatures {
  amx?: boolean;
}

export interface CpuTopology {
  threads_per_core?: number;
  cores_per_die?: number;
  dies_per_package?: number;
  packages?: number;
}

export type CoreSchedulingMode = "Vm" | "Vcpu" | "Off";

export interface CpusConfig {
  boot_vcpus: number;
  max_vcpus: number;
  topology?: CpuTopology;
  kvm_hyperv?: boolean;
  max_phys_bits?: number;
  nested?: boolean;
  affinity?: CpuAffinity[];
  features?: CpuFeatures;
  core_scheduling?: CoreSchedulingMode;
}

export interface PciSegmentConfig {
  pci_segment: number;
  mmio32_aperture_weight?: number;
  mmio64_aperture_weight?: number;
}

export interface PlatformConfig {
  num_pci_segments?: number;
  iommu_segments?: number[];
  iommu_address_width_bits?: number;
  system_serial_number?: string;
  serial_number?: string;
  system_uuid?: string;
  uuid?: string;
  oem_strings?: string[];
  system_manufacturer?: string;
  system_product_name?: string;
  system_version?: string;
  system_family?: string;
  system_sku_number?: string;
  chassis_asset_tag?: string;
  tdx?: boolean;
  sev_snp?: boolean;
  iommufd?: boolean;
  vfio_p2p_dma?: boolean;
}

export interface MemoryZoneConfig {
  id: string;
  size: number;
  file?: string;
  mergeable?: boolean;
  shared?: boolean;
  hugepages?: boolean;
  hugepage_size?: number;
  host_numa_node?: number;
  hotplug_size?: number;
  hotplugged_size?: number;
  prefault?: boolean;
  reserve?: boolean;
}

export type HotplugMethod = "Acpi" | "VirtioMem";

export interface MemoryConfig {
  size: number;
  hotplug_size?: number;
  hotplugged_size?: number;
  mergeable?: boolean;
  hotplug_method?: HotplugMethod;
  shared?: boolean;
  hugepages?: boolean;
  hugepage_size?: number;
  prefault?: boolean;
  reserve?: boolean;
  thp?: boolean;
  zones?: MemoryZoneConfig[];
}

export interface TokenBucket {
  size: number;
  one_time_burst?: number;
  refill_time: number;
}

export interface RateLimiterConfig {
  bandwidth?: TokenBucket;
  ops?: TokenBucket;
}

export interface RateLimitGroupConfig {
  id: string;
  rate_limiter_config: RateLimiterConfig;
}

export interface VirtQueueAffinity {
  queue_index: number;
  host_cpus: number[];
}

export type ImageType = "FixedVhd" | "Qcow2" | "Raw" | "Vhdx" | "Unknown";
export type LockGranularity = "ByteRange" | "Full";

export interface DiskConfig {
  path?: string;
  readonly?: boolean;
  direct?: boolean;
  iommu?: boolean;
  num_queues?: number;
  queue_size?: number;
  vhost_user?: boolean;
  vhost_socket?: string;
  rate_limiter_config?: RateLimiterConfig;
  pci_segment?: number;
  pci_device_id?: number;
  id?: string;
  serial?: string;
  rate_limit_group?: string;
  queue_affinity?: VirtQueueAffinity[];
  backing_files?: boolean;
  sparse?: boolean;
  image_type?: ImageType;
  lock_granularity?: LockGranularity;
}

export interface NetConfig {
  tap?: string;
  /** Host-side address of the tap (no default in reality, despite the YAML). */
  ip?: string;
  mask?: string;
  mac?: string;
  host_mac?: string;
  mtu?: number;
  iommu?: boolean;
  num_queues?: number;
  queue_size?: number;
  vhost_user?: boolean;
  vhost_socket?: string;
  vhost_mode?: "Client" | "Server";
  id?: string;
  pci_segment?: number;
  pci_device_id?: number;
  rate_limiter_config?: RateLimiterConfig;
  offload_tso?: boolean;
  offload_ufo?: boolean;
  offload_csum?: boolean;
  /**
   * Tap queues passed as descriptors (SCM_RIGHTS). CH serializes them as `-1` each (fd numbers
   * mean nothing outside the process), so `vm.info` shows how many it holds, not which.
   */
  fds?: number[];
}

export interface RngConfig {
  src: string;
  id?: string;
  pci_segment?: number;
  pci_device_id?: number;
  iommu?: boolean;
}

export interface RtcConfig {
  id?: string;
  pci_segment?: number;
  pci_device_id?: number;
  iommu?: boolean;
}

export interface BalloonConfig {
  size: number;
  id?: string;
  pci_segment?: number;
  pci_device_id?: number;
  iommu?: boolean;
  deflate_on_oom?: boolean;
  free_page_reporting?: boolean;
}

export interface FsConfig {
  tag: string;
  socket: string;
  num_queues?: number;
  queue_size?: number;
  pci_segment?: number;
  pci_device_id?: number;
  id?: string;
}

export interface GenericVhostUserConfig {
  socket: string;
  queue_sizes: number[];
  device_type: number;
  pci_segment?: number;
  pci_device_id?: number;
  id?: string;
}

export interface PmemConfig {
  file: string;
  size?: number;
  iommu?: boolean;
  discard_writes?: boolean;
  pci_segment?: number;
  pci_device_id?: number;
  id?: string;
}

export type ConsoleMode = "Off" | "Pty" | "Tty" | "File" | "Socket" | "Null";

export interface ConsoleConfig {
  mode: ConsoleMode;
  file?: string;
  /** Rejected for the virtio console; only the serial port serves a socket. */
  socket?: string;
  iommu?: boolean;
  id?: string;
  pci_segment?: number;
  pci_device_id?: number;
}

export interface SerialConfig {
  mode: ConsoleMode;
  file?: string;
  socket?: string;
}

export interface DebugConsoleConfig {
  mode: ConsoleMode;
  file?: string;
  iobase?: number;
}

export interface DeviceConfig {
  path?: string;
  iommu?: boolean;
  pci_segment?: number;
  pci_device_id?: number;
  id?: string;
  x_nv_gpudirect_clique?: number;
  x_exclude_mmap_bars?: number[];
}

export interface UserDeviceConfig {
  socket: string;
  id?: string;
  pci_segment?: number;
  pci_device_id?: number;
}

export interface TpmConfig {
  socket: string;
}

export interface VdpaConfig {
  path: string;
  num_queues: number;
  iommu?: boolean;
  pci_segment?: number;
  pci_device_id?: number;
  id?: string;
}

export interface VsockConfig {
  cid: number;
  socket: string;
  iommu?: boolean;
  pci_segment?: number;
  pci_device_id?: number;
  id?: string;
}

export interface NumaDistance {
  destination: number;
  distance: number;
}

export interface NumaConfig {
  guest_numa_id: number;
  cpus?: number[];
  distances?: NumaDistance[];
  memory_zones?: string[];
  pci_segments?: number[];
  device_id?: string;
}

export interface LandlockConfig {
  path: string;
  access: string;
}

/** `PUT /vm.resize` body; absent fields are left alone. */
export interface VmResize {
  desired_vcpus?: number;
  desired_ram?: number;
  desired_balloon?: number;
}

export interface VmResizeDisk {
  id: string;
  desired_size: number;
}

export interface VmResizeZone {
  id: string;
  desired_ram: number;
}

export interface VmRemoveDevice {
  id: string;
}

export interface VmSnapshotConfig {
  /** `file://<existing directory>`. */
  destination_url: string;
}

export interface VmCoredumpData {
  destination_url: string;
}

export type MemoryRestoreMode = "Copy" | "OnDemand";

export interface VmMemoryZoneUpdateData {
  id: string;
  host_numa_node: number;
}

/** A NIC whose tap fds are passed again (SCM_RIGHTS) on restore. */
export interface RestoredNetConfig {
  id: string;
  num_fds: number;
}

export interface RestoreConfig {
  /** `file://<snapshot directory>`. */
  source_url: string;
  prefault?: boolean;
  memory_restore_mode?: MemoryRestoreMode;
  /** Without it the restored VM is left Paused. */
  resume?: boolean;
  zone_updates?: VmMemoryZoneUpdateData[];
  net_fds?: RestoredNetConfig[];
}

export type MigrationMode = "Precopy" | "Postcopy";
export type TimeoutStrategy = "Cancel" | "Ignore";

export interface ReceiveMigrationData {
  receiver_url: string;
  tls_dir?: string;
  memory_mode?: MigrationMode;
  zone_updates?: VmMemoryZoneUpdateData[];
}

export interface SendMigrationData {
  destination_url: string;
  local?: boolean;
  downtime_ms?: number;
  timeout_s?: number;
  timeout_strategy?: TimeoutStrategy;
  connections?: number;
  tls_dir?: string;
  memory_mode?: MigrationMode;
}

export interface VmAddUserDevice {
  socket: string;
  pci_segment?: number;
  pci_device_id?: number;
}

/** One record of the `--event-monitor` stream. */
export interface VmmEvent {
  /** Monotonic time since the VMM started (not wall clock). */
  timestamp: { secs: number; nanos: number };
  source: string;
  event: string;
  properties: Record<string, string> | null;
}

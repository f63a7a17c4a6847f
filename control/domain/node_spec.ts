/**
 * The VM → node translation, pure: a VM row plus its resolved disks, NICs and boot files
 * become the `VmConfig` a node's CreateVM takes. Disks are full paths on the host (pool
 * directory + object path) in boot order; NICs name their bridge and the tap the node will
 * create for them (macvtap NICs: their parent interface), their MAC and, on static networks
 * only, the guest address/gateway/DNS that cloud-init configures (dhcp networks hand the same
 * address out by MAC); the payload is the boot source's kernel (+ initramfs, cmdline) or firmware, else
 * the server's `vm_defaults`.
 */
import { FailedPreconditionError } from "../../shared/errors/errors.ts";
import { parseCidr } from "../../shared/net/ip.ts";
import { node } from "../../shared/proto/mod.ts";
import { tapName } from "../../node/net/tap.ts";

/** The VM fields the spec uses. */
export interface SpecVm {
  id: string;
  name: string;
  boot_mode: "kernel" | "firmware";
  boot_vcpus: number;
  max_vcpus: number;
  memory_size: number;
  memory_hotplug_size: number | null;
  memory_shared: boolean;
  memory_hugepages: boolean;
  cloud_init_user_data: string | null;
  cloud_init_meta_data: string | null;
  cloud_init_network_config: string | null;
  /** `socket` gives the VM an interactive serial socket; `log` (default) the node's log file. */
  console?: "log" | "socket";
}

/** A disk with its file resolved on the host. */
export interface SpecDisk {
  device_id: string;
  /** Absolute path on the host. */
  path: string;
  read_only: boolean;
  format: "raw" | "qcow2" | null;
  boot_order: number | null;
}

/**
 * A NIC with its network and that network's attachment on the VM's host: the bridge (for a
 * macvtap network only the attachment's key) and the parent interface.
 */
export interface SpecNic {
  device_id: string;
  mac_address: string;
  ip_address: string | null;
  mtu: number | null;
  bridge: string;
  parent_interface: string | null;
  network: {
    type: "bridge" | "vlan" | "macvtap";
    mode: "static" | "dhcp" | "none";
    subnet: string | null;
    gateway: string | null;
    dns: string[];
    mtu: number;
  };
}

/** What the VM boots: kernel (+ initramfs, cmdline) or firmware, as paths on the host. */
export interface SpecBoot {
  kernel?: string;
  initramfs?: string;
  cmdline?: string;
  firmware?: string;
}

/** A boot source with its files resolved to paths on the host. */
export interface ResolvedBootSource {
  name: string;
  kernel?: string;
  initramfs?: string;
  kernel_params: string | null;
  firmware?: string;
}

/** The boot part of `vm_defaults`. */
export interface BootDefaults {
  kernel: string;
  initramfs: string;
  cmdline: string;
  firmware: string;
}

/** The full path of a storage object on a host. */
export function objectFile(poolPath: string, objectPath: string): string {
  return `${poolPath.replace(/\/+$/, "")}/${objectPath}`;
}

/** What the VM boots: its boot source, else the defaults; refuses when neither says. */
export function resolveBoot(
  vm: Pick<SpecVm, "name" | "boot_mode">,
  source: ResolvedBootSource | null,
  defaults: BootDefaults,
): SpecBoot {
  if (vm.boot_mode === "firmware") {
    const firmware = source ? source.firmware : defaults.firmware || undefined;
    if (!firmware) {
      throw new FailedPreconditionError(
        `vm ${vm.name} boots firmware but has no boot source and vm_defaults.firmware is empty`,
      );
    }
    return { firmware };
  }
  if (source) {
    if (!source.kernel) {
      throw new FailedPreconditionError(`boot source ${source.name} has no kernel`);
    }
    return {
      kernel: source.kernel,
      ...(source.initramfs ? { initramfs: source.initramfs } : {}),
      cmdline: source.kernel_params ?? defaults.cmdline,
    };
  }
  if (!defaults.kernel) {
    throw new FailedPreconditionError(
      `vm ${vm.name} has no boot source and vm_defaults.kernel is empty`,
    );
  }
  return {
    kernel: defaults.kernel,
    ...(defaults.initramfs ? { initramfs: defaults.initramfs } : {}),
    cmdline: defaults.cmdline,
  };
}

/** Disks in boot order (those with a boot_order first, ascending), else as given. */
export function orderDisks(disks: readonly SpecDisk[]): SpecDisk[] {
  return disks.map((d, i) => ({ d, i })).sort((a, b) => {
    const x = a.d.boot_order ?? Infinity;
    const y = b.d.boot_order ?? Infinity;
    return x - y || a.i - b.i;
  }).map(({ d }) => d);
}

/**
 * One NIC for the node. Bridge and vlan NICs are a tap on the host's bridge; a macvtap NIC is
 * a device the node makes on the attachment's parent interface (no bridge, no tap name) and
 * keeps the parent's MTU unless the NIC sets its own. Either way the MAC is the NIC record's,
 * which is what its DHCP reservation is keyed by.
 */
function nicConfig(vmId: string, nic: SpecNic, index: number): node.NetConfig.$Properties {
  const n = nic.network;
  let out: node.NetConfig.$Properties;
  if (n.type === "macvtap") {
    if (!nic.parent_interface) {
      throw new FailedPreconditionError(
        `NIC ${nic.device_id} is on a macvtap network whose attachment names no parent_interface`,
      );
    }
    out = {
      id: nic.device_id,
      type: node.NetworkType.NETWORK_TYPE_MACVTAP,
      parentInterface: nic.parent_interface,
      mac: nic.mac_address,
      ...(nic.mtu ? { mtu: nic.mtu } : {}),
    };
  } else {
    out = {
      id: nic.device_id,
      bridge: nic.bridge,
      tap: tapName(vmId, index),
      mac: nic.mac_address,
      mtu: nic.mtu ?? n.mtu,
    };
  }
  if (n.mode === "static" && nic.ip_address && n.subnet) {
    out.guestIp = `${nic.ip_address}/${parseCidr(n.subnet).prefix}`;
    if (n.gateway) out.guestGateway = n.gateway;
    if (n.dns.length) out.guestDns = [...n.dns];
  }
  return out;
}

/** The CreateVM request for a VM. */
export function buildVmConfig(
  vm: SpecVm,
  boot: SpecBoot,
  disks: readonly SpecDisk[],
  nics: readonly SpecNic[],
): node.VmConfig.$Properties {
  const networks = nics.map((n, i) => nicConfig(vm.id, n, i));
  const memory: node.MemoryConfig.$Properties = { size: vm.memory_size };
  if (vm.memory_hotplug_size) memory.hotplugSize = vm.memory_hotplug_size;
  if (vm.memory_shared) memory.shared = true;
  if (vm.memory_hugepages) memory.hugepages = true;
  const config: node.VmConfig.$Properties = {
    vmId: vm.id,
    name: vm.name,
    hypervisor: node.HypervisorType.HYPERVISOR_TYPE_CLOUD_HV,
    cpus: { bootVcpus: vm.boot_vcpus, maxVcpus: vm.max_vcpus },
    memory,
    payload: { ...boot },
    disks: orderDisks(disks).map((d) => ({
      id: d.device_id,
      path: d.path,
      ...(d.read_only ? { readonly: true } : {}),
      ...(d.format ? { imageType: d.format } : {}),
    })),
    networks,
  };
  // The node's default serial is a log file in the VM's runtime dir; only a socket is asked for.
  if (vm.console === "socket") config.serial = { mode: node.ConsoleMode.CONSOLE_MODE_SOCKET };
  // Static addresses reach the guest through cloud-init, so such a VM always gets a seed.
  const staticNics = networks.some((n) => n.guestIp);
  if (
    vm.cloud_init_user_data || vm.cloud_init_meta_data || vm.cloud_init_network_config ||
    staticNics
  ) {
    config.cloudInit = {
      userData: vm.cloud_init_user_data ?? "",
      metaData: vm.cloud_init_meta_data ?? `instance-id: ${vm.id}\nlocal-hostname: ${vm.name}\n`,
      networkConfig: vm.cloud_init_network_config ?? "",
    };
  }
  return config;
}

import assert from "node:assert/strict";
import { FailedPreconditionError } from "../../shared/errors/errors.ts";
import { node } from "../../shared/proto/mod.ts";
import {
  buildVmConfig,
  objectFile,
  resolveBoot,
  type SpecDisk,
  type SpecNic,
  type SpecVm,
} from "./node_spec.ts";

const VM: SpecVm = {
  id: "4f1c2a3b-0000-4000-8000-000000000001",
  name: "web-1",
  boot_mode: "kernel",
  boot_vcpus: 2,
  max_vcpus: 4,
  memory_size: 1024 ** 3,
  memory_hotplug_size: null,
  memory_shared: false,
  memory_hugepages: false,
  cloud_init_user_data: null,
  cloud_init_meta_data: null,
  cloud_init_network_config: null,
};
const DEFAULTS = { kernel: "/k/vmlinux", initramfs: "", cmdline: "console=ttyS0", firmware: "" };

const nic = (over: Partial<SpecNic> = {}, net: Partial<SpecNic["network"]> = {}): SpecNic => ({
  device_id: "net0",
  mac_address: "52:00:00:00:00:01",
  ip_address: "10.0.0.5",
  mtu: null,
  bridge: "br-lan",
  parent_interface: null,
  network: {
    type: "bridge",
    mode: "static",
    subnet: "10.0.0.0/24",
    gateway: "10.0.0.1",
    dns: ["1.1.1.1"],
    mtu: 1500,
    ...net,
  },
  ...over,
});

Deno.test("node spec: sizing, payload, disks in boot order, NICs with bridge, tap, MAC, IP", () => {
  const disks: SpecDisk[] = [
    { device_id: "disk1", path: "/p/data.img", read_only: false, format: "raw", boot_order: null },
    { device_id: "iso0", path: "/p/x.iso", read_only: true, format: null, boot_order: 1 },
    { device_id: "disk0", path: "/p/root.qcow2", read_only: false, format: "qcow2", boot_order: 0 },
  ];
  const boot = resolveBoot(VM, null, DEFAULTS);
  const c = buildVmConfig(
    { ...VM, memory_hotplug_size: 1024 ** 3, memory_shared: true },
    boot,
    disks,
    [
      nic(),
      nic({ device_id: "net1", mac_address: "52:00:00:00:00:02", ip_address: null, mtu: 9000 }, {
        mode: "dhcp",
      }),
    ],
  );
  assert.equal(c.vmId, VM.id);
  assert.equal(c.name, "web-1");
  assert.equal(c.hypervisor, node.HypervisorType.HYPERVISOR_TYPE_CLOUD_HV);
  assert.deepEqual(c.cpus, { bootVcpus: 2, maxVcpus: 4 });
  assert.deepEqual(c.memory, { size: 1024 ** 3, hotplugSize: 1024 ** 3, shared: true });
  assert.deepEqual(c.payload, { kernel: "/k/vmlinux", cmdline: "console=ttyS0" });
  assert.deepEqual(c.disks, [
    { id: "disk0", path: "/p/root.qcow2", imageType: "qcow2" },
    { id: "iso0", path: "/p/x.iso", readonly: true },
    { id: "disk1", path: "/p/data.img", imageType: "raw" },
  ]);
  assert.deepEqual(c.networks, [
    {
      id: "net0",
      bridge: "br-lan",
      tap: "qt4f1c2a3bn0",
      mac: "52:00:00:00:00:01",
      mtu: 1500,
      guestIp: "10.0.0.5/24",
      guestGateway: "10.0.0.1",
      guestDns: ["1.1.1.1"],
    },
    { id: "net1", bridge: "br-lan", tap: "qt4f1c2a3bn1", mac: "52:00:00:00:00:02", mtu: 9000 },
  ]);
  // A static address needs cloud-init: a seed with generated meta-data.
  assert.deepEqual(c.cloudInit, {
    userData: "",
    metaData: `instance-id: ${VM.id}\nlocal-hostname: web-1\n`,
    networkConfig: "",
  });
  // The request encodes (the node gets exactly this).
  const decoded = node.VmConfig.decode(node.VmConfig.encode(c).finish());
  assert.equal(decoded.networks[0].tap, "qt4f1c2a3bn0");
});

Deno.test("node spec: vlan NICs are taps on the host's bridge; macvtap NICs sit on the parent", () => {
  const c = buildVmConfig(VM, { kernel: "/k" }, [], [
    nic({ parent_interface: "eth1" }, { type: "vlan", mode: "dhcp" }),
    nic(
      {
        device_id: "net1",
        mac_address: "52:00:00:00:00:02",
        bridge: "qxmv0",
        parent_interface: "eth0",
      },
      { type: "macvtap", mode: "static" },
    ),
    nic(
      {
        device_id: "net2",
        mac_address: "52:00:00:00:00:03",
        ip_address: null,
        mtu: 9000,
        bridge: "qxmv1",
        parent_interface: "eth2",
      },
      { type: "macvtap", mode: "none", subnet: null, gateway: null, dns: [] },
    ),
  ]);
  assert.deepEqual(c.networks, [
    // dhcp: the address comes from the bridge's DHCP server, not cloud-init.
    { id: "net0", bridge: "br-lan", tap: "qt4f1c2a3bn0", mac: "52:00:00:00:00:01", mtu: 1500 },
    {
      id: "net1",
      type: node.NetworkType.NETWORK_TYPE_MACVTAP,
      parentInterface: "eth0",
      mac: "52:00:00:00:00:02",
      guestIp: "10.0.0.5/24",
      guestGateway: "10.0.0.1",
      guestDns: ["1.1.1.1"],
    },
    {
      id: "net2",
      type: node.NetworkType.NETWORK_TYPE_MACVTAP,
      parentInterface: "eth2",
      mac: "52:00:00:00:00:03",
      mtu: 9000,
    },
  ]);
  assert.throws(
    () => buildVmConfig(VM, { kernel: "/k" }, [], [nic({}, { type: "macvtap" })]),
    /names no parent_interface/,
  );
});

Deno.test("node spec: cloud-init only when asked for or needed; user values win", () => {
  assert.equal(buildVmConfig(VM, { kernel: "/k" }, [], []).cloudInit, undefined);
  const none = buildVmConfig(VM, { kernel: "/k" }, [], [nic({}, { mode: "none" })]);
  assert.equal(none.cloudInit, undefined);
  assert.equal(none.networks![0].guestIp, undefined);
  const c = buildVmConfig(
    { ...VM, cloud_init_user_data: "#cloud-config\n", cloud_init_meta_data: "instance-id: x\n" },
    { kernel: "/k" },
    [],
    [],
  );
  assert.deepEqual(c.cloudInit, {
    userData: "#cloud-config\n",
    metaData: "instance-id: x\n",
    networkConfig: "",
  });
});

Deno.test("node spec: boot from the boot source, else the defaults, else a clear refusal", () => {
  const src = { name: "linux", kernel: "/p/vmlinux", initramfs: "/p/initrd", kernel_params: null };
  assert.deepEqual(resolveBoot(VM, src, DEFAULTS), {
    kernel: "/p/vmlinux",
    initramfs: "/p/initrd",
    cmdline: "console=ttyS0",
  });
  assert.deepEqual(resolveBoot(VM, { ...src, kernel_params: "quiet" }, DEFAULTS).cmdline, "quiet");
  assert.deepEqual(resolveBoot(VM, null, { ...DEFAULTS, initramfs: "/k/initrd" }), {
    kernel: "/k/vmlinux",
    initramfs: "/k/initrd",
    cmdline: "console=ttyS0",
  });
  const fw = { ...VM, boot_mode: "firmware" as const };
  assert.deepEqual(
    resolveBoot(fw, { name: "uefi", firmware: "/p/CLOUDHV.fd", kernel_params: null }, DEFAULTS),
    { firmware: "/p/CLOUDHV.fd" },
  );
  assert.deepEqual(resolveBoot(fw, null, { ...DEFAULTS, firmware: "/fw" }), { firmware: "/fw" });
  assert.throws(() => resolveBoot(fw, null, DEFAULTS), FailedPreconditionError);
  assert.throws(
    () => resolveBoot(VM, null, { ...DEFAULTS, kernel: "" }),
    /has no boot source and vm_defaults.kernel is empty/,
  );
});

Deno.test("node spec: object files are pool directory + object path", () => {
  assert.equal(objectFile("/srv/pool/", "a/b.img"), "/srv/pool/a/b.img");
  assert.equal(objectFile("/srv/pool", "b.img"), "/srv/pool/b.img");
});

Deno.test("node spec: console socket asks for a SOCKET serial; log leaves the node's file default", () => {
  assert.equal(buildVmConfig(VM, { kernel: "/k" }, [], []).serial, undefined);
  assert.equal(
    buildVmConfig({ ...VM, console: "log" }, { kernel: "/k" }, [], []).serial,
    undefined,
  );
  assert.deepEqual(buildVmConfig({ ...VM, console: "socket" }, { kernel: "/k" }, [], []).serial, {
    mode: node.ConsoleMode.CONSOLE_MODE_SOCKET,
  });
});

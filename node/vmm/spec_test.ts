import assert from "node:assert/strict";
import { InvalidArgumentError, UnimplementedError } from "../../shared/errors/errors.ts";
import { node } from "../../shared/proto/mod.ts";
import { tapName } from "../net/tap.ts";
import {
  buildChConfig,
  chNet,
  hasManagedDevice,
  type HostBindings,
  isMacvtapNic,
  nicMac,
  normalizeVmConfig,
  specKey,
  tapIndex,
} from "./spec.ts";

const VM = "6f1c2a9e-3b4d-4e5f-8a7b-9c0d1e2f3a4b";
const FILES: HostBindings["files"] = {
  serialLog: "/run/vms/x/serial.log",
  consoleLog: "/run/vms/x/console.log",
  serialSocket: "/run/vms/x/serial.sock",
  vsockSocket: "/run/vms/x/vsock.sock",
};

function fieldOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof InvalidArgumentError, String(e));
    return e.details[0]?.field;
  }
  assert.fail("expected InvalidArgumentError");
}

const minimal = { vmId: VM, payload: { kernel: "/pool/vmlinux" } };

Deno.test("a minimal spec gets explicit defaults", () => {
  const spec = normalizeVmConfig(minimal);
  assert.deepEqual(spec, {
    vmId: VM,
    cpus: { bootVcpus: 1, maxVcpus: 1 },
    memory: { size: 512 * 1024 * 1024 },
    payload: { kernel: "/pool/vmlinux" },
    disks: [],
    networks: [],
    rateLimitGroups: [],
  });
  const ch = buildChConfig(spec, { kernel: "/real/vmlinux", disks: {}, files: FILES });
  assert.deepEqual(ch, {
    cpus: { boot_vcpus: 1, max_vcpus: 1 },
    memory: { size: 512 * 1024 * 1024 },
    payload: { kernel: "/real/vmlinux" },
    // The serial port always logs to a file in the runtime dir; the virtio console is off.
    serial: { mode: "File", file: FILES.serialLog },
    console: { mode: "Off" },
  });
});

Deno.test("every CPU and memory knob reaches CH", () => {
  const spec = normalizeVmConfig({
    ...minimal,
    cpus: {
      bootVcpus: 2,
      maxVcpus: 4,
      topology: { threadsPerCore: 2, coresPerDie: 2 },
      kvmHyperv: true,
      maxPhysBits: 40,
    },
    memory: {
      size: 1024 * 1024 * 1024,
      hotplugSize: 2 * 1024 * 1024 * 1024,
      mergeable: true,
      shared: true,
      hugepages: true,
      hugepageSize: 2 * 1024 * 1024,
      prefault: true,
      thp: false,
    },
  });
  const ch = buildChConfig(spec, { kernel: "/k", disks: {}, files: FILES });
  assert.deepEqual(ch.cpus, {
    boot_vcpus: 2,
    max_vcpus: 4,
    topology: { threads_per_core: 2, cores_per_die: 2, dies_per_package: 1, packages: 1 },
    kvm_hyperv: true,
    max_phys_bits: 40,
  });
  assert.deepEqual(ch.memory, {
    size: 1024 * 1024 * 1024,
    hotplug_size: 2 * 1024 * 1024 * 1024,
    mergeable: true,
    shared: true,
    hugepages: true,
    hugepage_size: 2 * 1024 * 1024,
    prefault: true,
    thp: false,
  });
});

Deno.test("disks: explicit image type, backing files, limits, and the cloud-init seed", () => {
  const bucket = { size: 1000, refillTime: 100, oneTimeBurst: 10 };
  const spec = normalizeVmConfig({
    ...minimal,
    payload: { kernel: "/pool/k", cmdline: "console=ttyS0", initramfs: "/pool/initrd" },
    rateLimitGroups: [{ id: "g1", config: { ops: bucket } }],
    disks: [
      {
        id: "root",
        path: "/pool/root.qcow2",
        direct: true,
        numQueues: 2,
        queueSize: 256,
        serial: "ROOT1",
        rateLimiter: { bandwidth: bucket },
      },
      { path: "/pool/data.img", readonly: true, rateLimitGroup: "g1", imageType: "RAW" },
    ],
    cloudInit: { userData: "#cloud-config\n" },
  });
  assert.equal(spec.disks![1].id, "disk1", "a disk without id gets disk<index>");
  assert.equal(spec.disks![1].imageType, "raw");
  const ch = buildChConfig(spec, {
    kernel: "/real/k",
    initramfs: "/real/initrd",
    disks: {
      root: { path: "/real/root.qcow2", imageType: "Qcow2", backingFiles: true },
      disk1: { path: "/real/data.img", imageType: "Raw" },
    },
    files: FILES,
    seedPath: "/run/vms/x/cidata.img",
  });
  assert.deepEqual(ch.payload, {
    kernel: "/real/k",
    cmdline: "console=ttyS0",
    initramfs: "/real/initrd",
  });
  assert.deepEqual(ch.rate_limit_groups, [{
    id: "g1",
    rate_limiter_config: { ops: { size: 1000, one_time_burst: 10, refill_time: 100 } },
  }]);
  assert.deepEqual(ch.disks, [
    {
      path: "/real/root.qcow2",
      direct: true,
      num_queues: 2,
      queue_size: 256,
      rate_limiter_config: { bandwidth: { size: 1000, one_time_burst: 10, refill_time: 100 } },
      id: "root",
      serial: "ROOT1",
      backing_files: true,
      image_type: "Qcow2",
    },
    {
      path: "/real/data.img",
      readonly: true,
      id: "disk1",
      rate_limit_group: "g1",
      image_type: "Raw",
    },
    { path: "/run/vms/x/cidata.img", readonly: true, id: "cidata", image_type: "Raw" },
  ]);
});

Deno.test("NICs: managed tap on the bridge, stable MAC, offloads and limits", () => {
  const spec = normalizeVmConfig({
    ...minimal,
    networks: [
      {
        id: "eth0",
        bridge: "qbr0",
        mtu: 1450,
        numQueues: 4,
        queueSize: 512,
        offloadTso: false,
        offloadUfo: false,
        offloadCsum: true,
        rateLimiter: { bandwidth: { size: 1 << 20, refillTime: 1000 } },
      },
      { bridge: "qbr1", mac: "52-54-00-AA-BB-CC" },
      { id: "ext", tap: "mytap0" },
    ],
  });
  const [a, b, c] = spec.networks!;
  assert.equal(a.tap, tapName(VM, 0));
  assert.equal(tapIndex(a.tap!), 0);
  assert.equal(b.tap, tapName(VM, 1));
  assert.equal(b.id, "net1");
  assert.equal(b.mac, "52:54:00:aa:bb:cc");
  assert.equal(a.mac, nicMac(VM, "eth0"), "no MAC: a stable one derived from VM and NIC");
  assert.equal(c.tap, "mytap0", "an existing interface is used as is");
  assert.equal(c.bridge, undefined);
  const ch = buildChConfig(spec, { kernel: "/k", disks: {}, files: FILES });
  assert.deepEqual(ch.net![0], {
    tap: tapName(VM, 0),
    mac: a.mac,
    mtu: 1450,
    num_queues: 4,
    queue_size: 512,
    id: "eth0",
    rate_limiter_config: { bandwidth: { size: 1 << 20, refill_time: 1000 } },
    offload_tso: false,
    offload_ufo: false,
    offload_csum: true,
  });
  // Sending back what the node answered (taps and MACs filled in) is the same spec.
  assert.equal(specKey(normalizeVmConfig({ ...minimal, networks: spec.networks })), specKey(spec));
});

Deno.test("the same request always gives the same spec key; a different one does not", () => {
  const req = {
    ...minimal,
    memory: { size: 256 * 1024 * 1024 },
    disks: [{ id: "d", path: "/p/d" }],
    networks: [{ bridge: "br0" }],
  };
  assert.equal(specKey(normalizeVmConfig(req)), specKey(normalizeVmConfig(structuredClone(req))));
  assert.notEqual(
    specKey(normalizeVmConfig(req)),
    specKey(normalizeVmConfig({ ...req, memory: { size: 128 * 1024 * 1024 } })),
  );
  // Protobuf-decoded messages (class instances with defaults) normalise like plain objects.
  const decoded = node.VmConfig.decode(node.VmConfig.encode(req).finish());
  assert.equal(specKey(normalizeVmConfig(decoded)), specKey(normalizeVmConfig(req)));
});

Deno.test("consoles, rng and vsock", () => {
  const spec = normalizeVmConfig({
    ...minimal,
    serial: { mode: node.ConsoleMode.CONSOLE_MODE_SOCKET },
    console: { mode: node.ConsoleMode.CONSOLE_MODE_FILE },
    rng: { src: "" },
    vsock: { cid: 7 },
  });
  const ch = buildChConfig(spec, { kernel: "/k", disks: {}, files: FILES });
  assert.deepEqual(ch.serial, { mode: "Socket", socket: FILES.serialSocket });
  assert.deepEqual(ch.console, { mode: "File", file: FILES.consoleLog });
  assert.deepEqual(ch.rng, { src: "/dev/urandom" });
  assert.deepEqual(ch.vsock, { cid: 7, socket: FILES.vsockSocket });
  const pty = buildChConfig(
    normalizeVmConfig({ ...minimal, serial: { mode: node.ConsoleMode.CONSOLE_MODE_PTY } }),
    { kernel: "/k", disks: {}, files: FILES },
  );
  assert.deepEqual(pty.serial, { mode: "Pty" });
});

Deno.test("firmware boot", () => {
  const spec = normalizeVmConfig({ vmId: VM, payload: { firmware: "/fw/CLOUDHV.fd" } });
  const ch = buildChConfig(spec, { firmware: "/usr/share/fw/CLOUDHV.fd", disks: {}, files: FILES });
  assert.deepEqual(ch.payload, { firmware: "/usr/share/fw/CLOUDHV.fd" });
});

Deno.test("invalid requests name the offending field", () => {
  const cases: [Record<string, unknown>, string][] = [
    [{ vmId: "../etc", payload: { kernel: "/k" } }, "vm_id"],
    [{ payload: {} }, "payload"],
    [{ payload: { kernel: "/k", firmware: "/f" } }, "payload.firmware"],
    [{ payload: { kernel: "/pool/../etc/shadow" } }, "payload.kernel"],
    [{ payload: { kernel: "relative/k" } }, "payload.kernel"],
    [{ payload: { kernel: "/k", cmdline: "a\nb" } }, "payload.cmdline"],
    [{ cpus: { bootVcpus: 4, maxVcpus: 2 } }, "cpus.max_vcpus"],
    [{ cpus: { bootVcpus: 2, topology: { threadsPerCore: 2, packages: 2 } } }, "cpus.topology"],
    [{ memory: { size: 1000 } }, "memory.size"],
    [{ memory: { size: 1 << 30, hugepageSize: 2 << 20 } }, "memory.hugepage_size"],
    [{ disks: [{ id: "a b", path: "/p/x" }] }, "disks.0.id"],
    [{ disks: [{ id: "d" }] }, "disks.0.path"],
    [{ disks: [{ id: "d", path: "/p/x" }, { id: "d", path: "/p/y" }] }, "disks.1.id"],
    [{ disks: [{ id: "a", path: "/p/x" }, { id: "b", path: "/p/x" }] }, "disks.1.path"],
    [{ disks: [{ id: "d", path: "/p/x", imageType: "vmdk" }] }, "disks.0.image_type"],
    [{ disks: [{ id: "d", path: "/p/x", queueSize: 100 }] }, "disks.0.queue_size"],
    [{ disks: [{ id: "d", path: "/p/x", rateLimitGroup: "nope" }] }, "disks.0.rate_limit_group"],
    [{ disks: [{ id: "cidata", path: "/p/x" }], cloudInit: { userData: "x" } }, "disks.0.id"],
    [{ networks: [{ id: "n" }] }, "networks.0.bridge"],
    [{ networks: [{ bridge: "br0; rm -rf /" }] }, "networks.0.bridge"],
    [{ networks: [{ bridge: "br0", tap: "othertap" }] }, "networks.0.tap"],
    [{ networks: [{ bridge: "br0", mac: "01:00:5e:00:00:01" }] }, "networks.0.mac"],
    [{ networks: [{ bridge: "br0", mac: "zz" }] }, "networks.0.mac"],
    [{ networks: [{ bridge: "br0", mtu: 1000 }] }, "networks.0.mtu"],
    [{ networks: [{ bridge: "br0", numQueues: 3 }] }, "networks.0.num_queues"],
    [{
      networks: [{ bridge: "a", mac: "52:54:00:00:00:01" }, {
        bridge: "b",
        mac: "52:54:00:00:00:01",
      }],
    }, "networks.1.mac"],
    [{ serial: { mode: node.ConsoleMode.CONSOLE_MODE_FILE, file: "/etc/passwd" } }, "serial.file"],
    [{ console: { mode: node.ConsoleMode.CONSOLE_MODE_SOCKET } }, "console.mode"],
    [{ console: { mode: node.ConsoleMode.CONSOLE_MODE_TTY } }, "console.mode"],
    [{ rng: { src: "/pool/entropy" } }, "rng.src"],
    [{ vsock: { cid: 2 } }, "vsock.cid"],
    [{ vsock: { socket: "/tmp/v.sock" } }, "vsock.socket"],
  ];
  for (const [extra, field] of cases) {
    assert.equal(
      fieldOf(() => normalizeVmConfig({ ...minimal, ...extra })),
      field,
      JSON.stringify(extra),
    );
  }
});

Deno.test("unsupported hypervisors are UNIMPLEMENTED, not ignored", () => {
  assert.throws(
    () =>
      normalizeVmConfig({
        ...minimal,
        hypervisor: node.HypervisorType.HYPERVISOR_TYPE_FIRECRACKER,
      }),
    UnimplementedError,
  );
});

Deno.test("a macvtap NIC gets a node-named macvtap on its parent and reaches CH without a tap", () => {
  const MACVTAP = node.NetworkType.NETWORK_TYPE_MACVTAP;
  const spec = normalizeVmConfig({
    ...minimal,
    networks: [
      { id: "eth0", bridge: "br0" },
      { id: "lan0", type: MACVTAP, parentInterface: "eth1", mac: "52:54:00:00:00:77" },
    ],
  });
  const [bridged, mv] = spec.networks!;
  assert.equal(mv.tap, `qm${bridged.tap!.slice(2, 10)}n1`);
  assert.ok(isMacvtapNic(mv) && !isMacvtapNic(bridged));
  assert.ok(hasManagedDevice(mv) && hasManagedDevice(bridged));
  assert.equal(tapIndex(mv.tap!), 1);
  assert.equal(chNet(mv).tap, undefined, "the queues go as descriptors");
  assert.equal(chNet(mv).mac, "52:54:00:00:00:77");
  const config = buildChConfig(spec, { disks: {}, files: FILES });
  assert.deepEqual(config.net?.map((n) => n.id), ["eth0"], "vm.create cannot carry descriptors");

  const field = (n: Record<string, unknown>) =>
    fieldOf(() => normalizeVmConfig({ ...minimal, networks: [{ type: MACVTAP, ...n }] }));
  assert.equal(field({}), "networks.0.parent_interface");
  assert.equal(field({ parentInterface: "eth1", bridge: "br0" }), "networks.0.bridge");
  assert.equal(
    field({ parentInterface: "eth1", ip: "10.0.0.1", mask: "255.0.0.0" }),
    "networks.0.ip",
  );
  assert.equal(field({ parentInterface: "eth1", tap: "mytap" }), "networks.0.tap");
  assert.equal(field({ parentInterface: "eth 1" }), "networks.0.parent_interface");
  assert.equal(
    fieldOf(() =>
      normalizeVmConfig({ ...minimal, networks: [{ bridge: "br0", type: 9 as node.NetworkType }] })
    ),
    "networks.0.type",
  );
});

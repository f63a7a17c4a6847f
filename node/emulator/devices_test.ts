import assert from "node:assert/strict";
import type { VmConfig } from "../vmm/types.ts";
import {
  assignIds,
  bdf,
  bootDeviceOrder,
  deviceCounters,
  deviceTree,
  IdAllocator,
  PciBus,
} from "./devices.ts";

Deno.test("generated ids share one counter across types, in creation order", () => {
  const c: VmConfig = {
    disks: [{ path: "/a" }, { path: "/b", id: "root" }, { path: "/c" }],
    net: [{}],
    vsock: { cid: 3, socket: "/v" },
  };
  assignIds(c, new IdAllocator());
  assert.deepEqual(c.disks!.map((d) => d.id), ["_disk0", "root", "_disk1"]);
  assert.equal(c.net![0].id, "_net2");
  assert.equal(c.vsock!.id, "_vsock3");
});

Deno.test("generated ids skip names the user already took", () => {
  const c: VmConfig = { disks: [{ path: "/a", id: "_disk0" }, { path: "/b" }] };
  assignIds(c, new IdAllocator());
  assert.deepEqual(c.disks!.map((d) => d.id), ["_disk0", "_disk1"]);
});

Deno.test("PCI slots: host bridge at 0, boot order, hot-plug takes the lowest free slot", () => {
  const bus = new PciBus();
  const c: VmConfig = {
    console: { mode: "Tty" },
    disks: [{ id: "_disk0" }],
    net: [{ id: "_net1" }],
  };
  for (const id of bootDeviceOrder(c)) bus.attach(id);
  assert.deepEqual(bootDeviceOrder(c), ["__console", "_disk0", "_net1", "__rng"]);
  assert.equal(bus.bdfOf("_disk0"), "0000:00:02.0");
  assert.equal(bus.detach("_disk0"), "0000:00:02.0");
  assert.equal(bus.attach("_disk2"), "0000:00:02.0");
  assert.equal(bus.attach("_disk3"), "0000:00:05.0");
  assert.equal(bdf(17), "0000:00:11.0");
  const tree = deviceTree(c, bus);
  assert.equal(tree["_virtio-pci-_disk3"].pci_bdf, "0000:00:05.0");
  assert.deepEqual(tree["_virtio-pci-_disk3"].children, ["_disk3"]);
  assert.equal(tree["_disk3"].parent, "_virtio-pci-_disk3");
});

Deno.test("counters exist for disks and NICs and never go down", () => {
  const c: VmConfig = { disks: [{ id: "d" }], net: [{ id: "n" }] };
  const a = deviceCounters(c, 1_000);
  const b = deviceCounters(c, 60_000);
  assert.deepEqual(Object.keys(a).sort(), ["d", "n"]);
  for (const dev of ["d", "n"]) {
    for (const [k, v] of Object.entries(a[dev])) assert.ok(b[dev][k] >= v, `${dev}.${k}`);
  }
  assert.ok(b.d.read_ops > a.d.read_ops);
});

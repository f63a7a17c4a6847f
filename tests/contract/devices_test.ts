/**
 * Contract: devices on a booted VM: hot-plug (200 + PciDeviceInfo) vs cold add (204),
 * removal, counters, resize rules (including the pending vCPU unplug), online disk growth,
 * the one-vsock limit, and disk image locking across VMM processes.
 */
import assert from "node:assert/strict";
import {
  FailedPreconditionError,
  InternalError,
  NotFoundError,
  ResourceExhaustedError,
} from "../../shared/errors/errors.ts";
import { assertVmmError } from "../support/assert_vmm.ts";
import { contractTest } from "../support/contract.ts";
import { bootableConfig, makeDisk, startVmm } from "../support/emulator.ts";

contractTest("hot-plug a disk: 200 with id and BDF, visible in config, tree and counters", {
  boot: true,
}, async () => {
  await using vmm = await startVmm();
  const c = vmm.client();
  const [root, extra] = [await makeDisk(vmm.dir, "root.raw"), await makeDisk(vmm.dir, "extra.raw")];
  await c.create(await bootableConfig(vmm.dir, { disks: [{ path: root }] }));
  await c.boot();
  const info = await c.addDisk({ path: extra });
  assert.ok(info);
  assert.equal(info.id, "_disk1"); // the shared id counter continues
  assert.match(info.bdf, /^0000:00:[0-9a-f]{2}\.0$/);
  const vm = await c.info();
  assert.deepEqual(vm.config.disks?.map((d) => d.id), ["_disk0", "_disk1"]);
  const node = Object.values(vm.device_tree!).find((n) => n.pci_bdf === info.bdf);
  assert.ok(node, "the new device is in the device tree at its BDF");
  const other = Object.values(vm.device_tree!).filter((n) => n.pci_bdf).map((n) => n.pci_bdf);
  assert.equal(new Set(other).size, other.length, "BDFs are unique");
  const counters = await c.counters();
  for (const id of ["_disk0", "_disk1"]) {
    assert.ok(counters[id], `counters for ${id}`);
    assert.equal(typeof counters[id].read_bytes, "number");
    assert.equal(typeof counters[id].write_ops, "number");
  }
  await assertVmmError(c.addDisk({ path: extra }), Error, 409, `Duplicated device path: ${extra}`);
  await assertVmmError(
    c.addDisk({ path: `${vmm.dir}/missing.raw` }),
    InternalError,
    500,
    /No such file/,
  );
});

contractTest("remove-device while running; unknown ids are 404", { boot: true }, async () => {
  await using vmm = await startVmm();
  const c = vmm.client();
  const disk = await makeDisk(vmm.dir, "data.raw");
  await c.create(await bootableConfig(vmm.dir, { disks: [{ path: disk, id: "data" }] }));
  await c.boot();
  await c.removeDevice("data");
  const info = await c.info();
  assert.equal(info.config.disks, undefined);
  assert.equal(info.device_tree?.["data"], undefined);
  await assertVmmError(c.removeDevice("data"), NotFoundError, 404);
  const events = await vmm.waitForEvents((e) => e.some((x) => x.event === "device-removed"));
  const removed = events.find((x) => x.event === "device-removed")!;
  assert.equal(removed.properties?.id, "data");
  // Re-adding the same image works once the lock is gone.
  assert.ok(await c.addDisk({ path: disk, id: "data" }));
});

contractTest(
  "resize: vCPU hotplug up to max_vcpus, RAM only with hotplug_size",
  { boot: true },
  async () => {
    await using vmm = await startVmm();
    const c = vmm.client();
    await c.create(
      await bootableConfig(vmm.dir, {
        cpus: { boot_vcpus: 1, max_vcpus: 4 },
        memory: { size: 128 * 1024 * 1024, hotplug_size: 256 * 1024 * 1024 },
      }),
    );
    await c.boot();
    await c.resize({ desired_vcpus: 3 });
    assert.equal((await c.info()).config.cpus?.boot_vcpus, 3);
    await assertVmmError(c.resize({ desired_vcpus: 8 }), InternalError, 500);
    await c.resize({ desired_ram: 256 * 1024 * 1024 });
    const info = await c.info();
    assert.equal(info.memory_actual_size, 256 * 1024 * 1024);
    await assertVmmError(c.resize({ desired_ram: 1024 * 1024 * 1024 }), InternalError, 500);
    const names = await vmm.eventNames();
    assert.ok(names.includes("vm/resizing") && names.includes("vm/resized"));
  },
);

contractTest(
  "resize: 429 while a vCPU removal is pending",
  { boot: true, emulatorOnly: true },
  async () => {
    await using vmm = await startVmm({ env: { QARAX_EMU_VCPU_UNPLUG_MS: "400" } });
    const c = vmm.client();
    await c.create(await bootableConfig(vmm.dir, { cpus: { boot_vcpus: 3, max_vcpus: 4 } }));
    await c.boot();
    await c.resize({ desired_vcpus: 1 });
    await assertVmmError(
      c.resize({ desired_vcpus: 2 }),
      ResourceExhaustedError,
      429,
      "Too Many Requests",
    );
    await c.resize({ desired_ram: 128 * 1024 * 1024 }); // RAM-only resizes are not blocked
    await new Promise((r) => setTimeout(r, 450));
    await c.resize({ desired_vcpus: 2 });
    assert.equal((await c.info()).config.cpus?.boot_vcpus, 2);
  },
);

contractTest("resize-disk grows a raw image file while running", { boot: true }, async () => {
  await using vmm = await startVmm();
  const c = vmm.client();
  const disk = await makeDisk(vmm.dir, "grow.raw", 16 * 1024 * 1024);
  await c.create(
    await bootableConfig(vmm.dir, { disks: [{ path: disk, id: "grow", image_type: "Raw" }] }),
  );
  await c.boot();
  await c.resizeDisk({ id: "grow", desired_size: 32 * 1024 * 1024 });
  assert.equal((await Deno.stat(disk)).size, 32 * 1024 * 1024);
  await assertVmmError(c.resizeDisk({ id: "nope", desired_size: 1 }), NotFoundError, 404);
});

contractTest("only one vsock device per VM", { boot: true }, async () => {
  await using vmm = await startVmm();
  const c = vmm.client();
  await c.create(
    await bootableConfig(vmm.dir, { vsock: { cid: 3, socket: `${vmm.dir}/vsock.sock` } }),
  );
  await assertVmmError(
    c.addVsock({ cid: 4, socket: `${vmm.dir}/vsock2.sock` }),
    FailedPreconditionError,
    500,
    "Too many virtio-vsock devices",
  );
});

contractTest("a disk image is locked: a second VMM cannot boot it until the first lets go", {
  boot: true,
}, async () => {
  await using first = await startVmm();
  await using second = await startVmm();
  const disk = await makeDisk(first.dir, "shared.raw");
  const a = first.client();
  const b = second.client();
  await a.create(await bootableConfig(first.dir, { disks: [{ path: disk }] }));
  await b.create(await bootableConfig(second.dir, { disks: [{ path: disk }] }));
  await a.boot();
  await assertVmmError(
    b.boot(),
    FailedPreconditionError,
    500,
    "Error locking disk images: Another instance likely holds a lock",
  );
  assert.equal((await b.info()).state, "Created");
  await a.shutdown();
  await b.boot();
  assert.equal((await b.info()).state, "Running");
  await assertVmmError(a.boot(), FailedPreconditionError, 500, /Error locking disk images/);
});

contractTest(
  "read-only disks take shared locks: two VMMs may boot the same image",
  { boot: true },
  async () => {
    await using first = await startVmm();
    await using second = await startVmm();
    const disk = await makeDisk(first.dir, "base.raw");
    for (const vmm of [first, second]) {
      const c = vmm.client();
      await c.create(await bootableConfig(vmm.dir, { disks: [{ path: disk, readonly: true }] }));
      await c.boot();
      assert.equal((await c.info()).state, "Running");
    }
  },
);

contractTest(
  "boot fails when a disk path or the kernel does not exist",
  { boot: true },
  async () => {
    await using vmm = await startVmm();
    const c = vmm.client();
    await c.create(await bootableConfig(vmm.dir, { disks: [{ path: `${vmm.dir}/nope.raw` }] }));
    await assertVmmError(c.boot(), InternalError, 500, /No such file or directory/);
    await c.delete();
    await c.create({ payload: { kernel: `${vmm.dir}/no-kernel` } });
    await assertVmmError(c.boot(), InternalError, 500, /No such file or directory/);
    assert.equal((await c.info()).state, "Created");
  },
);

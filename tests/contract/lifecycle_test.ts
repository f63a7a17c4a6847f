/**
 * Contract: the per-state table of the CH notes (§4), through the client against a VMM
 * process. One VMM per state; every row of that state's column is checked, success and
 * error cases, with CH's real status codes and root causes.
 */
import assert from "node:assert/strict";
import {
  AlreadyExistsError,
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
} from "../../shared/errors/errors.ts";
import { assertVmmError } from "../support/assert_vmm.ts";
import { contractTest } from "../support/contract.ts";
import { bootableConfig, makeDisk, startVmm } from "../support/emulator.ts";

const NOT_RUNNING = "VM is not running";
const NOT_CREATED = "VM is not created";
const ALREADY = "VM is already created";

contractTest("no config: every call answers as CH does", {}, async () => {
  await using vmm = await startVmm();
  const c = vmm.client();
  const ping = await c.ping();
  assert.match(ping.version, /^\d+\.\d+\.\d+$/);
  assert.equal(ping.pid, vmm.pid);
  await assertVmmError(c.info(), NotFoundError, 404, NOT_CREATED);
  await assertVmmError(c.boot(), NotFoundError, 404, "VM config is missing");
  await assertVmmError(c.pause(), FailedPreconditionError, 500, NOT_RUNNING);
  await assertVmmError(c.resume(), FailedPreconditionError, 500, NOT_RUNNING);
  await assertVmmError(c.shutdown(), FailedPreconditionError, 500, NOT_RUNNING);
  await assertVmmError(c.reboot(), NotFoundError, 404, NOT_CREATED);
  await assertVmmError(c.powerButton(), FailedPreconditionError, 500, NOT_RUNNING);
  await assertVmmError(c.nmi(), FailedPreconditionError, 500, NOT_RUNNING);
  await assertVmmError(c.counters(), FailedPreconditionError, 500, NOT_RUNNING);
  await c.delete(); // idempotent no-op
  await c.delete();
  await assertVmmError(c.addDisk({ path: "/nonexistent" }), NotFoundError, 404, NOT_CREATED);
  await assertVmmError(c.removeDevice("x"), NotFoundError, 404, NOT_CREATED);
  await assertVmmError(c.resize({ desired_vcpus: 2 }), NotFoundError, 404, NOT_CREATED);
  await assertVmmError(
    c.resizeDisk({ id: "x", desired_size: 1 }),
    NotFoundError,
    404,
    NOT_CREATED,
  );
  await assertVmmError(c.snapshot(`file://${vmm.dir}`), FailedPreconditionError, 500, NOT_RUNNING);
  // Wrong-state calls never changed anything.
  await assertVmmError(c.info(), NotFoundError, 404, NOT_CREATED);
});

contractTest("created (config only): stored as given, validated only at boot", {}, async () => {
  await using vmm = await startVmm();
  const c = vmm.client();
  const disk = await makeDisk(vmm.dir, "disk.raw");
  // No payload and an invalid vCPU count: vm.create does not validate.
  await c.create({ cpus: { boot_vcpus: 4, max_vcpus: 2 }, disks: [{ path: disk, id: "root" }] });
  const info = await c.info();
  assert.equal(info.state, "Created");
  assert.equal(info.device_tree, undefined);
  assert.equal(info.memory_actual_size, 512 * 1024 * 1024);
  assert.equal(info.config.memory?.size, 536870912);
  assert.equal(info.config.disks?.[0].id, "root");

  await assertVmmError(c.create({}), FailedPreconditionError, 500, ALREADY);
  await assertVmmError(c.pause(), FailedPreconditionError, 500, NOT_RUNNING);
  await assertVmmError(c.resume(), FailedPreconditionError, 500, NOT_RUNNING);
  await assertVmmError(c.shutdown(), FailedPreconditionError, 500, NOT_RUNNING);
  await assertVmmError(c.reboot(), NotFoundError, 404, NOT_CREATED);
  await assertVmmError(c.powerButton(), FailedPreconditionError, 500, NOT_RUNNING);
  await assertVmmError(c.nmi(), FailedPreconditionError, 500, NOT_RUNNING);
  await assertVmmError(c.counters(), FailedPreconditionError, 500, NOT_RUNNING);
  await assertVmmError(
    c.resizeDisk({ id: "root", desired_size: 128 * 1024 * 1024 }),
    FailedPreconditionError,
    500,
    "Failed resizing a disk image",
  );
  await assertVmmError(c.snapshot(`file://${vmm.dir}`), FailedPreconditionError, 500, NOT_RUNNING);
  await assertVmmError(
    c.restore({ source_url: `file://${vmm.dir}` }),
    FailedPreconditionError,
    500,
    ALREADY,
  );

  // vm.boot validates: the payload first.
  await assertVmmError(
    c.boot(),
    InvalidArgumentError,
    400,
    "No bootitem provided: neither firmware nor kernel",
  );
  // Cold adds are validated against the whole config too, so they fail the same way.
  await assertVmmError(c.addDisk({ path: disk }), InvalidArgumentError, 400, /No bootitem/);

  // Resize and remove edit the stored config.
  await c.resize({ desired_vcpus: 1, desired_ram: 256 * 1024 * 1024 });
  const resized = await c.info();
  assert.equal(resized.config.cpus?.boot_vcpus, 1);
  assert.equal(resized.config.memory?.size, 256 * 1024 * 1024);
  await assertVmmError(
    c.removeDevice("nope"),
    NotFoundError,
    404,
    'No device with id "nope" to remove',
  );
  await c.removeDevice("root");
  assert.equal((await c.info()).config.disks, undefined);

  await c.delete();
  await assertVmmError(c.info(), NotFoundError, 404, NOT_CREATED);
});

contractTest(
  "created: cold add (204) and config validation codes (400/409)",
  { boot: true },
  async () => {
    await using vmm = await startVmm();
    const c = vmm.client();
    const [a, b] = [await makeDisk(vmm.dir, "a.raw"), await makeDisk(vmm.dir, "b.raw")];
    await c.create(await bootableConfig(vmm.dir, { disks: [{ path: a, id: "data" }] }));
    assert.equal(await c.addDisk({ path: b }), null); // cold add: 204, no PciDeviceInfo
    const disks = (await c.info()).config.disks!;
    assert.equal(disks.length, 2);
    assert.equal(disks[1].path, b);
    assert.equal(disks[1].id, undefined); // ids are only generated at boot
    await assertVmmError(
      c.addDisk({ path: b, id: "other" }),
      AlreadyExistsError,
      409,
      `Duplicated device path: ${b}`,
    );
    await assertVmmError(
      c.addDisk({ path: `${vmm.dir}/c.raw`, id: "data" }),
      AlreadyExistsError,
      409,
      "Identifier data is not unique",
    );
    await assertVmmError(
      c.addDisk({ path: `${vmm.dir}/c.raw`, id: "__reserved" }),
      InvalidArgumentError,
      400,
      "Identifier __reserved is not invalid",
    );
    await c.resize({ desired_vcpus: 3 }); // > max_vcpus: accepted into the config...
    await assertVmmError(c.boot(), InvalidArgumentError, 400, "Max CPUs lower than boot CPUs");
    await c.resize({ desired_vcpus: 1 });
    await c.boot();
    assert.equal((await c.info()).state, "Running");
  },
);

contractTest(
  "running: CH defaults, generated ids and a device tree in vm.info",
  { boot: true },
  async () => {
    await using vmm = await startVmm();
    const c = vmm.client();
    const [a, b] = [await makeDisk(vmm.dir, "a.raw"), await makeDisk(vmm.dir, "b.raw")];
    const config = await bootableConfig(vmm.dir, { disks: [{ path: a }, { path: b }] });
    await c.create(config);
    await c.boot();
    const info = await c.info();
    assert.equal(info.state, "Running");
    const cfg = info.config;
    assert.deepEqual(
      [cfg.cpus?.boot_vcpus, cfg.cpus?.max_vcpus, cfg.cpus?.max_phys_bits, cfg.cpus?.nested],
      [1, 2, 46, true],
    );
    assert.equal(cfg.memory?.size, 128 * 1024 * 1024);
    assert.equal(cfg.memory?.thp, true);
    assert.equal(cfg.rng?.src, "/dev/urandom");
    assert.equal(cfg.serial?.mode, "Null");
    assert.equal(cfg.console?.mode, "Tty");
    assert.deepEqual(cfg.disks?.map((d) => d.id), ["_disk0", "_disk1"]);
    for (const d of cfg.disks!) {
      assert.equal(d.num_queues, 1);
      assert.equal(d.queue_size, 128);
      assert.equal(d.sparse, true);
      assert.equal(d.image_type, "Raw"); // detected at boot and written back
    }
    assert.ok(info.device_tree, "device_tree once booted");
    const bdfs = Object.values(info.device_tree).map((n) => n.pci_bdf).filter(Boolean);
    assert.ok(bdfs.length >= 3, "console, two disks, rng at least");
    assert.ok(bdfs.every((b) => /^0000:00:[0-9a-f]{2}\.0$/.test(b!)));
    assert.ok(info.memory_actual_size! > 0);
  },
);

contractTest("running: calls valid and invalid while booted", { boot: true }, async () => {
  await using vmm = await startVmm({ noShutdown: true });
  const c = vmm.client();
  await c.create(await bootableConfig(vmm.dir));
  await c.boot();
  await assertVmmError(c.create({}), FailedPreconditionError, 500, ALREADY);
  await assertVmmError(c.boot(), FailedPreconditionError, 500, ALREADY);
  await assertVmmError(
    c.resume(),
    FailedPreconditionError,
    500,
    /InvalidStateTransition\(Running, Running\)/,
  );
  await assertVmmError(
    c.snapshot(`file://${vmm.dir}`),
    FailedPreconditionError,
    500,
    "Trying to snapshot while VM is running",
  );
  await assertVmmError(
    c.restore({ source_url: `file://${vmm.dir}` }),
    FailedPreconditionError,
    500,
    ALREADY,
  );
  await c.nmi();
  assert.equal(typeof await c.counters(), "object");
  await c.reboot();
  assert.equal((await c.info()).state, "Running");
  await c.shutdown();
  const after = await c.info();
  assert.equal(after.state, "Created"); // not "Shutdown": the VM object is dropped
  assert.equal(after.device_tree, undefined);
  await c.boot(); // and the config boots again
  assert.equal((await c.info()).state, "Running");
  await c.delete(); // shuts the VM down first
  await assertVmmError(c.info(), NotFoundError, 404, NOT_CREATED);
  await c.ping(); // the process keeps running
});

contractTest("paused: the paused column of the table", { boot: true }, async () => {
  await using vmm = await startVmm();
  const c = vmm.client();
  const [root, extra] = [await makeDisk(vmm.dir, "root.raw"), await makeDisk(vmm.dir, "x.raw")];
  await c.create(await bootableConfig(vmm.dir, { disks: [{ path: root, id: "root" }] }));
  await c.boot();
  await c.pause();
  assert.equal((await c.info()).state, "Paused");
  // Hotplug, unplug and resizes are attempted on the paused VM.
  const hot = await c.addDisk({ path: extra, id: "extra" });
  assert.equal(hot?.id, "extra");
  await c.removeDevice("extra");
  await c.resizeDisk({ id: "root", desired_size: 128 * 1024 * 1024 });
  await c.resize({ desired_vcpus: 2 });
  assert.equal((await c.info()).state, "Paused");
  await assertVmmError(
    c.pause(),
    FailedPreconditionError,
    500,
    /InvalidStateTransition\(Paused, Paused\)/,
  );
  await assertVmmError(c.boot(), FailedPreconditionError, 500, ALREADY);
  await assertVmmError(c.create({}), FailedPreconditionError, 500, ALREADY);
  assert.equal(typeof await c.counters(), "object");
  await c.resume();
  assert.equal((await c.info()).state, "Running");
  await c.pause();
  await c.reboot(); // from Paused: ends Running
  assert.equal((await c.info()).state, "Running");
  await c.pause();
  await c.shutdown(); // from Paused: back to config only
  assert.equal((await c.info()).state, "Created");
  await c.boot();
  await c.pause();
  await c.delete();
  await assertVmmError(c.info(), NotFoundError, 404, NOT_CREATED);
});

contractTest("vmm.shutdown answers 200 and the process exits", {}, async () => {
  await using vmm = await startVmm();
  const c = vmm.client();
  await c.create(await bootableConfig(vmm.dir));
  await c.shutdownVmm();
  const exit = await vmm.waitExit();
  assert.equal(exit.code, 0);
  await assert.rejects(Deno.stat(vmm.socketPath), Deno.errors.NotFound);
  await Deno.stat(`${vmm.socketPath}.lock`); // the lock file is never deleted
});

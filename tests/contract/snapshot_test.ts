/**
 * Contract: snapshot only when Paused (three files in a `file://` directory), restore only
 * into an empty VMM (Paused unless `resume`), with the same config and device ids.
 */
import assert from "node:assert/strict";
import { FailedPreconditionError, InvalidArgumentError } from "../../shared/errors/errors.ts";
import { assertVmmError } from "../support/assert_vmm.ts";
import { contractTest } from "../support/contract.ts";
import { bootableConfig, makeDisk, startVmm } from "../support/emulator.ts";

contractTest("snapshot a paused VM, restore it into a fresh VMM", { boot: true }, async () => {
  await using source = await startVmm();
  const c = source.client();
  const disk = await makeDisk(source.dir, "root.raw");
  await c.create(await bootableConfig(source.dir, { disks: [{ path: disk }] }));
  await c.boot();
  const before = await c.info();
  const snapDir = `${source.dir}/snap`;
  await Deno.mkdir(snapDir);
  await assertVmmError(
    c.snapshot(`file://${snapDir}`),
    FailedPreconditionError,
    500,
    "Trying to snapshot while VM is running",
  );
  await c.pause();
  await c.snapshot(`file://${snapDir}`);
  const files = [...Deno.readDirSync(snapDir)].map((e) => e.name).sort();
  assert.deepEqual(files, ["config.json", "memory-ranges", "state.json"]);
  assert.equal(JSON.parse(await Deno.readTextFile(`${snapDir}/config.json`)).disks[0].id, "_disk0");
  assert.equal((await c.info()).state, "Paused"); // snapshot leaves it paused
  await c.shutdownVmm(); // frees the disk lock for the restored VM
  await source.waitExit();

  await using target = await startVmm();
  const t = target.client();
  await t.restore({ source_url: `file://${snapDir}` });
  const restored = await t.info();
  assert.equal(restored.state, "Paused");
  assert.deepEqual(restored.config.disks?.map((d) => [d.id, d.path]), [["_disk0", disk]]);
  assert.equal(restored.config.memory?.size, before.config.memory?.size);
  await assertVmmError(
    t.restore({ source_url: `file://${snapDir}` }),
    FailedPreconditionError,
    500,
    "VM is already created",
  );
  await t.resume();
  assert.equal((await t.info()).state, "Running");
  const names = await target.eventNames();
  assert.ok(names.includes("vm/restoring") && names.includes("vm/restored"), names.join());
});

contractTest("restore with resume: Running at once", { boot: true }, async () => {
  await using source = await startVmm();
  const c = source.client();
  await c.create(await bootableConfig(source.dir));
  await c.boot();
  await c.pause();
  await c.snapshot(`file://${source.dir}`);
  await using target = await startVmm();
  await target.client().restore({ source_url: `file://${source.dir}`, resume: true });
  assert.equal((await target.client().info()).state, "Running");
});

contractTest("snapshot and restore refuse bad URLs; a failed restore leaves the VMM empty", {
  boot: true,
}, async () => {
  await using vmm = await startVmm();
  const c = vmm.client();
  await c.create(await bootableConfig(vmm.dir));
  await c.boot();
  await c.pause();
  await assertVmmError(c.snapshot(`${vmm.dir}`), Error, 500);
  await assertVmmError(c.snapshot(`file://${vmm.dir}/missing`), Error, 500);
  await using empty = await startVmm();
  const e = empty.client();
  await assertVmmError(e.restore({ source_url: `file://${empty.dir}/missing` }), Error, 500);
  await assertVmmError(e.info(), Error, 404, "VM is not created");
  // Fds announced for a NIC must arrive with the request (SCM_RIGHTS); none did.
  await assertVmmError(
    e.restore({ source_url: `file://${vmm.dir}`, net_fds: [{ id: "_net0", num_fds: 1 }] }),
    InvalidArgumentError,
    400,
    "Bad Request",
  );
});

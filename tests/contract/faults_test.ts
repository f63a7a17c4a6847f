/**
 * Contract (emulator only): the fault-injection knobs and guest-initiated events: slow calls
 * block every other call (one request at a time across connections), a failing boot, a crash,
 * guest poweroff / reboot / panic, and the ACPI power button.
 */
import assert from "node:assert/strict";
import { InternalError, UnavailableError } from "../../shared/errors/errors.ts";
import { assertVmmError } from "../support/assert_vmm.ts";
import { contractTest } from "../support/contract.ts";
import { bootableConfig, startVmm } from "../support/emulator.ts";

const EMU = { emulatorOnly: true, boot: true };

contractTest(
  "a slow boot blocks every other call, even vmm.ping on another connection",
  EMU,
  async () => {
    await using vmm = await startVmm({ env: { QARAX_EMU_BOOT_DELAY_MS: "400" } });
    const a = vmm.client();
    const b = vmm.client();
    await a.create(await bootableConfig(vmm.dir));
    const t0 = performance.now();
    let bootDone = 0;
    const boot = a.boot().then(() => (bootDone = performance.now()));
    await new Promise((r) => setTimeout(r, 50)); // the boot is now being processed
    await b.ping();
    const pingDone = performance.now();
    await boot;
    assert.ok(pingDone >= bootDone, "ping answered only after the boot");
    assert.ok(pingDone - t0 >= 380, `ping waited for the boot (${pingDone - t0} ms)`);
  },
);

contractTest(
  "QARAX_EMU_FAIL_BOOT fails the next boot with a VMM error, then boots",
  EMU,
  async () => {
    await using vmm = await startVmm({ env: { QARAX_EMU_FAIL_BOOT: "1" } });
    const c = vmm.client();
    await c.create(await bootableConfig(vmm.dir));
    await assertVmmError(c.boot(), InternalError, 500, /Cannot allocate memory/);
    assert.equal((await c.info()).state, "Created");
    await c.boot();
    assert.equal((await c.info()).state, "Running");
  },
);

contractTest("a slow snapshot blocks vm.info until it is written", EMU, async () => {
  await using vmm = await startVmm({ env: { QARAX_EMU_SNAPSHOT_DELAY_MS: "300" } });
  const a = vmm.client();
  const b = vmm.client();
  await a.create(await bootableConfig(vmm.dir));
  await a.boot();
  await a.pause();
  const t0 = performance.now();
  const snap = a.snapshot(`file://${vmm.dir}`);
  await new Promise((r) => setTimeout(r, 30));
  await b.info();
  assert.ok(performance.now() - t0 >= 280);
  await snap;
});

contractTest(
  "QARAX_EMU_CRASH_ON kills the process mid-call; a new VMM reuses the socket path",
  EMU,
  async () => {
    await using vmm = await startVmm({ env: { QARAX_EMU_CRASH_ON: "vm.boot" } });
    const c = vmm.client();
    await c.create(await bootableConfig(vmm.dir));
    await assert.rejects(c.boot(), UnavailableError);
    const exit = await vmm.waitExit();
    assert.equal(exit.signal, "SIGKILL");
    await Deno.stat(vmm.socketPath); // a crash leaves the stale socket behind
    await using next = await startVmm({ dir: vmm.dir });
    assert.equal((await next.client().ping()).pid, next.pid);
  },
);

contractTest("guest poweroff (SIGUSR1) ends the process with CH's events", EMU, async () => {
  await using vmm = await startVmm();
  const c = vmm.client();
  await c.create(await bootableConfig(vmm.dir));
  await c.boot();
  vmm.kill("SIGUSR1");
  const exit = await vmm.waitExit();
  assert.equal(exit.code, 0);
  const names = await vmm.eventNames();
  assert.deepEqual(names.slice(-3), ["vm/shutdown", "vm/deleted", "vmm/shutdown"]);
  await assert.rejects(Deno.stat(vmm.socketPath), Deno.errors.NotFound);
});

contractTest("guest poweroff with --no-shutdown: VM back to Created, VMM stays", EMU, async () => {
  await using vmm = await startVmm({ noShutdown: true });
  const c = vmm.client();
  await c.create(await bootableConfig(vmm.dir));
  await c.boot();
  vmm.kill("SIGUSR1");
  await vmm.waitForEvents((e) => e.some((x) => x.source === "vm" && x.event === "shutdown"));
  assert.equal((await c.info()).state, "Created");
  await c.boot(); // and it can boot again
});

contractTest("the ACPI power button makes the guest power off", EMU, async () => {
  await using vmm = await startVmm({ noShutdown: true });
  const c = vmm.client();
  await c.create(await bootableConfig(vmm.dir));
  await c.boot();
  await c.pause();
  await c.powerButton(); // a paused guest cannot react yet
  await new Promise((r) => setTimeout(r, 150));
  assert.equal((await c.info()).state, "Paused");
  await c.resume();
  await vmm.waitForEvents((e) => e.some((x) => x.source === "vm" && x.event === "shutdown"));
  assert.equal((await c.info()).state, "Created");
});

contractTest("guest reboot (SIGUSR2) and panic (SIGPWR, with pvpanic)", EMU, async () => {
  await using vmm = await startVmm();
  const c = vmm.client();
  await c.create(await bootableConfig(vmm.dir, { pvpanic: true }));
  await c.boot();
  vmm.kill("SIGUSR2");
  await vmm.waitForEvents((e) => e.some((x) => x.event === "rebooted"));
  assert.equal((await c.info()).state, "Running");
  vmm.kill("SIGPWR");
  const events = await vmm.waitForEvents((e) => e.some((x) => x.source === "guest"));
  const panic = events.find((x) => x.source === "guest")!;
  assert.equal(panic.event, "panic");
  assert.deepEqual(panic.properties, { event: "panic" });
  assert.equal((await c.info()).state, "Running"); // a panicked guest hangs; the VMM stays
});

contractTest("a VMM that crashed between calls is reported unavailable", EMU, async () => {
  await using vmm = await startVmm();
  const c = vmm.client();
  await c.ping();
  vmm.kill("SIGKILL");
  await vmm.waitExit();
  await assert.rejects(c.ping(), UnavailableError);
  await assert.rejects(c.info(), UnavailableError);
});

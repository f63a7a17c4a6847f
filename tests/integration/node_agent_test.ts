/**
 * The node agent as a real process (`deno run -A node/main.ts`) driving emulator VMMs, through
 * gRPC: the lifecycle, WatchEvents, guest-initiated poweroff, VMM crashes, and re-adopting VMs
 * after the agent is killed (-9) or stopped (SIGTERM).
 */
import assert from "node:assert/strict";
import { ClientError, Status } from "nice-grpc";
import { node } from "../../shared/proto/mod.ts";
import { waitFor } from "../support/process.ts";
import { EventLog, TestAgent, vmmPidsUnder } from "../support/node_agent.ts";

const S = node.VmStatus;

async function rejectsWith(p: Promise<unknown>, code: Status, pattern?: RegExp): Promise<void> {
  await assert.rejects(p, (err) => {
    assert.ok(err instanceof ClientError, String(err));
    assert.equal(Status[err.code], Status[code], err.details);
    if (pattern) assert.match(err.details, pattern);
    return true;
  });
}

/** True when `expected` appears in `actual` in this order (other entries may come between). */
function inOrder(actual: string[], expected: string[]): boolean {
  let i = 0;
  for (const a of actual) if (a === expected[i]) i++;
  return i === expected.length;
}

function vmId(n: number): string {
  return `0c0ffee0-0000-4000-8000-${String(n).padStart(12, "0")}`;
}

async function status(agent: TestAgent, id: string): Promise<node.VmStatus> {
  return (await agent.vms.getVmInfo({ id })).status;
}

Deno.test("lifecycle through gRPC: create, start, pause, resume, reboot, stop, force-stop, delete", async () => {
  await using agent = await TestAgent.start();
  await agent.attachPool();
  const kernel = await agent.kernel();
  const events = new EventLog(agent.vms);
  try {
    const id = vmId(1);
    const spec = { vmId: id, name: "web-1", payload: { kernel, cmdline: "console=ttyS0" } };
    const created = await agent.vms.createVM(spec);
    assert.equal(created.status, S.VM_STATUS_CREATED);
    assert.ok(created.vmmPid > 0);
    assert.equal(created.config.cpus?.bootVcpus, 1);
    // Same spec again: the same VM; another spec under the same id: ALREADY_EXISTS.
    assert.equal((await agent.vms.createVM(spec)).vmmPid, created.vmmPid);
    await rejectsWith(
      agent.vms.createVM({ ...spec, memory: { size: 256 * 1024 * 1024 } }),
      Status.ALREADY_EXISTS,
    );
    await rejectsWith(agent.vms.pauseVM({ id }), Status.FAILED_PRECONDITION);

    await agent.vms.startVM({ id });
    assert.equal(await status(agent, id), S.VM_STATUS_RUNNING);
    await agent.vms.startVM({ id }); // already running: fine
    await agent.vms.pauseVM({ id });
    assert.equal(await status(agent, id), S.VM_STATUS_PAUSED);
    await agent.vms.pauseVM({ id });
    await rejectsWith(agent.vms.startVM({ id }), Status.FAILED_PRECONDITION, /paused/);
    await agent.vms.resumeVM({ id });
    assert.equal(await status(agent, id), S.VM_STATUS_RUNNING);
    await agent.vms.rebootVM({ id });
    assert.equal(await status(agent, id), S.VM_STATUS_RUNNING);
    const info = await agent.vms.getVmInfo({ id });
    assert.equal(info.memoryActualSize, 512 * 1024 * 1024);

    // The emulated guest powers off ~50 ms after the ACPI power button.
    const t0 = Date.now();
    await agent.vms.stopVM({ id, timeoutMs: 5_000 });
    assert.ok(Date.now() - t0 < 4_000, "the guest powered off; no hard shutdown needed");
    assert.equal(await status(agent, id), S.VM_STATUS_SHUTDOWN);
    await agent.vms.stopVM({ id }); // already stopped: fine
    await agent.vms.startVM({ id });
    await agent.vms.forceStopVM({ id });
    assert.equal(await status(agent, id), S.VM_STATUS_SHUTDOWN);
    await agent.vms.forceStopVM({ id });

    const list = await agent.vms.listVms({});
    assert.deepEqual(list.vms.map((v) => [v.config.vmId, v.status]), [[id, S.VM_STATUS_SHUTDOWN]]);
    assert.equal((await agent.vms.getNodeInfo({})).vmCount, 1);
    assert.ok((await agent.vms.getNodeInfo({})).cloudHypervisorEmulated);

    await agent.vms.deleteVM({ id });
    await rejectsWith(agent.vms.getVmInfo({ id }), Status.NOT_FOUND);
    await agent.vms.deleteVM({ id }); // deleting a deleted VM succeeds
    assert.deepEqual(vmmPidsUnder(agent.dir), [], "no VMM left behind");
    await assert.rejects(Deno.stat(`${agent.runtimeDir}/${id}`), Deno.errors.NotFound);
    await rejectsWith(agent.vms.startVM({ id }), Status.NOT_FOUND);
    await rejectsWith(agent.vms.startVM({ id: "../etc" }), Status.INVALID_ARGUMENT);

    await events.waitFor((e) => e.vmId === id && e.event === "deleted", "the deleted event");
    const names = events.names(id);
    assert.ok(
      inOrder(names, [
        "vmm/starting",
        "state:created",
        "vm/booting",
        "vm/booted",
        "state:running",
        "vm/pausing",
        "vm/paused",
        "state:paused",
        "vm/resuming",
        "vm/resumed",
        "state:running",
        "vm/rebooting",
        "vm/rebooted",
        "vm/shutdown",
        "state:shutdown",
        "vm/booted",
        "state:running",
        "vm/shutdown",
        "state:shutdown",
        "state:deleted",
      ]),
      names.join(" "),
    );
    const seqs = events.events.map((e) => Number(e.sequence));
    assert.deepEqual(seqs, seqs.toSorted((a, b) => a - b), "numbered in order");
    assert.ok(events.events.every((e) => e.time && e.incarnation));
  } finally {
    await events.close();
  }
});

Deno.test("guest poweroff and a VMM crash show in WatchEvents and GetVmInfo; StartVM recovers", async () => {
  await using agent = await TestAgent.start();
  await agent.attachPool();
  const kernel = await agent.kernel();
  const id = vmId(2);
  const events = new EventLog(agent.vms, { vmId: id });
  try {
    await agent.vms.createVM({ vmId: id, payload: { kernel } });
    await agent.vms.startVM({ id });
    const pid = (await agent.vms.getVmInfo({ id })).vmmPid;

    Deno.kill(pid, "SIGUSR1"); // the emulated guest powers itself off
    const off = await events.waitFor((e) => e.event === "shutdown", "vm/shutdown");
    assert.equal(off.kind, node.VmEventKind.VM_EVENT_KIND_VMM);
    assert.equal(off.status, S.VM_STATUS_SHUTDOWN);
    await events.waitFor(
      (e) => e.kind === node.VmEventKind.VM_EVENT_KIND_STATE_CHANGED && e.event === "shutdown",
      "state:shutdown",
    );
    const after = await agent.vms.getVmInfo({ id });
    assert.equal(after.status, S.VM_STATUS_SHUTDOWN);
    assert.equal(after.vmmPid, pid, "--no-shutdown: the VMM stays, holding the VM");

    await agent.vms.startVM({ id });
    Deno.kill(pid, "SIGKILL");
    const exit = await events.waitFor(
      (e) => e.kind === node.VmEventKind.VM_EVENT_KIND_PROCESS_EXIT,
      "the process exit",
    );
    assert.equal(exit.status, S.VM_STATUS_CRASHED);
    assert.equal(exit.properties.signal, "SIGKILL");
    await events.waitFor((e) => e.event === "crashed", "state:crashed");
    const crashed = await agent.vms.getVmInfo({ id });
    assert.equal(crashed.status, S.VM_STATUS_CRASHED);
    assert.match(crashed.reason, /killed by SIGKILL/);
    assert.equal(crashed.vmmPid, 0);
    await rejectsWith(agent.vms.pauseVM({ id }), Status.FAILED_PRECONDITION, /no running VMM/);

    // StartVM recreates the VMM from the persisted spec.
    await agent.vms.startVM({ id });
    const back = await agent.vms.getVmInfo({ id });
    assert.equal(back.status, S.VM_STATUS_RUNNING);
    assert.notEqual(back.vmmPid, pid);
    assert.equal(back.reason, "");
    await agent.vms.deleteVM({ id });
    assert.deepEqual(vmmPidsUnder(agent.dir), []);
  } finally {
    await events.close();
  }
});

Deno.test("restart: VMs are re-adopted after SIGTERM and after kill -9, with what happened meanwhile", async () => {
  await using agent = await TestAgent.start();
  await agent.attachPool();
  const kernel = await agent.kernel();
  const [running, paused, killed, created, poweredOff] = [1, 2, 3, 4, 5].map((n) => vmId(10 + n));
  for (const id of [running, paused, killed, created, poweredOff]) {
    await agent.vms.createVM({ vmId: id, payload: { kernel } });
  }
  for (const id of [running, paused, killed, poweredOff]) await agent.vms.startVM({ id });
  await agent.vms.pauseVM({ id: paused });
  const pids = new Map<string, number>();
  for (const v of (await agent.vms.listVms({})).vms) pids.set(v.config.vmId, v.vmmPid);

  // A graceful stop leaves every VM running; the next agent adopts them.
  const term = await agent.terminate();
  assert.equal(term?.code, 0);
  for (const pid of pids.values()) assert.ok(vmmPidsUnder(agent.dir).includes(pid));
  await agent.launch();
  assert.equal(await status(agent, running), S.VM_STATUS_RUNNING);
  assert.equal((await agent.vms.getVmInfo({ id: running })).vmmPid, pids.get(running));

  const before = new EventLog(agent.vms);
  await agent.vms.rebootVM({ id: running });
  const last = await before.waitFor((e) => e.event === "rebooted", "rebooted");
  await before.close();
  const dir = `${agent.runtimeDir}/${running}`;
  await waitFor(
    async () => {
      const size = (await Deno.stat(`${dir}/events`)).size;
      return Number(await Deno.readTextFile(`${dir}/events.offset`)) >= size - 2;
    },
    5_000,
    "the event offset to be saved",
  );

  // kill -9 the agent; while it is down, one VMM dies and one guest powers off.
  await agent.kill9();
  Deno.kill(pids.get(killed)!, "SIGKILL");
  Deno.kill(pids.get(poweredOff)!, "SIGUSR1");
  await waitFor(
    async () => {
      const text = await Deno.readTextFile(`${agent.runtimeDir}/${poweredOff}/events`);
      return text.includes('"shutdown"');
    },
    5_000,
    "the guest poweroff",
  );
  await agent.launch();

  const byId = new Map((await agent.vms.listVms({})).vms.map((v) => [v.config.vmId, v]));
  assert.equal(byId.get(running)?.status, S.VM_STATUS_RUNNING);
  assert.equal(byId.get(running)?.vmmPid, pids.get(running), "the same VMM, adopted");
  assert.equal(byId.get(paused)?.status, S.VM_STATUS_PAUSED);
  assert.equal(byId.get(created)?.status, S.VM_STATUS_CREATED);
  assert.equal(byId.get(poweredOff)?.status, S.VM_STATUS_SHUTDOWN);
  assert.equal(byId.get(killed)?.status, S.VM_STATUS_CRASHED);
  assert.match(byId.get(killed)!.reason, /exited while the agent was not running/);
  assert.equal(byId.get(killed)?.vmmPid, 0);

  // Resuming from the last event seen before the crash delivers what happened meanwhile.
  const resumed = new EventLog(agent.vms, {
    incarnation: last.incarnation,
    afterSequence: last.sequence,
  });
  try {
    const off = await resumed.waitFor(
      (e) => e.vmId === poweredOff && e.event === "shutdown" && e.source === "vm",
      "the poweroff that happened while the agent was down",
    );
    assert.notEqual(off.incarnation, last.incarnation);
    await resumed.waitFor(
      (e) => e.vmId === killed && e.kind === node.VmEventKind.VM_EVENT_KIND_PROCESS_EXIT,
      "the VMM death",
    );
    assert.ok(
      !resumed.events.some((e) => e.vmId === running && e.event === "rebooted"),
      "events the client saw before are not sent again",
    );
  } finally {
    await resumed.close();
  }

  // Adopted VMs are fully manageable.
  await agent.vms.stopVM({ id: running, timeoutMs: 5_000 });
  assert.equal(await status(agent, running), S.VM_STATUS_SHUTDOWN);
  await agent.vms.resumeVM({ id: paused });
  await agent.vms.startVM({ id: killed });
  assert.equal(await status(agent, killed), S.VM_STATUS_RUNNING);
  for (const id of pids.keys()) await agent.vms.deleteVM({ id });
  assert.deepEqual(vmmPidsUnder(agent.dir), [], "no VMM left behind");
});

Deno.test("StopVM shuts down hard when the guest ignores the power button", async () => {
  await using agent = await TestAgent.start({ env: { QARAX_EMU_POWEROFF_DELAY_MS: "60000" } });
  await agent.attachPool();
  const kernel = await agent.kernel();
  const id = vmId(30);
  await agent.vms.createVM({ vmId: id, payload: { kernel } });
  await agent.vms.startVM({ id });
  const t0 = Date.now();
  await agent.vms.stopVM({ id, timeoutMs: 400 });
  const took = Date.now() - t0;
  assert.ok(took >= 400, `waited the grace period (${took} ms)`);
  assert.ok(took < 5_000, `then shut down at once (${took} ms)`);
  assert.equal(await status(agent, id), S.VM_STATUS_SHUTDOWN);
  // Reservations belong to an attached network.
  await rejectsWith(
    agent.vms.setDhcpReservations({ bridgeName: "br0", reservations: [] }),
    Status.FAILED_PRECONDITION,
  );
  await agent.vms.deleteVM({ id });
});

Deno.test("ForceStopVM interrupts a hung boot and kills the VMM that does not answer", async () => {
  await using agent = await TestAgent.start({
    env: { QARAX_EMU_BOOT_DELAY_MS: "60000", QARAX_NODE__FORCE_STOP_TIMEOUT_MS: "500" },
  });
  await agent.attachPool();
  const kernel = await agent.kernel();
  const id = vmId(31);
  const created = await agent.vms.createVM({ vmId: id, payload: { kernel } });
  const start = agent.vms.startVM({ id }).then(() => null, (err) => err);
  await new Promise((r) => setTimeout(r, 300));
  // The VMM is busy booting: reads fall back to the node's tracked state instead of hanging.
  assert.equal(await status(agent, id), S.VM_STATUS_CREATED);
  const t0 = Date.now();
  await agent.vms.forceStopVM({ id });
  assert.ok(Date.now() - t0 < 5_000);
  const err = await start;
  assert.ok(err instanceof ClientError && err.code === Status.CANCELLED, String(err));
  const info = await agent.vms.getVmInfo({ id });
  assert.equal(info.status, S.VM_STATUS_CREATED, "it never ran");
  assert.equal(info.vmmPid, 0);
  assert.deepEqual(vmmPidsUnder(agent.dir), [], `VMM ${created.vmmPid} was killed`);
  await agent.vms.deleteVM({ id });
});

import assert from "node:assert/strict";
import type { VmConfig } from "../vmm/types.ts";
import { ApiFailure } from "./api_error.ts";
import { EventMonitor } from "./event_monitor.ts";
import { NO_FAULTS } from "./faults.ts";
import { ChLog } from "./log.ts";
import * as schema from "./schema.ts";
import { normalize } from "./serde.ts";
import { Vmm } from "./vmm.ts";

/** An in-process VMM writing its events and log into a temp dir. */
async function withVmm(fn: (vmm: Vmm, dir: string, events: () => string[]) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "qarax-vmm-unit-" });
  const monitor = new EventMonitor({ path: `${dir}/events` });
  const log = new ChLog(0, `${dir}/log`);
  const exits: number[] = [];
  const vmm = new Vmm({
    events: monitor,
    log,
    faults: { ...NO_FAULTS, crashOn: new Set() },
    noShutdown: true,
    identity: { buildVersion: "v0.0-test", version: "0.0.0", features: [] },
    exit: (code) => exits.push(code),
  });
  const events = () =>
    Deno.readTextFileSync(`${dir}/events`).split("\n\n").filter((r) => r).map((r) => {
      const e = JSON.parse(r);
      return `${e.source}/${e.event}`;
    }).filter((n) => !n.startsWith("virtio-device"));
  try {
    await fn(vmm, dir, events);
  } finally {
    vmm.delete(); // releases timers, locks, consoles
    monitor.close();
    log.close();
    await Deno.remove(dir, { recursive: true });
  }
  assert.deepEqual(exits, [], "--no-shutdown: never exits");
}

const config = (dir: string, extra: Record<string, unknown> = {}) => {
  Deno.writeTextFileSync(`${dir}/k`, "kernel");
  return normalize({ payload: { kernel: `${dir}/k` }, ...extra }, schema.VmConfig) as VmConfig;
};

function failure(fn: () => unknown): ApiFailure {
  try {
    fn();
  } catch (err) {
    if (err instanceof ApiFailure) return err;
    throw err;
  }
  assert.fail("expected an ApiFailure");
}

Deno.test("two-level state: config stored, then a VM object that can go away again", async () => {
  await withVmm(async (vmm, dir, events) => {
    assert.equal(failure(() => vmm.info()).status, 404);
    vmm.create(config(dir));
    assert.equal(vmm.info().state, "Created");
    await vmm.boot();
    assert.equal(vmm.info().state, "Running");
    vmm.pause();
    assert.deepEqual(
      failure(() => vmm.pause()).chain.at(-1),
      "Invalid transition: InvalidStateTransition(Paused, Paused)",
    );
    vmm.shutdown();
    assert.equal(vmm.info().state, "Created");
    assert.equal(failure(() => vmm.shutdown()).status, 500);
    vmm.delete();
    vmm.delete();
    assert.deepEqual(events(), [
      "vm/booting",
      "vm/booted",
      "vm/pausing",
      "vm/paused",
      "vm/pausing",
      "vm/shutdown",
      "vm/deleted",
    ]);
  });
});

Deno.test("cold add keeps the device id-less; hot add generates an id and a BDF", async () => {
  await withVmm(async (vmm, dir) => {
    vmm.create(config(dir));
    Deno.writeFileSync(`${dir}/a.raw`, new Uint8Array(1024));
    Deno.writeFileSync(`${dir}/b.raw`, new Uint8Array(1024));
    assert.equal(
      await vmm.add(
        "disk",
        normalize({ path: `${dir}/a.raw` }, schema.DiskConfig) as Record<string, unknown>,
      ),
      null,
    );
    assert.equal(vmm.config!.disks![0].id, undefined);
    await vmm.boot();
    assert.equal(vmm.config!.disks![0].id, "_disk0");
    const hot = await vmm.add(
      "disk",
      normalize({ path: `${dir}/b.raw` }, schema.DiskConfig) as Record<string, unknown>,
    );
    assert.deepEqual(hot, { id: "_disk1", bdf: "0000:00:04.0" });
  });
});

Deno.test("guest poweroff with --no-shutdown leaves the config, reboot keeps running", async () => {
  await withVmm(async (vmm, dir, events) => {
    vmm.create(config(dir));
    await vmm.boot();
    await vmm.guestReboot();
    assert.equal(vmm.info().state, "Running");
    vmm.guestPoweroff();
    assert.equal(vmm.info().state, "Created");
    assert.deepEqual(events().slice(-3), ["vm/rebooting", "vm/rebooted", "vm/shutdown"]);
  });
});

Deno.test("the control loop runs one action at a time, in arrival order", async () => {
  await withVmm(async (vmm) => {
    const order: string[] = [];
    const slow = vmm.exclusive(async () => {
      await new Promise((r) => setTimeout(r, 30));
      order.push("slow");
    });
    const fast = vmm.exclusive(() => order.push("fast"));
    await Promise.all([slow, fast]);
    assert.deepEqual(order, ["slow", "fast"]);
  });
});

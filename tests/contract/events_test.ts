/**
 * Contract: the `--event-monitor` stream: CH's exact record format (pretty JSON, 2-space
 * indent, blank line between records), monotonic timestamps from VMM start, event names and
 * their order for each lifecycle call, and live tailing through the client's parser.
 */
import assert from "node:assert/strict";
import { eventName, tailEvents } from "../../node/vmm/events.ts";
import type { VmmEvent } from "../../node/vmm/types.ts";
import { contractTest } from "../support/contract.ts";
import { bootableConfig, makeDisk, startVmm } from "../support/emulator.ts";

/** Event names of `events` after the first occurrence of `from`, without device noise. */
function namesAfter(events: VmmEvent[], from: number): string[] {
  return events.slice(from).filter((e) => e.source !== "virtio-device").map(eventName);
}

contractTest("records are pretty JSON objects separated by a blank line", {}, async () => {
  await using vmm = await startVmm();
  const c = vmm.client();
  await c.create({});
  await c.delete();
  const events = await vmm.waitForEvents((e) => e.some((x) => x.event === "deleted"));
  const text = await Deno.readTextFile(vmm.eventsPath);
  const expected = events.map((e) => JSON.stringify(e, null, 2) + "\n\n").join("");
  assert.equal(text, expected);
  const first = text.slice(0, text.indexOf("\n\n") + 2).replace(/\d+/g, "N");
  assert.equal(
    first,
    '{\n  "timestamp": {\n    "secs": N,\n    "nanos": N\n  },\n  "source": "vmm",\n' +
      '  "event": "starting",\n  "properties": null\n}\n\n',
  );
});

contractTest("timestamps are monotonic, counted from VMM start", {}, async () => {
  const started = performance.now();
  await using vmm = await startVmm();
  const c = vmm.client();
  for (let i = 0; i < 5; i++) {
    await c.create({});
    await c.delete();
  }
  const events = await vmm.waitForEvents((e) =>
    e.filter((x) => x.event === "deleted").length === 5
  );
  const ms = events.map((e) => e.timestamp.secs * 1000 + e.timestamp.nanos / 1e6);
  for (let i = 1; i < ms.length; i++) assert.ok(ms[i] >= ms[i - 1], `event ${i} went back in time`);
  assert.ok(events.every((e) => e.timestamp.nanos >= 0 && e.timestamp.nanos < 1e9));
  // Monotonic time since start, not wall-clock: smaller than the time this test has run.
  assert.ok(ms.at(-1)! <= performance.now() - started + 1);
});

contractTest("lifecycle calls emit CH's events in CH's order", { boot: true }, async () => {
  await using vmm = await startVmm();
  const c = vmm.client();
  await c.create(await bootableConfig(vmm.dir));
  const mark = async () => (await vmm.events()).length;
  const from = await mark();
  await c.boot();
  await c.pause();
  await c.resume();
  await c.reboot();
  await c.shutdown();
  await c.boot();
  await c.delete();
  await c.shutdownVmm();
  await vmm.waitExit();
  const events = await vmm.events();
  assert.equal(eventName(events[0]), "vmm/starting");
  assert.deepEqual(namesAfter(events, from), [
    "vm/booting",
    "vm/booted",
    "vm/pausing",
    "vm/paused",
    "vm/resuming",
    "vm/resumed",
    "vm/rebooting",
    "vm/rebooted",
    "vm/shutdown",
    "vm/booting",
    "vm/booted",
    "vm/shutdown",
    "vm/deleted",
    "vmm/shutdown",
  ]);
});

contractTest("failed calls still emit what CH emits before failing", {}, async () => {
  await using vmm = await startVmm();
  const c = vmm.client();
  const from = (await vmm.events()).length;
  await c.boot().catch(() => {}); // vm/booting is emitted before the config check
  await c.reboot().catch(() => {}); // vm/rebooting likewise
  await c.pause().catch(() => {}); // nothing: refused before pausing starts
  await c.shutdownVmm(); // no config: no vm/deleted
  await vmm.waitExit();
  assert.deepEqual(namesAfter(await vmm.events(), from), [
    "vm/booting",
    "vm/rebooting",
    "vmm/shutdown",
  ]);
});

contractTest("each virtio device reports activated after vm/booted", { boot: true }, async () => {
  await using vmm = await startVmm();
  const c = vmm.client();
  const disk = await makeDisk(vmm.dir, "root.raw");
  await c.create(await bootableConfig(vmm.dir, { disks: [{ path: disk, id: "root" }] }));
  await c.boot();
  const events = await vmm.waitForEvents((e) =>
    e.some((x) => x.event === "activated" && x.properties?.id === "root")
  );
  const booted = events.findIndex((e) => eventName(e) === "vm/booted");
  const activated = events.findIndex((e) => e.properties?.id === "root");
  assert.ok(booted >= 0 && activated > booted);
  assert.deepEqual(events[activated].properties, { id: "root" });
  assert.equal(events[activated].source, "virtio-device");
});

contractTest("tailEvents follows the monitor file as events are appended", {}, async () => {
  await using vmm = await startVmm();
  const c = vmm.client();
  const ac = new AbortController();
  const seen: string[] = [];
  const tail = (async () => {
    for await (const e of tailEvents(vmm.eventsPath, { signal: ac.signal, pollMs: 10 })) {
      seen.push(eventName(e));
      if (e.event === "deleted") ac.abort();
    }
  })();
  await c.create({});
  await c.delete();
  const timer = setTimeout(() => ac.abort(), 5_000);
  await tail;
  clearTimeout(timer);
  assert.deepEqual(seen, ["vmm/starting", "vm/deleted"]);
});

import assert from "node:assert/strict";
import { statusAfterEvent, statusFromChState, statusWithoutVmm } from "./status.ts";

const event = (source: string, name: string) => ({
  timestamp: { secs: 0, nanos: 0 },
  source,
  event: name,
  properties: null,
});

Deno.test("CH's Created means created before the first boot, shutdown after it", () => {
  assert.equal(statusFromChState("Created", false), "created");
  assert.equal(statusFromChState("Created", true), "shutdown");
  assert.equal(statusFromChState("Running", true), "running");
  assert.equal(statusFromChState("Paused", true), "paused");
  assert.equal(statusFromChState("Shutdown", true), "shutdown");
});

Deno.test("events move the status; others leave it", () => {
  assert.equal(statusAfterEvent(event("vm", "booted")), "running");
  assert.equal(statusAfterEvent(event("vm", "paused")), "paused");
  assert.equal(statusAfterEvent(event("vm", "resumed")), "running");
  assert.equal(statusAfterEvent(event("vm", "rebooted")), "running");
  assert.equal(statusAfterEvent(event("vm", "shutdown")), "shutdown");
  assert.equal(statusAfterEvent(event("vm", "restored")), "paused");
  assert.equal(statusAfterEvent(event("vm", "booting")), undefined);
  assert.equal(statusAfterEvent(event("vmm", "shutdown")), undefined);
  assert.equal(statusAfterEvent(event("virtio-device", "activated")), undefined);
});

Deno.test("a VMM that is gone: crashed unless the node ended it", () => {
  assert.equal(statusWithoutVmm(false, true), "crashed");
  assert.equal(statusWithoutVmm(false, false), "crashed");
  assert.equal(statusWithoutVmm(true, true), "shutdown");
  assert.equal(statusWithoutVmm(true, false), "created");
});

import assert from "node:assert/strict";
import { EventMonitor, formatEvent } from "./event_monitor.ts";

Deno.test("records are serde_json pretty output plus a blank line", () => {
  assert.equal(
    formatEvent({ secs: 1, nanos: 5 }, "vm", "device-removed", { id: "_disk0" }),
    '{\n  "timestamp": {\n    "secs": 1,\n    "nanos": 5\n  },\n  "source": "vm",\n  "event": "device-removed",\n' +
      '  "properties": {\n    "id": "_disk0"\n  }\n}\n\n',
  );
});

Deno.test("the monitor truncates its file and stamps monotonic times", async () => {
  const dir = await Deno.makeTempDir({ prefix: "qarax-monitor-" });
  try {
    const path = `${dir}/events`;
    await Deno.writeTextFile(path, "old content");
    const m = new EventMonitor({ path }, performance.now() - 1500);
    m.emit("vmm", "starting");
    m.emit("vm", "booted");
    m.close();
    const records = (await Deno.readTextFile(path)).split("\n\n").filter((r) => r).map((r) =>
      JSON.parse(r)
    );
    assert.deepEqual(records.map((r) => r.event), ["starting", "booted"]);
    assert.equal(records[0].timestamp.secs, 1);
    const t = records.map((r) => r.timestamp.secs * 1e9 + r.timestamp.nanos);
    assert.ok(t[1] >= t[0]);
    new EventMonitor(null).emit("vm", "dropped"); // no target: nothing happens
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

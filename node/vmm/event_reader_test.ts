import assert from "node:assert/strict";
import { formatEvent } from "../emulator/event_monitor.ts";
import { EventFileReader } from "./event_reader.ts";

function record(event: string, props: Record<string, string> | null = null): string {
  return formatEvent({ secs: 1, nanos: 5 }, "vm", event, props);
}

Deno.test("reads completed events, keeps a half-written one for later, resumes at an offset", async () => {
  const dir = await Deno.makeTempDir({ prefix: "qarax-evr-" });
  try {
    const path = `${dir}/events`;
    const reader = new EventFileReader(path);
    assert.deepEqual(await reader.read(), [], "no file yet: nothing");
    const first = record("booting") + record("booted", { note: "grüße" });
    const third = record("paused");
    await Deno.writeTextFile(path, first + third.slice(0, 20));
    assert.deepEqual((await reader.read()).map((e) => e.event), ["booting", "booted"]);
    // Consumed up to the end of the last complete record.
    assert.equal(reader.offset, new TextEncoder().encode(first.trimEnd()).length);
    assert.deepEqual(await reader.read(), [], "the partial record is not consumed");
    await Deno.writeTextFile(path, third.slice(20), { append: true });
    const got = await reader.read();
    assert.deepEqual(got.map((e) => e.event), ["paused"]);
    // A new reader at the saved offset (a restarted agent) sees only what came after.
    await Deno.writeTextFile(path, record("resumed"), { append: true });
    const resumed = new EventFileReader(path, reader.offset);
    assert.deepEqual((await resumed.read()).map((e) => e.event), ["resumed"]);
    // A truncated file (a new VMM) is read from its start.
    await Deno.writeTextFile(path, record("booting"));
    assert.deepEqual((await resumed.read()).map((e) => e.event), ["booting"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

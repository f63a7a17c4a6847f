import assert from "node:assert/strict";
import { InternalError } from "../../shared/errors/errors.ts";
import {
  eventName,
  EventStreamParser,
  eventTimeMs,
  JsonStreamParser,
  parseEvents,
  tailEvents,
} from "./events.ts";

const record = (
  secs: number,
  nanos: number,
  source: string,
  event: string,
  props: Record<string, string> | null = null,
) =>
  JSON.stringify({ timestamp: { secs, nanos }, source, event, properties: props }, null, 2) +
  "\n\n";

const STREAM = record(0, 5, "vmm", "starting") + record(1, 250_000_000, "vm", "booted") +
  record(1, 300_000_000, "virtio-device", "activated", { id: '_disk0 "q" {x}' }) +
  record(2, 0, "vm", "paused", { note: "héllo ✓" });

Deno.test("a whole stream parses into events in order", () => {
  const events = parseEvents(STREAM);
  assert.deepEqual(events.map(eventName), [
    "vmm/starting",
    "vm/booted",
    "virtio-device/activated",
    "vm/paused",
  ]);
  assert.equal(events[2].properties?.id, '_disk0 "q" {x}');
  assert.equal(eventTimeMs(events[1]), 1250);
});

Deno.test("any split of the bytes yields the same events (incremental, multi-byte safe)", () => {
  const bytes = new TextEncoder().encode(STREAM);
  const expected = parseEvents(STREAM);
  for (let cut = 1; cut < bytes.length; cut += 7) {
    const p = new EventStreamParser();
    const got = [...p.push(bytes.subarray(0, cut)), ...p.push(bytes.subarray(cut))];
    assert.deepEqual(got, expected, `split at ${cut}`);
  }
  const p = new EventStreamParser();
  const one: ReturnType<EventStreamParser["push"]> = [];
  for (const b of bytes) one.push(...p.push(new Uint8Array([b])));
  assert.deepEqual(one, expected);
});

Deno.test("values may be compact or pretty, and garbage between values is refused", () => {
  const p = new JsonStreamParser();
  assert.deepEqual(p.push('{"a":[1,{"b":"}"}]}{"c":2}  \n'), [{ a: [1, { b: "}" }] }, { c: 2 }]);
  assert.equal(p.pending, "");
  assert.deepEqual(p.push('{"d":'), []);
  assert.equal(p.pending, '{"d":');
  assert.deepEqual(p.push("3}"), [{ d: 3 }]);
  assert.throws(() => new JsonStreamParser().push("x{}"), InternalError);
  assert.throws(() => new EventStreamParser().push('{"not":"an event"}'), InternalError);
});

Deno.test("tailEvents waits for the file, then yields appended events until aborted", async () => {
  const dir = await Deno.makeTempDir({ prefix: "qarax-events-" });
  const path = `${dir}/events`;
  const ac = new AbortController();
  const got: string[] = [];
  try {
    const tail = (async () => {
      for await (const e of tailEvents(path, { signal: ac.signal, pollMs: 5 })) {
        got.push(eventName(e));
        if (got.length === 3) ac.abort();
      }
    })();
    await new Promise((r) => setTimeout(r, 20));
    const text = record(0, 1, "vmm", "starting") + record(0, 2, "vm", "booting") +
      record(0, 3, "vm", "booted");
    await Deno.writeTextFile(path, text.slice(0, 70));
    await new Promise((r) => setTimeout(r, 20));
    await Deno.writeTextFile(path, text.slice(70), { append: true });
    const timer = setTimeout(() => ac.abort(), 3000);
    await tail;
    clearTimeout(timer);
    assert.deepEqual(got, ["vmm/starting", "vm/booting", "vm/booted"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

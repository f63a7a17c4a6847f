import assert from "node:assert/strict";
import { KeyedSerialQueue, SerialQueue } from "./serial.ts";

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test("a serial queue never overlaps work and survives failures", async () => {
  const q = new SerialQueue();
  const log: string[] = [];
  const job = (name: string, ms: number, fail = false) =>
    q.run(async () => {
      log.push(`start ${name}`);
      await tick(ms);
      log.push(`end ${name}`);
      if (fail) throw new Error(name);
      return name;
    });
  const results = await Promise.allSettled([job("a", 10), job("b", 1, true), job("c", 1)]);
  assert.deepEqual(log, ["start a", "end a", "start b", "end b", "start c", "end c"]);
  assert.deepEqual(results.map((r) => r.status), ["fulfilled", "rejected", "fulfilled"]);
});

Deno.test("keyed queues serialize per key, run keys in parallel, and forget idle keys", async () => {
  const q = new KeyedSerialQueue();
  const log: string[] = [];
  const job = (key: string, name: string, ms: number) =>
    q.run(key, async () => {
      log.push(`start ${name}`);
      await tick(ms);
      log.push(`end ${name}`);
    });
  await Promise.all([job("x", "x1", 20), job("x", "x2", 1), job("y", "y1", 1)]);
  assert.ok(log.indexOf("start y1") < log.indexOf("end x1"), "other keys do not wait");
  assert.ok(log.indexOf("end x1") < log.indexOf("start x2"), "same key waits");
  await tick(0);
  assert.equal(q.size, 0);
});

import assert from "node:assert/strict";
import { PushChannel } from "./channel.ts";

Deno.test("push channel: values in order, pushed before and while reading, then the end", async () => {
  const ch = new PushChannel<number>();
  ch.push(1);
  const seen: number[] = [];
  const reader = (async () => {
    for await (const v of ch) seen.push(v);
  })();
  await new Promise((r) => setTimeout(r, 5));
  ch.push(2);
  ch.push(3);
  ch.end();
  ch.push(4); // after the end: dropped
  await reader;
  assert.deepEqual(seen, [1, 2, 3]);
  assert.equal(ch.ended, true);
});

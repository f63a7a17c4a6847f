import assert from "node:assert/strict";
import { ResourceExhaustedError } from "../../shared/errors/errors.ts";
import { EventBus, type NewVmEvent } from "./bus.ts";

function ev(vmId: string, event: string): NewVmEvent {
  return {
    vmId,
    time: new Date(),
    kind: "vmm",
    source: "vm",
    event,
    properties: {},
    status: "running",
    message: "",
  };
}

async function take<T>(it: AsyncIterator<T>, n: number): Promise<T[]> {
  const out: T[] = [];
  while (out.length < n) {
    const r = await it.next();
    if (r.done) break;
    out.push(r.value);
  }
  return out;
}

Deno.test("subscribers get live events in order, filtered by VM; abort ends the stream", async () => {
  const bus = new EventBus();
  const ac = new AbortController();
  const all = bus.subscribe({ signal: ac.signal });
  const onlyA = bus.subscribe({ vmId: "a", signal: ac.signal });
  const first = all.next(); // registers the subscriber
  const firstA = onlyA.next();
  bus.publish(ev("a", "booting"));
  bus.publish(ev("b", "booting"));
  bus.publish(ev("a", "booted"));
  assert.equal((await first).value?.sequence, 1);
  assert.deepEqual((await take(all, 2)).map((e) => `${e.vmId}/${e.event}`), [
    "b/booting",
    "a/booted",
  ]);
  assert.equal((await firstA).value?.event, "booting");
  assert.equal((await onlyA.next()).value?.event, "booted");
  assert.equal(bus.subscriberCount, 2);
  const pending = all.next();
  ac.abort();
  assert.equal((await pending).done, true);
  assert.equal((await onlyA.next()).done, true);
  assert.equal(bus.subscriberCount, 0);
});

Deno.test("resuming: after a sequence in this incarnation, everything buffered from another", async () => {
  const bus = new EventBus({ historySize: 3 });
  for (const name of ["e1", "e2", "e3", "e4"]) bus.publish(ev("a", name));
  const ac = new AbortController();
  const same = bus.subscribe({
    resume: { incarnation: bus.incarnation, afterSequence: 3 },
    signal: ac.signal,
  });
  assert.deepEqual((await take(same, 1)).map((e) => e.event), ["e4"]);
  const other = bus.subscribe({
    resume: { incarnation: "an earlier agent", afterSequence: 99 },
    signal: ac.signal,
  });
  // The history holds the last 3; e1 was dropped (the gap shows in the sequence numbers).
  assert.deepEqual((await take(other, 3)).map((e) => e.sequence), [2, 3, 4]);
  ac.abort();
  await same.return(undefined);
  await other.return(undefined);
});

Deno.test("a subscriber that falls behind is cut off; publishing never waits", async () => {
  const bus = new EventBus({ queueSize: 5 });
  const slow = bus.subscribe();
  const fast = bus.subscribe();
  const firstSlow = slow.next();
  const firstFast = fast.next();
  bus.publish(ev("a", "x0"));
  await firstSlow;
  await firstFast;
  // The fast one keeps up, the slow one never reads again.
  for (let i = 1; i <= 20; i++) {
    bus.publish(ev("a", `x${i}`));
    assert.equal((await fast.next()).value?.event, `x${i}`);
  }
  await assert.rejects(slow.next(), ResourceExhaustedError);
  assert.equal(bus.subscriberCount, 1);
  await fast.return(undefined);
});

import assert from "node:assert/strict";
import { Logger } from "../../shared/log/logger.ts";
import { createTestApi } from "../../tests/support/api.ts";
import { EventBus } from "./bus.ts";
import { type EventRow, eventsAfter } from "./store.ts";

const quiet = new Logger({ level: "error", sink: () => {} });
const event = (i: number) => ({
  type: "job.progress" as const,
  resource_type: "job",
  resource_id: crypto.randomUUID(),
  data: { i },
});

Deno.test("event bus: concurrent writers, readers see every event once and in id order", async () => {
  await using api = await createTestApi();
  const bus = api.runtime.svc.events;
  const seen: EventRow[] = [];
  const unsubscribe = bus.subscribe({}, (e) => seen.push(e));
  // Writers that take a while between their insert and their commit must not let a later id
  // be read first (the reader would skip the earlier one for ever).
  await Promise.all(Array.from({ length: 40 }, (_, i) =>
    bus.transaction(async (tx, emit) => {
      emit(event(i));
      await tx`select pg_sleep(${(i % 5) / 200})`;
    })));
  await bus.flush();
  unsubscribe();
  assert.equal(seen.length, 40);
  const ids = seen.map((e) => e.id);
  assert.deepEqual(ids, [...ids].sort((a, b) => a - b));
  assert.equal(new Set(ids).size, 40);
  assert.deepEqual(new Set(seen.map((e) => e.data.i)).size, 40);
});

Deno.test("event bus: a rolled back transaction records nothing", async () => {
  await using api = await createTestApi();
  const bus = api.runtime.svc.events;
  await assert.rejects(() =>
    bus.transaction((_tx, emit) => {
      emit(event(1));
      throw new Error("no");
    })
  );
  assert.deepEqual(await eventsAfter(api.db.sql, 0), []);
});

Deno.test("event bus: another process's bus on the same PostgreSQL sees events at once", async () => {
  await using api = await createTestApi();
  const other = new EventBus({ sql: api.db.sql, listen: true, pollMs: 60_000, logger: quiet });
  await other.start();
  try {
    const got = Promise.withResolvers<EventRow>();
    other.subscribe({ types: ["job"] }, (e) => got.resolve(e));
    const t0 = performance.now();
    await api.runtime.svc.events.transaction((_tx, emit) => emit(event(7)));
    const e = await got.promise;
    assert.equal(e.data.i, 7);
    // Not the 60 s poll: NOTIFY woke it.
    assert.ok(performance.now() - t0 < 2000);
  } finally {
    await other.stop();
  }
});

Deno.test("event filters: type, family, resource (and jobs working on it)", async () => {
  await using api = await createTestApi();
  const vm = crypto.randomUUID();
  const bus = api.runtime.svc.events;
  await bus.transaction((_tx, emit) => {
    emit({ type: "vm.status_changed", resource_type: "vm", resource_id: vm, data: {} });
    emit({
      type: "host.status_changed",
      resource_type: "host",
      resource_id: crypto.randomUUID(),
      data: {},
    });
    emit({
      type: "job.succeeded",
      resource_type: "job",
      resource_id: crypto.randomUUID(),
      data: { resource_id: vm },
    });
  });
  const types = async (f: Parameters<typeof eventsAfter>[2]) =>
    (await eventsAfter(api.db.sql, 0, f)).map((e) => e.type);
  assert.deepEqual(await types({ types: ["vm"] }), ["vm.status_changed"]);
  assert.deepEqual(await types({ types: ["host.status_changed", "job"] }), [
    "host.status_changed",
    "job.succeeded",
  ]);
  assert.deepEqual(await types({ resource_ids: [vm] }), ["vm.status_changed", "job.succeeded"]);
  assert.deepEqual(await types({ resource_types: ["host"] }), ["host.status_changed"]);
});

Deno.test("retention: the leader deletes events older than events.retention_hours", async () => {
  await using api = await createTestApi();
  const bus = api.runtime.svc.events;
  await bus.transaction((_tx, emit) => {
    emit(event(1));
    emit(event(2));
  });
  const hours = api.deps.config.events.retention_hours;
  await api.db.sql`update events set time = now() - ${hours + 1} * interval '1 hour'
                   where data->>'i' = '1'`;
  assert.equal(await api.runtime.monitors.pruneEvents(), 1);
  assert.deepEqual((await eventsAfter(api.db.sql, 0)).map((e) => e.data.i), [2]);
});

import assert from "node:assert/strict";
import { ConflictError } from "../../shared/errors/errors.ts";
import { createTestApi, type TestApi } from "../../tests/support/api.ts";
import { eventsAfter } from "../events/store.ts";
import {
  checkLease,
  claimJob,
  enqueueJob,
  finishJob,
  LeaseLostError,
  releaseJob,
  renewLeases,
  retryJob,
  saveProgress,
} from "./queue.ts";

function enqueue(
  api: TestApi,
  resource: string,
  key?: string,
  type: "vm_start" | "vm_stop" = "vm_start",
) {
  return api.runtime.svc.events.transaction((tx, emit) =>
    enqueueJob(tx, emit, {
      type,
      resource_type: "vm",
      resource_id: resource,
      params: {},
      actor: "t",
      request_id: null,
      idempotency_key: key ?? null,
    })
  );
}

const uuid = () => crypto.randomUUID();

Deno.test("queue: enqueue records job.created; an idempotency key returns the same job", async () => {
  await using api = await createTestApi();
  const vm = uuid();
  const a = await enqueue(api, vm, "k1");
  assert.equal(a.existing, false);
  const b = await enqueue(api, vm, "k1");
  assert.equal(b.existing, true);
  assert.equal(b.job.id, a.job.id);
  // The same key for another request is refused; another active job on the VM too.
  await assert.rejects(() => enqueue(api, uuid(), "k1"), /Idempotency-Key k1 was already used/);
  await assert.rejects(() => enqueue(api, vm), (e) => {
    assert.ok(e instanceof ConflictError);
    assert.match(e.message, new RegExp(`has an active job ${a.job.id}`));
    return true;
  });
  const events = await eventsAfter(api.db.sql, 0, { types: ["job"] });
  assert.deepEqual(events.map((e) => [e.type, e.resource_id]), [["job.created", a.job.id]]);
});

Deno.test("queue: concurrent claims never get the same job (SKIP LOCKED)", async () => {
  await using api = await createTestApi();
  for (let i = 0; i < 20; i++) await enqueue(api, uuid());
  const bus = api.runtime.svc.events;
  const claims = await Promise.all(Array.from({ length: 25 }, () => claimJob(bus, "w", 60_000)));
  const got = claims.filter((c) => c !== null).map((c) => c!.job.id);
  assert.equal(got.length, 20);
  assert.equal(new Set(got).size, 20);
  for (const c of claims.filter((c) => c !== null)) {
    assert.equal(c!.job.status, "running");
    assert.equal(c!.job.attempts, 1);
    assert.match(c!.token, /^w#/);
  }
});

Deno.test("queue: an expired lease is re-claimed first; the old token is fenced off", async () => {
  await using api = await createTestApi();
  const bus = api.runtime.svc.events;
  const { job } = await enqueue(api, uuid());
  const first = (await claimJob(bus, "w1", 50))!;
  await bus.transaction((tx, emit) =>
    saveProgress(tx, emit, first, { checkpoint: { done: ["check"], data: { from: "created" } } })
  );
  await enqueue(api, uuid());
  await new Promise((r) => setTimeout(r, 80));
  const second = (await claimJob(bus, "w2", 60_000))!;
  assert.equal(second.job.id, job.id, "the expired job before the newer pending one");
  assert.equal(second.job.attempts, 2);
  assert.deepEqual(second.job.checkpoint, { done: ["check"], data: { from: "created" } });
  // The first worker can no longer renew, save or finish.
  assert.deepEqual(
    await renewLeases(api.db.sql, [{ id: job.id, token: first.token }], 1000),
    new Map(),
  );
  await assert.rejects(
    () =>
      bus.transaction((tx, emit) =>
        finishJob(tx, emit, first, { status: "succeeded", result: {} })
      ),
    LeaseLostError,
  );
  assert.deepEqual(
    await renewLeases(api.db.sql, [{ id: job.id, token: second.token }], 1000),
    new Map([[job.id, null]]),
  );
  await bus.transaction((tx) => checkLease(tx, job.id, second.token));
});

Deno.test("queue: retry waits run_after; release hands a job back without charging an attempt", async () => {
  await using api = await createTestApi();
  const bus = api.runtime.svc.events;
  await enqueue(api, uuid());
  const c = (await claimJob(bus, "w", 60_000))!;
  await bus.transaction((tx, emit) =>
    retryJob(tx, emit, c, { code: "unavailable", message: "node down" }, 300)
  );
  assert.equal(await claimJob(bus, "w", 60_000), null, "not before run_after");
  await new Promise((r) => setTimeout(r, 350));
  const again = (await claimJob(bus, "w", 60_000))!;
  assert.equal(again.job.attempts, 2);
  assert.deepEqual(again.job.error, { code: "unavailable", message: "node down" });
  await releaseJob(api.db.sql, again);
  const third = (await claimJob(bus, "w", 60_000))!;
  assert.equal(third.job.attempts, 2);
  const done = await bus.transaction((tx, emit) =>
    finishJob(tx, emit, third, { status: "failed", error: { code: "x", message: "y" } })
  );
  assert.equal(done.status, "failed");
  assert.equal(done.lease_owner, null);
  const types = (await eventsAfter(api.db.sql, 0, { types: ["job"] })).map((e) => e.type);
  assert.deepEqual(types, [
    "job.created",
    "job.started",
    "job.retrying",
    "job.started",
    "job.started",
    "job.failed",
  ]);
});

import assert from "node:assert/strict";
import type { Sql } from "postgres";
import { createTestApi } from "../../tests/support/api.ts";
import { LeaseKeeper } from "./leases.ts";
import { claimJob, enqueueJob, type LeaseLostError } from "./queue.ts";

async function claimOne(api: Awaited<ReturnType<typeof createTestApi>>, owner: string) {
  const bus = api.runtime.svc.events;
  await bus.transaction((tx, emit) =>
    enqueueJob(tx, emit, {
      type: "vm_start",
      resource_type: "vm",
      resource_id: crypto.randomUUID(),
      params: {},
      actor: "t",
      request_id: null,
      idempotency_key: null,
    })
  );
  return (await claimJob(bus, owner, 300))!;
}

const expiry = async (sql: Sql, id: string) =>
  (await sql<{ ms: number }[]>`
    select (extract(epoch from lease_expires_at - now()) * 1000)::int as ms from jobs
    where id = ${id}`)[0].ms;

Deno.test("leases: one statement keeps every held lease; a lease taken over is reported lost", async () => {
  await using api = await createTestApi();
  // Workers stay off so nothing but this keeper touches the jobs.
  await api.runtime.workers.stop();
  const sql = api.db.sql;
  const a = await claimOne(api, "p1");
  const b = await claimOne(api, "p1");
  const keeper = new LeaseKeeper(sql, 60_000, api.deps.logger);
  const lost: string[] = [];
  try {
    keeper.hold(a.job.id, a.token, (e: LeaseLostError) => lost.push(e.message));
    const unholdB = keeper.hold(b.job.id, b.token, (e) => lost.push(e.message));
    await keeper.tick();
    assert.ok(await expiry(sql, a.job.id) > 50_000, "a renewed");
    assert.ok(await expiry(sql, b.job.id) > 50_000, "b renewed");
    assert.deepEqual(lost, []);

    // Another process takes `a` over: the next tick reports it lost, `b` is kept.
    await sql`update jobs set lease_owner = 'p2#x' where id = ${a.job.id}`;
    unholdB();
    await keeper.tick();
    assert.equal(lost.length, 1);
    assert.match(lost[0], new RegExp(`job ${a.job.id}: lease lost`));
  } finally {
    await keeper.close();
  }
});

Deno.test("leases: a lease that cannot be renewed for a whole period is fenced locally", async () => {
  await using api = await createTestApi();
  await api.runtime.workers.stop();
  const a = await claimOne(api, "p1");
  // A database that fails every statement, as during an outage.
  const broken = new Proxy(api.db.sql, {
    apply: () => Promise.reject(new Error("connection refused")),
    get: (t, k) => k === "options" ? { max: 1 } : Reflect.get(t, k),
  }) as Sql;
  const keeper = new LeaseKeeper(broken, 100, api.deps.logger);
  const lost: string[] = [];
  try {
    keeper.hold(a.job.id, a.token, (e) => lost.push(e.message));
    await keeper.tick();
    assert.deepEqual(lost, [], "not before the lease period has passed");
    await new Promise((r) => setTimeout(r, 120));
    await keeper.tick();
    assert.equal(lost.length, 1);
    assert.match(lost[0], /lease not renewed for 100 ms/);
  } finally {
    await keeper.close();
  }
});

Deno.test("leases: a process never takes over its own expired lease", async () => {
  await using api = await createTestApi();
  await api.runtime.workers.stop();
  const a = await claimOne(api, "p1");
  await new Promise((r) => setTimeout(r, 350));
  const bus = api.runtime.svc.events;
  assert.equal(await claimJob(bus, "p1", 60_000), null, "own process: left to its worker");
  const other = await claimJob(bus, "p2", 60_000);
  assert.equal(other?.job.id, a.job.id, "another process takes it over");
});

Deno.test("leases: the renewal reports a cancel request once, with who asked", async () => {
  await using api = await createTestApi();
  await api.runtime.workers.stop();
  const sql = api.db.sql;
  const a = await claimOne(api, "p1");
  const keeper = new LeaseKeeper(sql, 60_000, api.deps.logger);
  const cancels: string[] = [];
  try {
    keeper.hold(a.job.id, a.token, () => {}, (by) => cancels.push(by));
    await keeper.tick();
    assert.deepEqual(cancels, []);
    await sql`update jobs set cancel_requested_at = now(), cancel_requested_by = 'alice'
              where id = ${a.job.id}`;
    await keeper.tick();
    await keeper.tick();
    assert.deepEqual(cancels, ["alice"]);
    assert.ok(await expiry(sql, a.job.id) > 50_000, "still renewed");
  } finally {
    await keeper.close();
  }
});

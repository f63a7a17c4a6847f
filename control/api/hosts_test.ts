import assert from "node:assert/strict";
import { createTestApi, fieldsOf } from "../../tests/support/api.ts";

Deno.test("hosts API", async (t) => {
  await using api = await createTestApi();
  let host: { id: string; name: string };

  await t.step("create → 201 + Location + ETag + resource", async () => {
    const res = await api.post("/v1/hosts", {
      name: "node-a",
      address: "192.0.2.10",
      labels: { zone: "a" },
      reservation_class: "gold",
    });
    assert.equal(res.status, 201);
    assert.equal(res.headers.get("location"), `/v1/hosts/${res.body.id}`);
    assert.equal(res.headers.get("etag"), '"1"');
    assert.equal(res.body.port, 50051);
    assert.equal(res.body.status, "unknown");
    assert.deepEqual(res.body.labels, { zone: "a" });
    assert.equal("version" in res.body, false);
    host = res.body;
  });

  await t.step("get → 200 with ETag; unknown id → 404", async () => {
    const res = await api.get(`/v1/hosts/${host.id}`);
    assert.equal(res.status, 200);
    assert.equal(res.body.name, "node-a");
    assert.equal(res.headers.get("etag"), '"1"');
    const missing = await api.get("/v1/hosts/00000000-0000-4000-8000-000000000000");
    assert.equal(missing.status, 404);
    assert.match(missing.body.message, /host 00000000-0000-4000-8000-000000000000 not found/);
  });

  await t.step("every validation rule names its field", async () => {
    const base = { name: "ok", address: "192.0.2.99" };
    const cases: [Record<string, unknown>, string][] = [
      [{ ...base, name: "" }, "name"],
      [{ ...base, name: "has space" }, "name"],
      [{ ...base, name: "x".repeat(64) }, "name"],
      [{ ...base, address: "not an address!" }, "address"],
      [{ ...base, port: 0 }, "port"],
      [{ ...base, port: 70000 }, "port"],
      [{ ...base, port: "80" }, "port"],
      [{ ...base, labels: { "bad key": "v" } }, "labels.bad key"],
      [{ ...base, labels: { k: 1 } }, "labels.k"],
      [{ ...base, reservation_class: "a b" }, "reservation_class"],
      [{ ...base, architecture: "sparc" }, "architecture"],
      [{ ...base, colour: "red" }, "colour"],
      [{ address: "192.0.2.99" }, "name"],
      [{ name: "ok" }, "address"],
    ];
    for (const [input, field] of cases) {
      const res = await api.post("/v1/hosts", input);
      assert.equal(res.status, 422, JSON.stringify(input));
      assert.equal(res.body.code, "invalid_argument");
      assert.deepEqual(fieldsOf(res), [field], JSON.stringify(input));
    }
  });

  await t.step("duplicates are 409 naming the field", async () => {
    const dupName = await api.post("/v1/hosts", { name: "node-a", address: "192.0.2.11" });
    assert.equal(dupName.status, 409);
    assert.equal(dupName.body.code, "already_exists");
    assert.deepEqual(fieldsOf(dupName), ["name"]);
    const dupAddr = await api.post("/v1/hosts", { name: "node-b", address: "192.0.2.10" });
    assert.equal(dupAddr.status, 409);
    assert.deepEqual(fieldsOf(dupAddr), ["address"]);
    // Same address, another port: a second agent on the same machine is fine.
    const other = await api.post("/v1/hosts", {
      name: "node-b",
      address: "192.0.2.10",
      port: 50052,
    });
    assert.equal(other.status, 201);
  });

  await t.step("a failing request writes no audit row", async () => {
    const before =
      (await api.get("/v1/audit-logs?resource_type=host&limit=1000")).body.items.length;
    await api.post("/v1/hosts", { name: "node-a", address: "192.0.2.12" });
    await api.patch(`/v1/hosts/${host.id}`, { name: "node-b" });
    const after = (await api.get("/v1/audit-logs?resource_type=host&limit=1000")).body.items.length;
    assert.equal(after, before);
  });

  await t.step("PATCH merges labels, honours If-Match, bumps the ETag", async () => {
    const res = await api.patch(`/v1/hosts/${host.id}`, {
      labels: { zone: null, rack: "r1" },
      reservation_class: null,
    }, { "if-match": '"1"', "content-type": "application/merge-patch+json" });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(res.body.labels, { rack: "r1" });
    assert.equal(res.body.reservation_class, null);
    assert.equal(res.headers.get("etag"), '"2"');
    const stale = await api.patch(`/v1/hosts/${host.id}`, { port: 1234 }, { "if-match": '"1"' });
    assert.equal(stale.status, 412);
    assert.equal(stale.body.code, "precondition_failed");
    assert.equal((await api.get(`/v1/hosts/${host.id}`)).body.port, 50051);
    const star = await api.patch(`/v1/hosts/${host.id}`, { port: 1234 }, { "if-match": "*" });
    assert.equal(star.status, 200);
    const audit = await api.get(`/v1/audit-logs?resource_id=${host.id}&action=update`);
    assert.equal(audit.body.items.length, 2);
    assert.deepEqual(audit.body.items[0].summary.fields, ["port"]);
  });

  await t.step("PATCH validation and the maintenance rules", async () => {
    const bad = await api.patch(`/v1/hosts/${host.id}`, { port: -1 });
    assert.equal(bad.status, 422);
    assert.deepEqual(fieldsOf(bad), ["port"]);
    const badStatus = await api.patch(`/v1/hosts/${host.id}`, { status: "down" });
    assert.deepEqual(fieldsOf(badStatus), ["status"]);
    const up = await api.patch(`/v1/hosts/${host.id}`, { status: "up" });
    assert.equal(up.status, 409);
    assert.match(up.body.message, /is unknown; only a host in maintenance/);
    const m = await api.patch(`/v1/hosts/${host.id}`, { status: "maintenance" });
    assert.equal(m.body.status, "maintenance");
    const back = await api.patch(`/v1/hosts/${host.id}`, { status: "up" });
    assert.equal(back.body.status, "up");
    const missing = await api.patch("/v1/hosts/00000000-0000-4000-8000-000000000000", { port: 1 });
    assert.equal(missing.status, 404);
  });

  await t.step("resources: totals, ratios and what placed VMs hold", async () => {
    await api.db
      .sql`update hosts set total_cpus = 8, total_memory_bytes = 16000 where id = ${host.id}`;
    await api.db.sql`
      insert into vms (name, host_id, status, boot_vcpus, max_vcpus, memory_size) values
        ('r1', ${host.id}, 'running', 2, 2, 1000),
        ('r2', ${host.id}, 'paused', 1, 1, 500),
        ('s1', ${host.id}, 'shutdown', 4, 4, 4000)`;
    const res = await api.get(`/v1/hosts/${host.id}/resources`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.allocated_vcpus, 3);
    assert.equal(res.body.allocated_memory_bytes, 1500);
    assert.equal(res.body.vcpu_capacity, 32);
    assert.equal(res.body.available_vcpus, 29);
    assert.equal(res.body.memory_capacity_bytes, 16000);
    assert.equal(res.body.vm_count, 2);
  });

  await t.step("delete is refused while VMs are placed, then works", async () => {
    const refused = await api.del(`/v1/hosts/${host.id}`);
    assert.equal(refused.status, 409);
    assert.match(refused.body.message, /has 3 vm\(s\) placed on it \(r1, r2, s1\)/);
    await api.db.sql`delete from vms where host_id = ${host.id}`;
    const stale = await api.del(`/v1/hosts/${host.id}`, { "if-match": '"1"' });
    assert.equal(stale.status, 412);
    const ok = await api.del(`/v1/hosts/${host.id}`);
    assert.equal(ok.status, 204);
    assert.equal((await api.get(`/v1/hosts/${host.id}`)).status, 404);
    assert.equal((await api.del(`/v1/hosts/${host.id}`)).status, 404);
  });

  await t.step("list filters by exact match", async () => {
    const res = await api.get("/v1/hosts?name=node-b");
    assert.deepEqual(res.body.items.map((h: { name: string }) => h.name), ["node-b"]);
    assert.equal(res.body.next_cursor, null);
    const none = await api.get("/v1/hosts?name=node");
    assert.deepEqual(none.body.items, []);
    const bad = await api.get("/v1/hosts?status=sleeping");
    assert.equal(bad.status, 422);
    assert.deepEqual(fieldsOf(bad), ["status"]);
  });
});

Deno.test("pagination walks the whole list exactly once, also with inserts in between", async (t) => {
  await using api = await createTestApi();
  const created = new Set<string>();
  for (let i = 0; i < 25; i++) {
    created.add((await api.create("/v1/hosts", { name: `h${i}`, address: `10.0.0.${i + 1}` })).id);
  }

  await t.step("limit bounds", async () => {
    for (const limit of ["0", "1001", "x", "-5"]) {
      const res = await api.get(`/v1/hosts?limit=${limit}`);
      assert.equal(res.status, 422, limit);
      assert.deepEqual(fieldsOf(res), ["limit"]);
    }
    assert.equal((await api.get("/v1/hosts")).body.items.length, 25);
  });

  await t.step("a walk with inserts between pages sees each original row once", async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    let extra = 0;
    do {
      const q: string = cursor ? `&cursor=${encodeURIComponent(cursor)}` : "";
      const res = await api.get(`/v1/hosts?limit=4${q}`);
      assert.equal(res.status, 200);
      assert.ok(res.body.items.length <= 4);
      seen.push(...res.body.items.map((h: { id: string }) => h.id));
      cursor = res.body.next_cursor;
      // Someone else keeps adding hosts while we page.
      await api.create("/v1/hosts", { name: `extra${extra}`, address: `10.1.0.${++extra}` });
    } while (cursor);
    assert.equal(new Set(seen).size, seen.length, "no row twice");
    for (const id of created) assert.ok(seen.includes(id), "every original row");
  });

  await t.step("a bad cursor, or one from another list, is a 422 naming cursor", async () => {
    const bad = await api.get("/v1/hosts?cursor=garbage");
    assert.equal(bad.status, 422);
    assert.deepEqual(fieldsOf(bad), ["cursor"]);
    const jobsCursor = (await api.get("/v1/audit-logs?limit=1")).body.next_cursor;
    const cross = await api.get(`/v1/hosts?cursor=${jobsCursor}`);
    assert.equal(cross.status, 422);
  });
});

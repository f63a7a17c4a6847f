import assert from "node:assert/strict";
import { createTestDatabase } from "../../tests/support/db.ts";
import { MIGRATIONS } from "../../migrations/mod.ts";
import { appliedMigrations, checksum, migrate, validateMigrations } from "./migrate.ts";
import { connectPostgres } from "./connect.ts";
import { mapDbError } from "./errors.ts";
import { AlreadyExistsError } from "../../shared/errors/errors.ts";

const sample = [
  { name: "0001_a.sql", sql: "create table a (id int primary key);" },
  {
    name: "0002_b.sql",
    sql: "create table b (id int primary key); insert into b values (1), (2);",
  },
];

Deno.test("fresh database: applies every migration in order and records checksums", async () => {
  await using db = await createTestDatabase();
  const result = await migrate(db.sql, sample);
  assert.deepEqual(result.applied, ["0001_a.sql", "0002_b.sql"]);
  const rows = await db.sql`select name, checksum from schema_migrations order by name`;
  assert.deepEqual(rows.map((r) => r.name), ["0001_a.sql", "0002_b.sql"]);
  assert.equal(rows[1].checksum, await checksum(sample[1].sql));
  const [{ count }] = await db.sql`select count(*)::int as count from b`;
  assert.equal(count, 2);
});

Deno.test("re-running applies nothing and keeps the data", async () => {
  await using db = await createTestDatabase();
  await migrate(db.sql, sample);
  const again = await migrate(db.sql, sample);
  assert.deepEqual(again.applied, []);
  assert.deepEqual(again.skipped.sort(), ["0001_a.sql", "0002_b.sql"]);
  const [{ count }] = await db.sql`select count(*)::int as count from b`;
  assert.equal(count, 2);
});

Deno.test("a new file is applied on the next run", async () => {
  await using db = await createTestDatabase();
  await migrate(db.sql, sample.slice(0, 1));
  const next = await migrate(db.sql, sample);
  assert.deepEqual(next.applied, ["0002_b.sql"]);
});

Deno.test("a changed applied file is refused and nothing else runs", async () => {
  await using db = await createTestDatabase();
  await migrate(db.sql, sample.slice(0, 1));
  const changed = [{ ...sample[0], sql: sample[0].sql + " -- edited" }, sample[1]];
  await assert.rejects(() => migrate(db.sql, changed), /0001_a\.sql changed after it was applied/);
  assert.deepEqual(await appliedMigrations(db.sql), ["0001_a.sql"]);
});

Deno.test("a database migrated by a newer version is refused", async () => {
  await using db = await createTestDatabase();
  await migrate(db.sql, sample);
  await assert.rejects(() => migrate(db.sql, sample.slice(0, 1)), /0002_b\.sql, which this qarax/);
});

Deno.test("a failing migration rolls back completely and is not recorded", async () => {
  await using db = await createTestDatabase();
  const bad = [sample[0], { name: "0002_bad.sql", sql: "create table c (id int); select 1/0;" }];
  await assert.rejects(() => migrate(db.sql, bad), /0002_bad\.sql failed: division by zero/);
  assert.deepEqual(await appliedMigrations(db.sql), ["0001_a.sql"]);
  const [{ exists }] = await db.sql`select to_regclass('c') is not null as exists`;
  assert.equal(exists, false);
});

Deno.test("two runners at once apply each file exactly once", async () => {
  await using db = await createTestDatabase();
  // A slow file widens the window in which the second runner would race the first.
  const slow = [
    { name: "0001_slow.sql", sql: "create table s (id int); select pg_sleep(0.3);" },
    { name: "0002_count.sql", sql: "create table runs (n int); insert into runs values (1);" },
  ];
  const other = connectPostgres(db.url, { max: 2 });
  try {
    const [r1, r2] = await Promise.all([migrate(db.sql, slow), migrate(other, slow)]);
    assert.deepEqual([...r1.applied, ...r2.applied].sort(), ["0001_slow.sql", "0002_count.sql"]);
    const [{ count }] = await db.sql`select count(*)::int as count from runs`;
    assert.equal(count, 1);
  } finally {
    await other.end();
  }
});

Deno.test("names must be numbered and ordered", () => {
  assert.throws(() => validateMigrations([{ name: "init.sql", sql: "" }]), /0001_name\.sql/);
  assert.throws(
    () => validateMigrations([sample[1], sample[0]]),
    /0001_a\.sql: out of order/,
  );
});

Deno.test("the real schema applies to an empty database", async () => {
  await using db = await createTestDatabase();
  const result = await migrate(db.sql, MIGRATIONS);
  assert.equal(result.applied.length, MIGRATIONS.length);
});

Deno.test("0005 backfills the host of existing local-pool objects it can be sure of", async () => {
  await using db = await createTestDatabase();
  const at = MIGRATIONS.findIndex((m) => m.name === "0005_local_object_host.sql");
  await migrate(db.sql, MIGRATIONS.slice(0, at));
  const [h1, h2] = await db.sql<{ id: string }[]>`
    insert into hosts (name, address, port) values ('h1', '10.0.0.1', 1), ('h2', '10.0.0.2', 1)
    returning id`;
  const [one, two] = await db.sql<{ id: string }[]>`
    insert into storage_pools (name, path) values ('one', '/one'), ('two', '/two') returning id`;
  await db.sql`insert into host_storage_pools (storage_pool_id, host_id)
    values (${one.id}, ${h1.id}), (${two.id}, ${h1.id}), (${two.id}, ${h2.id})`;
  const obj = async (name: string, pool: string) =>
    (await db.sql<{ id: string }[]>`
      insert into storage_objects (name, storage_pool_id, type, path)
      values (${name}, ${pool}, 'disk', ${name}) returning id`)[0].id;
  const single = await obj("single", one.id);
  const made = await obj("made", two.id);
  const unknown = await obj("unknown", two.id);
  await db.sql`insert into jobs (type, status, resource_type, resource_id, result, actor)
    values ('disk_create', 'succeeded', 'storage_object', ${made},
            ${db.sql.json({ host_id: h2.id })}, 't')`;
  await migrate(db.sql, MIGRATIONS);
  const rows = await db.sql<{ id: string; host_id: string | null }[]>`
    select id, host_id from storage_objects`;
  const hostOf = Object.fromEntries(rows.map((r) => [r.id, r.host_id]));
  assert.equal(hostOf[single], h1.id);
  assert.equal(hostOf[made], h2.id);
  assert.equal(hostOf[unknown], null);
});

Deno.test("0009: a path is unique per host for host objects, per pool for the rest", async () => {
  await using db = await createTestDatabase();
  await migrate(db.sql, MIGRATIONS);
  const [h1, h2] = await db.sql<{ id: string }[]>`
    insert into hosts (name, address, port) values ('h1', '10.0.0.1', 1), ('h2', '10.0.0.2', 1)
    returning id`;
  const [pool] = await db.sql<{ id: string }[]>`
    insert into storage_pools (name, path) values ('p', '/p') returning id`;
  const obj = (name: string, path: string, host: string | null) =>
    db.sql`insert into storage_objects (name, storage_pool_id, type, path, host_id)
      values (${name}, ${pool.id}, 'disk', ${path}, ${host})`;
  await obj("a1", "a.img", h1.id);
  await obj("a2", "a.img", h2.id);
  await obj("shared", "s.img", null);
  const violation = async (q: Promise<unknown>, field: string) => {
    const err = await q.then(() => null, (e) => mapDbError(e));
    assert.ok(err instanceof AlreadyExistsError, String(err));
    assert.equal(err.details[0].field, field);
    assert.match(err.message, /^storage object with storage_pool_id, .*path .* already exists/);
  };
  await violation(obj("a1b", "a.img", h1.id), "path");
  await violation(obj("shared2", "s.img", null), "path");
});

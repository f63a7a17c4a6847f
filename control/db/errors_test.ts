import assert from "node:assert/strict";
import { createTestDatabase } from "../../tests/support/db.ts";
import { mapDbError } from "./errors.ts";
import { QaraxError } from "../../shared/errors/errors.ts";

Deno.test("PostgreSQL errors map to domain errors naming the field", async () => {
  await using db = await createTestDatabase(1);
  await db.sql.unsafe(`
    create table parents (id int primary key);
    create table kids (
      id int primary key,
      parent_id int references parents (id),
      name text unique,
      size int constraint kids_size_check check (size > 0),
      must text not null default 'x'
    );
    insert into parents values (1);
    insert into kids values (1, 1, 'a', 1);`);
  const fail = async (q: string) => {
    try {
      await db.sql.unsafe(q);
    } catch (err) {
      const mapped = mapDbError(err);
      assert.ok(mapped instanceof QaraxError, `${q}: ${err}`);
      return mapped as QaraxError;
    }
    throw new Error(`${q} did not fail`);
  };
  const dup = await fail("insert into kids (id, name) values (2, 'a')");
  assert.equal(dup.code, "already_exists");
  assert.equal(dup.details[0].field, "name");
  assert.match(dup.message, /with name "a" already exists/);
  const inUse = await fail("delete from parents where id = 1");
  assert.equal(inUse.code, "failed_precondition");
  assert.match(inUse.message, /in use/);
  const missing = await fail("insert into kids (id, parent_id) values (3, 9)");
  assert.equal(missing.code, "invalid_argument");
  assert.equal(missing.details[0].field, "parent_id");
  const check = await fail("insert into kids (id, size) values (4, 0)");
  assert.equal(check.code, "invalid_argument");
  assert.equal(check.details[0].field, "size");
  const notNull = await fail("insert into kids (id, must) values (5, null)");
  assert.equal(notNull.details[0].field, "must");
  for (
    const q of [
      "select 'x'::uuid",
      "select 99999999999::int",
      "select 'x'::inet",
      "select 'maybe'::boolean",
    ]
  ) {
    assert.equal((await fail(q)).code, "invalid_argument", q);
  }
  // Anything else passes through untouched (and becomes a 500 with its cause logged).
  const other = new Error("boom");
  assert.equal(mapDbError(other), other);
});

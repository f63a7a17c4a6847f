import assert from "node:assert/strict";
import { Logger } from "../../shared/log/logger.ts";
import { createTestDatabase } from "../../tests/support/db.ts";
import { waitFor } from "../../tests/support/process.ts";
import { migrate } from "../db/migrate.ts";
import { MIGRATIONS } from "../../migrations/mod.ts";
import { acquireLease, Leadership, leaseHolder } from "./leader.ts";

const quiet = new Logger({ level: "error", sink: () => {} });

Deno.test("leases: one holder until it expires or lets go", async () => {
  await using db = await createTestDatabase();
  await migrate(db.sql, MIGRATIONS);
  assert.equal(await acquireLease(db.sql, "x", "a", 300), true);
  assert.equal(await acquireLease(db.sql, "x", "b", 300), false);
  assert.equal(await acquireLease(db.sql, "x", "a", 300), true, "the holder renews");
  assert.equal(await leaseHolder(db.sql, "x"), "a");
  await new Promise((r) => setTimeout(r, 350));
  assert.equal(await acquireLease(db.sql, "x", "b", 300), true, "expired: taken over");
  assert.equal(await leaseHolder(db.sql, "x"), "b");
});

Deno.test("leadership: exactly one of three processes leads; another takes over", async () => {
  await using db = await createTestDatabase(6);
  await migrate(db.sql, MIGRATIONS);
  const leading = new Set<string>();
  const make = (name: string) =>
    new Leadership({
      sql: db.sql,
      owner: name,
      leaseMs: 300,
      logger: quiet,
      onLead: () => void leading.add(name),
      onFollow: () => void leading.delete(name),
    });
  const all = ["p1", "p2", "p3"].map(make);
  all.forEach((l) => l.start());
  try {
    await waitFor(() => leading.size === 1, 3000, "a leader");
    await new Promise((r) => setTimeout(r, 400));
    assert.equal(leading.size, 1, "never two");
    const first = all.find((l) => l.isLeader)!;
    await first.stop();
    await waitFor(() => leading.size === 1 && !first.isLeader, 3000, "a new leader");
    assert.equal(all.filter((l) => l.isLeader).length, 1);
  } finally {
    for (const l of all) await l.stop();
  }
});

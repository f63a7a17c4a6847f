import assert from "node:assert/strict";
import { MIGRATIONS } from "./mod.ts";

Deno.test("every .sql file in migrations/ is listed, with its exact text", async () => {
  const dir = new URL(".", import.meta.url);
  const files: string[] = [];
  for await (const e of Deno.readDir(dir)) if (e.name.endsWith(".sql")) files.push(e.name);
  assert.deepEqual(MIGRATIONS.map((m) => m.name), files.sort());
  for (const m of MIGRATIONS) {
    assert.equal(m.sql, await Deno.readTextFile(new URL(m.name, dir)), m.name);
  }
});

import assert from "node:assert/strict";
import { issueDetails, mergePatch } from "./common.ts";
import { decodeCursor, encodeCursor } from "../db/query.ts";

Deno.test("merge patch follows RFC 7396", () => {
  // Examples from RFC 7396 appendix A.
  const cases: [unknown, unknown, unknown][] = [
    [{ a: "b" }, { a: "c" }, { a: "c" }],
    [{ a: "b" }, { b: "c" }, { a: "b", b: "c" }],
    [{ a: "b" }, { a: null }, {}],
    [{ a: "b", b: "c" }, { a: null }, { b: "c" }],
    [{ a: ["b"] }, { a: "c" }, { a: "c" }],
    [{ a: "c" }, { a: ["b"] }, { a: ["b"] }],
    [{ a: { b: "c" } }, { a: { b: "d", c: null } }, { a: { b: "d" } }],
    [{ a: [{ b: "c" }] }, { a: [1] }, { a: [1] }],
    [["a", "b"], ["c", "d"], ["c", "d"]],
    [{ a: "b" }, ["c"], ["c"]],
    [{ a: "foo" }, null, null],
    [{ e: null }, { a: 1 }, { e: null, a: 1 }],
    [[1, 2], { a: "b", c: null }, { a: "b" }],
    [{}, { a: { bb: { ccc: null } } }, { a: { bb: {} } }],
  ];
  for (const [target, patch, result] of cases) {
    assert.deepEqual(mergePatch(target, patch), result, JSON.stringify([target, patch]));
  }
});

Deno.test("cursors are opaque, round-trip, and bound to their list", () => {
  const c = encodeCursor({
    list: "vms",
    key: [1700000000123, "0b6f2a1e-8a4c-4e0f-9d51-1c2b3a4d5e6f"],
  });
  assert.match(c, /^[A-Za-z0-9_-]+$/);
  assert.deepEqual(decodeCursor(c, "vms"), [1700000000123, "0b6f2a1e-8a4c-4e0f-9d51-1c2b3a4d5e6f"]);
  assert.throws(() => decodeCursor(c, "hosts"), /cursor: not a cursor of this list/);
  for (const bad of ["", "!!!", btoa("{}"), btoa('["vms", {}]')]) {
    assert.throws(() => decodeCursor(bad, "vms"), /cursor/);
  }
});

Deno.test("zod issues become one detail per field; unknown keys are named", () => {
  const details = issueDetails([
    { code: "too_small", path: ["memory_size"], message: "Too small" },
    { code: "custom", path: ["memory_size"], message: "not a multiple" },
    { code: "unrecognized_keys", path: ["placement"], message: "x", keys: ["colour", "size"] },
    {
      code: "invalid_type",
      path: ["nics", 0, "network_id"],
      message: "Invalid input: expected string",
    },
  ]);
  assert.deepEqual(details, [
    { field: "memory_size", message: "Too small" },
    { field: "placement.colour", message: "unknown field" },
    { field: "placement.size", message: "unknown field" },
    { field: "nics.0.network_id", message: "expected string" },
  ]);
});

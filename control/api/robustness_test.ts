/**
 * No client mistake may produce a 500: every documented route is called with malformed ids,
 * garbage query strings and hostile bodies, and must answer with a 4xx error body.
 */
import assert from "node:assert/strict";
import { createTestApi } from "../../tests/support/api.ts";

const BODIES: unknown[] = [
  "",
  "null",
  "[]",
  '"text"',
  "1e999",
  "{",
  { name: null },
  { name: "x\u0000y" },
  { name: "ok", port: 1e308, boot_vcpus: 2 ** 53, memory_size: -0, size_bytes: 1.5 },
  { name: "ok", labels: { a: { b: 1 } }, tags: "web", placement: [], config: "x" },
  { name: "ok", subnet: "0.0.0.0/0", gateway: "255.255.255.255", dns: [null] },
  { name: "ok", host_id: "00000000-0000-0000-0000-000000000000", network_id: "z" },
  { name: "ok", storage_object_id: "ffffffff-ffff-ffff-ffff-ffffffffffff", path: "\u0000" },
  { __proto__: { admin: true }, constructor: { prototype: {} } },
];
const QUERIES = [
  "?limit=1e9",
  "?limit=-1",
  "?cursor=%00",
  "?cursor=WyJob3N0cyIsMSwiYSJd",
  "?name=%00",
  "?status=%27;drop%20table%20vms;--",
  "?host_id=nope&resource_id=nope&tag=",
];

Deno.test("no client mistake produces a 500", async () => {
  await using api = await createTestApi();
  const doc = (await api.get("/openapi.json")).body;
  const ids = ["not-a-uuid", "00000000-0000-4000-8000-000000000000", "%00", "net0"];
  let calls = 0;
  for (const [path, ops] of Object.entries(doc.paths as Record<string, object>)) {
    for (const method of Object.keys(ops)) {
      for (const id of ids) {
        const url = path.replace(/\{[a-z_]+\}/g, id);
        const reqs: [string, unknown][] = method === "get" || method === "delete"
          ? QUERIES.map((q) => [url + q, undefined])
          : BODIES.map((b) => [url, b]);
        for (const [u, b] of reqs) {
          const res = await api.request(method.toUpperCase(), u, b);
          calls++;
          assert.ok(
            res.status < 500,
            `${method} ${u} ${JSON.stringify(b)} → ${res.status} ${JSON.stringify(res.body)}`,
          );
          if (res.status >= 400) {
            assert.equal(typeof res.body.code, "string", `${method} ${u}`);
            assert.ok(Array.isArray(res.body.details));
          }
        }
      }
    }
  }
  assert.ok(calls > 500);
  const errorsLogged = api.logs.filter((l) => JSON.parse(l).level === "error");
  assert.deepEqual(errorsLogged, []);
});

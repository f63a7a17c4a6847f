/**
 * No client mistake may produce a 500: every documented route is called with malformed ids,
 * garbage query strings and hostile bodies, and must answer with a 4xx error body.
 */
import assert from "node:assert/strict";
import { type ApiResponse, createTestApi, type TestApi } from "../../tests/support/api.ts";

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

/** Opens an event stream, reads its status (and an error body), and closes it. */
async function openStream(api: TestApi, url: string): Promise<ApiResponse> {
  const ac = new AbortController();
  const res = await api.app.request(url, { signal: ac.signal });
  if (res.status === 200) {
    await res.body?.cancel();
    ac.abort();
    return { status: 200, body: null, headers: res.headers };
  }
  return { status: res.status, body: await res.json(), headers: res.headers };
}

Deno.test("no client mistake produces a 500", async () => {
  await using api = await createTestApi();
  const doc = (await api.get("/openapi.json")).body;
  const ids = ["not-a-uuid", "00000000-0000-4000-8000-000000000000", "%00", "net0"];
  let calls = 0;
  for (const [path, ops] of Object.entries(doc.paths as Record<string, object>)) {
    for (const [method, op] of Object.entries(ops)) {
      // Event streams never end: their status is checked, then the stream is dropped.
      const streams = Boolean(op.responses?.[200]?.content?.["text/event-stream"]);
      for (const id of ids) {
        const url = path.replace(/\{[a-z_]+\}/g, id);
        const reqs: [string, unknown][] = method === "get" || method === "delete"
          ? QUERIES.map((q) => [url + q, undefined])
          : BODIES.map((b) => [url, b]);
        for (const [u, b] of reqs) {
          const res = streams
            ? await openStream(api, u)
            : await api.request(method.toUpperCase(), u, b);
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

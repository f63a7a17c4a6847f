import assert from "node:assert/strict";
import { createTestApi } from "../../tests/support/api.ts";
import { sha256Hex } from "./middleware/auth.ts";

Deno.test("framework: health, request ids, errors, OpenAPI, docs", async (t) => {
  await using api = await createTestApi();

  await t.step("healthz and readyz are public and ready", async () => {
    assert.deepEqual((await api.get("/healthz")).body, { status: "ok" });
    const ready = await api.get("/readyz");
    assert.equal(ready.status, 200);
    assert.deepEqual(ready.body, { status: "ready", database: "postgres" });
  });

  await t.step("readyz reports pending migrations", async () => {
    await api.db.sql`delete from schema_migrations where name = '0002_resources.sql'`;
    try {
      const res = await api.get("/readyz");
      assert.equal(res.status, 503);
      assert.deepEqual(res.body.pending, ["0002_resources.sql"]);
    } finally {
      await api.db
        .sql`insert into schema_migrations (name, checksum) values ('0002_resources.sql', 'x')`;
    }
  });

  await t.step("a sane x-request-id is echoed and logged; an insane one is replaced", async () => {
    const res = await api.get("/v1/hosts", { "x-request-id": "abc-123" });
    assert.equal(res.headers.get("x-request-id"), "abc-123");
    const line = api.logs.map((l) => JSON.parse(l)).find((l) => l.request_id === "abc-123");
    assert.equal(line?.msg, "request");
    assert.equal(line?.status, 200);
    const bad = await api.get("/v1/hosts", { "x-request-id": "no spaces allowed\u0001" });
    assert.match(bad.headers.get("x-request-id")!, /^[0-9a-f-]{36}$/);
  });

  await t.step("unknown routes are 404 with the error body and request id", async () => {
    const res = await api.get("/v1/nope", { "x-request-id": "rid-1" });
    assert.equal(res.status, 404);
    assert.equal(res.body.code, "not_found");
    assert.equal(res.body.request_id, "rid-1");
    assert.deepEqual(res.body.details, []);
  });

  await t.step("malformed JSON is 400, a non-JSON body is 400, a huge body is 400", async () => {
    const broken = await api.post("/v1/hosts", "{not json");
    assert.equal(broken.status, 400);
    assert.equal(broken.body.code, "malformed_request");
    assert.match(broken.body.message, /not valid JSON/);
    const text = await api.post("/v1/hosts", "name=x", { "content-type": "text/plain" });
    assert.equal(text.status, 400);
    assert.match(text.body.message, /must be JSON/);
    const huge = await api.post("/v1/hosts", JSON.stringify({ name: "x".repeat(5_000_000) }));
    assert.equal(huge.status, 400);
    assert.match(huge.body.message, /larger than/);
  });

  await t.step("a missing body is a 422 naming the required fields", async () => {
    const res = await api.request("POST", "/v1/hosts");
    assert.equal(res.status, 422);
    assert.ok(res.body.details.some((d: { field: string }) => d.field === "name"));
  });

  await t.step("a malformed id in the path is a 404", async () => {
    const res = await api.get("/v1/hosts/not-an-id");
    assert.equal(res.status, 404);
    assert.equal(res.body.code, "not_found");
  });

  await t.step("the OpenAPI document lists exactly the routes the app serves", async () => {
    const doc = (await api.get("/openapi.json")).body;
    assert.equal(doc.openapi, "3.1.0");
    const documented = new Set<string>();
    for (const [path, ops] of Object.entries(doc.paths as Record<string, object>)) {
      for (const method of Object.keys(ops)) documented.add(`${method.toUpperCase()} ${path}`);
    }
    const served = new Set<string>();
    for (const r of api.app.routes) {
      if (r.method === "ALL") continue; // middleware
      if (r.path === "/openapi.json" || r.path.startsWith("/docs")) continue; // the docs themselves
      served.add(`${r.method} ${r.path.replace(/:([A-Za-z_]+)/g, "{$1}")}`);
    }
    assert.deepEqual([...served].sort(), [...documented].sort());
    assert.ok(served.size > 10);
  });

  await t.step("/docs is served from the binary with no external URLs", async () => {
    const page = await api.get("/docs");
    assert.equal(page.status, 200);
    assert.match(page.body, /swagger-ui/);
    assert.doesNotMatch(page.body, /https?:\/\//);
    const js = await api.app.request("/docs/swagger-ui-bundle.js");
    assert.equal(js.status, 200);
    assert.ok((await js.text()).length > 100_000);
    const init = await (await api.app.request("/docs/init.js")).text();
    assert.match(init, /validatorUrl: null/);
  });
});

Deno.test("auth: bearer tokens, public paths, actor in the audit log", async (t) => {
  const secret = "s3cret-token";
  await using api = await createTestApi({
    auth: { enabled: true, tokens: [{ name: "ops", sha256: await sha256Hex(secret) }] },
  });
  const auth = { authorization: `Bearer ${secret}` };

  await t.step("missing and wrong tokens are 401", async () => {
    const missing = await api.get("/v1/hosts");
    assert.equal(missing.status, 401);
    assert.equal(missing.body.code, "unauthenticated");
    assert.match(missing.headers.get("www-authenticate")!, /Bearer/);
    const wrong = await api.get("/v1/hosts", { authorization: "Bearer nope" });
    assert.equal(wrong.status, 401);
    const basic = await api.get("/v1/hosts", { authorization: "Basic abc" });
    assert.equal(basic.status, 401);
  });

  await t.step("health, the document and the docs stay public", async () => {
    for (const p of ["/healthz", "/readyz", "/openapi.json", "/docs"]) {
      assert.equal((await api.get(p)).status, 200, p);
    }
    const doc = (await api.get("/openapi.json")).body;
    assert.deepEqual(doc.security, [{ bearerAuth: [] }]);
  });

  await t.step("a valid token works and its name is the audit actor", async () => {
    const res = await api.post("/v1/hosts", { name: "h1", address: "10.0.0.1" }, auth);
    assert.equal(res.status, 201);
    const logs = await api.get(`/v1/audit-logs?resource_id=${res.body.id}`, auth);
    assert.equal(logs.body.items[0].actor, "ops");
  });

  await t.step(
    "?token= counts only on a console attach WebSocket upgrade, and is not logged",
    async () => {
      const upgrade = { upgrade: "websocket", connection: "Upgrade" };
      const vm = crypto.randomUUID();
      const attach = `/v1/vms/${vm}/console/attach?token=${secret}`;
      // Authenticated: the route itself answers (the VM does not exist).
      assert.equal((await api.get(attach, upgrade)).status, 404);
      assert.equal((await api.get(`/v1/vms/${vm}/console/attach?token=nope`, upgrade)).status, 401);
      assert.equal((await api.get(attach)).status, 401, "not an upgrade");
      assert.equal((await api.get(`/v1/hosts?token=${secret}`, upgrade)).status, 401, "other path");
      assert.equal((await api.get(`/v1/vms/${vm}?token=${secret}`, upgrade)).status, 401);
      assert.ok(!api.logs.some((l) => l.includes(secret)), "the token reached a log line");
    },
  );
});

Deno.test("auth off: the actor is anonymous", async () => {
  await using api = await createTestApi();
  const host = await api.create("/v1/hosts", { name: "h1", address: "10.0.0.1" });
  const logs = await api.get(`/v1/audit-logs?resource_id=${host.id}`);
  assert.equal(logs.body.items[0].actor, "anonymous");
  assert.equal(logs.body.items[0].action, "create");
});

import assert from "node:assert/strict";
import { startServer } from "./server.ts";
import { testConfig } from "../tests/support/api.ts";
import { createTestDatabase } from "../tests/support/db.ts";
import { Logger } from "../shared/log/logger.ts";

const quiet = new Logger({ level: "error", sink: () => {} });

Deno.test("startServer: PostgreSQL, migrations, real HTTP, shutdown", async () => {
  await using db = await createTestDatabase(1);
  const base = testConfig();
  const config = {
    ...base,
    application: { ...base.application, host: "127.0.0.1", port: 0 },
    database: { ...base.database, url: db.url, max_connections: 2 },
  };
  const server = await startServer(config, { logger: quiet });
  try {
    const ready = await fetch(`${server.url}/readyz`);
    assert.deepEqual(await ready.json(), { status: "ready", database: "postgres" });
    const res = await fetch(`${server.url}/v1/vms`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-request-id": "it-1" },
      body: JSON.stringify({ name: "over-http" }),
    });
    assert.equal(res.status, 201);
    assert.equal(res.headers.get("x-request-id"), "it-1");
    assert.equal((await res.json()).status, "created");
  } finally {
    await server.shutdown();
  }
});

Deno.test("startServer refuses a non-loopback listener without auth unless allowed", async () => {
  const base = testConfig();
  const config = { ...base, application: { ...base.application, host: "0.0.0.0", port: 0 } };
  await assert.rejects(
    () => startServer(config, { logger: quiet }),
    /refusing to listen on 0\.0\.0\.0:0 without authentication/,
  );
});

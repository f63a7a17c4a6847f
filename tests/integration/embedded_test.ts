/**
 * `qarax serve` with no database configured: the embedded database starts under the data
 * directory, serves the same API, survives a restart, and refuses a second process.
 */
import assert from "node:assert/strict";
import { freePort, spawn, waitFor } from "../support/process.ts";

const MAIN = new URL("../../control/main.ts", import.meta.url).pathname;

function serve(dataDir: string, port: number) {
  return spawn(Deno.execPath(), ["run", "-A", MAIN, "serve", "--port", String(port)], {
    env: {
      DATABASE_URL: "",
      QARAX_APPLICATION__DATA_DIR: dataDir,
      QARAX_LOG__FORMAT: "json",
      NO_COLOR: "1",
    },
  });
}

Deno.test("embedded database: zero-config start, same API, restart, one owner", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "qarax-embedded-" });
  try {
    const port = freePort();
    const base = `http://127.0.0.1:${port}`;
    let id: string;
    {
      await using server = serve(dataDir, port);
      await waitFor(
        async () => {
          const res = await fetch(`${base}/readyz`).catch(() => null);
          const body = await res?.json().catch(() => null);
          return body?.status === "ready" ? body : null;
        },
        60_000,
        `readyz (output: ${server.output()})`,
      );
      assert.match(server.output(), /database: embedded \(PGlite\)/);
      assert.match(server.output(), new RegExp(`qarax docs: ${base}/docs`));

      const created = await fetch(`${base}/v1/hosts`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ name: "embedded-host", address: "127.0.0.1" }),
      });
      assert.equal(created.status, 201);
      id = (await created.json()).id;
      const dup = await fetch(`${base}/v1/hosts`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ name: "embedded-host", address: "127.0.0.2" }),
      });
      assert.equal(dup.status, 409);
      await dup.body?.cancel();

      // A second process on the same data directory fails at once and says why.
      const second = serve(dataDir, freePort());
      const status = await second.child.status;
      await second.stop();
      assert.notEqual(status.code, 0);
      assert.match(second.output(), /in use by another qarax process/);
    }
    {
      await using server = serve(dataDir, port);
      const got = await waitFor(
        async () => {
          const res = await fetch(`${base}/v1/hosts/${id}`).catch(() => null);
          return res?.status === 200 ? await res.json() : null;
        },
        60_000,
        `restart (output: ${server.output()})`,
      );
      assert.equal(got.name, "embedded-host");
    }
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

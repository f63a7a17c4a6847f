/**
 * The bundles are self-contained: each one, copied alone into an empty directory and run with
 * an empty Deno cache, starts and serves (the control plane answers /readyz against
 * PostgreSQL, the node answers GetNodeInfo).
 */
import assert from "node:assert/strict";
import { createChannel, createClient } from "nice-grpc";
import { bundleAll } from "../../deployments/bundle.ts";
import { VmServiceDefinition } from "../../shared/proto/mod.ts";
import { createTestDatabase } from "../support/db.ts";
import { freePort, spawn, waitFor } from "../support/process.ts";

Deno.test("bundles run alone from an empty directory with an empty Deno cache", async () => {
  const work = await Deno.makeTempDir({ prefix: "qarax-bundle-" });
  await using db = await createTestDatabase(1);
  try {
    const [control, node] = await bundleAll(`${work}/dist`);
    for (const [name, bundle] of [["control", control], ["node", node]]) {
      await Deno.mkdir(`${work}/${name}/cache`, { recursive: true });
      await Deno.copyFile(bundle, `${work}/${name}/app.js`);
    }
    await Deno.remove(`${work}/dist`, { recursive: true });
    const env = (name: string) => ({ DENO_DIR: `${work}/${name}/cache`, NO_COLOR: "1" });

    const version = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "app.js", "--version"],
      cwd: `${work}/control`,
      env: env("control"),
      stdout: "piped",
    }).output();
    assert.match(new TextDecoder().decode(version.stdout), /^qarax \d+\.\d+\.\d+ \(deno 2\.9\.6/);

    const apiPort = freePort();
    await using api = spawn(Deno.execPath(), ["run", "-A", "app.js", "serve"], {
      cwd: `${work}/control`,
      env: { ...env("control"), DATABASE_URL: db.url, PORT: String(apiPort) },
    });
    const ready = await waitFor(
      async () => {
        const r = await fetch(`http://127.0.0.1:${apiPort}/readyz`);
        const body = await r.json();
        return r.status === 200 ? body : null;
      },
      30_000,
      `control bundle /readyz\n${api.output()}`,
    );
    assert.equal(ready.status, "ready");

    const grpcPort = freePort();
    await using agent = spawn(Deno.execPath(), [
      "run",
      "-A",
      "app.js",
      "--listen",
      `127.0.0.1:${grpcPort}`,
      "--runtime-dir",
      `${work}/node/vms`,
    ], { cwd: `${work}/node`, env: env("node") });
    const channel = createChannel(`127.0.0.1:${grpcPort}`);
    try {
      const client = createClient(VmServiceDefinition, channel);
      const info = await waitFor(
        () => client.getNodeInfo({}),
        30_000,
        `node bundle GetNodeInfo\n${agent.output()}`,
      );
      assert.equal(info.hostname, Deno.hostname());
    } finally {
      channel.close();
    }
  } finally {
    await Deno.remove(work, { recursive: true });
  }
});

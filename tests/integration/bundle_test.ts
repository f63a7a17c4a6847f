/**
 * The bundles are self-contained and need no more than their declared permissions: each one,
 * copied alone into an empty directory and run with an empty Deno cache and exactly the flags
 * of deployments/permissions.ts (`--no-prompt`, so a missing permission is an error), prints
 * its version with the build's commit and serves: the control plane answers /readyz against
 * PostgreSQL and with its embedded database, and serves the docs page assets; the node,
 * backed by the CH emulator, answers GetNodeInfo.
 */
import assert from "node:assert/strict";
import { createChannel, createClient } from "nice-grpc";
import { bundleAll, runArgs } from "../../deployments/bundle.ts";
import type { Binary } from "../../deployments/permissions.ts";
import { VmServiceDefinition } from "../../shared/proto/mod.ts";
import { gitCommit, VERSION } from "../../shared/version.ts";
import { createTestDatabase } from "../support/db.ts";
import { EMULATOR_BINARY } from "../support/node_agent.ts";
import { freePort, spawn, waitFor } from "../support/process.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

Deno.test("bundles run alone with exactly their permissions, from an empty dir and cache", async (t) => {
  const work = await Deno.realPath(await Deno.makeTempDir({ prefix: "qarax-bundle-" }));
  try {
    const [control, node] = await bundleAll(`${work}/dist`);
    for (const [name, bundle] of [["control", control], ["node", node]]) {
      await Deno.mkdir(`${work}/${name}/cache`, { recursive: true });
      await Deno.copyFile(bundle, `${work}/${name}/app.js`);
    }
    await Deno.remove(`${work}/dist`, { recursive: true });
    const env = (name: string) => ({ DENO_DIR: `${work}/${name}/cache`, NO_COLOR: "1" });
    const dir = { qarax: `${work}/control`, "qarax-node": `${work}/node` };
    /** Spawns a bundle the way an operator's wrapper runs it. */
    const start = (binary: Binary, args: string[], extra: Record<string, string>) =>
      spawn(Deno.execPath(), [...runArgs(binary, "app.js"), ...args], {
        cwd: dir[binary],
        env: { ...env(binary === "qarax" ? "control" : "node"), ...extra },
      });

    await t.step("--version names the version, Deno and the commit of the build", async () => {
      const commit = gitCommit(ROOT);
      assert.ok(commit, "the test runs in a git checkout");
      for (const binary of ["qarax", "qarax-node"] as const) {
        const out = await new Deno.Command(Deno.execPath(), {
          args: [...runArgs(binary, "app.js"), "--version"],
          cwd: dir[binary],
          env: env(binary === "qarax" ? "control" : "node"),
          stdout: "piped",
          stderr: "piped",
        }).output();
        const text = new TextDecoder().decode(out.stdout);
        assert.ok(out.success, new TextDecoder().decode(out.stderr));
        assert.equal(
          text.trim(),
          `${binary} ${VERSION} (deno ${Deno.version.deno}, commit ${commit})`,
        );
      }
    });

    const readyz = (port: number, what: () => string) =>
      waitFor(
        async () => {
          const r = await fetch(`http://127.0.0.1:${port}/readyz`);
          const body = await r.json();
          return r.status === 200 ? body : null;
        },
        60_000,
        what(),
      );

    await t.step("control answers /readyz against PostgreSQL and serves the docs", async () => {
      await using db = await createTestDatabase(1);
      const port = freePort();
      await using api = start("qarax", ["serve"], {
        DATABASE_URL: db.url,
        PORT: String(port),
        QARAX_APPLICATION__DATA_DIR: `${work}/control/data`,
      });
      const ready = await readyz(port, () => `control bundle /readyz\n${api.output()}`);
      assert.deepEqual(ready, { status: "ready", database: "postgres" });
      for (const asset of ["swagger-ui-bundle.js", "swagger-ui.css"]) {
        const r = await fetch(`http://127.0.0.1:${port}/docs/${asset}`);
        const body = await r.text();
        assert.equal(r.status, 200);
        assert.ok(body.length > 10_000, `${asset} is ${body.length} bytes`);
      }
      assert.doesNotMatch(api.output(), /NotCapable|Requires .* access/);
    });

    await t.step("control answers /readyz with its embedded database", async () => {
      const port = freePort();
      await using api = start("qarax", ["serve"], {
        DATABASE_URL: "",
        PORT: String(port),
        QARAX_APPLICATION__DATA_DIR: `${work}/control/embedded`,
      });
      const ready = await readyz(port, () => `control bundle (embedded) /readyz\n${api.output()}`);
      assert.deepEqual(ready, { status: "ready", database: "embedded" });
      assert.doesNotMatch(api.output(), /NotCapable|Requires .* access/);
    });

    await t.step("node answers GetNodeInfo with the emulator as its VMM", async () => {
      // The node runs `cloud-hypervisor` by name (its permissions list it): the emulator's
      // wrapper stands in for it on PATH. The emulator is not what this test proves
      // self-contained, so it keeps this run's warm Deno cache (a cold one makes its first
      // `--version` download packages, slow enough on a loaded machine to miss the deadline).
      const bin = `${work}/node/bin`;
      await Deno.mkdir(bin);
      const denoDir = Deno.env.get("DENO_DIR");
      await Deno.writeTextFile(
        `${bin}/cloud-hypervisor`,
        `#!/bin/sh\n${denoDir ? `export DENO_DIR='${denoDir}'` : "unset DENO_DIR"}\n` +
          `exec '${EMULATOR_BINARY}' "$@"\n`,
        { mode: 0o755 },
      );
      const port = freePort();
      await using agent = start("qarax-node", [
        "--listen",
        `127.0.0.1:${port}`,
        "--runtime-dir",
        `${work}/node/vms`,
        "--cloud-hypervisor-binary",
        "cloud-hypervisor",
      ], {
        PATH: `${bin}:${Deno.env.get("PATH")}`,
        QARAX_DENO: Deno.execPath(),
        QARAX_NODE__STATE_DIR: `${work}/node/state`,
        QARAX_NODE__FIRMWARE_DIR: `${work}/node/firmware`,
      });
      const channel = createChannel(`127.0.0.1:${port}`);
      try {
        const client = createClient(VmServiceDefinition, channel);
        const info = await waitFor(
          () => client.getNodeInfo({}),
          30_000,
          `node bundle GetNodeInfo\n${agent.output()}`,
        );
        assert.equal(info.hostname, Deno.hostname());
        assert.equal(info.nodeVersion, VERSION);
        assert.equal(info.cloudHypervisorEmulated, true, agent.output());
        assert.ok(info.kernelVersion);
        assert.ok(Number(info.diskTotalBytes) > 0, "df ran");
      } finally {
        channel.close();
      }
      assert.doesNotMatch(agent.output(), /NotCapable|Requires .* access/);
    });
  } finally {
    await Deno.remove(work, { recursive: true });
  }
});

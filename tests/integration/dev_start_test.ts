/**
 * `deno task start` as a newcomer runs it: a fresh data directory, the control plane and a
 * node agent come up, and the three printed curl lines create a VM, start it and wait for the
 * job — run exactly as printed, in bash. Ctrl-C stops both processes (the VM stays running
 * by design; the test removes it).
 */
import assert from "node:assert/strict";
import { freePort, pidsWhere, spawn, waitFor } from "../support/process.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

Deno.test({
  name: "deno task start: prints a working three-line example, stops on Ctrl-C",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "qx-start-" });
    const apiPort = freePort();
    const nodePort = freePort();
    const proc = spawn(Deno.execPath(), [
      "run",
      "-A",
      `${ROOT}control/dev.ts`,
      "--port",
      String(apiPort),
      "--node-port",
      String(nodePort),
      "--data-dir",
      `${dir}/data`,
    ], { env: { ...Deno.env.toObject(), NO_COLOR: "1" }, cwd: dir });
    try {
      await waitFor(() => /Watch events:/.test(proc.output()), 120_000, "start-up").catch((e) => {
        throw new Error(`${e.message}\n${proc.output()}`);
      });
      const out = proc.output();
      assert.match(
        out,
        /No cloud-hypervisor binary found .* using the qarax Cloud Hypervisor EMULATOR/,
      );
      assert.match(out, new RegExp(`API: +http://127\\.0\\.0\\.1:${apiPort}/v1`));
      assert.match(out, new RegExp(`Docs: +http://127\\.0\\.0\\.1:${apiPort}/docs`));
      assert.match(out, /Host: +local \(127\.0\.0\.1:\d+\) is up/);
      const example = out.split("\n").filter((l) => /^ {2}(VM=|JOB=|curl )/.test(l))
        .map((l) => l.trim());
      assert.equal(example.length, 3, out);
      const script = `set -e\n${example.join("\n")}\n`;
      const r = await new Deno.Command("bash", { args: ["-c", script], stdout: "piped" }).output();
      const job = JSON.parse(new TextDecoder().decode(r.stdout));
      assert.equal(job.type, "vm_start");
      assert.equal(job.status, "succeeded", JSON.stringify(job.error));
      const vm = await (await fetch(`http://127.0.0.1:${apiPort}/v1/vms/${job.resource_id}`))
        .json();
      assert.equal(vm.status, "running");
      assert.equal(
        (await (await fetch(`http://127.0.0.1:${apiPort}/docs`)).text()).includes("swagger"),
        true,
      );

      proc.child.kill("SIGINT");
      const status = await proc.child.status;
      assert.equal(status.code, 0, proc.output());
      assert.match(proc.output(), /stopping qarax \(VMs keep running/);
      assert.deepEqual(
        pidsWhere((a) =>
          a.some((x) => x.includes(`${ROOT}node/main.ts`)) && a.includes(`127.0.0.1:${nodePort}`)
        ),
        [],
      );
      // The VM's VMM outlived qarax, as documented.
      assert.equal(pidsWhere((a) => a.some((x) => x.includes(job.resource_id))).length, 1);
    } finally {
      await proc.stop();
      for (const pid of pidsWhere((a) => a.some((x) => x.includes(dir)))) {
        try {
          Deno.kill(pid, "SIGKILL");
        } catch { /* gone */ }
      }
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});

/** Runs `control/dev.ts` with extra env until it exits; cheap cases stop before any agent. */
async function startWithEnv(env: Record<string, string>, dir: string) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}control/dev.ts`, "--data-dir", `${dir}/data`],
    env: { NO_COLOR: "1", ...env },
    cwd: dir,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  return { code: out.code, text };
}

Deno.test("deno task start: PORT picks the API port when --port is not given", async () => {
  const dir = await Deno.makeTempDir({ prefix: "qx-start-env-" });
  const busy = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const port = (busy.addr as Deno.NetAddr).port;
    const r = await startWithEnv({ PORT: String(port) }, dir);
    assert.equal(r.code, 1, r.text);
    assert.match(r.text, new RegExp(`port ${port} \\(API\\) is in use`));
    const bad = await startWithEnv({ PORT: "eighty" }, dir);
    assert.equal(bad.code, 78, bad.text);
    assert.match(
      bad.text,
      /^qarax: invalid configuration: application\.port = "eighty" \(from env PORT\)/m,
    );
  } finally {
    busy.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

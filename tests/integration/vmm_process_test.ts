/** VMM processes started in their own session, adopted by pid, and their exits. */
import assert from "node:assert/strict";
import { VmmClient, waitForVmm } from "../../node/vmm/client.ts";
import { isVmmAlive, VmmProcess } from "../../node/vmm/process.ts";
import { createVmDir, removeVmDir, vmPaths } from "../../node/vmm/runtime_dir.ts";
import { EMULATOR_BINARY, emulatorEnv } from "../support/node_agent.ts";

Deno.test("a spawned VMM runs in its own session with its output in a file; adoption checks identity", async () => {
  const root = await Deno.makeTempDir({ prefix: "qarax-proc-" });
  const paths = vmPaths(root, "vm-proc-1");
  await createVmDir(paths);
  const vmm = VmmProcess.spawn({ binary: EMULATOR_BINARY, paths, env: emulatorEnv() });
  try {
    const ping = await waitForVmm(paths.apiSocket, { timeoutMs: 10_000 });
    assert.equal(ping.pid, vmm.pid, "setsid did not fork: the pid is the VMM's own");
    const stat = await Deno.readTextFile(`/proc/${vmm.pid}/stat`);
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    assert.equal(Number(fields[3]), vmm.pid, "the VMM leads its own session");
    assert.ok(isVmmAlive(vmm.pid, paths.apiSocket));
    // Nothing of the agent (its sockets, pipes) leaks into the VMM.
    const targets = (pid: number | "self") =>
      [...Deno.readDirSync(`/proc/${pid}/fd`)].map((e) => {
        try {
          return Deno.readLinkSync(`/proc/${pid}/fd/${e.name}`);
        } catch {
          return "";
        }
      }).filter((t) => /^(socket|pipe):/.test(t));
    const mine = new Set(targets("self"));
    assert.deepEqual(targets(vmm.pid).filter((t) => mine.has(t)), []);
    assert.equal(isVmmAlive(Deno.pid, paths.apiSocket), false, "another process is not the VMM");
    assert.equal(VmmProcess.adopt(vmm.pid, `${root}/other/api.sock`), null);

    const adopted = VmmProcess.adopt(vmm.pid, paths.apiSocket, 50)!;
    assert.ok(adopted.alive);
    using client = new VmmClient({ socketPath: paths.apiSocket });
    await client.ping();
    vmm.kill("SIGKILL");
    assert.deepEqual(await vmm.exited, { code: null, signal: "SIGKILL", adopted: false });
    assert.deepEqual(await adopted.waitExit(5_000), { code: null, signal: null, adopted: true });
    assert.equal(adopted.alive, false);
    assert.match(await Deno.readTextFile(paths.chLog), /starting/);
  } finally {
    vmm.kill("SIGKILL");
    await vmm.exited;
    await removeVmDir(paths);
    await Deno.remove(root, { recursive: true });
  }
});

/**
 * `qarax vm snapshot` and `qarax vm restore` on a real node agent (the CH emulator as VMM): a
 * snapshot of a running VM leaves Cloud Hypervisor's files in the pool, a stopped VM restored
 * from it runs again with the same VMM config, and deleting the snapshot (or the VM) removes
 * its files.
 */
import assert from "node:assert/strict";
import { vmPaths } from "../../node/vmm/runtime_dir.ts";
import {
  expectCode,
  qaraxFor,
  setUpHostWithLinux,
  startControlPlane,
  startTcpAgent,
} from "../support/cli.ts";
import { rawRequest, req } from "../support/raw_http.ts";

const SNAPSHOT_FILES = ["config.json", "memory-ranges", "state.json"];

async function listDir(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) names.push(e.name);
  return names.sort();
}

async function exists(path: string): Promise<boolean> {
  return await Deno.lstat(path).then(() => true, () => false);
}

Deno.test("qarax CLI: snapshot and restore through a real node", async (t) => {
  await using cp = await startControlPlane();
  await using agent = await startTcpAgent();
  const home = await Deno.makeTempDir({ prefix: "qarax-cli-snapshot-" });
  const qarax = qaraxFor(cp.url, home);
  const ok = async (args: string[]) => expectCode(await qarax(args), 0, args.join(" "));
  try {
    await setUpHostWithLinux(ok, agent, { rootDisk: true });
    await ok([
      "vm",
      "create",
      "web-1",
      "--vcpus",
      "2",
      "--memory",
      "256MiB",
      "--boot-source",
      "linux",
      "--disk",
      "root",
      "--start",
      "--wait",
    ]);
    const vm = (await ok(["vm", "get", "web-1", "-o", "json"])).json();
    const info = async () => {
      const sock = vmPaths(`${agent.dir}/rt`, vm.id).apiSocket;
      return JSON.parse((await rawRequest(sock, req("GET", "/api/v1/vm.info"))).body);
    };
    const before = await info();
    const snapshots = async () =>
      (await ok(["vm", "snapshot", "list", "web-1", "-o", "json"])).json().items as {
        id: string;
        name: string;
        status: string;
        storage_object_id: string;
      }[];
    let dir = "";

    await t.step("snapshot create --wait: CH's files are in the pool, the VM runs", async () => {
      const r = await ok(["vm", "snapshot", "create", "web-1", "--name", "s1", "--wait"]);
      assert.match(r.stdout, /vm web-1 snapshotted/);
      const [snap] = await snapshots();
      assert.equal(snap.name, "s1");
      assert.equal(snap.status, "ready");
      dir = `${agent.poolDir}/snapshots/${vm.id}/${snap.id}`;
      assert.deepEqual(await listDir(dir), SNAPSHOT_FILES);
      assert.equal((await ok(["vm", "get", "web-1", "-o", "json"])).json().status, "running");
      assert.equal((await info()).state, "Running");
    });

    await t.step("snapshot list shows it (table)", async () => {
      const r = await ok(["vm", "snapshot", "list", "web-1"]);
      assert.match(r.stdout, /^NAME\s+STATUS/);
      assert.match(r.stdout, /s1\s+ready\s+hv1/);
    });

    await t.step("stop, then restore --wait: running with the same VMM config", async () => {
      await ok(["vm", "stop", "web-1", "--wait"]);
      assert.equal((await ok(["vm", "get", "web-1", "-o", "json"])).json().status, "shutdown");
      const r = await ok(["vm", "restore", "web-1", "--snapshot", "s1", "--wait"]);
      assert.match(r.stdout, /vm web-1 restored from s1/);
      assert.equal((await ok(["vm", "get", "web-1", "-o", "json"])).json().status, "running");
      const after = await info();
      assert.equal(after.state, "Running");
      assert.deepEqual(after.config.cpus, before.config.cpus);
      assert.deepEqual(after.config.memory, before.config.memory);
      assert.deepEqual(after.config.disks, before.config.disks);
    });

    await t.step("snapshot delete: the record, its object and its files go", async () => {
      const [snap] = await snapshots();
      await ok(["vm", "snapshot", "delete", "web-1", "s1", "--wait"]);
      assert.deepEqual(await snapshots(), []);
      const gone = expectCode(await qarax(["disk", "get", snap.storage_object_id]), 1, "gone");
      assert.match(gone.stderr, /not found/);
      assert.equal(await exists(dir), false, `${dir} should be gone`);
      assert.equal(await exists(`${agent.poolDir}/root.img`), true);
    });

    await t.step("vm delete --wait: its snapshots' files and objects go too", async () => {
      await ok(["vm", "snapshot", "create", "web-1", "--name", "s2", "--wait"]);
      const [snap] = await snapshots();
      const snapDir = `${agent.poolDir}/snapshots/${vm.id}/${snap.id}`;
      assert.deepEqual(await listDir(snapDir), SNAPSHOT_FILES);
      await ok(["vm", "delete", "web-1", "--wait"]);
      assert.equal(await exists(snapDir), false, `${snapDir} should be gone`);
      const left = (await ok(["disk", "list", "--type", "snapshot", "-o", "json"])).json();
      assert.deepEqual(left.items, []);
      assert.equal(await exists(`${agent.poolDir}/root.img`), true);
    });
  } finally {
    await Deno.remove(home, { recursive: true }).catch(() => {});
  }
});

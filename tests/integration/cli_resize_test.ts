/**
 * `qarax vm resize` and `qarax vm disk resize` on a real node agent (the CH emulator as VMM):
 * a live vCPU resize reaches the VMM (`vm.info` shows the new count), the record follows, and
 * a disk of a running VM grows through the VMM (the file really grows).
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

const MiB = 1024 ** 2;

Deno.test("qarax CLI: live resize through a real node", async (t) => {
  await using cp = await startControlPlane();
  await using agent = await startTcpAgent();
  const home = await Deno.makeTempDir({ prefix: "qarax-cli-resize-" });
  const qarax = qaraxFor(cp.url, home);
  const ok = async (args: string[]) => expectCode(await qarax(args), 0, args.join(" "));
  try {
    await setUpHostWithLinux(ok, agent, { rootDisk: true });
    await ok([
      "vm",
      "create",
      "web-1",
      "--vcpus",
      "1",
      "--max-vcpus",
      "4",
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

    await t.step("vm resize --vcpus --wait: the VMM runs the new count", async () => {
      const r = await ok(["vm", "resize", "web-1", "--vcpus", "3", "--wait"]);
      assert.match(r.stdout, /vm web-1 resized/);
      assert.equal((await info()).config.cpus.boot_vcpus, 3);
      assert.equal((await ok(["vm", "get", "web-1", "-o", "json"])).json().boot_vcpus, 3);
    });

    await t.step("beyond max vCPUs: exit 1 naming the flag", async () => {
      const r = expectCode(await qarax(["vm", "resize", "web-1", "--vcpus", "9"]), 1, "too many");
      assert.match(r.stderr, /^qarax: --vcpus: must be from 1 to max_vcpus \(4\)\n/);
    });

    await t.step("vm disk resize --wait: the running VM's file grows", async () => {
      await ok(["vm", "disk", "resize", "web-1", "disk0", "--size", "128MiB", "--wait"]);
      assert.equal((await Deno.stat(`${agent.poolDir}/root.img`)).size, 128 * MiB);
      assert.equal((await ok(["disk", "get", "root", "-o", "json"])).json().size_bytes, 128 * MiB);
    });
  } finally {
    await Deno.remove(home, { recursive: true }).catch(() => {});
  }
});

/**
 * The `qarax` CLI driving real work: a control plane with its job workers and a real node
 * agent (the CH emulator as VMM). Host init, `vm create --start --wait`, actions with and
 * without `--wait`, `job wait`, Idempotency-Key, a failing job's exit code, and `events`.
 */
import assert from "node:assert/strict";
import { expectCode, qaraxFor, startControlPlane, startTcpAgent } from "../support/cli.ts";

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/;

Deno.test("qarax CLI: VM lifecycle through jobs on a real node", async (t) => {
  await using cp = await startControlPlane();
  await using agent = await startTcpAgent();
  const home = await Deno.makeTempDir({ prefix: "qarax-cli-jobs-" });
  const qarax = qaraxFor(cp.url, home);
  const ok = async (args: string[]) => expectCode(await qarax(args), 0, args.join(" "));
  try {
    await t.step("a host, a pool and a boot source", async () => {
      await ok(["host", "add", "hv1", "--address", "127.0.0.1", "--port", String(agent.port)]);
      assert.match(
        (await ok(["host", "init", "hv1"])).stdout,
        /^host hv1 initialised: up, \d+ CPUs, /,
      );
      await ok(["pool", "create", "local", "--path", agent.poolDir]);
      assert.match(
        (await ok(["pool", "attach", "local", "hv1"])).stdout,
        /attached to host hv1 \(ready\)/,
      );
      await Deno.writeTextFile(`${agent.poolDir}/vmlinux`, "not really a kernel\n");
      await ok([
        "disk",
        "register",
        "vmlinux",
        "--pool",
        "local",
        "--type",
        "kernel",
        "--path",
        "vmlinux",
      ]);
      await ok(["boot-source", "create", "linux", "--kernel", "vmlinux"]);
      // The pool has one host: the file is recorded on it; --every-host records none.
      const onHost = (await ok(["disk", "list", "--host", "hv1", "-o", "json"])).json();
      assert.deepEqual(onHost.items.map((o: { name: string }) => o.name), ["vmlinux"]);
      await ok(["disk", "register", "shared", "--pool", "local", "--type", "iso", "--path", "x.iso"]
        .concat("--every-host"));
      assert.equal((await ok(["disk", "get", "shared", "-o", "json"])).json().host_id, null);
    });

    await t.step("vm create --start --wait follows the start job to running", async () => {
      const r = await ok([
        "vm",
        "create",
        "web-1",
        "--vcpus",
        "1",
        "--memory",
        "256MiB",
        "--boot-source",
        "linux",
        "--start",
        "--wait",
      ]);
      assert.match(r.stdout, /^vm web-1 created \(id /);
      assert.match(
        r.stdout,
        new RegExp(`\nvm web-1 started \\(job ${UUID.source} succeeded in [\\d.]+s\\)\n$`),
      );
      // Not a terminal: progress is plain lines on stderr, ending with the job's success.
      assert.match(r.stderr, /vm_start succeeded 100%/);
      const vm = (await ok(["vm", "get", "web-1", "-o", "json"])).json();
      assert.equal(vm.status, "running");
      assert.match((await ok(["vm", "list"])).stdout, /web-1 +running +hv1/);
    });

    await t.step("an action the status forbids: exit 1 with the server's reason", async () => {
      const r = expectCode(await qarax(["vm", "start", "web-1", "--wait"]), 1, "start twice");
      assert.match(r.stderr, /it is running/);
      assert.match(r.stderr, /code: failed_precondition, HTTP 409, request id: /);
    });

    await t.step("without --wait: the job is printed; job wait follows it later", async () => {
      const queued = await ok(["vm", "pause", "web-1"]);
      const m = new RegExp(`^job (${UUID.source}) vm_pause`).exec(queued.stdout);
      assert.ok(m, queued.stdout);
      const waited = (await ok(["job", "wait", m[1], "-o", "json"])).json();
      assert.deepEqual([waited.id, waited.status], [m[1], "succeeded"]);
      assert.equal((await ok(["vm", "get", "web-1", "-o", "json"])).json().status, "paused");
      assert.match(
        (await ok(["job", "list", "--type", "vm_pause"])).stdout,
        /vm_pause +succeeded +100% +vm\/web-1/,
      );
    });

    await t.step("Idempotency-Key: the same key returns the same job", async () => {
      const a = (await ok(["vm", "resume", "web-1", "--idempotency-key", "resume-1", "-o", "json"]))
        .json();
      const b = (await ok(["vm", "resume", "web-1", "--idempotency-key", "resume-1", "-o", "json"]))
        .json();
      assert.equal(a.id, b.id);
      await ok(["job", "wait", a.id]);
    });

    await t.step("a job that fails makes --wait exit 1 with the job's error", async () => {
      await ok([
        "disk",
        "register",
        "ghost",
        "--pool",
        "local",
        "--type",
        "kernel",
        "--path",
        "missing-vmlinux",
      ]);
      await ok(["boot-source", "create", "broken", "--kernel", "ghost"]);
      await ok([
        "vm",
        "create",
        "web-2",
        "--vcpus",
        "1",
        "--memory",
        "256MiB",
        "--boot-source",
        "broken",
      ]);
      const r = expectCode(
        await qarax(["vm", "start", "web-2", "--wait", "--timeout", "60s"]),
        1,
        "failing start",
      );
      assert.match(r.stderr, new RegExp(`qarax: job ${UUID.source} \\(vm_start\\) failed: `));
      assert.match(r.stderr, new RegExp(`job: ${UUID.source}`));
    });

    await t.step("events: the stream replays what happened to a VM", async () => {
      const r = await ok([
        "events",
        "--vm",
        "web-1",
        "--type",
        "vm",
        "--since",
        "0",
        "--count",
        "2",
      ]);
      const lines = r.stdout.trim().split("\n");
      assert.equal(lines.length, 2, r.stdout);
      assert.match(lines[0], /^\S+ +vm\.status_changed +vm\/web-1 +created → pending/);
      assert.match(lines[1], /^\S+ +vm\.status_changed +vm\/web-1 +pending → running/);
      const json =
        (await ok(["events", "--vm", "web-1", "--since", "0", "--count", "1", "-o", "json"]))
          .stdout.trim().split("\n").map((l) => JSON.parse(l));
      assert.equal(json.length, 1);
      assert.match(json[0].event, /^(job|vm)\./);
    });

    await t.step("stop and delete with --wait; disk create with --wait", async () => {
      assert.match(
        (await ok(["vm", "stop", "web-1", "--grace", "2s", "--wait"])).stdout,
        /^vm web-1 stopped \(job /,
      );
      assert.match(
        (await ok(["vm", "delete", "web-1", "--wait"])).stdout,
        /^vm web-1 deleted \(job /,
      );
      expectCode(await qarax(["vm", "get", "web-1"]), 1, "deleted");
      await ok(["vm", "delete", "web-2", "--wait"]);
      assert.match(
        (await ok(["disk", "create", "scratch", "--pool", "local", "--size", "64MiB", "--wait"]))
          .stdout,
        /^disk scratch created \(job /,
      );
      assert.equal((await ok(["disk", "get", "scratch", "-o", "json"])).json().status, "ready");
    });
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});

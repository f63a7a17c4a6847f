/**
 * Contract: the process itself: command line (version, help, clap errors, socket argument
 * forms), the `<socket>.lock` exclusion, stale socket removal, start-up time, a VM started
 * from flags, and two VMMs side by side.
 */
import assert from "node:assert/strict";
import { contractTest } from "../support/contract.ts";
import {
  bootableConfig,
  kernelPath,
  makeDisk,
  REAL_CH,
  runVmmCommand,
  startVmm,
} from "../support/emulator.ts";
import { VmmClient, waitForVmm } from "../../node/vmm/client.ts";

contractTest("-V prints a version line like CH's; the emulator says what it is", {}, async () => {
  const out = await runVmmCommand(["-V"]);
  assert.equal(out.code, 0);
  assert.match(out.stdout, /^cloud-hypervisor v\d+\.\d+\S*\n$/);
  if (!REAL_CH) assert.equal(out.stdout, "cloud-hypervisor v53.0-emulated\n");
  const long = await runVmmCommand(["--version"]);
  assert.equal(long.stdout, out.stdout);
});

contractTest("--help prints usage; no arguments at all is an error", {}, async () => {
  const help = await runVmmCommand(["--help"]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /Usage: cloud-hypervisor \[OPTIONS\]/);
  assert.match(help.stdout, /--api-socket/);
  const none = await runVmmCommand([]);
  assert.equal(none.code, 2);
});

contractTest("unknown flags: clap's error and exit status 2", {}, async () => {
  const out = await runVmmCommand(["--api-socket", "path=/tmp/x.sock", "--frobnicate"]);
  assert.equal(out.code, 2);
  assert.match(out.stderr, /^error: unexpected argument '--frobnicate' found/);
  assert.match(out.stderr, /Usage: cloud-hypervisor \[OPTIONS\]/);
  const missing = await runVmmCommand(["--api-socket"]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /a value is required for '--api-socket/);
  const seccomp = await runVmmCommand(["--seccomp", "maybe"]);
  assert.equal(seccomp.code, 2);
  assert.match(seccomp.stderr, /invalid value 'maybe' for '--seccomp/);
});

contractTest(
  "flags CH accepts are accepted: --seccomp, --landlock, -vv, --serial/--console",
  {},
  async () => {
    await using vmm = await startVmm({
      // CH's clap rules make --serial/--console/--landlock want a payload; the emulator takes them.
      args: [
        "--seccomp",
        "false",
        "-vv",
        ...(REAL_CH ? [] : ["--landlock", "--serial", "null", "--console", "off"]),
      ],
    });
    await vmm.client().ping();
  },
);

contractTest("--api-socket also takes a bare path", {}, async () => {
  await using vmm = await startVmm({ bareSocketArg: true });
  assert.equal((await vmm.client().ping()).pid, vmm.pid);
});

contractTest("a second VMM on the same socket is refused with CH's message", {}, async () => {
  await using first = await startVmm();
  const out = await runVmmCommand(["--api-socket", `path=${first.socketPath}`]);
  assert.equal(out.code, 1);
  assert.match(
    out.stderr,
    new RegExp(`API socket "${first.socketPath}" is already in use by another running instance`),
  );
  assert.equal((await first.client().ping()).pid, first.pid); // the first is unharmed
});

contractTest("a stale socket file is replaced; the lock file stays", {}, async () => {
  const dir = await Deno.makeTempDir({ prefix: "qarax-vmm-" });
  try {
    await Deno.writeTextFile(`${dir}/api.sock`, "stale");
    {
      await using vmm = await startVmm({ dir });
      assert.equal((await vmm.client().ping()).pid, vmm.pid);
      assert.ok((await Deno.stat(`${dir}/api.sock`)).isSocket);
      await vmm.client().shutdownVmm();
      await vmm.waitExit();
    }
    await Deno.stat(`${dir}/api.sock.lock`);
    await assert.rejects(Deno.stat(`${dir}/api.sock`), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

contractTest("the emulator answers vmm.ping well under a second after spawn", {
  emulatorOnly: true,
}, async () => {
  const t0 = performance.now();
  await using vmm = await startVmm();
  const ms = performance.now() - t0;
  assert.ok(ms < 1000, `start-up took ${Math.round(ms)} ms`);
  assert.ok(vmm.pid > 0);
});

contractTest(
  "--kernel on the command line creates and boots at start",
  { boot: true },
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "qarax-vmm-" });
    try {
      const disk = await makeDisk(dir, "root.raw");
      await using vmm = await startVmm({
        dir,
        args: [
          "--kernel",
          await kernelPath(dir),
          "--cpus",
          "boot=2",
          "--memory",
          "size=256M",
          "--disk",
          `path=${disk},id=root`,
        ],
      });
      const c = vmm.client();
      let info = await c.info();
      for (let i = 0; info.state !== "Running" && i < 50; i++) {
        await new Promise((r) => setTimeout(r, 20));
        info = await c.info();
      }
      assert.equal(info.state, "Running");
      assert.equal(info.config.cpus?.boot_vcpus, 2);
      assert.equal(info.config.memory?.size, 256 * 1024 * 1024);
      assert.equal(info.config.disks?.[0].id, "root");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

contractTest("two VMMs at once do not interfere", { boot: true }, async () => {
  const [a, b] = await Promise.all([startVmm(), startVmm()]);
  await using _a = a;
  await using _b = b;
  const ca = a.client();
  const cb = b.client();
  assert.notEqual((await ca.ping()).pid, (await cb.ping()).pid);
  await Promise.all([
    ca.create(await bootableConfig(a.dir, { cpus: { boot_vcpus: 2, max_vcpus: 2 } })),
    cb.create(await bootableConfig(b.dir)),
  ]);
  await ca.boot();
  assert.equal((await ca.info()).state, "Running");
  assert.equal((await cb.info()).state, "Created");
  assert.equal((await cb.info()).config.cpus?.boot_vcpus, 1);
  await cb.boot();
  await ca.pause();
  assert.deepEqual([(await ca.info()).state, (await cb.info()).state], ["Paused", "Running"]);
  await ca.shutdownVmm();
  await a.waitExit();
  assert.equal((await cb.info()).state, "Running");
  assert.ok(!(await b.eventNames()).includes("vm/paused"));
  await waitForVmm(b.socketPath);
});

contractTest("node/emulator/cloud-hypervisor runs the emulator wherever a CH path is expected", {
  emulatorOnly: true,
}, async () => {
  const wrapper = new URL("../../node/emulator/cloud-hypervisor", import.meta.url).pathname;
  const env = { QARAX_DENO: Deno.execPath() };
  const version = await new Deno.Command(wrapper, { args: ["-V"], env, stdin: "null" }).output();
  assert.equal(new TextDecoder().decode(version.stdout), "cloud-hypervisor v53.0-emulated\n");
  const dir = await Deno.makeTempDir({ prefix: "qarax-vmm-" });
  const child = new Deno.Command(wrapper, {
    args: ["--api-socket", `path=${dir}/api.sock`],
    env,
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    const ping = await waitForVmm(`${dir}/api.sock`, { timeoutMs: 10_000 });
    assert.equal(ping.pid, child.pid, "exec'd: the wrapper's pid is the emulator's");
    using c = new VmmClient({ socketPath: `${dir}/api.sock` });
    await c.shutdownVmm();
    assert.equal((await child.status).code, 0);
  } finally {
    try {
      child.kill("SIGKILL");
    } catch { /* exited */ }
    await child.status;
    await Deno.remove(dir, { recursive: true });
  }
});

contractTest(
  "SIGTERM shuts the VMM down cleanly, like CH's signal handler",
  { boot: true },
  async () => {
    await using vmm = await startVmm();
    const c = vmm.client();
    await c.create(await bootableConfig(vmm.dir));
    await c.boot();
    vmm.kill("SIGTERM");
    const exit = await vmm.waitExit();
    assert.equal(exit.code, 0);
    assert.deepEqual((await vmm.eventNames()).slice(-3), [
      "vm/shutdown",
      "vm/deleted",
      "vmm/shutdown",
    ]);
  },
);

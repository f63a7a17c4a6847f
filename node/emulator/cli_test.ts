import assert from "node:assert/strict";
import {
  apiSocketTarget,
  eventMonitorTarget,
  hasPayload,
  parseCli,
  vmConfigFromCli,
} from "./cli.ts";
import { OptionError } from "./option_parser.ts";

function run(argv: string[]) {
  const out = parseCli(argv);
  assert.equal(out.kind, "run", JSON.stringify(out));
  return (out as Extract<typeof out, { kind: "run" }>).args;
}

Deno.test("CH's option forms: --opt value, --opt=value, repeated lists, counted -v", () => {
  const args = run([
    "--api-socket=path=/tmp/a.sock",
    "--event-monitor",
    "path=/tmp/ev",
    "-vv",
    "-v",
    "--disk",
    "path=/a",
    "path=/b",
    "--disk",
    "path=/c",
    "--no-shutdown",
    "--seccomp",
    "log",
  ]);
  assert.equal(args.single["api-socket"], "path=/tmp/a.sock");
  assert.equal(args.single["event-monitor"], "path=/tmp/ev");
  assert.equal(args.verbosity, 3);
  assert.deepEqual(args.multi.disk, ["path=/a", "path=/b", "path=/c"]);
  assert.ok(args.flags.has("no-shutdown"));
  assert.equal(hasPayload(args), false);
});

Deno.test("clap-style errors exit with status 2", () => {
  const unknown = parseCli(["--bogus"]);
  assert.deepEqual(unknown.kind === "exit" && [unknown.code, unknown.stderr?.split("\n")[0]], [
    2,
    "error: unexpected argument '--bogus' found",
  ]);
  const missing = parseCli(["--api-socket"]);
  assert.equal(missing.kind === "exit" && missing.code, 2);
  assert.equal(parseCli(["positional"]).kind, "exit");
  assert.equal(parseCli(["--seccomp", "sometimes"]).kind, "exit");
  const twice = parseCli(["--api-socket", "a", "--api-socket", "b"]);
  assert.match(twice.kind === "exit" ? twice.stderr! : "", /cannot be used multiple times/);
  const none = parseCli([]);
  assert.equal(none.kind === "exit" && none.code, 2);
});

Deno.test("-V prints the emulator's version line; -V -v adds the features", () => {
  assert.deepEqual(parseCli(["-V"]), {
    kind: "exit",
    code: 0,
    stdout: "cloud-hypervisor v53.0-emulated\n",
  });
  const verbose = parseCli(["--version", "-v"]);
  assert.match(
    verbose.kind === "exit" ? verbose.stdout! : "",
    /Enabled features: \["kvm", "io_uring", "qarax-emulator"\]/,
  );
  const help = parseCli(["-h"]);
  assert.equal(help.kind === "exit" && help.code, 0);
});

Deno.test("socket and monitor arguments: path=, fd=, bare", () => {
  assert.deepEqual(apiSocketTarget("path=/a.sock"), { path: "/a.sock" });
  assert.deepEqual(apiSocketTarget("/b.sock"), { path: "/b.sock" });
  assert.deepEqual(apiSocketTarget("fd=3"), { fd: 3 });
  assert.deepEqual(eventMonitorTarget("fd=4"), { fd: 4 });
  assert.throws(() => eventMonitorTarget("/bare"), OptionError);
});

Deno.test("VM-config flags build the config a --kernel start boots", () => {
  const cfg = vmConfigFromCli(run([
    "--kernel",
    "/k",
    "--cmdline",
    "console=ttyS0",
    "--cpus",
    "boot=2,max=4",
    "--memory",
    "size=1G,hotplug_size=1G",
    "--disk",
    "path=/d,readonly=on,image_type=qcow2",
    "--net",
    "tap=tap0,mac=12:34:56:78:9a:bc,num_queues=4",
    "--serial",
    "socket=/s.sock",
    "--console",
    "off",
    "--pvpanic",
  ]));
  assert.deepEqual(cfg.payload, { kernel: "/k", cmdline: "console=ttyS0" });
  assert.deepEqual(cfg.cpus, { boot_vcpus: 2, max_vcpus: 4 });
  assert.deepEqual(cfg.memory, { size: 1024 ** 3, hotplug_size: 1024 ** 3 });
  assert.deepEqual(cfg.disks, [{ path: "/d", readonly: true, image_type: "Qcow2" }]);
  assert.deepEqual(cfg.net, [{ tap: "tap0", mac: "12:34:56:78:9a:bc", num_queues: 4 }]);
  assert.deepEqual(cfg.serial, { mode: "Socket", socket: "/s.sock" });
  assert.deepEqual(cfg.console, { mode: "Off" });
  assert.equal(cfg.pvpanic, true);
});

import assert from "node:assert/strict";
import { bootLog, LOGIN_PROMPT } from "./console.ts";

Deno.test("the boot log reflects the config and ends at the login prompt", () => {
  const log = bootLog({
    payload: { kernel: "/k", cmdline: "console=ttyS0 root=/dev/vda" },
    cpus: { boot_vcpus: 2, max_vcpus: 2 },
    memory: { size: 256 * 1024 * 1024 },
    disks: [{ path: "/a" }],
    net: [{ mac: "12:34:56:78:9a:bc" }],
  });
  assert.match(log, /Command line: console=ttyS0 root=\/dev\/vda/);
  assert.match(log, /Allowing 2 CPUs/);
  assert.match(log, /Memory: 256MiB/);
  assert.match(log, /\[vda\]/);
  assert.match(log, /12:34:56:78:9a:bc/);
  assert.ok(log.endsWith(LOGIN_PROMPT));
  assert.ok(
    !log.replaceAll("\r\n", "").includes("\n"),
    "CRLF line ends, as a serial console sends",
  );
  assert.match(bootLog({ payload: { firmware: "/fw" } }), /firmware/);
});

import assert from "node:assert/strict";
import { collectHostFacts, normalizeArch, parseDf, parseMeminfo, vmmVersion } from "./info.ts";

Deno.test("architectures are normalised", () => {
  assert.equal(normalizeArch("x86_64"), "x86_64");
  assert.equal(normalizeArch("amd64"), "x86_64");
  assert.equal(normalizeArch("arm64"), "aarch64");
  assert.equal(normalizeArch("aarch64"), "aarch64");
});

Deno.test("meminfo and df output are parsed", () => {
  assert.deepEqual(
    parseMeminfo("MemTotal:       16384 kB\nMemFree: 1 kB\nMemAvailable:    8192 kB\n"),
    { total: 16384 * 1024, available: 8192 * 1024 },
  );
  assert.deepEqual(parseDf("     1B-blocks       Avail\n 1000 400\n"), {
    total: 1000,
    available: 400,
  });
});

Deno.test("host facts are read from this machine", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const f = await collectHostFacts(dir, "/nonexistent/cloud-hypervisor");
    assert.equal(f.hostname, Deno.hostname());
    assert.ok(f.totalCpus >= 1);
    assert.ok(f.totalMemoryBytes > f.availableMemoryBytes && f.availableMemoryBytes > 0);
    assert.ok(f.diskTotalBytes > 0);
    assert.equal(f.cloudHypervisorVersion, "");
    assert.match(f.kernelVersion, /^\d+\.\d+/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the VMM version comes from running the binary", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const fake = `${dir}/cloud-hypervisor`;
    await Deno.writeTextFile(fake, "#!/bin/sh\necho 'cloud-hypervisor v53.0.0'\n", { mode: 0o755 });
    assert.deepEqual(await vmmVersion(fake), { version: "v53.0.0", emulated: false });
    // Remembered: the binary is not started again for every node-info call.
    await Deno.writeTextFile(fake, "#!/bin/sh\necho 'cloud-hypervisor v54.0.0'\n");
    assert.deepEqual(await vmmVersion(fake), { version: "v53.0.0", emulated: false });
    // A failure is not remembered.
    const broken = `${dir}/broken`;
    await Deno.writeTextFile(broken, "#!/bin/sh\nexit 1\n", { mode: 0o755 });
    assert.deepEqual(await vmmVersion(broken), { version: "", emulated: false });
    await Deno.writeTextFile(broken, "#!/bin/sh\necho 'cloud-hypervisor v55.0.0'\n");
    assert.deepEqual(await vmmVersion(broken), { version: "v55.0.0", emulated: false });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

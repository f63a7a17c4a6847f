/**
 * Contract (root): taps for `net` entries: an existing tap is used as is and survives the VM;
 * a missing named tap is created with its host address and removed with the VM; a NIC
 * without `tap` gets a kernel-named `vmtapN`; ids and MACs are generated and written back.
 */
import assert from "node:assert/strict";
import { run } from "../../shared/cmd/run.ts";
import { contractTest } from "../support/contract.ts";
import { bootableConfig, makeDisk, startVmm } from "../support/emulator.ts";

const NET = { root: true, boot: true };

function tapName(): string {
  return `qxt${crypto.randomUUID().replaceAll("-", "").slice(0, 8)}`;
}

function exists(name: string): boolean {
  try {
    Deno.statSync(`/sys/class/net/${name}`);
    return true;
  } catch {
    return false;
  }
}

contractTest("an existing tap is attached and left in place after the VM", NET, async () => {
  const tap = tapName();
  await run(["ip", "tuntap", "add", "dev", tap, "mode", "tap"]);
  try {
    await using vmm = await startVmm();
    const c = vmm.client();
    await c.create(await bootableConfig(vmm.dir, { net: [{ tap, id: "eth0" }] }));
    await c.boot();
    assert.equal((await c.info()).state, "Running");
    const link = JSON.parse((await run(["ip", "-j", "link", "show", "dev", tap])).stdout)[0];
    assert.ok(link.flags.includes("UP"), "CH brings the tap up");
    await c.shutdown();
    assert.ok(exists(tap), "a tap CH did not create is not removed");
  } finally {
    await run(["ip", "link", "del", "dev", tap], { okCodes: [0, 1] });
  }
});

contractTest(
  "a missing named tap is created with the host address, and removed with the VM",
  NET,
  async () => {
    const tap = tapName();
    await using vmm = await startVmm();
    const c = vmm.client();
    await c.create(
      await bootableConfig(vmm.dir, { net: [{ tap, ip: "192.168.251.1", mask: "255.255.255.0" }] }),
    );
    await c.boot();
    try {
      assert.ok(exists(tap));
      const addrs = JSON.parse((await run(["ip", "-j", "addr", "show", "dev", tap])).stdout)[0];
      assert.ok(
        addrs.addr_info.some((a: { local: string; prefixlen: number }) =>
          a.local === "192.168.251.1" && a.prefixlen === 24
        ),
      );
      await c.shutdown();
      assert.ok(!exists(tap), "the tap CH created goes away with the VM");
    } finally {
      await run(["ip", "link", "del", "dev", tap], { okCodes: [0, 1] });
    }
  },
);

contractTest(
  "the tap of a crashed VMM disappears with the process",
  { ...NET, emulatorOnly: true },
  async () => {
    const tap = tapName();
    await using vmm = await startVmm();
    const c = vmm.client();
    await c.create(await bootableConfig(vmm.dir, { net: [{ tap }] }));
    await c.boot();
    assert.ok(exists(tap));
    vmm.kill("SIGKILL");
    await vmm.waitExit();
    for (let i = 0; exists(tap) && i < 50; i++) await new Promise((r) => setTimeout(r, 20));
    assert.ok(!exists(tap));
  },
);

contractTest("ids are generated across device types and MACs are filled in", NET, async () => {
  await using vmm = await startVmm();
  const c = vmm.client();
  const [a, b] = [await makeDisk(vmm.dir, "a.raw"), await makeDisk(vmm.dir, "b.raw")];
  await c.create(await bootableConfig(vmm.dir, { disks: [{ path: a }, { path: b }], net: [{}] }));
  await c.boot();
  const cfg = (await c.info()).config;
  assert.deepEqual([cfg.disks?.[0].id, cfg.disks?.[1].id, cfg.net?.[0].id], [
    "_disk0",
    "_disk1",
    "_net2",
  ]);
  const mac = cfg.net?.[0].mac ?? "";
  assert.match(mac, /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
  assert.equal(parseInt(mac.slice(0, 2), 16) & 0x03, 0x02, "locally administered unicast");
  assert.equal(cfg.net?.[0].tap, undefined, "the generated vmtapN name is not written back");
  assert.equal(cfg.net?.[0].num_queues, 2);
  assert.equal(cfg.net?.[0].queue_size, 256);
  assert.equal(cfg.net?.[0].ip, undefined, "no ip/mask defaults, whatever the YAML says");
  const hot = await c.addNet({ tap: tapName() });
  assert.equal(hot?.id, "_net3");
});

contractTest("two VMMs cannot share one single-queue tap", NET, async () => {
  const tap = tapName();
  await run(["ip", "tuntap", "add", "dev", tap, "mode", "tap"]);
  try {
    await using first = await startVmm();
    await using second = await startVmm();
    await first.client().create(await bootableConfig(first.dir, { net: [{ tap }] }));
    await first.client().boot();
    await second.client().create(await bootableConfig(second.dir, { net: [{ tap }] }));
    await assert.rejects(second.client().boot(), /busy|Open tap device failed/i);
  } finally {
    await run(["ip", "link", "del", "dev", tap], { okCodes: [0, 1] });
  }
});

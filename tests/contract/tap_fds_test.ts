/**
 * Contract (root): tap queues passed as descriptors (SCM_RIGHTS), the way macvtap NICs reach
 * CH: `vm.add-net` with the queues of a real macvtap (inside a private network namespace) adds
 * a NIC that boots, `vm.info` shows one `-1` per descriptor as CH serializes them; descriptors
 * that are not taps make device creation fail; `vm.restore` wants as many descriptors as its
 * `net_fds` announce.
 */
import assert from "node:assert/strict";
import { IpAdapter } from "../../node/net/ip.ts";
import { ensureMacvtap, openMacvtapQueues } from "../../node/net/macvtap.ts";
import { closeFd, O_RDONLY, openFd } from "../../node/sys/libc.ts";
import { InvalidArgumentError } from "../../shared/errors/errors.ts";
import { contractTest } from "../support/contract.ts";
import { bootableConfig, REAL_CH, startVmm } from "../support/emulator.ts";
import { createNetns } from "../support/netns.ts";
import { waitFor } from "../support/process.ts";

const NET = { root: true, boot: true };
const VM = "5b1c2d3e-0000-4000-8000-0000000000f1";
const MAC = "52:54:00:7a:00:01";

/** A macvtap on a veth inside a private namespace, and its queues opened. */
async function macvtapQueues(dir: string, pairs = 1) {
  const ns = await createNetns();
  try {
    const ip = new IpAdapter({ netns: ns.name });
    await ip.exec(["link", "add", "up0", "type", "veth", "peer", "name", "up1"]);
    await ip.setLink("up0", { up: true });
    const name = await ensureMacvtap(ip, { vmId: VM, index: 0, parent: "up0", mac: MAC });
    const fds = await openMacvtapQueues(ip, name, pairs, dir);
    return {
      name,
      fds,
      async [Symbol.asyncDispose]() {
        for (const fd of fds) closeFd(fd);
        await ns.remove();
      },
    };
  } catch (err) {
    await ns.remove();
    throw err;
  }
}

contractTest(
  "macvtap queues passed with vm.add-net become the NIC; vm.info counts them",
  NET,
  async () => {
    await using vmm = await startVmm();
    await using mv = await macvtapQueues(vmm.dir);
    const c = vmm.client();
    await c.create(await bootableConfig(vmm.dir));
    assert.equal(await c.addNet({ id: "eth0", mac: MAC }, { fds: mv.fds }), null, "cold add");
    await c.boot();
    const info = await c.info();
    assert.equal(info.state, "Running");
    const nic = info.config.net?.find((n) => n.id === "eth0");
    assert.deepEqual(nic?.fds, [-1], "CH shows a passed descriptor as -1");
    assert.equal(nic?.tap, undefined);
    if (!REAL_CH) {
      assert.match(
        await Deno.readTextFile(`${vmm.dir}/vmm.log`),
        new RegExp(
          `Network device eth0: 1 tap fd\\(s\\) received over the API socket for ${mv.name}`,
        ),
      );
    }
    // A reboot reuses the same queues.
    await c.reboot();
    assert.equal((await c.info()).state, "Running");
    await c.removeDevice("eth0");
    assert.equal((await c.info()).config.net?.length ?? 0, 0);
  },
);

contractTest("descriptors that are not taps fail the device like CH", NET, async () => {
  await using vmm = await startVmm();
  const c = vmm.client();
  await c.create(await bootableConfig(vmm.dir));
  const file = `${vmm.dir}/not-a-tap`;
  await Deno.writeTextFile(file, "");
  const fd = openFd(file, O_RDONLY);
  try {
    // Cold: stored like any config; the boot fails when the device is made.
    await c.addNet({ id: "eth0", mac: MAC }, { fds: [fd] });
    await assert.rejects(() => c.boot(), (e: Error) => {
      assert.match(e.message, /TUNGETIFF/);
      return true;
    });
    await c.removeDevice("eth0");
    await c.boot();
    // Hot-plugged into a running VM: refused at once.
    await assert.rejects(() => c.addNet({ id: "eth1", mac: MAC }, { fds: [fd] }), /TUNGETIFF/);
  } finally {
    closeFd(fd);
  }
});

contractTest(
  "queue counts must match the descriptors; restore wants what net_fds announce",
  { ...NET, emulatorOnly: true },
  async () => {
    await using vmm = await startVmm();
    await using mv = await macvtapQueues(vmm.dir);
    const c = vmm.client();
    await c.create(await bootableConfig(vmm.dir));
    await assert.rejects(
      () => c.addNet({ id: "eth0", mac: MAC, num_queues: 4 }, { fds: mv.fds }),
      (e: Error) => e instanceof InvalidArgumentError && /Number of queues \(4\)/.test(e.message),
    );
    await using fresh = await startVmm();
    const snap = await Deno.makeTempDir({ dir: fresh.dir });
    await assert.rejects(
      () => fresh.client().restore({ source_url: `file://${snap}`, net_fds: [] }, { fds: mv.fds }),
      InvalidArgumentError,
    );
    await assert.rejects(
      () =>
        fresh.client().restore({
          source_url: `file://${snap}`,
          net_fds: [{ id: "eth0", num_fds: 2 }],
        }),
      InvalidArgumentError,
    );
  },
);

contractTest("descriptors sent to endpoints that do not take them are dropped", NET, async () => {
  await using vmm = await startVmm();
  const c = vmm.client();
  await c.create(await bootableConfig(vmm.dir));
  await c.boot();
  await c.info();
  const open = () => Deno.readDirSync(`/proc/${vmm.pid}/fd`).toArray().length;
  const before = open();
  const fd = openFd(`${vmm.dir}/vmm.log`, O_RDONLY);
  try {
    for (let i = 0; i < 5; i++) await c.info({ fds: [fd, fd] });
    await c.pause({ fds: [fd] });
    await assert.rejects(() => c.pause({ fds: [fd] }), "a failed call drops them too");
  } finally {
    closeFd(fd);
  }
  // Each one-shot connection is closed by the VMM once it sees the end of it.
  await waitFor(() => open() === before, 5_000, `the VMM to hold ${before} descriptors again`);
});

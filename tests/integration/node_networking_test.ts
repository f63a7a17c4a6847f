/**
 * The node's network manager against real bridges and taps, each test inside its own private
 * network namespace (tests/support/netns.ts), never on the machine's interfaces.
 */
import assert from "node:assert/strict";
import { IpAdapter } from "../../node/net/ip.ts";
import { NetworkManager } from "../../node/net/manager.ts";
import { networkSpecFromRequest } from "../../node/net/spec.ts";
import { tapName } from "../../node/net/tap.ts";
import { StateStore } from "../../node/state/store.ts";
import { ConflictError, FailedPreconditionError } from "../../shared/errors/errors.ts";
import { type Netns, netnsTest } from "../support/netns.ts";

const VM_A = "0f8c3a52-5d1e-4c3b-9b1e-0c9f3f1d2a10";
const VM_B = "7d2e9b14-1111-4c3b-9b1e-0c9f3f1d2a10";

async function setup(ns: Netns, stateDir?: string) {
  const dir = stateDir ?? await Deno.makeTempDir({ prefix: "qarax-net-state-" });
  const ip = new IpAdapter({ netns: ns.name });
  const manager = new NetworkManager(ip, await StateStore.open(`${dir}/state`), {
    dhcpDir: `${dir}/dhcp`,
  });
  return { dir, ip, manager };
}

function spec(bridge: string, extra: Record<string, unknown> = {}) {
  return networkSpecFromRequest({
    bridgeName: bridge,
    networkId: `net-${bridge}`,
    subnet: "10.77.0.0/24",
    gateway: "10.77.0.1",
    mtu: 1450,
    ...extra,
  });
}

async function inet(ip: IpAdapter, dev: string): Promise<string[]> {
  return (await ip.addresses(dev)).filter((a) => a.family === "inet").map((a) =>
    `${a.local}/${a.prefix}`
  );
}

netnsTest(
  "attach creates the bridge with its gateway address and MTU, and is idempotent",
  async (ns) => {
    const { dir, ip, manager } = await setup(ns);
    try {
      const first = await manager.attach(spec("qbr0"));
      assert.equal(first.bridgeCreated, true);
      assert.equal(first.addressAdded, true);
      await manager.attach(spec("qbr0"));
      const link = await ip.link("qbr0");
      assert.equal(link?.kind, "bridge");
      assert.equal(link?.mtu, 1450);
      assert.equal(link?.up, true);
      assert.equal(link?.alias, "qarax:network:net-qbr0");
      assert.deepEqual(await inet(ip, "qbr0"), ["10.77.0.1/24"]);
      const list = await manager.list();
      assert.equal(list.length, 1);
      assert.equal(list[0].bridgeCreated, true);
      assert.equal(list[0].addressAdded, true, "re-applying keeps what qarax added");

      // A new gateway replaces the address qarax added instead of piling up addresses.
      await manager.attach(spec("qbr0", { subnet: "10.78.0.0/24", gateway: "10.78.0.254" }));
      assert.deepEqual(await inet(ip, "qbr0"), ["10.78.0.254/24"]);
      // The bridge belongs to net-qbr0: another network cannot take it.
      await assert.rejects(
        () => manager.attach(spec("qbr0", { networkId: "other" })),
        ConflictError,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

netnsTest(
  "taps: deterministic name, master, MTU and queues; fixed when wrong; removed per VM",
  async (ns) => {
    const { dir, ip, manager } = await setup(ns);
    try {
      await manager.attach(spec("qbr0"));
      await manager.attach(spec("qbr1", { subnet: "10.79.0.0/24", gateway: "10.79.0.1" }));
      const t0 = await manager.ensureNicTap(VM_A, 0, { bridge: "qbr0" });
      const t1 = await manager.ensureNicTap(VM_A, 1, { bridge: "qbr1", mtu: 1400, numQueues: 4 });
      const tb = await manager.ensureNicTap(VM_B, 0, { bridge: "qbr0" });
      assert.equal(t0, "qt0f8c3a52n0");
      assert.equal(t1, tapName(VM_A, 1));

      let l0 = await ip.link(t0);
      assert.equal(l0?.master, "qbr0");
      assert.equal(l0?.mtu, 1450, "defaults to the bridge's MTU");
      assert.equal(l0?.up, true);
      assert.equal(l0?.tun?.type, "tap");
      assert.equal(l0?.tun?.multiQueue, false, "2 queues = one pair = single-queue tap");
      const l1 = await ip.link(t1);
      assert.equal(l1?.master, "qbr1");
      assert.equal(l1?.mtu, 1400);
      assert.equal(l1?.tun?.multiQueue, true);

      // Re-creating a correct tap changes nothing; a wrong master or MTU is put right.
      const before = l0?.index;
      await manager.ensureNicTap(VM_A, 0, { bridge: "qbr0" });
      assert.equal((await ip.link(t0))?.index, before);
      await ip.exec(["link", "set", "dev", t0, "master", "qbr1", "mtu", "1300"]);
      await manager.ensureNicTap(VM_A, 0, { bridge: "qbr0" });
      l0 = await ip.link(t0);
      assert.equal(l0?.master, "qbr0");
      assert.equal(l0?.mtu, 1450);
      assert.equal(l0?.index, before);
      // A changed queue layout recreates the (unused) tap.
      await manager.ensureNicTap(VM_A, 0, { bridge: "qbr0", numQueues: 8 });
      assert.equal((await ip.link(t0))?.tun?.multiQueue, true);

      await assert.rejects(
        () => manager.ensureNicTap(VM_A, 2, { bridge: "nosuchbr" }),
        FailedPreconditionError,
      );
      const listed = (await manager.listTaps()).map((t) => `${t.name}:${t.vmId}:${t.index}`).sort();
      assert.deepEqual(listed, [`${t0}:${VM_A}:0`, `${t1}:${VM_A}:1`, `${tb}:${VM_B}:0`].sort());

      assert.deepEqual((await manager.removeVmTaps(VM_A)).sort(), [t0, t1].sort());
      assert.equal(await ip.link(t0), undefined);
      assert.equal(await ip.link(t1), undefined);
      assert.equal((await ip.link(tb))?.master, "qbr0", "other VMs' taps stay");
      assert.deepEqual(await manager.removeVmTaps(VM_A), [], "removing again is a no-op");
      assert.equal(await manager.removeNicTap(VM_B, 0), true);
      assert.equal(await ip.link(tb), undefined);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

netnsTest("detach removes exactly what qarax created; an adopted bridge stays", async (ns) => {
  const { dir, ip, manager } = await setup(ns);
  try {
    // The operator's own bridge, with its own address and alias.
    await ip.exec(["link", "add", "name", "opbr", "type", "bridge"]);
    await ip.exec(["link", "set", "dev", "opbr", "alias", "operator", "up"]);
    await ip.exec(["addr", "add", "192.168.50.1/24", "dev", "opbr"]);

    const adopted = await manager.attach(spec("opbr", { mtu: 0 }));
    assert.equal(adopted.bridgeCreated, false);
    assert.equal(adopted.addressAdded, true);
    assert.equal((await ip.link("opbr"))?.alias, "operator", "an adopted bridge is not relabelled");
    await manager.attach(spec("qbr0", { subnet: "10.79.0.0/24", gateway: "10.79.0.1" }));

    // In use: refused, nothing removed.
    const tap = await manager.ensureNicTap(VM_A, 0, { bridge: "qbr0" });
    await assert.rejects(
      () => manager.detach({ bridge: "qbr0", networkId: "net-qbr0" }),
      FailedPreconditionError,
    );
    assert.ok(await ip.link("qbr0"));
    await manager.removeVmTaps(VM_A);
    assert.equal(await ip.link(tap), undefined);

    assert.equal(await manager.detach({ bridge: "qbr0", networkId: "net-qbr0" }), true);
    assert.equal(await ip.link("qbr0"), undefined);
    assert.equal(await manager.detach({ bridge: "opbr", networkId: "" }), true);
    const op = await ip.link("opbr");
    assert.equal(op?.kind, "bridge");
    assert.equal(op?.alias, "operator");
    assert.deepEqual(await inet(ip, "opbr"), ["192.168.50.1/24"]);
    assert.deepEqual(await manager.list(), []);
    // Detaching again, or something never attached, succeeds and touches nothing.
    assert.equal(await manager.detach({ bridge: "opbr", networkId: "" }), false);
    assert.ok(await ip.link("opbr"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

netnsTest("reconcile after a restart restores a lost bridge and duplicates nothing", async (ns) => {
  const { dir, ip, manager } = await setup(ns);
  try {
    await manager.attach(spec("qbr0"));
    await manager.attach(spec("qbr1", { subnet: "10.79.0.0/24", gateway: "10.79.0.1" }));
    // What a host reboot does to qbr0; qbr1 survives.
    await ip.deleteLink("qbr0");

    const { manager: restarted } = await setup(ns, dir);
    const report = await restarted.reconcile();
    assert.deepEqual(report, { restored: ["qbr0", "qbr1"], failed: [] });
    for (const [br, addr] of [["qbr0", "10.77.0.1/24"], ["qbr1", "10.79.0.1/24"]]) {
      const link = await ip.link(br);
      assert.equal(link?.kind, "bridge");
      assert.equal(link?.mtu, 1450);
      assert.equal(link?.up, true);
      assert.deepEqual(await inet(ip, br), [addr]);
    }
    assert.equal((await ip.links()).filter((l) => l.kind === "bridge").length, 2);
    const state = await restarted.list();
    assert.deepEqual(state.map((a) => [a.bridge, a.bridgeCreated, a.addressAdded]), [
      ["qbr0", true, true],
      ["qbr1", true, true],
    ]);
    // And the restored bridge is still fully owned: detach removes it.
    await restarted.detach({ bridge: "qbr0", networkId: "" });
    assert.equal(await ip.link("qbr0"), undefined);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

netnsTest(
  "a bridge qarax created is recognised by its alias when the state is lost",
  async (ns) => {
    const { dir, ip, manager } = await setup(ns);
    try {
      await manager.attach(spec("qbr0"));
      const { dir: empty, manager: amnesiac } = await setup(ns);
      try {
        assert.equal((await amnesiac.attach(spec("qbr0"))).bridgeCreated, true);
        await amnesiac.detach({ bridge: "qbr0", networkId: "net-qbr0" });
        assert.equal(await ip.link("qbr0"), undefined);
      } finally {
        await Deno.remove(empty, { recursive: true });
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

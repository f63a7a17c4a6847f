/**
 * Uplinks: a bridged network takes over a host NIC (its address and default route move to the
 * bridge, the host stays reachable, DHCP serves the LAN segment from the bridge) and gives all
 * of it back on detach, also after an agent restart and after a "host reboot"; a VLAN network
 * puts a VLAN device of its parent under the bridge and removes it on detach.
 */
import assert from "node:assert/strict";
import type { IpAdapter } from "../../node/net/ip.ts";
import { tryRun } from "../../shared/cmd/run.ts";
import { FailedPreconditionError } from "../../shared/errors/errors.ts";
import { node } from "../../shared/proto/mod.ts";
import { netnsTest } from "../support/netns.ts";
import { managerIn } from "../support/net_manager.ts";
import { fakeGuest, lan } from "../support/topology.ts";

const MAC = "52:54:00:b1:00:01";

async function inet(ip: IpAdapter, dev: string): Promise<string[]> {
  return (await ip.addresses(dev)).filter((a) => a.family === "inet")
    .map((a) => `${a.local}/${a.prefix}`);
}

async function defaults(ip: IpAdapter): Promise<string[]> {
  return (await ip.routes()).filter((r) => r.dst === "default")
    .map((r) => `${r.gateway} ${r.dev} ${r.metric ?? 0}`);
}

netnsTest(
  "a bridged network takes the NIC's address and default route, and gives them back",
  async (ns) => {
    await using net = await managerIn(ns);
    await using phys = await lan(ns.name);
    const ip = net.ip;
    const nicMac = (await ip.link("up0"))!.mac;
    const NET = {
      bridgeName: "qbr0",
      networkId: "8c2f6e40-0000-4000-8000-0000000b1001",
      subnet: "192.0.2.0/24",
      gateway: "192.0.2.1",
      parentInterface: "up0",
      dhcp: true,
      reservations: [{ mac: MAC, ip: "192.0.2.50" }],
    };
    const taken = async () => {
      assert.equal((await ip.link("up0"))?.master, "qbr0");
      assert.deepEqual(await inet(ip, "up0"), []);
      assert.deepEqual(await inet(ip, "qbr0"), ["192.0.2.10/24"], "the gateway is not added");
      assert.equal((await ip.link("qbr0"))?.mac, nicMac, "the LAN keeps seeing the same MAC");
      assert.deepEqual(await defaults(ip), ["192.0.2.1 qbr0 50"]);
      assert.ok(await phys.reachable(), "the host is still on its LAN");
    };
    const attached = await net.attach(NET);
    assert.deepEqual(attached.uplink, {
      kind: "nic",
      device: "up0",
      created: false,
      addresses: ["192.0.2.10/24"],
      routes: [{ gateway: "192.0.2.1", metric: 50 }],
    });
    await taken();

    // A guest on the bridge is on the LAN; the node's DHCP server answers it from the bridge.
    await using guest = await fakeGuest(ns.name, "qbr0", MAC);
    const lease = await guest.dhcp();
    assert.equal(lease?.ip, "192.0.2.50");
    assert.equal(lease?.router, "192.0.2.1", "the LAN's router, not the node");
    await guest.configure(lease!);
    const ping = await tryRun(
      ["ip", "netns", "exec", guest.ns.name, "busybox", "ping", "-c", "1", "-W", "2", "192.0.2.1"],
    );
    assert.equal(ping.code, 0, "the guest reaches the LAN's router through the bridge");

    // Agent restart: nothing moves twice, nothing is duplicated.
    await (await net.restart()).reconcile();
    await taken();
    // Host reboot: the bridge is gone and the NIC has its address and route again.
    await ip.deleteLink("qbr0");
    await ip.addAddress("up0", "192.0.2.10/24");
    await ip.replaceRoute({ dst: "default", gateway: "192.0.2.1", dev: "up0", metric: 50 });
    assert.deepEqual(await net.manager.reconcile(), { restored: ["qbr0"], failed: [] });
    await taken();

    await net.manager.detach({ bridge: "qbr0", networkId: NET.networkId });
    assert.equal(await ip.link("qbr0"), undefined);
    assert.equal((await ip.link("up0"))?.master, undefined);
    assert.deepEqual(await inet(ip, "up0"), ["192.0.2.10/24"]);
    assert.deepEqual(await defaults(ip), ["192.0.2.1 up0 50"]);
    assert.ok(await phys.reachable());
    assert.deepEqual(await net.manager.list(), []);
  },
);

netnsTest("a parent that cannot be an uplink is refused before anything changes", async (ns) => {
  await using net = await managerIn(ns);
  await using _phys = await lan(ns.name);
  await net.ip.addBridge("opbr");
  const base = { bridgeName: "qbr0", subnet: "192.0.2.0/24", gateway: "192.0.2.1" };
  for (const parent of ["nosuch0", "opbr"]) {
    await assert.rejects(
      () => net.attach({ ...base, parentInterface: parent }),
      FailedPreconditionError,
      parent,
    );
    assert.equal(await net.ip.link("qbr0"), undefined, "the half-made bridge was removed");
  }
  // DHCP on an uplink that brings no address of the subnet could never answer.
  await assert.rejects(
    () =>
      net.attach({
        ...base,
        subnet: "10.70.0.0/24",
        gateway: "",
        parentInterface: "up0",
        dhcp: true,
      }),
    /has no address in 10\.70\.0\.0\/24/,
  );
  assert.equal(await net.ip.link("qbr0"), undefined);
  assert.deepEqual(await inet(net.ip, "up0"), ["192.0.2.10/24"], "the NIC got its address back");
  assert.deepEqual(await net.manager.list(), []);
});

/** Whether this kernel can make 802.1Q devices (CONFIG_VLAN_8021Q), probed in `ns`. */
async function kernelHasVlan(ip: IpAdapter): Promise<boolean> {
  await ip.exec(["link", "add", "probe0", "type", "veth", "peer", "name", "probe1"]);
  try {
    const r = await tryRun([
      ...ip.nsPrefix,
      "ip",
      "link",
      "add",
      "link",
      "probe0",
      "name",
      "probe0.9",
      "type",
      "vlan",
      "id",
      "9",
    ]);
    return r.code === 0;
  } finally {
    await ip.deleteLink("probe0");
  }
}

netnsTest(
  "a VLAN network: VLAN device of the parent under the bridge, removed on detach (without 802.1Q in the kernel: refused, nothing left)",
  async (ns) => {
    await using net = await managerIn(ns);
    await using _phys = await lan(ns.name);
    const ip = net.ip;
    const NET = {
      bridgeName: "vbr100",
      networkId: "9d3a7f51-0000-4000-8000-0000000b1002",
      type: node.NetworkType.NETWORK_TYPE_VLAN,
      vlanId: 100,
      parentInterface: "up0",
      subnet: "10.100.0.0/24",
      gateway: "10.100.0.1",
    };
    if (!(await kernelHasVlan(ip))) {
      await assert.rejects(() => net.attach(NET), (e) => {
        assert.ok(e instanceof FailedPreconditionError);
        assert.match(e.message, /no 802\.1Q VLAN support/);
        return true;
      });
      assert.equal(await ip.link("vbr100"), undefined);
      assert.equal(await ip.link("up0.100"), undefined);
      assert.deepEqual(await inet(ip, "up0"), ["192.0.2.10/24"], "the parent is untouched");
      assert.deepEqual(await net.manager.list(), []);
      return;
    }
    const attached = await net.attach(NET);
    assert.equal(attached.uplink?.device, "up0.100");
    const check = async () => {
      const vlan = await ip.link("up0.100");
      assert.deepEqual([vlan?.kind, vlan?.parent, vlan?.vlanId, vlan?.master, vlan?.up], [
        "vlan",
        "up0",
        100,
        "vbr100",
        true,
      ]);
      assert.deepEqual(await inet(ip, "vbr100"), [], "the VLAN's router is on the wire");
      assert.deepEqual(await inet(ip, "up0"), ["192.0.2.10/24"], "the parent keeps its address");
    };
    await check();
    await net.attach(NET);
    await (await net.restart()).reconcile();
    await check();
    assert.equal((await ip.links()).filter((l) => l.kind === "vlan").length, 1);
    await net.manager.detach({ bridge: "vbr100", networkId: NET.networkId });
    assert.equal(await ip.link("up0.100"), undefined);
    assert.equal(await ip.link("vbr100"), undefined);
    assert.deepEqual(await inet(ip, "up0"), ["192.0.2.10/24"]);

    // An operator's own VLAN device is adopted and left in place.
    await ip.addVlan("up0.100", "up0", 100);
    await net.attach(NET);
    assert.equal((await ip.link("up0.100"))?.master, "vbr100");
    await net.manager.detach({ bridge: "vbr100", networkId: NET.networkId });
    assert.equal((await ip.link("up0.100"))?.master, undefined);
  },
);

/**
 * Networks across agent restarts, through the agent (inside a private network namespace):
 * killed with SIGKILL and started again, the agent adopts the running DHCP servers and
 * duplicates nothing (one dnsmasq per bridge, one NAT rule per network, one gateway address),
 * DHCP keeps answering even while the agent is down, and SetDhcpReservations works on the
 * adopted server. After a "host reboot" (bridges, rules and servers gone) a restart rebuilds
 * everything from the node's state.
 */
import assert from "node:assert/strict";
import { IpAdapter } from "../../node/net/ip.ts";
import { NatRules } from "../../node/net/nat.ts";
import { run } from "../../shared/cmd/run.ts";
import { netnsTest } from "../support/netns.ts";
import { dnsmasqPids } from "../support/net_manager.ts";
import { TestAgent } from "../support/node_agent.ts";
import { fakeGuest, internet } from "../support/topology.ts";

const A = "52:54:00:5e:00:0a";
const B = "52:54:00:5e:00:0b";
const NAT_NET = {
  bridgeName: "qbr0",
  networkId: "3c9b2a1d-0000-4000-8000-00000005e001",
  subnet: "10.90.0.0/24",
  gateway: "10.90.0.1",
  dns: "10.90.0.1",
  nat: true,
  dhcp: true,
  reservations: [{ mac: A, ip: "10.90.0.10" }],
};
const PLAIN_NET = {
  bridgeName: "qbr1",
  networkId: "3c9b2a1d-0000-4000-8000-00000005e002",
  subnet: "10.91.0.0/24",
  gateway: "10.91.0.1",
  dhcp: true,
  reservations: [{ mac: B, ip: "10.91.0.20" }],
};

netnsTest(
  "after kill -9 and restart: DHCP servers adopted, nothing duplicated, DHCP answered throughout",
  async (ns) => {
    const ip = new IpAdapter({ netns: ns.name });
    const nat = new NatRules(ip);
    await using world = await internet(ns.name);
    await using agent = await TestAgent.start({ netns: ns.name });
    const dhcpDir = `${agent.runtimeDir}/.dhcp`;
    await agent.vms.attachNetwork(NAT_NET);
    await agent.vms.attachNetwork(PLAIN_NET);
    await using a = await fakeGuest(ns.name, "qbr0", A);
    await using b = await fakeGuest(ns.name, "qbr1", B);
    const leaseA = await a.dhcp();
    assert.equal(leaseA?.ip, "10.90.0.10");
    assert.equal((await b.dhcp())?.ip, "10.91.0.20");
    await a.configure(leaseA!);
    assert.equal(await a.connect(world.address, world.port), world.nodeAddress);

    /** Everything that must exist exactly once. */
    const snapshot = async () => {
      const bridges = (await ip.links()).filter((l) => l.kind === "bridge").map((l) => l.name);
      const addresses: string[] = [];
      for (const br of bridges.sort()) {
        for (const x of await ip.addresses(br)) if (x.family === "inet") addresses.push(x.local);
      }
      return {
        dnsmasq: dnsmasqPids(dhcpDir).length,
        nat: (await nat.chains()).map((c) => `${c.name}:${c.rules.length}`),
        addresses,
        bridges,
      };
    };
    const expected = {
      dnsmasq: 2,
      nat: ["nat-qbr0:1"],
      addresses: ["10.90.0.1", "10.91.0.1"],
      bridges: ["qbr0", "qbr1"],
    };
    assert.deepEqual(await snapshot(), expected);
    const pids = dnsmasqPids(dhcpDir).sort();

    await agent.kill9();
    // The DHCP servers do not depend on the agent.
    assert.equal((await a.dhcp())?.ip, "10.90.0.10");
    await agent.launch();
    assert.deepEqual(await snapshot(), expected);
    assert.deepEqual(dnsmasqPids(dhcpDir).sort(), pids, "adopted, not restarted");
    assert.equal((await a.dhcp())?.ip, "10.90.0.10");
    assert.equal(await a.connect(world.address, world.port), world.nodeAddress);

    // The adopted server takes a new reservation set.
    await agent.vms.setDhcpReservations({
      bridgeName: "qbr0",
      reservations: [{ mac: A, ip: "10.90.0.11", hostname: "a" }],
    });
    assert.equal((await a.dhcp())?.ip, "10.90.0.11");

    // A host reboot: bridges, rules and DHCP servers are gone; the agent rebuilds them.
    await agent.kill9();
    for (const pid of pids) Deno.kill(pid, "SIGKILL");
    await ip.deleteLink("qbr0");
    await ip.deleteLink("qbr1");
    await run([...ip.nsPrefix, "nft", "flush", "ruleset"]);
    await agent.launch();
    assert.deepEqual(await snapshot(), expected);
    await ip.setLink(a.port, { master: "qbr0", up: true });
    await ip.setLink(b.port, { master: "qbr1", up: true });
    const again = await a.dhcp();
    assert.equal(again?.ip, "10.90.0.11", "the set pushed before the reboot is served");
    assert.equal((await b.dhcp())?.ip, "10.91.0.20");
    await a.configure(again!);
    assert.equal(await a.connect(world.address, world.port), world.nodeAddress);

    await agent.vms.detachNetwork({ bridgeName: "qbr0" });
    await agent.vms.detachNetwork({ bridgeName: "qbr1" });
    assert.deepEqual(await snapshot(), { dnsmasq: 0, nat: [], addresses: [], bridges: [] });
  },
);

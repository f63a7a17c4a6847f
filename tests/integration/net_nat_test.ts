/**
 * Outbound NAT with nftables: a fake guest behind an isolated network reaches a listener in
 * the "internet" namespace (behind the node's default route, with no route back to the guest
 * subnet) with its source translated to the node's uplink address; the rule lives in one
 * chain of the `ip qarax` table, is never duplicated by re-attaching, and is gone (and the
 * guest cut off) when NAT is turned off or the network detached.
 */
import assert from "node:assert/strict";
import { run } from "../../shared/cmd/run.ts";
import { netnsTest } from "../support/netns.ts";
import { managerIn } from "../support/net_manager.ts";
import { fakeGuest, internet } from "../support/topology.ts";

const MAC = "52:54:00:4a:70:01";
const NET = {
  bridgeName: "qbr0",
  networkId: "7b1e5d3f-0000-4000-8000-0000000a7a01",
  subnet: "10.89.0.0/24",
  gateway: "10.89.0.1",
  nat: true,
  dhcp: true,
  reservations: [{ mac: MAC, ip: "10.89.0.10" }],
};

netnsTest(
  "a NATed guest reaches the outside as the node; turning NAT off or detaching cuts it off",
  async (ns) => {
    await using net = await managerIn(ns);
    await using world = await internet(ns.name);
    // An operator's own table on the same hook is none of qarax's business.
    await run(["ip", "netns", "exec", ns.name, "nft", "add", "table", "ip", "operator"]);
    await net.attach(NET);
    await using guest = await fakeGuest(ns.name, "qbr0", MAC);
    const lease = await guest.dhcp();
    assert.equal(lease?.ip, "10.89.0.10");
    await guest.configure(lease!);

    assert.equal(
      await guest.connect(world.address, world.port),
      world.nodeAddress,
      "the far side sees the node's uplink address, not 10.89.0.10",
    );
    const forward = await run([
      "ip",
      "netns",
      "exec",
      ns.name,
      "sysctl",
      "-n",
      "net.ipv4.ip_forward",
    ]);
    assert.equal(forward.stdout.trim(), "1");

    // Re-attaching (and an agent restart's reconcile) leaves exactly one rule.
    await net.attach(NET);
    await (await net.restart()).reconcile();
    const chains = await net.manager.nat.chains();
    assert.deepEqual(chains.map((c) => [c.name, c.hook, c.rules.map((r) => r.comment)]), [
      ["nat-qbr0", "postrouting", [`qarax:network:${NET.networkId}`]],
    ]);

    // NAT off: the chain goes, and the guest's packets reach nobody who can answer.
    await net.attach({ ...NET, nat: false });
    assert.deepEqual(await net.manager.nat.chains(), []);
    assert.equal(await guest.connect(world.address, world.port), null);

    await net.attach(NET);
    assert.equal(await guest.connect(world.address, world.port), world.nodeAddress);
    await net.manager.detach({ bridge: "qbr0", networkId: NET.networkId });
    assert.deepEqual(
      await net.manager.nat.chains(),
      [],
      "the qarax table is gone with its last chain",
    );
    const tables = await run(["ip", "netns", "exec", ns.name, "nft", "list", "tables"]);
    assert.match(tables.stdout, /table ip operator/, "the operator's table stays");
    assert.doesNotMatch(tables.stdout, /qarax/);
    assert.equal(await guest.connect(world.address, world.port), null);
  },
);

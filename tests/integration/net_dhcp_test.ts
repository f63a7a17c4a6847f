/**
 * DHCP from IPAM: the bridge's dnsmasq answers a real DHCP client (busybox udhcpc in a fake
 * guest namespace) with exactly the reserved address, gateway, DNS and MTU; a new reservation
 * set is served at once (also when an address moves to another MAC); unknown MACs get nothing;
 * a killed dnsmasq is restarted; a restarted manager adopts the running one; detach stops it.
 */
import assert from "node:assert/strict";
import { dhcpPaths } from "../../node/net/dnsmasq.ts";
import { FailedPreconditionError, InvalidArgumentError } from "../../shared/errors/errors.ts";
import { netnsTest } from "../support/netns.ts";
import { dnsmasqPids, managerIn } from "../support/net_manager.ts";
import { waitFor } from "../support/process.ts";
import { fakeGuest } from "../support/topology.ts";

const A = "52:54:00:0d:00:0a";
const B = "52:54:00:0d:00:0b";
const NET = {
  bridgeName: "qbr0",
  networkId: "6a0d4c2e-0000-4000-8000-00000000d0c1",
  subnet: "10.88.0.0/24",
  gateway: "10.88.0.1",
  dns: "10.88.0.1 9.9.9.9",
  mtu: 1450,
  dhcp: true,
};

netnsTest(
  "a guest gets exactly its reservation; new sets are served at once; unknown MACs get nothing",
  async (ns) => {
    await using net = await managerIn(ns);
    await net.attach({ ...NET, reservations: [{ mac: A, ip: "10.88.0.10", hostname: "guest-a" }] });
    await using guest = await fakeGuest(ns.name, "qbr0", A);
    assert.deepEqual(await guest.dhcp(), {
      ip: "10.88.0.10",
      subnet: "255.255.255.0",
      router: "10.88.0.1",
      dns: ["10.88.0.1", "9.9.9.9"],
      mtu: 1450,
      lease: 3600,
    });

    // A changed set is re-read by the running server (no restart).
    const pid = net.manager.dhcp.pid("qbr0");
    assert.equal(
      await net.manager.setReservations("qbr0", [{ mac: A, ip: "10.88.0.20" }]),
      "reloaded",
    );
    assert.equal(net.manager.dhcp.pid("qbr0"), pid);
    assert.equal((await guest.dhcp())?.ip, "10.88.0.20");
    assert.deepEqual((await net.manager.list())[0].reservations, [
      { mac: A, ip: "10.88.0.20", hostname: "" },
    ]);

    // A MAC without a reservation gets no answer at all.
    await using stranger = await fakeGuest(ns.name, "qbr0", B);
    assert.equal(await stranger.dhcp({ tries: 2 }), null);

    // The address moves to B while A still holds a lease on it: B gets it right away.
    assert.equal(
      await net.manager.setReservations("qbr0", [{ mac: B, ip: "10.88.0.20" }]),
      "restarted",
    );
    assert.equal((await stranger.dhcp())?.ip, "10.88.0.20");
    assert.equal(await guest.dhcp({ tries: 2 }), null, "A has no reservation any more");

    // Bad sets are refused as a whole, naming the entry; the served set stays.
    await assert.rejects(
      () =>
        net.manager.setReservations("qbr0", [
          { mac: A, ip: "10.88.0.30" },
          { mac: B, ip: "10.88.0.30" },
        ]),
      (e) => e instanceof InvalidArgumentError && e.details[0]?.field === "reservations.1.ip",
    );
    await assert.rejects(
      () => net.manager.setReservations("nosuch", []),
      FailedPreconditionError,
    );
    assert.equal((await stranger.dhcp())?.ip, "10.88.0.20");
  },
);

netnsTest(
  "dnsmasq is supervised: restarted when killed, adopted by a restarted manager, stopped on detach",
  async (ns) => {
    await using net = await managerIn(ns);
    await net.attach({ ...NET, reservations: [{ mac: A, ip: "10.88.0.10" }] });
    await using guest = await fakeGuest(ns.name, "qbr0", A);
    const first = net.manager.dhcp.pid("qbr0")!;
    assert.deepEqual(dnsmasqPids(net.dhcpDir), [first]);

    // Killed behind the agent's back: a new one serves within moments.
    Deno.kill(first, "SIGKILL");
    const second = await waitFor(
      () => {
        const pid = net.manager.dhcp.pid("qbr0");
        return pid && pid !== first ? pid : undefined;
      },
      15_000,
      "dnsmasq to be restarted",
    );
    assert.deepEqual(dnsmasqPids(net.dhcpDir), [second]);
    assert.equal((await guest.dhcp())?.ip, "10.88.0.10");

    // An agent restart: the running dnsmasq is adopted, not duplicated.
    const restarted = await net.restart();
    assert.deepEqual(await restarted.reconcile(), { restored: ["qbr0"], failed: [] });
    assert.equal(restarted.dhcp.pid("qbr0"), second);
    assert.deepEqual(dnsmasqPids(net.dhcpDir), [second]);
    assert.equal((await guest.dhcp())?.ip, "10.88.0.10");

    // Turning DHCP off stops it; detach removes its files.
    await net.attach({ ...NET, dhcp: false });
    assert.deepEqual(dnsmasqPids(net.dhcpDir), []);
    await net.attach({ ...NET, reservations: [{ mac: A, ip: "10.88.0.11" }] });
    assert.equal((await guest.dhcp())?.ip, "10.88.0.11");
    await restarted.detach({ bridge: "qbr0", networkId: NET.networkId });
    assert.deepEqual(dnsmasqPids(net.dhcpDir), []);
    await assert.rejects(() => Deno.stat(dhcpPaths(net.dhcpDir, "qbr0").dir), Deno.errors.NotFound);
    assert.equal(await net.ip.link("qbr0"), undefined);
  },
);

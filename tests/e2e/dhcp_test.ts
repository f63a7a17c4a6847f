/**
 * End to end, with real processes: a control plane and a node agent in its own network
 * namespace. A dhcp-mode network attached through the API makes the node run dnsmasq on its
 * bridge; a NIC added through the API is served at once to a fake guest (a namespace with a
 * veth on that bridge carrying the NIC's MAC, running busybox udhcpc), which gets exactly its
 * IPAM address, gateway, DNS and MTU. After the NIC's address changes, or the NIC is replaced,
 * the guest gets the new address and the old MAC gets nothing. Detaching through the API
 * removes the bridge and stops dnsmasq.
 */
import assert from "node:assert/strict";
import { netnsSupport } from "../support/netns.ts";
import { E2eCluster } from "../support/cluster.ts";
import { dnsmasqPids } from "../support/net_manager.ts";
import { fakeGuest } from "../support/topology.ts";

const support = netnsSupport();
if (!support.ok) console.warn(`skipping end-to-end tests: ${support.reason} (CI=true forces them)`);

Deno.test({
  name: "e2e: a dhcp network attached through the API hands each NIC its IPAM address",
  ignore: !support.ok,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    await using cluster = await E2eCluster.create(1);
    const [n] = cluster.nodes;
    await n.start();
    const cp = await cluster.addControlPlane();
    const dhcpDir = `${n.runtimeDir}/.dhcp`;
    const bridge = "qxdhcp0";
    let host: { id: string };
    let net: { id: string };
    let vm: { id: string };

    await t.step("a dhcp network attached to an initialised host runs dnsmasq", async () => {
      host = await cp.ok("POST", "/v1/hosts", { name: n.name, address: n.ip, port: n.port });
      await cp.ok("POST", `/v1/hosts/${host.id}/init`);
      net = await cp.ok("POST", "/v1/networks", {
        name: "guests",
        mode: "dhcp",
        subnet: "172.31.77.0/24",
        gateway: "172.31.77.1",
        dns: ["172.31.77.1"],
        mtu: 1450,
      });
      const att = await cp.ok("POST", `/v1/networks/${net.id}/hosts`, {
        host_id: host.id,
        bridge_name: bridge,
      });
      assert.equal(att.status, "ready");
      assert.match(await n.ns.exec(["ip", "-o", "addr", "show", bridge]), /172\.31\.77\.1\/24/);
      assert.equal(dnsmasqPids(dhcpDir).length, 1);
    });

    await t.step("a NIC added through the API: the guest gets exactly its address", async () => {
      vm = await cp.ok("POST", "/v1/vms", { name: "guest_1.e2e" });
      const nic = await cp.ok("POST", `/v1/vms/${vm.id}/nics`, { network_id: net.id });
      await using guest = await fakeGuest(n.ns.name, bridge, nic.mac_address);
      assert.deepEqual(await guest.dhcp(), {
        ip: nic.ip_address,
        subnet: "255.255.255.0",
        router: "172.31.77.1",
        dns: ["172.31.77.1"],
        mtu: 1450,
        lease: 3600,
      });
      // Asking again (a reboot) gives the same answer.
      assert.equal((await guest.dhcp())?.ip, nic.ip_address);

      // The NIC's address changes: the same MAC now gets the new one.
      const moved = await cp.call("PATCH", `/v1/vms/${vm.id}/nics/${nic.device_id}`, {
        ip_address: "172.31.77.123",
      });
      assert.equal(moved.status, 200, JSON.stringify(moved.body));
      assert.equal((await guest.dhcp())?.ip, "172.31.77.123");

      // The NIC is replaced: the old MAC gets nothing, the new one its own address.
      assert.equal((await cp.call("DELETE", `/v1/vms/${vm.id}/nics/${nic.device_id}`)).status, 204);
      const next = await cp.ok("POST", `/v1/vms/${vm.id}/nics`, { network_id: net.id });
      assert.notEqual(next.mac_address, nic.mac_address);
      assert.equal(await guest.dhcp({ tries: 2 }), null, "the removed NIC's MAC is not served");
      await guest.setMac(next.mac_address);
      assert.equal((await guest.dhcp())?.ip, next.ip_address);
    });

    await t.step("detach through the API removes the bridge and stops dnsmasq", async () => {
      assert.equal((await cp.call("DELETE", `/v1/vms/${vm.id}/nics/net0`)).status, 204);
      const res = await cp.call("DELETE", `/v1/networks/${net.id}/hosts/${host.id}`);
      assert.equal(res.status, 204, JSON.stringify(res.body));
      assert.deepEqual(dnsmasqPids(dhcpDir), []);
      const links = await n.ns.exec(["ip", "-o", "link", "show"]);
      assert.doesNotMatch(links, new RegExp(`: ${bridge}[:@]`));
    });
  },
});

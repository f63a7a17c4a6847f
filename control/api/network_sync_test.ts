/**
 * What nodes receive for networks, against fake nodes (which validate like a real node):
 * AttachNetwork with every field per network type, the full reservation set of a dhcp network
 * on every host after each NIC change, VM rename and VM delete, the full set again for a host
 * that was down, re-application of a changed network, and macvtap NICs in a started VM's spec.
 */
import assert from "node:assert/strict";
import { node } from "../../shared/proto/mod.ts";
import { createTestApi, fastConfig, fieldsOf, type TestApi } from "../../tests/support/api.ts";
import type { FakeNodeHandle } from "../../tests/support/fake_node.ts";
import { addFakeHost, bootSource } from "../../tests/support/orchestration.ts";
import { waitFor } from "../../tests/support/process.ts";
import { eventsAfter } from "../events/store.ts";

const T = node.NetworkType;

interface Res {
  mac: string;
  ip: string;
  hostname: string;
}

/** The attachment a fake node holds for `bridge`. */
async function attached(fake: FakeNodeHandle, bridge: string) {
  return (await fake.state()).networks[bridge];
}

/** The reservations the fake node serves on `bridge` (none when absent). */
async function served(fake: FakeNodeHandle, bridge: string): Promise<Res[]> {
  return wire((await attached(fake, bridge))?.reservations);
}

/** Reservations as received (protobuf leaves an empty hostname out). */
function wire(list: unknown): Res[] {
  return ((list ?? []) as Res[]).map((r) => ({ ...r, hostname: r.hostname ?? "" }));
}

/**
 * The reservation set the database says the network has: NICs in address order, VM names as
 * hostnames (lowercase, other characters as `-`), a name only on its first NIC.
 */
async function expected(api: TestApi, networkId: string): Promise<Res[]> {
  const rows = await api.db.sql<{ mac: string; ip: string; name: string }[]>`
    select n.mac_address::text as mac, host(n.ip_address) as ip, v.name
    from network_interfaces n join vms v on v.id = n.vm_id
    where n.network_id = ${networkId} order by n.ip_address`;
  const seen = new Set<string>();
  return rows.map((r) => {
    const name = r.name.toLowerCase().replace(/[^a-z0-9]+/g, "-");
    const hostname = seen.has(name) ? "" : name;
    seen.add(name);
    return { mac: r.mac, ip: r.ip, hostname };
  });
}

Deno.test("AttachNetwork carries every field of each network type; attachments are validated", async (t) => {
  await using api = await createTestApi(fastConfig());
  const h = await addFakeHost(api, "n1");
  await using _fake = h.fake;
  const attach = (netId: string, body: Record<string, unknown>) =>
    api.post(`/v1/networks/${netId}/hosts`, { host_id: h.host.id, ...body });

  await t.step("isolated bridge with NAT and DHCP", async () => {
    const net = await api.create("/v1/networks", {
      name: "nat",
      mode: "dhcp",
      subnet: "10.70.0.0/24",
      gateway: "10.70.0.1",
      dns: ["10.70.0.1", "9.9.9.9"],
      mtu: 1450,
      nat: true,
    });
    const refused = await attach(net.id, { bridge_name: "qxnat0", parent_interface: "eth0" });
    assert.equal(refused.status, 422);
    assert.deepEqual(fieldsOf(refused), ["parent_interface"]);
    const res = await attach(net.id, { bridge_name: "qxnat0" });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.equal(res.body.status, "ready");
    assert.deepEqual(await attached(h.fake, "qxnat0"), {
      bridgeName: "qxnat0",
      subnet: "10.70.0.0/24",
      gateway: "10.70.0.1",
      dns: "10.70.0.1,9.9.9.9",
      dhcpRangeStart: "10.70.0.1",
      dhcpRangeEnd: "10.70.0.254",
      networkId: net.id,
      nat: true,
      mtu: 1450,
      dhcp: true,
      reservations: [],
    });
  });

  await t.step("bridged uplink, static mode", async () => {
    const net = await api.create("/v1/networks", {
      name: "lan",
      subnet: "192.0.2.0/24",
      gateway: "192.0.2.1",
    });
    await attach(net.id, { bridge_name: "qxlan0", parent_interface: "eth0" });
    const a = await attached(h.fake, "qxlan0");
    assert.equal(a.parentInterface, "eth0");
    assert.equal(a.dhcp, undefined, "static mode: no DHCP server");
    assert.equal(a.nat, undefined);
    // NAT cannot be turned on while a host bridges it to its LAN.
    const nat = await api.patch(`/v1/networks/${net.id}`, { nat: true });
    assert.equal(nat.status, 422);
    assert.deepEqual(fieldsOf(nat), ["nat"]);
    assert.match(
      nat.body.message,
      /host n1 has the network attached \(bridge qxlan0, parent eth0\)/,
    );
  });

  await t.step("vlan: needs vlan_id and a parent", async () => {
    const noId = await api.post("/v1/networks", {
      name: "v",
      type: "vlan",
      subnet: "10.71.0.0/24",
    });
    assert.deepEqual(fieldsOf(noId), ["vlan_id"]);
    const net = await api.create("/v1/networks", {
      name: "v42",
      type: "vlan",
      vlan_id: 42,
      mode: "dhcp",
      subnet: "10.71.0.0/24",
      gateway: "10.71.0.1",
    });
    const noParent = await attach(net.id, { bridge_name: "qxv42" });
    assert.equal(noParent.status, 422);
    assert.deepEqual(fieldsOf(noParent), ["parent_interface"]);
    const ok = await attach(net.id, { bridge_name: "qxv42", parent_interface: "eth1" });
    assert.equal(ok.status, 201, JSON.stringify(ok.body));
    const a = await attached(h.fake, "qxv42");
    assert.equal(a.type, T.NETWORK_TYPE_VLAN);
    assert.equal(a.vlanId, 42);
    assert.equal(a.parentInterface, "eth1");
    assert.equal(a.dhcp, true);
    assert.equal(a.gateway, "10.71.0.1");
  });

  await t.step("macvtap: a parent, no DHCP, the bridge name is only a key", async () => {
    const dhcp = await api.post("/v1/networks", {
      name: "m",
      type: "macvtap",
      mode: "dhcp",
      subnet: "10.72.0.0/24",
    });
    assert.deepEqual(fieldsOf(dhcp), ["mode"]);
    const net = await api.create("/v1/networks", {
      name: "mv",
      type: "macvtap",
      subnet: "10.72.0.0/24",
      gateway: "10.72.0.1",
    });
    const noParent = await attach(net.id, {});
    assert.deepEqual(fieldsOf(noParent), ["parent_interface"]);
    const ok = await attach(net.id, { parent_interface: "eth0" });
    assert.equal(ok.status, 201, JSON.stringify(ok.body));
    const key = `qxmv${net.id.replaceAll("-", "").slice(0, 8)}`;
    assert.equal(ok.body.bridge_name, key);
    const a = await attached(h.fake, key);
    assert.equal(a.type, T.NETWORK_TYPE_MACVTAP);
    assert.equal(a.parentInterface, "eth0");
    assert.equal(a.mtu, undefined, "the parent's MTU is kept");
    assert.equal(a.dhcp, undefined);
  });

  await t.step("bridge names: required for bridges, never a tap's name", async () => {
    const net = await api.create("/v1/networks", {
      name: "iso",
      mode: "dhcp",
      subnet: "10.73.0.0/24",
    });
    assert.deepEqual(fieldsOf(await attach(net.id, {})), ["bridge_name"]);
    assert.deepEqual(fieldsOf(await attach(net.id, { bridge_name: "qt0011aabbn0" })), [
      "bridge_name",
    ]);
    // DHCP on an isolated bridge is served from the gateway: this network has none.
    const noGw = await attach(net.id, { bridge_name: "qxiso0" });
    assert.equal(noGw.status, 422);
    assert.match(noGw.body.message, /mode dhcp without a gateway/);
    assert.equal(await attached(h.fake, "qxiso0"), undefined);
    // Bridged to a LAN that gives the host an address, it needs none.
    const up = await attach(net.id, { bridge_name: "qxiso0", parent_interface: "eth2" });
    assert.equal(up.status, 201);
    // Turning that into an isolated one is not possible here, nor is mode none.
    const none = await api.patch(`/v1/networks/${net.id}`, { mode: "none" });
    assert.deepEqual(fieldsOf(none), ["mode"]);
  });
});

Deno.test("DHCP reservations follow the NIC records on every host, also across failures", async (t) => {
  await using api = await createTestApi(fastConfig(), { active: true });
  const a = await addFakeHost(api, "node-a");
  const b = await addFakeHost(api, "node-b");
  await using _a = a.fake;
  await using _b = b.fake;
  const net = await api.create("/v1/networks", {
    name: "dhcp",
    mode: "dhcp",
    subnet: "10.62.0.0/24",
    gateway: "10.62.0.1",
  });
  const stat = await api.create("/v1/networks", { name: "stat", subnet: "10.63.0.0/24" });
  for (const h of [a, b]) {
    await api.create(`/v1/networks/${net.id}/hosts`, { host_id: h.host.id, bridge_name: "qxd0" });
    await api.create(`/v1/networks/${stat.id}/hosts`, { host_id: h.host.id, bridge_name: "qxs0" });
  }
  /** Both nodes serve exactly what the database says. */
  const converged = async (what: string) => {
    const want = await expected(api, net.id);
    for (const h of [a, b]) {
      assert.deepEqual(await served(h.fake, "qxd0"), want, `${h.host.name}: ${what}`);
    }
    return want;
  };
  let v1: { id: string };
  let v2: { id: string };

  await t.step("a VM created with NICs: reserved on both hosts before it can boot", async () => {
    v1 = await api.create("/v1/vms", {
      name: "web_1.prod",
      nics: [{ network_id: net.id }, { network_id: stat.id }],
    });
    const want = await converged("after create");
    assert.equal(want.length, 1);
    assert.equal(want[0].hostname, "web-1-prod");
    for (const h of [a, b]) {
      const calls = await h.fake.callsOf("setDhcpReservations");
      assert.equal(calls.length, 1, "one push per host, none for the static network");
      assert.deepEqual(calls[0].request, { bridgeName: "qxd0", reservations: want });
    }
  });

  await t.step("NIC add, address change, MAC change, removal: the full set each time", async () => {
    v2 = await api.create("/v1/vms", { name: "db" });
    const nic = await api.create(`/v1/vms/${v2.id}/nics`, { network_id: net.id });
    assert.equal((await converged("after add")).length, 2);
    const ip = await api.patch(`/v1/vms/${v2.id}/nics/${nic.device_id}`, {
      ip_address: "10.62.0.200",
    });
    assert.equal(ip.status, 200, JSON.stringify(ip.body));
    assert.equal(ip.body.ip_address, "10.62.0.200");
    assert.deepEqual((await converged("after ip change")).map((r) => r.ip), [
      "10.62.0.2",
      "10.62.0.200",
    ]);
    const ips = (await api.get(`/v1/networks/${net.id}/ips`)).body.items;
    assert.deepEqual(ips.map((x: { ip_address: string }) => x.ip_address), [
      "10.62.0.2",
      "10.62.0.200",
    ]);
    const taken = await api.patch(`/v1/vms/${v2.id}/nics/${nic.device_id}`, {
      ip_address: "10.62.0.2",
    });
    assert.equal(taken.status, 409);
    assert.deepEqual(fieldsOf(taken), ["ip_address"]);
    await api.db.sql`update vms set status = 'running' where id = ${v2.id}`;
    const running = await api.patch(`/v1/vms/${v2.id}/nics/${nic.device_id}`, {
      ip_address: "10.62.0.201",
    });
    assert.equal(running.status, 409);
    assert.match(running.body.message, /cannot update nic .*: it is running/);
    await api.db.sql`update vms set status = 'created' where id = ${v2.id}`;
    const mac = await api.patch(`/v1/vms/${v2.id}/nics/${nic.device_id}`, {
      mac_address: "52:54:00:AA:BB:CC",
    });
    assert.equal(mac.body.mac_address, "52:54:00:aa:bb:cc");
    assert.equal((await converged("after mac change"))[1].mac, "52:54:00:aa:bb:cc");
    assert.equal((await api.del(`/v1/vms/${v1.id}/nics/net0`)).status, 204);
    assert.deepEqual((await converged("after removal")).map((r) => r.ip), ["10.62.0.200"]);
  });

  await t.step("a rename changes the hostname", async () => {
    await api.patch(`/v1/vms/${v2.id}`, { name: "DB_main" });
    assert.equal((await converged("after rename"))[0].hostname, "db-main");
  });

  await t.step("parallel NIC adds: every node ends with the full set", async () => {
    const vms = await Promise.all(
      Array.from({ length: 8 }, (_, i) => api.create("/v1/vms", { name: `p${i}` })),
    );
    await Promise.all(vms.map((v) => api.create(`/v1/vms/${v.id}/nics`, { network_id: net.id })));
    assert.equal((await converged("after parallel adds")).length, 9);
  });

  await t.step(
    "a node that fails the push: the request succeeds, the failure is an event",
    async () => {
      const before = (await api.db.sql`select coalesce(max(id), 0)::int8 as id from events`)[0].id;
      await a.fake.fail("setDhcpReservations", "internal", "disk full");
      const vm = await api.create("/v1/vms", { name: "late", nics: [{ network_id: net.id }] });
      assert.ok(vm.id);
      const want = await expected(api, net.id);
      assert.deepEqual(await served(b.fake, "qxd0"), want);
      assert.notDeepEqual(await served(a.fake, "qxd0"), want);
      const events = await eventsAfter(api.db.sql, Number(before), { types: ["network"] });
      assert.equal(events.length, 1);
      assert.equal(events[0].type, "network.sync_failed");
      assert.equal(events[0].resource_id, net.id);
      assert.deepEqual(
        { ...events[0].data, error: undefined },
        {
          network_id: net.id,
          name: "dhcp",
          host_id: a.host.id,
          host: "node-a",
          bridge_name: "qxd0",
          operation: "SetDhcpReservations",
          error: undefined,
        },
      );
      assert.match(String(events[0].data.error), /disk full/);
      // The next change brings it up to date.
      await api.del(`/v1/vms/${vm.id}/nics/net0`);
      await converged("after the next change");
    },
  );

  await t.step("a node that lost the attachment gets it whole again", async () => {
    await a.fake.forgetNetwork("qxd0");
    await api.create(`/v1/vms/${v2.id}/nics`, { network_id: net.id });
    const want = await converged("after re-attach");
    const last = (await a.fake.callsOf("attachNetwork")).at(-1)!.request as {
      bridgeName: string;
      reservations: Res[];
    };
    assert.equal(last.bridgeName, "qxd0");
    assert.deepEqual(wire(last.reservations), want);
  });

  await t.step("a host that is down gets the full set when it comes back", async () => {
    await b.fake.stop();
    await waitFor(
      async () => (await api.get(`/v1/hosts/${b.host.id}`)).body.status === "down",
      10_000,
      "node-b to be down",
    );
    const pushesToB = (await b.fake.callsOf("setDhcpReservations")).length;
    const vm = await api.create("/v1/vms", { name: "while-down", nics: [{ network_id: net.id }] });
    assert.ok(vm.id);
    const want = await expected(api, net.id);
    assert.deepEqual(await served(a.fake, "qxd0"), want);
    assert.equal((await b.fake.callsOf("setDhcpReservations")).length, pushesToB);
    assert.notDeepEqual(await served(b.fake, "qxd0"), want);
    await b.fake.restart();
    await waitFor(
      async () => (await api.get(`/v1/hosts/${b.host.id}`)).body.status === "up",
      10_000,
      "node-b to be up again",
    );
    await waitFor(
      async () => JSON.stringify(await served(b.fake, "qxd0")) === JSON.stringify(want),
      10_000,
      "node-b to serve the full set",
    );
  });

  await t.step("deleting a VM releases its reservations everywhere", async () => {
    const job = await api.awaitJob(await api.del(`/v1/vms/${v2.id}`));
    assert.equal(job.status, "succeeded", JSON.stringify(job.error));
    const want = await converged("after delete");
    assert.ok(!want.some((r) => r.hostname === "db-main"));
  });
});

Deno.test("a changed network is applied again on every host that is up", async (t) => {
  await using api = await createTestApi(fastConfig());
  const a = await addFakeHost(api, "node-a");
  const b = await addFakeHost(api, "node-b");
  await using _a = a.fake;
  await using _b = b.fake;
  const net = await api.create("/v1/networks", {
    name: "lan",
    subnet: "10.64.0.0/24",
    gateway: "10.64.0.1",
  });
  for (const h of [a, b]) {
    await api.create(`/v1/networks/${net.id}/hosts`, { host_id: h.host.id, bridge_name: "qxl0" });
  }
  const vm = await api.create("/v1/vms", { name: "g", nics: [{ network_id: net.id }] });
  const nic = (await api.get(`/v1/vms/${vm.id}/nics/net0`)).body;

  await t.step("dns, mtu, nat and mode dhcp: both nodes get the new settings", async () => {
    const res = await api.patch(`/v1/networks/${net.id}`, {
      dns: ["10.64.0.1"],
      mtu: 9000,
      nat: true,
      mode: "dhcp",
    });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    for (const h of [a, b]) {
      const att = await attached(h.fake, "qxl0");
      assert.equal(att.dns, "10.64.0.1");
      assert.equal(att.mtu, 9000);
      assert.equal(att.nat, true);
      assert.equal(att.dhcp, true);
      assert.deepEqual(att.reservations, [
        { mac: nic.mac_address, ip: nic.ip_address, hostname: "g" },
      ]);
    }
  });

  await t.step("a name change reaches no node", async () => {
    const before = (await a.fake.callsOf("attachNetwork")).length;
    await api.patch(`/v1/networks/${net.id}`, { name: "lan2", description: "x" });
    assert.equal((await a.fake.callsOf("attachNetwork")).length, before);
  });

  await t.step("a node that refuses: its attachment is failed, the other is ready", async () => {
    await b.fake.fail("attachNetwork", "failed_precondition", "bridge qxl0 is busy");
    const res = await api.patch(`/v1/networks/${net.id}`, { gateway: "10.64.0.254" });
    assert.equal(res.status, 200);
    assert.equal((await attached(a.fake, "qxl0")).gateway, "10.64.0.254");
    const atts = (await api.get(`/v1/networks/${net.id}/hosts`)).body.items;
    const byHost = Object.fromEntries(
      atts.map((x: { host_id: string }) => [x.host_id, x]),
    );
    assert.equal(byHost[a.host.id].status, "ready");
    assert.equal(byHost[b.host.id].status, "failed");
    assert.match(byHost[b.host.id].status_reason, /bridge qxl0 is busy/);
    // Applied again on init: ready, with the new gateway.
    await api.post(`/v1/hosts/${b.host.id}/init`);
    assert.equal((await attached(b.fake, "qxl0")).gateway, "10.64.0.254");
    assert.equal(
      (await api.get(`/v1/networks/${net.id}/hosts/${b.host.id}`)).body.status,
      "ready",
    );
  });
});

Deno.test("macvtap and vlan VMs: placed where attached, NICs as the node expects them", async () => {
  await using api = await createTestApi(fastConfig(), { active: true });
  const a = await addFakeHost(api, "node-a");
  const b = await addFakeHost(api, "node-b");
  await using _a = a.fake;
  await using _b = b.fake;
  const pool = await api.create("/v1/storage-pools", { name: "p", path: "/srv/p" });
  for (const h of [a, b]) {
    await api.create(`/v1/storage-pools/${pool.id}/hosts`, { host_id: h.host.id });
  }
  const boot = await bootSource(api, pool.id);
  const mv = await api.create("/v1/networks", {
    name: "mv",
    type: "macvtap",
    subnet: "10.65.0.0/24",
    gateway: "10.65.0.1",
  });
  const vl = await api.create("/v1/networks", {
    name: "vl",
    type: "vlan",
    vlan_id: 7,
    mode: "dhcp",
    subnet: "10.66.0.0/24",
    gateway: "10.66.0.1",
  });
  // Only node-b has them.
  await api.create(`/v1/networks/${mv.id}/hosts`, {
    host_id: b.host.id,
    parent_interface: "enp1s0",
  });
  await api.create(`/v1/networks/${vl.id}/hosts`, {
    host_id: b.host.id,
    bridge_name: "qxvl7",
    parent_interface: "enp2s0",
  });
  const vm = await api.create("/v1/vms", {
    name: "edge",
    boot_source_id: boot,
    nics: [{ network_id: vl.id }, { network_id: mv.id }],
  });
  const nics = (await api.get(`/v1/vms/${vm.id}/nics`)).body.items;
  const job = await api.awaitJob(await api.post(`/v1/vms/${vm.id}/start`));
  assert.equal(job.status, "succeeded", JSON.stringify(job.error));
  assert.equal(job.result.host_id, b.host.id);
  const created = (await b.fake.callsOf("createVM")).at(-1)!.request as node.VmConfig.$Properties;
  assert.deepEqual(created.networks, [
    {
      id: "net0",
      bridge: "qxvl7",
      tap: created.networks![0].tap,
      mac: nics[0].mac_address,
      mtu: 1500,
      guestDns: [],
    },
    {
      id: "net1",
      type: T.NETWORK_TYPE_MACVTAP,
      parentInterface: "enp1s0",
      mac: nics[1].mac_address,
      guestIp: `${nics[1].ip_address}/24`,
      guestGateway: "10.65.0.1",
      guestDns: [],
    },
  ]);
  assert.match(created.networks![0].tap!, /^qt[0-9a-f]{8}n0$/);
  assert.deepEqual(await served(b.fake, "qxvl7"), [
    { mac: nics[0].mac_address, ip: nics[0].ip_address, hostname: "edge" },
  ]);
  assert.equal((await a.fake.callsOf("createVM")).length, 0);
});

import assert from "node:assert/strict";
import { createTestApi, fastConfig, fieldsOf } from "../../tests/support/api.ts";

Deno.test("networks API: CRUD, validation, host attachments", async (t) => {
  await using api = await createTestApi();
  const host = await api.create("/v1/hosts", { name: "h1", address: "10.0.0.1" });
  let net: { id: string };

  await t.step("create, get, list, patch", async () => {
    const res = await api.post("/v1/networks", {
      name: "lan",
      subnet: "10.20.0.0/24",
      gateway: "10.20.0.1",
      dns: ["1.1.1.1"],
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.equal(res.body.type, "bridge");
    assert.equal(res.body.mode, "static");
    assert.equal(res.body.mtu, 1500);
    assert.deepEqual(res.body.dns, ["1.1.1.1"]);
    net = res.body;
    assert.equal((await api.get(`/v1/networks/${net.id}`)).body.subnet, "10.20.0.0/24");
    assert.equal((await api.get("/v1/networks?mode=static")).body.items.length, 1);
    const p = await api.patch(`/v1/networks/${net.id}`, { mtu: 9000, nat: true, dns: [] });
    assert.equal(p.status, 200, JSON.stringify(p.body));
    assert.equal(p.body.mtu, 9000);
    assert.equal(p.body.nat, true);
    const none = await api.post("/v1/networks", { name: "l2", mode: "none" });
    assert.equal(none.status, 201);
    assert.equal(none.body.subnet, null);
  });

  await t.step("every validation rule names its field", async () => {
    const base = { name: "n", subnet: "10.30.0.0/24" };
    const cases: [Record<string, unknown>, string][] = [
      [{ ...base, subnet: "10.30.0.5/24" }, "subnet"],
      [{ ...base, subnet: "10.30.0.0/33" }, "subnet"],
      [{ ...base, subnet: "10.30.0.0/31" }, "subnet"],
      [{ ...base, subnet: "nope" }, "subnet"],
      [{ name: "n" }, "subnet"],
      [{ ...base, gateway: "10.31.0.1" }, "gateway"],
      [{ ...base, gateway: "10.30.0.255" }, "gateway"],
      [{ ...base, gateway: "x" }, "gateway"],
      [{ ...base, dns: ["8.8.8.8", "nope"] }, "dns.1"],
      [{ ...base, type: "ovs" }, "type"],
      [{ ...base, type: "macvtap", mode: "dhcp" }, "mode"],
      [{ ...base, type: "macvtap", nat: true, gateway: "10.30.0.1" }, "nat"],
      [{ ...base, type: "vlan" }, "vlan_id"],
      [{ ...base, type: "vlan", vlan_id: 5, nat: true, gateway: "10.30.0.1" }, "nat"],
      [{ ...base, vlan_id: 5 }, "vlan_id"],
      [{ ...base, vlan_id: 5000 }, "vlan_id"],
      [{ ...base, mode: "auto" }, "mode"],
      [{ ...base, mtu: 20 }, "mtu"],
      [{ ...base, mtu: 1000 }, "mtu"],
      [{ ...base, nat: true }, "nat"],
      [{ ...base, subnet: "10.30.0.0/24", extra: 1 }, "extra"],
    ];
    for (const [input, field] of cases) {
      const r = await api.post("/v1/networks", input);
      assert.equal(r.status, 422, JSON.stringify(input));
      assert.deepEqual(fieldsOf(r), [field], JSON.stringify(input));
    }
    const immutable = await api.patch(`/v1/networks/${net.id}`, { subnet: "10.9.0.0/24" });
    assert.deepEqual(fieldsOf(immutable), ["subnet"]);
    const dup = await api.post("/v1/networks", { name: "lan", subnet: "10.40.0.0/24" });
    assert.equal(dup.status, 409);
  });

  await t.step("host attachments with validated bridge names", async () => {
    const bad = await api.post(`/v1/networks/${net.id}/hosts`, {
      host_id: host.id,
      bridge_name: "br; rm -rf /",
    });
    assert.equal(bad.status, 422);
    assert.deepEqual(fieldsOf(bad), ["bridge_name"]);
    const long = await api.post(`/v1/networks/${net.id}/hosts`, {
      host_id: host.id,
      bridge_name: "a-very-long-bridge-name",
    });
    assert.deepEqual(fieldsOf(long), ["bridge_name"]);
    const badParent = await api.post(`/v1/networks/${net.id}/hosts`, {
      host_id: host.id,
      bridge_name: "qxbr0",
      parent_interface: "eth 0",
    });
    assert.deepEqual(fieldsOf(badParent), ["parent_interface"]);
    // The network is NATed (patched above): NAT is only for isolated bridges.
    const natParent = await api.post(`/v1/networks/${net.id}/hosts`, {
      host_id: host.id,
      bridge_name: "qxbr0",
      parent_interface: "eth0",
    });
    assert.equal(natParent.status, 422);
    assert.deepEqual(fieldsOf(natParent), ["parent_interface"]);
    assert.match(natParent.body.message, /NATed/);
    assert.equal((await api.patch(`/v1/networks/${net.id}`, { nat: false })).status, 200);
    const ok = await api.post(`/v1/networks/${net.id}/hosts`, {
      host_id: host.id,
      bridge_name: "qxbr0",
      parent_interface: "eth0",
    });
    assert.equal(ok.status, 201, JSON.stringify(ok.body));
    assert.equal(ok.body.status, "pending");
    const again = await api.post(`/v1/networks/${net.id}/hosts`, {
      host_id: host.id,
      bridge_name: "qxbr1",
    });
    assert.equal(again.status, 409);
    const other = await api.create("/v1/networks", { name: "lan2", subnet: "10.21.0.0/24" });
    const sameBridge = await api.post(`/v1/networks/${other.id}/hosts`, {
      host_id: host.id,
      bridge_name: "qxbr0",
    });
    assert.equal(sameBridge.status, 409);
    assert.deepEqual(fieldsOf(sameBridge), ["bridge_name"]);
    const list = await api.get(`/v1/networks/${net.id}/hosts`);
    assert.equal(list.body.items[0].bridge_name, "qxbr0");
    assert.equal(
      (await api.get(`/v1/networks/${net.id}/hosts/${host.id}`)).body.parent_interface,
      "eth0",
    );
    const attached = await api.del(`/v1/networks/${net.id}`);
    assert.equal(attached.status, 409);
    assert.equal((await api.del(`/v1/networks/${net.id}/hosts/${host.id}`)).status, 204);
    assert.equal((await api.get(`/v1/networks/${net.id}/hosts/${host.id}`)).status, 404);
  });

  await t.step("delete", async () => {
    assert.equal((await api.del(`/v1/networks/${net.id}`)).status, 204);
    assert.equal((await api.get(`/v1/networks/${net.id}`)).status, 404);
  });
});

Deno.test("IPAM: 50 parallel NICs get distinct addresses; the next is a clear 409", async (t) => {
  await using api = await createTestApi(fastConfig(), { active: true });
  // /26 = 62 host addresses, minus the gateway = 61; 11 are taken by static reservations below.
  const net = await api.create("/v1/networks", {
    name: "small",
    subnet: "10.50.0.0/26",
    gateway: "10.50.0.1",
  });
  const vm = await api.create("/v1/vms", { name: "holder" });

  await t.step("static addresses: reserved, checked, 409 when taken", async () => {
    for (let i = 0; i < 11; i++) {
      const r = await api.post(`/v1/vms/${vm.id}/nics`, {
        network_id: net.id,
        ip_address: `10.50.0.${62 - i}`,
      });
      assert.equal(r.status, 201, JSON.stringify(r.body));
    }
    const taken = await api.post(`/v1/vms/${vm.id}/nics`, {
      network_id: net.id,
      ip_address: "10.50.0.62",
    });
    assert.equal(taken.status, 409);
    assert.deepEqual(fieldsOf(taken), ["ip_address"]);
    assert.match(taken.body.message, /already allocated on network small \(vm holder\)/);
    for (
      const [ip, why] of [["10.50.0.1", /gateway/], ["10.50.0.63", /broadcast/], [
        "10.50.1.5",
        /not inside/,
      ]]
    ) {
      const r = await api.post(`/v1/vms/${vm.id}/nics`, {
        network_id: net.id,
        ip_address: ip as string,
      });
      assert.equal(r.status, 422, ip as string);
      assert.deepEqual(fieldsOf(r), ["ip_address"]);
      assert.match(r.body.message, why as RegExp);
    }
  });

  const vms = await Promise.all(
    Array.from({ length: 50 }, (_, i) => api.create("/v1/vms", { name: `p${i}` })),
  );

  await t.step("50 parallel NIC creations get 50 distinct addresses and MACs", async () => {
    const results = await Promise.all(
      vms.map((v) => api.post(`/v1/vms/${v.id}/nics`, { network_id: net.id })),
    );
    for (const r of results) assert.equal(r.status, 201, JSON.stringify(r.body));
    const ips = results.map((r) => r.body.ip_address);
    assert.equal(new Set(ips).size, 50);
    for (const ip of ips) assert.match(ip, /^10\.50\.0\.(\d+)$/);
    assert.ok(!ips.includes("10.50.0.1") && !ips.includes("10.50.0.0"));
    const macs = results.map((r) => r.body.mac_address);
    assert.equal(new Set(macs).size, 50);
    for (const m of macs) assert.match(m, /^52(:[0-9a-f]{2}){5}$/);
    assert.ok(results.every((r) => r.body.device_id === "net0"));
  });

  await t.step("the pool is now full: the 51st gets a clear 409", async () => {
    const extra = await api.create("/v1/vms", { name: "one-too-many" });
    const r = await api.post(`/v1/vms/${extra.id}/nics`, { network_id: net.id });
    assert.equal(r.status, 409);
    assert.equal(r.body.code, "conflict");
    assert.match(
      r.body.message,
      /no free address: all 61 assignable addresses of 10\.50\.0\.0\/26/,
    );
    const ips = await api.get(`/v1/networks/${net.id}/ips?limit=1000`);
    assert.equal(ips.body.items.length, 61);
  });

  await t.step("/ips pages in address order; removing a NIC releases its address", async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const q: string = cursor ? `&cursor=${cursor}` : "";
      const page = await api.get(`/v1/networks/${net.id}/ips?limit=20${q}`);
      seen.push(...page.body.items.map((a: { ip_address: string }) => a.ip_address));
      cursor = page.body.next_cursor;
    } while (cursor);
    assert.equal(seen.length, 61);
    assert.equal(seen[0], "10.50.0.2");
    const first = vms[0];
    const nic = (await api.get(`/v1/vms/${first.id}/nics/net0`)).body;
    assert.equal((await api.del(`/v1/vms/${first.id}/nics/net0`)).status, 204);
    const after = await api.get(`/v1/networks/${net.id}/ips?limit=1000`);
    assert.equal(after.body.items.length, 60);
    const again = await api.post(`/v1/vms/${first.id}/nics`, { network_id: net.id });
    assert.equal(again.body.ip_address, nic.ip_address, "the released address is reused");
    assert.notEqual(again.body.mac_address, nic.mac_address);
    // Deleting a VM releases all of its addresses.
    const deleted = await api.awaitJob(await api.del(`/v1/vms/${vm.id}`));
    assert.equal(deleted.status, "succeeded");
    const end = await api.get(`/v1/networks/${net.id}/ips?limit=1000`);
    assert.equal(end.body.items.length, 50);
  });
});

Deno.test("IPAM: parallel VM creates with NICs on two networks in opposite orders all succeed", async () => {
  await using api = await createTestApi();
  const a = await api.create("/v1/networks", { name: "a", subnet: "10.80.0.0/24" });
  const b = await api.create("/v1/networks", { name: "b", subnet: "10.81.0.0/24" });
  const results = await Promise.all(Array.from({ length: 16 }, (_, i) =>
    api.post("/v1/vms", {
      name: `x${i}`,
      nics: i % 2
        ? [{ network_id: a.id }, { network_id: b.id }]
        : [{ network_id: b.id }, { network_id: a.id }],
    })));
  for (const r of results) assert.equal(r.status, 201, JSON.stringify(r.body));
  for (const n of [a, b]) {
    const ips = (await api.get(`/v1/networks/${n.id}/ips`)).body.items;
    assert.equal(new Set(ips.map((x: { ip_address: string }) => x.ip_address)).size, 16);
  }
});

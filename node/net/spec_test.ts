import assert from "node:assert/strict";
import { InvalidArgumentError } from "../../shared/errors/errors.ts";
import { node } from "../../shared/proto/mod.ts";
import { detachSpecFromRequest, networkSpecFromRequest, reservationsForNetwork } from "./spec.ts";

const base = { bridgeName: "qbr0", subnet: "10.1.0.0/24", gateway: "10.1.0.1" };

function fieldOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof InvalidArgumentError, String(e));
    return e.details[0]?.field;
  }
  assert.fail("expected InvalidArgumentError");
}

Deno.test("an attach request becomes a normalised spec", () => {
  const s = networkSpecFromRequest({
    ...base,
    networkId: "1c0e7c7e-4d2b-4f0e-9d0e-2b8f5f3f7a11",
    dns: "1.1.1.1, 9.9.9.9",
    dhcpRangeStart: "10.1.0.100",
    dhcpRangeEnd: "10.1.0.200",
    mtu: 9000,
    dhcp: true,
    nat: true,
    reservations: [{ mac: "52-54-00-AA-00-01", ip: "10.1.0.10", hostname: "web1" }],
  });
  assert.deepEqual(s, {
    bridge: "qbr0",
    networkId: "1c0e7c7e-4d2b-4f0e-9d0e-2b8f5f3f7a11",
    type: "bridge",
    subnet: "10.1.0.0/24",
    gateway: "10.1.0.1",
    mtu: 9000,
    dns: ["1.1.1.1", "9.9.9.9"],
    dhcpRange: { start: "10.1.0.100", end: "10.1.0.200" },
    parentInterface: undefined,
    vlanId: undefined,
    nat: true,
    dhcp: true,
    reservations: [{ mac: "52:54:00:aa:00:01", ip: "10.1.0.10", hostname: "web1" }],
  });
  // A pure L2 bridge: no subnet, no address.
  assert.equal(networkSpecFromRequest({ bridgeName: "l2br" }).gateway, undefined);
  const vlan = networkSpecFromRequest({
    bridgeName: "vbr100",
    type: node.NetworkType.NETWORK_TYPE_VLAN,
    vlanId: 100,
    parentInterface: "eth0",
  });
  assert.deepEqual([vlan.type, vlan.vlanId, vlan.parentInterface], ["vlan", 100, "eth0"]);
});

Deno.test("each bad field is named", () => {
  assert.equal(
    fieldOf(() => networkSpecFromRequest({ ...base, bridgeName: "br;rm -rf" })),
    "bridge_name",
  );
  assert.equal(
    fieldOf(() => networkSpecFromRequest({ ...base, bridgeName: "qt0f8c3a52n0" })),
    "bridge_name",
  );
  assert.equal(fieldOf(() => networkSpecFromRequest({ ...base, subnet: "10.1.0.5/24" })), "subnet");
  assert.equal(fieldOf(() => networkSpecFromRequest({ ...base, gateway: "10.2.0.1" })), "gateway");
  assert.equal(
    fieldOf(() => networkSpecFromRequest({ ...base, gateway: "10.1.0.255" })),
    "gateway",
  );
  assert.equal(
    fieldOf(() => networkSpecFromRequest({ bridgeName: "b", gateway: "10.1.0.1" })),
    "gateway",
  );
  assert.equal(fieldOf(() => networkSpecFromRequest({ ...base, mtu: 40 })), "mtu");
  assert.equal(fieldOf(() => networkSpecFromRequest({ ...base, dns: "8.8.8.8 nope" })), "dns");
  assert.equal(
    fieldOf(() =>
      networkSpecFromRequest({ ...base, dhcpRangeStart: "10.1.0.9", dhcpRangeEnd: "10.1.0.2" })
    ),
    "dhcp_range_end",
  );
  assert.equal(fieldOf(() => networkSpecFromRequest({ ...base, networkId: "../x" })), "network_id");
  assert.equal(fieldOf(() => networkSpecFromRequest({ ...base, vlanId: 5000 })), "vlan_id");
  assert.equal(
    fieldOf(() => networkSpecFromRequest({ ...base, parentInterface: "eth 0" })),
    "parent_interface",
  );
  assert.equal(fieldOf(() => detachSpecFromRequest({ bridgeName: "" })), "bridge_name");
});

Deno.test("reservations: valid MACs and host addresses, each at most once, never the gateway", () => {
  const res = (reservations: { mac: string; ip: string; hostname?: string }[]) => () =>
    networkSpecFromRequest({ ...base, dhcp: true, reservations });
  const ok = { mac: "52:54:00:00:00:01", ip: "10.1.0.5" };
  assert.equal(fieldOf(res([{ mac: "zz", ip: "10.1.0.5" }])), "reservations.0.mac");
  assert.equal(fieldOf(res([{ mac: "53:54:00:00:00:01", ip: "10.1.0.5" }])), "reservations.0.mac");
  assert.equal(fieldOf(res([ok, { ...ok, ip: "10.1.0.6" }])), "reservations.1.mac");
  assert.equal(fieldOf(res([ok, { ...ok, mac: "52:54:00:00:00:02" }])), "reservations.1.ip");
  assert.equal(fieldOf(res([{ ...ok, ip: "10.1.0.1" }])), "reservations.0.ip");
  assert.equal(fieldOf(res([{ ...ok, ip: "10.2.0.5" }])), "reservations.0.ip");
  assert.equal(fieldOf(res([{ ...ok, ip: "10.1.0.255" }])), "reservations.0.ip");
  assert.equal(fieldOf(res([{ ...ok, hostname: "bad name" }])), "reservations.0.hostname");
  // The same rules for a SetDhcpReservations set, against the attached network.
  const attached = { subnet: "10.1.0.0/24", gateway: "10.1.0.1" };
  assert.deepEqual(
    reservationsForNetwork([{ mac: "52:54:00:00:00:0A", ip: "10.1.0.9" }], attached),
    [
      { mac: "52:54:00:00:00:0a", ip: "10.1.0.9", hostname: "" },
    ],
  );
  assert.equal(
    fieldOf(() => reservationsForNetwork([{ mac: "52:54:00:00:00:01", ip: "10.1.0.1" }], attached)),
    "reservations.0.ip",
  );
  assert.equal(
    fieldOf(() => reservationsForNetwork([{ mac: "52:54:00:00:00:01", ip: "10.1.0.9" }], {})),
    "reservations.0.ip",
  );
});

Deno.test("combinations that cannot work are refused, naming what to change", () => {
  const VLAN = node.NetworkType.NETWORK_TYPE_VLAN;
  const MACVTAP = node.NetworkType.NETWORK_TYPE_MACVTAP;
  const cases: [Record<string, unknown>, string][] = [
    [{ dhcp: true, subnet: "", gateway: "" }, "dhcp"],
    [{ nat: true, subnet: "", gateway: "" }, "nat"],
    [{ nat: true, parentInterface: "eth0" }, "nat"],
    [{ type: VLAN, parentInterface: "eth0" }, "vlan_id"],
    [{ type: VLAN, vlanId: 10 }, "parent_interface"],
    [{ vlanId: 10, parentInterface: "eth0" }, "vlan_id"],
    [{ type: MACVTAP }, "parent_interface"],
    [{ type: MACVTAP, parentInterface: "eth0", dhcp: true }, "dhcp"],
    [{ type: MACVTAP, parentInterface: "eth0", nat: true }, "nat"],
    [{ parentInterface: "qbr0" }, "parent_interface"],
    [{ type: 7 }, "type"],
  ];
  for (const [extra, field] of cases) {
    assert.equal(
      fieldOf(() => networkSpecFromRequest({ ...base, ...extra })),
      field,
      JSON.stringify(extra),
    );
  }
  // What does work: NAT and DHCP on an isolated bridge, DHCP on a bridged uplink.
  networkSpecFromRequest({ ...base, nat: true, dhcp: true });
  networkSpecFromRequest({ ...base, parentInterface: "eth0", dhcp: true });
  networkSpecFromRequest({ ...base, type: MACVTAP, parentInterface: "eth0" });
});

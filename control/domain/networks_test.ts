import assert from "node:assert/strict";
import { InvalidArgumentError } from "../../shared/errors/errors.ts";
import { node } from "../../shared/proto/mod.ts";
import { networkSpecFromRequest } from "../../node/net/spec.ts";
import {
  attachmentProblem,
  attachNetworkRequest,
  checkNetwork,
  dhcpHostname,
  type NetworkShape,
  reservationSet,
  sameReservations,
} from "./networks.ts";

/** The field an InvalidArgumentError names. */
function fieldOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    if (err instanceof InvalidArgumentError) return err.details[0]?.field;
    throw err;
  }
  return undefined;
}

Deno.test("network rules: each bad combination names its field", () => {
  const ok = { type: "bridge" as const, mode: "static" as const, subnet: "10.1.0.0/24" };
  assert.equal(checkNetwork(ok), "10.1.0.0/24");
  assert.equal(checkNetwork({ type: "bridge", mode: "none" }), null);
  assert.equal(checkNetwork({ ...ok, type: "vlan", vlan_id: 10, mode: "dhcp" }), "10.1.0.0/24");
  assert.equal(checkNetwork({ ...ok, type: "macvtap" }), "10.1.0.0/24");
  assert.equal(checkNetwork({ ...ok, nat: true, gateway: "10.1.0.1" }), "10.1.0.0/24");
  const cases: [Parameters<typeof checkNetwork>[0], string][] = [
    [{ ...ok, subnet: "10.1.0.3/24" }, "subnet"],
    [{ ...ok, subnet: "10.0.0.0/7" }, "subnet"],
    [{ ...ok, subnet: undefined }, "subnet"],
    [{ ...ok, mode: "dhcp", subnet: null }, "subnet"],
    [{ ...ok, gateway: "10.2.0.1" }, "gateway"],
    [{ ...ok, mode: "none", subnet: null, gateway: "10.1.0.1" }, "gateway"],
    [{ ...ok, type: "vlan" }, "vlan_id"],
    [{ ...ok, vlan_id: 5 }, "vlan_id"],
    [{ ...ok, type: "macvtap", vlan_id: 5 }, "vlan_id"],
    [{ ...ok, type: "macvtap", mode: "dhcp" }, "mode"],
    [{ ...ok, type: "macvtap", nat: true, gateway: "10.1.0.1" }, "nat"],
    [{ ...ok, type: "vlan", vlan_id: 7, nat: true, gateway: "10.1.0.1" }, "nat"],
    [{ ...ok, nat: true }, "nat"],
  ];
  for (const [input, field] of cases) {
    assert.equal(fieldOf(() => checkNetwork(input)), field, JSON.stringify(input));
  }
});

Deno.test("attachment rules: parents where needed, none for NAT, a gateway for isolated DHCP", () => {
  const net = {
    name: "lan",
    type: "bridge" as const,
    mode: "static" as const,
    gateway: null,
    nat: false,
  };
  const iso = { bridge_name: "qxbr0", parent_interface: null };
  const up = { bridge_name: "qxbr0", parent_interface: "eth0" };
  assert.equal(attachmentProblem(net, iso), undefined);
  assert.equal(attachmentProblem(net, up), undefined);
  assert.equal(attachmentProblem({ ...net, type: "vlan" }, up), undefined);
  assert.equal(attachmentProblem({ ...net, type: "macvtap" }, up), undefined);
  assert.equal(attachmentProblem({ ...net, mode: "dhcp", gateway: "10.0.0.1" }, iso), undefined);
  assert.equal(attachmentProblem({ ...net, mode: "dhcp" }, up), undefined, "the LAN gives one");
  assert.equal(attachmentProblem({ ...net, nat: true, gateway: "10.0.0.1" }, iso), undefined);

  const problem = (n: Partial<typeof net>, a: typeof iso | typeof up) =>
    attachmentProblem({ ...net, ...n } as typeof net, a);
  assert.equal(problem({ type: "vlan" } as never, iso)?.field, "parent_interface");
  assert.match(problem({ type: "macvtap" } as never, iso)!.message, /macvtap network needs/);
  assert.equal(problem({}, { ...up, parent_interface: "qxbr0" })?.field, "parent_interface");
  const nat = problem({ nat: true, gateway: "10.0.0.1" } as never, up)!;
  assert.equal(nat.field, "parent_interface");
  assert.deepEqual(nat.networkFields, ["nat"]);
  const dhcp = problem({ mode: "dhcp" } as never, iso)!;
  assert.deepEqual(dhcp.networkFields, ["gateway", "mode"]);
  assert.match(dhcp.message, /give the network a gateway/);
  assert.equal(problem({}, { ...iso, bridge_name: "qt4f1c2a3bn0" })?.field, "bridge_name");
  assert.equal(problem({}, { ...iso, bridge_name: "qm4f1c2a3bn12" })?.field, "bridge_name");
});

Deno.test("DHCP hostnames are RFC 1123 labels", () => {
  assert.equal(dhcpHostname("web-1"), "web-1");
  assert.equal(dhcpHostname("Web_1.prod"), "web-1-prod");
  assert.equal(dhcpHostname("a__b..c"), "a-b-c");
  assert.equal(dhcpHostname("x_"), "x");
  assert.equal(dhcpHostname("_-_"), "");
  const long = dhcpHostname(`${"a".repeat(62)}_b`);
  assert.equal(long, "a".repeat(62));
  assert.ok(dhcpHostname("a".repeat(70)).length <= 63);
  for (const name of ["web-1", "Web_1.prod", "9lives", `${"x".repeat(62)}.y`]) {
    assert.match(dhcpHostname(name), /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/);
  }
});

Deno.test("reservation sets: address order, NICs without an address left out, names once", () => {
  const set = reservationSet([
    { mac: "52:00:00:00:00:0A", ip: "10.0.0.10", vm_name: "db_1" },
    { mac: "52:00:00:00:00:02", ip: "10.0.0.9", vm_name: "db_1" },
    { mac: "52:00:00:00:00:03", ip: null, vm_name: "x" },
    { mac: "52:00:00:00:00:04", ip: "10.0.0.100", vm_name: "db.1" },
    { mac: "52:00:00:00:00:05", ip: "10.0.0.11", vm_name: "__" },
  ]);
  assert.deepEqual(set, [
    { mac: "52:00:00:00:00:02", ip: "10.0.0.9", hostname: "db-1" },
    { mac: "52:00:00:00:00:0a", ip: "10.0.0.10", hostname: "" },
    { mac: "52:00:00:00:00:05", ip: "10.0.0.11", hostname: "" },
    { mac: "52:00:00:00:00:04", ip: "10.0.0.100", hostname: "" },
  ]);
  assert.ok(sameReservations(set, structuredClone(set)));
  assert.ok(!sameReservations(set, set.slice(1)));
  assert.ok(!sameReservations(set, [{ ...set[0], ip: "10.0.0.8" }, ...set.slice(1)]));
});

const NET: NetworkShape = {
  id: "6a0d4c2e-0000-4000-8000-00000000d0c1",
  name: "lan",
  type: "bridge",
  mode: "dhcp",
  subnet: "10.88.0.0/24",
  gateway: "10.88.0.1",
  dns: ["10.88.0.1", "9.9.9.9"],
  vlan_id: null,
  mtu: 1450,
  nat: true,
};
const RES = [{ mac: "52:00:00:00:00:01", ip: "10.88.0.5", hostname: "web-1" }];

Deno.test("AttachNetwork: every field per type, and the node accepts it", () => {
  const iso = attachNetworkRequest(NET, { bridge_name: "qxbr0", parent_interface: null }, RES);
  assert.deepEqual({ ...iso }, {
    networkId: NET.id,
    bridgeName: "qxbr0",
    type: node.NetworkType.NETWORK_TYPE_BRIDGE,
    subnet: "10.88.0.0/24",
    gateway: "10.88.0.1",
    dns: "10.88.0.1,9.9.9.9",
    parentInterface: "",
    vlanId: 0,
    nat: true,
    mtu: 1450,
    dhcp: true,
    reservations: RES,
    dhcpRangeStart: "10.88.0.1",
    dhcpRangeEnd: "10.88.0.254",
  });
  const spec = networkSpecFromRequest(iso);
  assert.equal(spec.dhcp, true);
  assert.equal(spec.nat, true);
  assert.deepEqual(spec.reservations, RES);

  const vlan = attachNetworkRequest(
    { ...NET, type: "vlan", vlan_id: 42, nat: false },
    { bridge_name: "qxv42", parent_interface: "eth1" },
    RES,
  );
  assert.equal(vlan.type, node.NetworkType.NETWORK_TYPE_VLAN);
  assert.equal(vlan.vlanId, 42);
  assert.equal(vlan.parentInterface, "eth1");
  assert.equal(networkSpecFromRequest(vlan).vlanId, 42);

  // Static mode: no DHCP server, so no reservations either.
  const stat = attachNetworkRequest({ ...NET, mode: "static" }, {
    bridge_name: "qxbr0",
    parent_interface: null,
  }, RES);
  assert.equal(stat.dhcp, false);
  assert.deepEqual(stat.reservations, []);
  assert.equal(stat.dhcpRangeStart, undefined);

  const mv = attachNetworkRequest(
    { ...NET, type: "macvtap", mode: "static", nat: false },
    { bridge_name: "qxmv0", parent_interface: "eth0" },
  );
  assert.equal(mv.type, node.NetworkType.NETWORK_TYPE_MACVTAP);
  assert.equal(mv.dhcp, false);
  assert.equal(mv.mtu, 0, "a macvtap network keeps its parent's MTU");
  assert.equal(networkSpecFromRequest(mv).parentInterface, "eth0");
});

import assert from "node:assert/strict";
import { InvalidArgumentError, UnimplementedError } from "../../shared/errors/errors.ts";
import { node } from "../../shared/proto/mod.ts";
import { assertSupported, detachSpecFromRequest, networkSpecFromRequest } from "./spec.ts";

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
    nat: false,
    dhcp: false,
    reservations: [],
  });
  // A pure L2 bridge: no subnet, no address.
  assert.equal(networkSpecFromRequest({ bridgeName: "l2br" }).gateway, undefined);
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
  assert.equal(
    fieldOf(() =>
      networkSpecFromRequest({ ...base, reservations: [{ mac: "zz", ip: "10.1.0.5" }] })
    ),
    "reservations.0.mac",
  );
  assert.equal(fieldOf(() => detachSpecFromRequest({ bridgeName: "" })), "bridge_name");
});

Deno.test("options of later networking work are refused as unimplemented, never ignored", () => {
  assertSupported(networkSpecFromRequest(base));
  const cases = [
    { parentInterface: "eth0" },
    { type: node.NetworkType.NETWORK_TYPE_VLAN, vlanId: 10, parentInterface: "eth0" },
    { type: node.NetworkType.NETWORK_TYPE_MACVTAP },
    { nat: true },
    { dhcp: true },
    { reservations: [{ mac: "52:54:00:00:00:01", ip: "10.1.0.5" }] },
  ];
  for (const extra of cases) {
    assert.throws(
      () => assertSupported(networkSpecFromRequest({ ...base, ...extra })),
      UnimplementedError,
      JSON.stringify(extra),
    );
  }
});

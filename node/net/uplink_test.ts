import assert from "node:assert/strict";
import { INTERFACE_NAME } from "../../shared/net/names.ts";
import { sameUplink, vlanDeviceName } from "./uplink.ts";

Deno.test("VLAN device names: <parent>.<id> when it fits, else a short stable name", () => {
  assert.equal(vlanDeviceName("eth0", 100), "eth0.100");
  assert.equal(vlanDeviceName("enp3s0f1", 4094), "enp3s0f1.4094");
  const long = vlanDeviceName("enx001122334455", 4094);
  assert.match(long, /^qv[0-9a-f]{6}\.4094$/);
  assert.ok(INTERFACE_NAME.test(long) && long.length <= 15);
  assert.equal(long, vlanDeviceName("enx001122334455", 4094), "deterministic");
  assert.notEqual(long, vlanDeviceName("enx001122334466", 4094));
  assert.throws(() => vlanDeviceName("eth 0", 1));
});

Deno.test("an uplink record matches the spec that made it", () => {
  const nic = { kind: "nic" as const, device: "eth0", created: false, addresses: [], routes: [] };
  const vlan = { ...nic, kind: "vlan" as const, device: "eth0.5", parent: "eth0", vlanId: 5 };
  assert.ok(sameUplink(nic, { kind: "nic", device: "eth0" }));
  assert.ok(!sameUplink(nic, { kind: "nic", device: "eth1" }));
  assert.ok(sameUplink(vlan, { kind: "vlan", parent: "eth0", vlanId: 5 }));
  assert.ok(!sameUplink(vlan, { kind: "vlan", parent: "eth0", vlanId: 6 }));
  assert.ok(!sameUplink(vlan, { kind: "nic", device: "eth0" }));
  assert.ok(sameUplink(undefined, undefined));
  assert.ok(!sameUplink(nic, undefined));
});

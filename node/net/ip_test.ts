import assert from "node:assert/strict";
import { InternalError } from "../../shared/errors/errors.ts";
import { IpAdapter, parseLinks } from "./ip.ts";

// Trimmed output of `ip -j -d link show` (iproute2 6.1) for a bridge and a tap enslaved to it.
const SAMPLE = JSON.stringify([
  {
    ifindex: 2,
    ifname: "br0",
    flags: ["BROADCAST", "MULTICAST", "UP"],
    mtu: 1400,
    address: "82:8e:5e:19:fe:90",
    linkinfo: { info_kind: "bridge", info_data: { stp_state: 0 } },
    ifalias: "qarax:network:abc",
  },
  {
    ifindex: 3,
    ifname: "qt1234abcdn0",
    flags: ["NO-CARRIER", "BROADCAST", "MULTICAST", "UP"],
    mtu: 1400,
    master: "br0",
    address: "82:8e:5e:19:fe:91",
    linkinfo: {
      info_kind: "tun",
      info_data: { type: "tap", pi: false, multi_queue: true, numqueues: 0, persist: true },
      info_slave_kind: "bridge",
    },
  },
  { ifindex: 1, ifname: "lo", flags: ["LOOPBACK"], mtu: 65536, address: "00:00:00:00:00:00" },
  {
    ifindex: 4,
    link: "eth0",
    ifname: "eth0.100",
    flags: ["BROADCAST", "MULTICAST", "UP"],
    mtu: 1500,
    address: "66:cf:ca:7c:db:e7",
    linkinfo: { info_kind: "vlan", info_data: { protocol: "802.1Q", id: 100, flags: [] } },
  },
  {
    ifindex: 5,
    link: "eth0",
    ifname: "qm1234abcdn0",
    flags: ["BROADCAST", "MULTICAST", "UP"],
    mtu: 1500,
    address: "52:54:00:12:34:56",
    linkinfo: { info_kind: "macvtap", info_data: { mode: "bridge", bcqueuelen: 1000 } },
  },
]);

Deno.test("ip -j -d link show output becomes typed links", () => {
  const [br, tap, lo, vlan, macvtap] = parseLinks(SAMPLE);
  assert.deepEqual(br, {
    name: "br0",
    index: 2,
    mtu: 1400,
    up: true,
    noCarrier: false,
    mac: "82:8e:5e:19:fe:90",
    kind: "bridge",
    master: undefined,
    alias: "qarax:network:abc",
    parent: undefined,
    vlanId: undefined,
    macvtapMode: undefined,
    tun: undefined,
  });
  assert.equal(tap.master, "br0");
  assert.equal(tap.noCarrier, true);
  assert.deepEqual(tap.tun, { type: "tap", multiQueue: true, numQueues: 0, persist: true });
  assert.equal(lo.kind, undefined);
  assert.equal(lo.up, false);
  assert.deepEqual([vlan.kind, vlan.parent, vlan.vlanId], ["vlan", "eth0", 100]);
  assert.deepEqual([macvtap.kind, macvtap.parent, macvtap.macvtapMode, macvtap.mac], [
    "macvtap",
    "eth0",
    "bridge",
    "52:54:00:12:34:56",
  ]);
  assert.throws(() => parseLinks("not json"), InternalError);
});

Deno.test("the adapter refuses bad names before running anything", async () => {
  assert.throws(() => new IpAdapter({ netns: "a b" }), InternalError);
  const ip = new IpAdapter({ netns: "qx-never-created" });
  await assert.rejects(() => ip.addBridge("br;reboot"), /not a valid interface name/);
  await assert.rejects(() => ip.setLink("br0", { mtu: 10 }), /MTU out of range/);
  await assert.rejects(() => ip.addAddress("br0", "10.0.0.1; x"), /invalid interface address/);
});

Deno.test("command failures name the command and carry ip's stderr", async () => {
  const ip = new IpAdapter({ netns: `qx-missing-${crypto.randomUUID().slice(0, 6)}` });
  await assert.rejects(() => ip.links(), (e: Error) => {
    assert.match(e.message, /ip -n qx-missing-\w+ -j -d link show/);
    assert.match(e.message, /Cannot open network namespace|No such file/);
    return true;
  });
});

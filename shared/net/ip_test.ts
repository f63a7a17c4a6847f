import assert from "node:assert/strict";
import {
  broadcast,
  contains,
  formatCidr,
  formatIpv4,
  hostCount,
  hostRange,
  isUnicastMac,
  isUsableHost,
  localMac,
  netmask,
  normalizeMac,
  parseCidr,
  parseIpv4,
  randomMac,
} from "./ip.ts";
import { InvalidArgumentError } from "../errors/errors.ts";

Deno.test("IPv4 addresses parse and format, rejecting malformed input", () => {
  assert.equal(parseIpv4("10.1.2.3"), 0x0a010203);
  assert.equal(formatIpv4(0xc0a80101), "192.168.1.1");
  assert.equal(formatIpv4(parseIpv4("255.255.255.255")), "255.255.255.255");
  for (const bad of ["10.1.2", "256.1.1.1", "01.2.3.4", "1.2.3.4 ", "a.b.c.d", ""]) {
    assert.throws(() => parseIpv4(bad), InvalidArgumentError, bad);
  }
});

Deno.test("CIDR networks: network, broadcast, usable range and membership", () => {
  const net = parseCidr("192.168.10.0/24");
  assert.equal(formatCidr(net), "192.168.10.0/24");
  assert.equal(formatIpv4(broadcast(net)), "192.168.10.255");
  assert.equal(netmask(24), "255.255.255.0");
  const { first, last } = hostRange(net);
  assert.equal(formatIpv4(first), "192.168.10.1");
  assert.equal(formatIpv4(last), "192.168.10.254");
  assert.equal(hostCount(net), 254);
  assert.ok(contains(net, parseIpv4("192.168.10.77")));
  assert.ok(!contains(net, parseIpv4("192.168.11.1")));
  assert.ok(!isUsableHost(net, parseIpv4("192.168.10.0")));
  assert.ok(!isUsableHost(net, parseIpv4("192.168.10.255")));
  assert.equal(hostCount(parseCidr("10.0.0.0/30")), 2);
  assert.equal(hostCount(parseCidr("10.0.0.0/32")), 1);
  assert.equal(formatIpv4(broadcast(parseCidr("0.0.0.0/0"))), "255.255.255.255");
});

Deno.test("CIDRs with host bits are refused unless not strict", () => {
  assert.throws(() => parseCidr("10.0.0.5/24"), /host bits set; the network is 10\.0\.0\.0\/24/);
  assert.equal(formatCidr(parseCidr("10.0.0.5/24", { strict: false })), "10.0.0.0/24");
  assert.throws(() => parseCidr("10.0.0.0/33"), InvalidArgumentError);
  assert.throws(() => parseCidr("10.0.0.0"), InvalidArgumentError);
});

Deno.test("MACs normalise, and generated ones are locally administered unicast", () => {
  assert.equal(normalizeMac("52-54-00-AB-cd-01"), "52:54:00:ab:cd:01");
  assert.throws(() => normalizeMac("52:54:00:ab:cd"), InvalidArgumentError);
  assert.ok(!isUnicastMac("01:00:5e:00:00:01"));
  assert.equal(localMac(new Uint8Array([1, 2, 3, 4, 5])), "52:01:02:03:04:05");
  const mac = randomMac();
  const first = parseInt(mac.slice(0, 2), 16);
  assert.equal(first & 0b10, 0b10, "locally administered bit");
  assert.equal(first & 1, 0, "unicast");
  assert.notEqual(randomMac(), mac);
});

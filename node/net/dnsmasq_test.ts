import assert from "node:assert/strict";
import {
  blockingLeases,
  dhcpPaths,
  dnsmasqArgv,
  dnsmasqConfig,
  dnsmasqHosts,
  parseLeases,
} from "./dnsmasq.ts";

const paths = dhcpPaths("/var/lib/qarax/vms/.dhcp", "qbr0");

Deno.test("dnsmasq config: only the bridge, no DNS, static reservations only, options as set", () => {
  const text = dnsmasqConfig({
    bridge: "qbr0",
    subnet: "10.88.0.0/24",
    gateway: "10.88.0.1",
    dns: ["10.88.0.1", "9.9.9.9"],
    mtu: 1450,
  }, paths);
  assert.deepEqual(text.split("\n").filter((l) => l && !l.startsWith("#")), [
    "interface=qbr0",
    "bind-interfaces",
    "port=0",
    "no-resolv",
    "no-hosts",
    "dhcp-range=10.88.0.0,static,255.255.255.0,3600",
    "dhcp-hostsfile=/var/lib/qarax/vms/.dhcp/qbr0/hosts",
    "dhcp-ignore=tag:!known",
    "dhcp-authoritative",
    "dhcp-leasefile=/var/lib/qarax/vms/.dhcp/qbr0/leases",
    "dhcp-option=option:router,10.88.0.1",
    "dhcp-option=option:dns-server,10.88.0.1,9.9.9.9",
    "dhcp-option=option:mtu,1450",
    "pid-file=",
    "log-facility=-",
  ]);
});

Deno.test("without gateway or DNS, dnsmasq is told to send none (not itself)", () => {
  const text = dnsmasqConfig(
    { bridge: "b1", subnet: "172.16.4.0/22", dns: [], leaseSeconds: 600 },
    paths,
  );
  assert.match(text, /^dhcp-range=172\.16\.4\.0,static,255\.255\.252\.0,600$/m);
  assert.match(text, /^dhcp-option=option:router$/m);
  assert.match(text, /^dhcp-option=option:dns-server$/m);
  assert.doesNotMatch(text, /option:mtu/);
});

Deno.test("hosts file: one mac,ip[,hostname] line per reservation, in a stable order", () => {
  assert.equal(
    dnsmasqHosts([
      { mac: "52:54:00:00:00:02", ip: "10.0.0.3", hostname: "" },
      { mac: "52:54:00:00:00:01", ip: "10.0.0.2", hostname: "web1" },
    ]),
    "52:54:00:00:00:01,10.0.0.2,web1\n52:54:00:00:00:02,10.0.0.3\n",
  );
  assert.equal(dnsmasqHosts([]), "");
});

Deno.test("the paths and the command line identify the bridge's server", () => {
  assert.equal(paths.conf, "/var/lib/qarax/vms/.dhcp/qbr0/dnsmasq.conf");
  assert.deepEqual(dnsmasqArgv(paths), [
    "dnsmasq",
    "--conf-file=/var/lib/qarax/vms/.dhcp/qbr0/dnsmasq.conf",
    "--keep-in-foreground",
  ]);
});

Deno.test("leases that block a reservation are found (an address moving to another MAC)", () => {
  const leases = parseLeases(
    "1795658554 52:54:00:AA:BB:01 10.50.0.42 guest1 01:52:54:00:aa:bb:01\n" +
      "1795658555 52:54:00:aa:bb:03 10.50.0.43 * *\n" +
      "duid 00:01:00:01:2c:1f\n\n",
  );
  assert.deepEqual(leases.map((l) => [l.mac, l.ip, l.expires]), [
    ["52:54:00:aa:bb:01", "10.50.0.42", 1795658554],
    ["52:54:00:aa:bb:03", "10.50.0.43", 1795658555],
  ]);
  const moved = blockingLeases(leases, [
    { mac: "52:54:00:aa:bb:02", ip: "10.50.0.42", hostname: "" },
    { mac: "52:54:00:aa:bb:03", ip: "10.50.0.43", hostname: "" },
  ]);
  assert.deepEqual(moved.map((l) => l.mac), ["52:54:00:aa:bb:01"]);
  assert.deepEqual(
    blockingLeases(leases, []),
    [],
    "a lease of an unreserved address blocks nobody",
  );
  assert.deepEqual(
    blockingLeases(leases, [{ mac: "52:54:00:aa:bb:01", ip: "10.50.0.99", hostname: "" }]),
    [],
    "a MAC whose own address changed is answered from its new reservation",
  );
});

/**
 * Network topologies for networking tests, each made of private namespaces around a "node"
 * namespace (where the agent or the network manager works) and removed on dispose:
 *  - `fakeGuest`: a namespace whose `eth0` is one end of a veth plugged into a bridge of the
 *    node, carrying a NIC's MAC; it runs busybox `udhcpc` (a real DHCP client) and `nc`;
 *  - `internet`: a namespace behind the node's uplink `up0` (the node's default route points
 *    at it) with a TCP listener that answers each connection with the address it came from;
 *  - `lan`: a namespace on the other end of a node NIC `up0`, the "router" of a physical LAN.
 */
import { run, tryRun } from "../../shared/cmd/run.ts";
import { createNetns, type Netns } from "./netns.ts";
import { spawn, type Spawned, waitFor } from "./process.ts";

/** What a DHCP client was handed. */
export interface Lease {
  ip: string;
  subnet: string;
  router: string;
  dns: string[];
  mtu?: number;
  lease: number;
}

const UDHCPC_SCRIPT = `#!/bin/sh
[ "$1" = bound ] || exit 0
echo "LEASE ip=$ip subnet=$subnet router=$router dns=$dns mtu=$mtu lease=$lease"
`;

function short(): string {
  return crypto.randomUUID().replaceAll("-", "").slice(0, 6);
}

/** A fake guest on a bridge of the node. */
export interface FakeGuest extends AsyncDisposable {
  ns: Netns;
  /** The veth end on the node's bridge. */
  port: string;
  /** Runs a real DHCP client once; the lease, or null when nobody answered. */
  dhcp(options?: { tries?: number }): Promise<Lease | null>;
  /** Puts the lease's address and default route on `eth0`. */
  configure(lease: Lease): Promise<void>;
  /** Gives `eth0` another MAC (another guest on the same wire). */
  setMac(mac: string): Promise<void>;
  /** `nc` to `host:port`: what the server said, or null when the connection failed. */
  connect(host: string, port: number): Promise<string | null>;
}

/** A guest namespace whose `eth0` (with `mac`) is plugged into `bridge` of `node`. */
export async function fakeGuest(node: string, bridge: string, mac: string): Promise<FakeGuest> {
  const ns = await createNetns();
  const port = `qg${short()}`;
  const script = await Deno.makeTempFile({ prefix: "qarax-udhcpc-", suffix: ".sh" });
  try {
    await Deno.writeTextFile(script, UDHCPC_SCRIPT);
    await Deno.chmod(script, 0o755);
    // The peer gets a unique name while in the node's namespace (which may have its own eth0).
    const peer = `qp${short()}`;
    await run(["ip", "-n", node, "link", "add", port, "type", "veth", "peer", "name", peer]);
    await run(["ip", "-n", node, "link", "set", peer, "netns", ns.name]);
    await run(["ip", "-n", ns.name, "link", "set", peer, "name", "eth0"]);
    await run(["ip", "-n", node, "link", "set", port, "master", bridge, "up"]);
    await run(["ip", "-n", ns.name, "link", "set", "eth0", "address", mac, "up"]);
  } catch (err) {
    await ns.remove();
    await Deno.remove(script).catch(() => {});
    throw err;
  }
  return {
    ns,
    port,
    async dhcp(options = {}) {
      const tries = String(options.tries ?? 4);
      const out = await tryRun([
        ..."ip netns exec".split(" "),
        ns.name,
        ..."busybox udhcpc -i eth0 -n -q -f -T 1 -O mtu".split(" "),
        "-t",
        tries,
        "-s",
        script,
      ], { timeoutMs: 30_000 });
      const m = /LEASE (.*)/.exec(out.stdout);
      if (!m) return null;
      const kv = Object.fromEntries(
        [...m[1].matchAll(/(\w+)=([^=]*?)(?= \w+=|$)/g)].map((x) => [x[1], x[2].trim()]),
      );
      return {
        ip: kv.ip,
        subnet: kv.subnet,
        router: kv.router,
        dns: kv.dns ? kv.dns.split(/\s+/) : [],
        mtu: kv.mtu ? Number(kv.mtu) : undefined,
        lease: Number(kv.lease),
      };
    },
    async configure(lease) {
      const prefix = lease.subnet.split(".").map(Number)
        .reduce((n, o) => n + o.toString(2).replaceAll("0", "").length, 0);
      await run(["ip", "-n", ns.name, "addr", "replace", `${lease.ip}/${prefix}`, "dev", "eth0"]);
      await run(["ip", "-n", ns.name, "route", "replace", "default", "via", lease.router]);
    },
    async setMac(mac) {
      await run(["ip", "-n", ns.name, "link", "set", "eth0", "address", mac]);
    },
    async connect(host, port) {
      const out = await tryRun(
        ["ip", "netns", "exec", ns.name, "busybox", "nc", "-w", "2", host, String(port)],
        { timeoutMs: 10_000 },
      );
      return out.code === 0 && out.stdout ? out.stdout.trim() : null;
    },
    async [Symbol.asyncDispose]() {
      await run(["ip", "-n", node, "link", "del", port]).catch(() => {});
      await ns.remove();
      await Deno.remove(script).catch(() => {});
    },
  };
}

/** A veth from `up0` in `node` (with `nodeAddr`) to `peer0` in `peer` (with `peerAddr`). */
async function wire(node: string, nodeAddr: string, peer: string, peerAddr: string) {
  await run(["ip", "-n", node, "link", "add", "up0", "type", "veth", "peer", "name", "peer0"]);
  await run(["ip", "-n", node, "link", "set", "peer0", "netns", peer]);
  await run(["ip", "-n", node, "addr", "add", nodeAddr, "dev", "up0"]);
  await run(["ip", "-n", node, "link", "set", "up0", "up"]);
  await run(["ip", "-n", peer, "addr", "add", peerAddr, "dev", "peer0"]);
  await run(["ip", "-n", peer, "link", "set", "peer0", "up"]);
}

/** The "internet" behind a node's uplink. */
export interface Internet extends AsyncDisposable {
  ns: Netns;
  /** Its address, the node's default gateway. */
  address: string;
  /** The node's address on the uplink (`up0`). */
  nodeAddress: string;
  /** Port of the listener that answers with the peer's address. */
  port: number;
}

const ROOT = new URL("../../", import.meta.url).pathname;

/**
 * An "internet" namespace behind `node`'s `up0` (198.51.100.2/24, default route via
 * 198.51.100.1). It has no route back to the node's private subnets: only NAT lets a guest
 * behind the node talk to it.
 */
export async function internet(node: string): Promise<Internet> {
  const ns = await createNetns();
  let listener: Spawned | undefined;
  try {
    await wire(node, "198.51.100.2/24", ns.name, "198.51.100.1/24");
    await run(["ip", "-n", node, "route", "add", "default", "via", "198.51.100.1"]);
    const port = 7000 + Math.floor(Math.random() * 1000);
    listener = spawn("ip", [
      ..."netns exec".split(" "),
      ns.name,
      Deno.execPath(),
      "run",
      "-A",
      "--quiet",
      `${ROOT}tests/support/peer_echo.ts`,
      String(port),
    ]);
    const l = listener;
    await waitFor(() => l.output().includes("listening"), 15_000, "the peer-echo listener");
    return {
      ns,
      address: "198.51.100.1",
      nodeAddress: "198.51.100.2",
      port,
      async [Symbol.asyncDispose]() {
        await l.stop();
        await ns.remove();
      },
    };
  } catch (err) {
    await listener?.stop();
    await ns.remove();
    throw err;
  }
}

/** A LAN behind a node NIC `up0`: the node has 192.0.2.10/24 on it, the router 192.0.2.1. */
export interface Lan extends AsyncDisposable {
  ns: Netns;
  router: string;
  nodeAddress: string;
  /** True when the node reaches the router (ping). */
  reachable(): Promise<boolean>;
}

/** A namespace on the other end of `node`'s `up0`, its default route pointing there. */
export async function lan(node: string): Promise<Lan> {
  const ns = await createNetns();
  try {
    await wire(node, "192.0.2.10/24", ns.name, "192.0.2.1/24");
    await run(["ip", "-n", node, "route", "add", "default", "via", "192.0.2.1", "metric", "50"]);
  } catch (err) {
    await ns.remove();
    throw err;
  }
  return {
    ns,
    router: "192.0.2.1",
    nodeAddress: "192.0.2.10",
    async reachable() {
      const out = await tryRun(
        ["ip", "netns", "exec", node, "busybox", "ping", "-c", "1", "-W", "2", "192.0.2.1"],
        { timeoutMs: 10_000 },
      );
      return out.code === 0;
    },
    async [Symbol.asyncDispose]() {
      await ns.remove();
    },
  };
}

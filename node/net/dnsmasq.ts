/**
 * What a bridge's DHCP server is told, as text: the dnsmasq configuration (bound to the bridge
 * only, no DNS service, static reservations only, unknown MACs ignored, router/DNS/MTU options),
 * its hosts file (one MAC → IP reservation per line) and the reading of its lease file. Pure:
 * `dhcp.ts` writes and supervises; this module only decides what the files say.
 */
import { formatIpv4, netmask, parseCidr } from "../../shared/net/ip.ts";
import type { DhcpReservation } from "./spec.ts";

/** Lease time dnsmasq grants: guests renew after half of it, so a changed reservation lands. */
export const DHCP_LEASE_SECONDS = 3600;

/** The files of one bridge's DHCP server under the node's DHCP directory. */
export interface DhcpPaths {
  dir: string;
  conf: string;
  hosts: string;
  leases: string;
  /** The pid of the dnsmasq the agent started (for adoption after an agent restart). */
  pid: string;
  /** dnsmasq's own log (stderr), appended across restarts. */
  log: string;
}

/** The files of the DHCP server of `bridge` (a validated interface name). */
export function dhcpPaths(root: string, bridge: string): DhcpPaths {
  const dir = `${root}/${bridge}`;
  return {
    dir,
    conf: `${dir}/dnsmasq.conf`,
    hosts: `${dir}/hosts`,
    leases: `${dir}/leases`,
    pid: `${dir}/dnsmasq.pid`,
    log: `${dir}/dnsmasq.log`,
  };
}

/** What one bridge's DHCP server hands out besides the reserved addresses. */
export interface DhcpOptions {
  bridge: string;
  /** `a.b.c.d/p`, the network the reservations are in. */
  subnet: string;
  /** The router guests get; none: no router option at all. */
  gateway?: string;
  dns: string[];
  mtu?: number;
  leaseSeconds?: number;
}

/** The dnsmasq configuration of a bridge's DHCP server. */
export function dnsmasqConfig(options: DhcpOptions, paths: DhcpPaths): string {
  const net = parseCidr(options.subnet);
  const lines = [
    `# qarax: DHCP for bridge ${options.bridge} (generated; rewritten by the node agent)`,
    // Only this bridge: never the host's other interfaces, never the LAN behind another bridge.
    `interface=${options.bridge}`,
    "bind-interfaces",
    // No DNS service, no host files: this process only answers DHCP.
    "port=0",
    "no-resolv",
    "no-hosts",
    // Addresses come only from reservations; a MAC without one gets no answer at all.
    `dhcp-range=${formatIpv4(net.network)},static,${netmask(net.prefix)},${
      options.leaseSeconds ?? DHCP_LEASE_SECONDS
    }`,
    `dhcp-hostsfile=${paths.hosts}`,
    "dhcp-ignore=tag:!known",
    // A guest asking to renew an address that is no longer its reservation is told no at once.
    "dhcp-authoritative",
    `dhcp-leasefile=${paths.leases}`,
    // dnsmasq would otherwise announce itself as router and DNS server: say exactly what is set.
    options.gateway ? `dhcp-option=option:router,${options.gateway}` : "dhcp-option=option:router",
    options.dns.length
      ? `dhcp-option=option:dns-server,${options.dns.join(",")}`
      : "dhcp-option=option:dns-server",
  ];
  if (options.mtu) lines.push(`dhcp-option=option:mtu,${options.mtu}`);
  // The agent tracks the pid; logs go to stderr, which the launcher appends to dnsmasq.log.
  lines.push("pid-file=", "log-facility=-");
  return lines.join("\n") + "\n";
}

/** dnsmasq's hosts file: `mac,ip[,hostname]`, one reservation per line, in MAC order. */
export function dnsmasqHosts(reservations: DhcpReservation[]): string {
  return [...reservations].sort((a, b) => a.mac.localeCompare(b.mac))
    .map((r) => [r.mac, r.ip, ...(r.hostname ? [r.hostname] : [])].join(",") + "\n").join("");
}

/** The command line of a bridge's dnsmasq (its identity is the `--conf-file` argument). */
export function dnsmasqArgv(paths: DhcpPaths): string[] {
  return ["dnsmasq", `--conf-file=${paths.conf}`, "--keep-in-foreground"];
}

/** One line of dnsmasq's lease file. */
export interface Lease {
  expires: number;
  mac: string;
  ip: string;
  /** The line as dnsmasq wrote it. */
  line: string;
}

/** Reads dnsmasq's lease file (`<expiry> <mac> <ip> <hostname> <client id>` per line). */
export function parseLeases(text: string): Lease[] {
  const leases: Lease[] = [];
  for (const line of text.split("\n")) {
    const [expires, mac, ip] = line.trim().split(/\s+/);
    if (!ip || !/^\d+$/.test(expires)) continue; // the `duid` line of DHCPv6, blanks
    leases.push({ expires: Number(expires), mac: mac.toLowerCase(), ip, line });
  }
  return leases;
}

/**
 * Leases that stand in the way of `reservations`: an address reserved for one MAC but leased
 * to another (it moved). dnsmasq refuses to hand a reserved address to its new owner while
 * such a lease lasts ("not using configured address … because it is leased to …"), so these
 * must go. A MAC whose own address changed is no obstacle: dnsmasq answers it from the new
 * reservation and refuses the old address when it tries to renew it.
 */
export function blockingLeases(leases: Lease[], reservations: DhcpReservation[]): Lease[] {
  const owner = new Map(reservations.map((r) => [r.ip, r.mac]));
  return leases.filter((l) => owner.has(l.ip) && owner.get(l.ip) !== l.mac);
}

/**
 * IPv4 and MAC address arithmetic, pure and shared by both binaries: parsing and formatting,
 * CIDR networks (network, broadcast, usable range), and locally administered MACs.
 * Names that reach a command line are validated in `names.ts`; this module is about numbers.
 */
import { InvalidArgumentError } from "../errors/errors.ts";

/** An IPv4 network in CIDR form. */
export interface Ipv4Network {
  /** Network address as an unsigned 32-bit integer. */
  network: number;
  prefix: number;
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/** True for a dotted-quad IPv4 address without leading zeros. */
export function isIpv4(text: string): boolean {
  return IPV4.test(text);
}

/** Parses a dotted-quad IPv4 address into an unsigned 32-bit integer. */
export function parseIpv4(text: string): number {
  if (!isIpv4(text)) throw new InvalidArgumentError(`not an IPv4 address: ${text}`);
  return text.split(".").reduce((acc, part) => acc * 256 + Number(part), 0);
}

/** Formats an unsigned 32-bit integer as a dotted quad. */
export function formatIpv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");
}

/** Parses `a.b.c.d/p`; the address must be the network address (`10.0.0.0/24`, not `.5/24`). */
export function parseCidr(text: string, options: { strict?: boolean } = {}): Ipv4Network {
  const m = /^([0-9.]+)\/(\d{1,2})$/.exec(text);
  const prefix = m ? Number(m[2]) : NaN;
  if (!m || !isIpv4(m[1]) || prefix > 32) {
    throw new InvalidArgumentError(`not an IPv4 CIDR (a.b.c.d/prefix): ${text}`);
  }
  const addr = parseIpv4(m[1]);
  const network = (addr & maskOf(prefix)) >>> 0;
  if ((options.strict ?? true) && network !== addr) {
    throw new InvalidArgumentError(
      `${text} has host bits set; the network is ${formatIpv4(network)}/${prefix}`,
    );
  }
  return { network, prefix };
}

/** The netmask of a prefix length as an unsigned integer. */
export function maskOf(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** `a.b.c.d` form of the netmask of a prefix length. */
export function netmask(prefix: number): string {
  return formatIpv4(maskOf(prefix));
}

/** The network's broadcast address. */
export function broadcast(net: Ipv4Network): number {
  return (net.network | (~maskOf(net.prefix) >>> 0)) >>> 0;
}

/** `a.b.c.d/p` text of a network. */
export function formatCidr(net: Ipv4Network): string {
  return `${formatIpv4(net.network)}/${net.prefix}`;
}

/** True when `addr` lies inside `net` (network and broadcast addresses included). */
export function contains(net: Ipv4Network, addr: number): boolean {
  return ((addr & maskOf(net.prefix)) >>> 0) === net.network;
}

/** First and last host address (excludes network and broadcast, except for /31 and /32). */
export function hostRange(net: Ipv4Network): { first: number; last: number } {
  if (net.prefix >= 31) return { first: net.network, last: broadcast(net) };
  return { first: net.network + 1, last: broadcast(net) - 1 };
}

/** Number of usable host addresses. */
export function hostCount(net: Ipv4Network): number {
  const { first, last } = hostRange(net);
  return last - first + 1;
}

/** True when `addr` is usable by a host: inside, and not the network or broadcast address. */
export function isUsableHost(net: Ipv4Network, addr: number): boolean {
  const { first, last } = hostRange(net);
  return addr >= first && addr <= last;
}

const MAC = /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/;

/** Normalises a MAC to lowercase colon form, or throws. Accepts `-` separators too. */
export function normalizeMac(text: string): string {
  const mac = text.trim().toLowerCase().replaceAll("-", ":");
  if (!MAC.test(mac)) throw new InvalidArgumentError(`not a MAC address: ${text}`);
  return mac;
}

/** True for a unicast MAC (the group bit of the first octet is clear). */
export function isUnicastMac(mac: string): boolean {
  return (parseInt(normalizeMac(mac).slice(0, 2), 16) & 1) === 0;
}

/**
 * A locally administered unicast MAC whose last 5 octets come from `bytes`
 * (e.g. random or derived from an id). The first octet is fixed to 0x52 like QEMU/CH guests.
 */
export function localMac(bytes: Uint8Array): string {
  if (bytes.length < 5) throw new InvalidArgumentError("localMac needs 5 bytes");
  const octets = [0x52, ...bytes.slice(0, 5)];
  return octets.map((b) => b.toString(16).padStart(2, "0")).join(":");
}

/** A random locally administered unicast MAC. */
export function randomMac(): string {
  return localMac(crypto.getRandomValues(new Uint8Array(5)));
}

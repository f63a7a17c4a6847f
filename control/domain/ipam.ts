/**
 * IPAM arithmetic, pure: which addresses of a network a NIC may get (network, broadcast and
 * gateway excluded), the lowest free one given those in use, and checks for a requested
 * static address. The database adapter supplies the addresses in use under a lock.
 */
import {
  contains,
  formatCidr,
  formatIpv4,
  hostRange,
  type Ipv4Network,
  isIpv4,
  isUsableHost,
  parseIpv4,
} from "../../shared/net/ip.ts";
import { InvalidArgumentError } from "../../shared/errors/errors.ts";

/** What IPAM needs to know about a network. */
export interface IpamNetwork {
  net: Ipv4Network;
  /** Gateway address as an integer, when the network has one. */
  gateway?: number;
}

/** Number of addresses NICs can get on the network. */
export function poolSize(n: IpamNetwork): number {
  const { first, last } = hostRange(n.net);
  const gw = n.gateway !== undefined && n.gateway >= first && n.gateway <= last ? 1 : 0;
  return last - first + 1 - gw;
}

/**
 * The lowest assignable address not in `used` (sorted or not), or null when the network is
 * full. Runs in O(|used|) regardless of the network's size.
 */
export function nextFreeAddress(n: IpamNetwork, used: Iterable<number>): number | null {
  const { first, last } = hostRange(n.net);
  const taken = new Set(used);
  if (n.gateway !== undefined) taken.add(n.gateway);
  // The answer is at most first + |taken|: walk only that far.
  for (let a = first; a <= last && a <= first + taken.size; a++) {
    if (!taken.has(a)) return a;
  }
  return null;
}

/** Validates a requested static address for the network; returns it as an integer. */
export function checkStaticAddress(n: IpamNetwork, text: string, field = "ip_address"): number {
  if (!isIpv4(text)) throw InvalidArgumentError.field(field, `"${text}" is not an IPv4 address`);
  const addr = parseIpv4(text);
  if (!contains(n.net, addr)) {
    throw InvalidArgumentError.field(field, `${text} is not inside ${formatCidr(n.net)}`);
  }
  if (!isUsableHost(n.net, addr)) {
    throw InvalidArgumentError.field(
      field,
      `${text} is the network or broadcast address of ${formatCidr(n.net)}`,
    );
  }
  if (addr === n.gateway) {
    throw InvalidArgumentError.field(field, `${text} is the network's gateway`);
  }
  return addr;
}

/** Dotted-quad text of an address. */
export const formatAddress = formatIpv4;

/**
 * What a network attachment asks for, validated: `AttachNetworkRequest`/`DetachNetworkRequest`
 * turned into a typed `NetworkSpec` with every name and address checked and each error naming
 * its field. Pure; the network manager trusts what comes out of here.
 */
import { InvalidArgumentError } from "../../shared/errors/errors.ts";
import {
  contains,
  formatCidr,
  type Ipv4Network,
  isIpv4,
  isUnicastMac,
  isUsableHost,
  normalizeMac,
  parseCidr,
  parseIpv4,
} from "../../shared/net/ip.ts";
import { interfaceName, VM_ID } from "../../shared/net/names.ts";
import type { node } from "../../shared/proto/mod.ts";
import { isTapName } from "./tap.ts";

export const NETWORK_TYPES = ["bridge", "vlan", "macvtap"] as const;
export type NetworkType = typeof NETWORK_TYPES[number];

/** A DHCP reservation (MAC → IP) for the bridge's DHCP server. */
export interface DhcpReservation {
  mac: string;
  ip: string;
  hostname: string;
}

/** A validated network attachment request. */
export interface NetworkSpec {
  bridge: string;
  /** The control plane's network id; "" when the caller did not send one. */
  networkId: string;
  type: NetworkType;
  /** Normalised `a.b.c.d/p`, when the network has a subnet. */
  subnet?: string;
  /** The bridge's own address inside `subnet`. */
  gateway?: string;
  mtu?: number;
  dns: string[];
  dhcpRange?: { start: string; end: string };
  parentInterface?: string;
  vlanId?: number;
  nat: boolean;
  dhcp: boolean;
  reservations: DhcpReservation[];
}

/** A validated detach request. */
export interface DetachSpec {
  bridge: string;
  networkId: string;
}

/** Validates a network id (the control plane's UUID, used in interface aliases). */
export function networkId(id: string, field = "network_id"): string {
  if (id !== "" && !VM_ID.test(id)) {
    throw InvalidArgumentError.field(field, `"${id}" is not a valid network id`);
  }
  return id;
}

/** Validates a bridge name: an interface name that cannot be mistaken for a qarax tap. */
export function bridgeName(name: string, field = "bridge_name"): string {
  interfaceName(name, field);
  if (isTapName(name)) {
    throw InvalidArgumentError.field(field, `"${name}" is reserved for VM tap devices`);
  }
  return name;
}

/** Validates an MTU; 0 or undefined means "leave it". */
export function mtu(value: number | undefined, field = "mtu"): number | undefined {
  if (!value) return undefined;
  if (!Number.isInteger(value) || value < 68 || value > 65535) {
    throw InvalidArgumentError.field(field, `must be 68-65535, got ${value}`);
  }
  return value;
}

function ipv4(text: string, field: string): string {
  if (!isIpv4(text)) throw InvalidArgumentError.field(field, `"${text}" is not an IPv4 address`);
  return text;
}

/** Turns an AttachNetworkRequest into a NetworkSpec, or throws naming the bad field. */
export function networkSpecFromRequest(req: node.AttachNetworkRequest.$Properties): NetworkSpec {
  const bridge = bridgeName(req.bridgeName ?? "");
  const type = NETWORK_TYPES[req.type ?? 0];
  if (!type) throw InvalidArgumentError.field("type", `unknown network type ${req.type}`);

  let subnet: ReturnType<typeof parseCidr> | undefined;
  if (req.subnet) {
    try {
      subnet = parseCidr(req.subnet);
    } catch (err) {
      throw InvalidArgumentError.field("subnet", (err as Error).message);
    }
  }
  const inSubnet = subnetChecker(subnet, req.subnet);

  const gateway = req.gateway ? inSubnet(req.gateway, "gateway") : undefined;
  const dns = (req.dns ?? "").split(/[\s,]+/).filter(Boolean).map((d) => ipv4(d, "dns"));
  let dhcpRange: NetworkSpec["dhcpRange"];
  if (req.dhcpRangeStart || req.dhcpRangeEnd) {
    const start = inSubnet(req.dhcpRangeStart ?? "", "dhcp_range_start");
    const end = inSubnet(req.dhcpRangeEnd ?? "", "dhcp_range_end");
    if (parseIpv4(start) > parseIpv4(end)) {
      throw InvalidArgumentError.field("dhcp_range_end", `${end} is before ${start}`);
    }
    dhcpRange = { start, end };
  }
  const vlanId = req.vlanId || undefined;
  if (vlanId !== undefined && (vlanId < 1 || vlanId > 4094)) {
    throw InvalidArgumentError.field("vlan_id", `must be 1-4094, got ${vlanId}`);
  }
  const reservations = reservationsFromRequest(req.reservations ?? [], inSubnet, gateway);
  return checkCombination({
    bridge,
    networkId: networkId(req.networkId ?? ""),
    type,
    subnet: subnet ? formatCidr(subnet) : undefined,
    gateway,
    mtu: mtu(req.mtu),
    dns,
    dhcpRange,
    parentInterface: req.parentInterface
      ? interfaceName(req.parentInterface, "parent_interface")
      : undefined,
    vlanId,
    nat: req.nat ?? false,
    dhcp: req.dhcp ?? false,
    reservations,
  });
}

/**
 * Validates a reservation set: each MAC and each address at most once, addresses usable hosts
 * of the subnet other than the gateway. `inSubnet` checks one address (naming its field).
 */
function reservationsFromRequest(
  list: node.DhcpReservation.$Properties[],
  inSubnet: (addr: string, field: string) => string,
  gateway: string | undefined,
  prefix = "reservations",
): DhcpReservation[] {
  const macs = new Set<string>();
  const ips = new Set<string>();
  return list.map((r, i) => {
    let mac: string;
    try {
      mac = normalizeMac(r.mac ?? "");
    } catch (err) {
      throw InvalidArgumentError.field(`${prefix}.${i}.mac`, (err as Error).message);
    }
    if (!isUnicastMac(mac)) throw InvalidArgumentError.field(`${prefix}.${i}.mac`, "not unicast");
    const hostname = r.hostname ?? "";
    if (hostname && !/^[A-Za-z0-9]([A-Za-z0-9-]{0,62})$/.test(hostname)) {
      throw InvalidArgumentError.field(`${prefix}.${i}.hostname`, `invalid hostname`);
    }
    const ip = inSubnet(r.ip ?? "", `${prefix}.${i}.ip`);
    if (ip === gateway) {
      throw InvalidArgumentError.field(`${prefix}.${i}.ip`, `${ip} is the gateway`);
    }
    if (macs.has(mac)) throw InvalidArgumentError.field(`${prefix}.${i}.mac`, `${mac} twice`);
    if (ips.has(ip)) throw InvalidArgumentError.field(`${prefix}.${i}.ip`, `${ip} twice`);
    macs.add(mac);
    ips.add(ip);
    return { mac, ip, hostname };
  });
}

/**
 * Validates a SetDhcpReservations set against the attached network's subnet and gateway.
 * Throws InvalidArgument naming `reservations.<i>.<field>`.
 */
export function reservationsForNetwork(
  list: node.DhcpReservation.$Properties[],
  network: { subnet?: string; gateway?: string },
): DhcpReservation[] {
  const subnet = network.subnet ? parseCidr(network.subnet) : undefined;
  return reservationsFromRequest(list, subnetChecker(subnet, network.subnet), network.gateway);
}

/** A check that an address is a host address (or, with `usable` false, any address) of `net`. */
function subnetChecker(net: Ipv4Network | undefined, text: string | undefined) {
  return (addr: string, field: string, usable = true): string => {
    ipv4(addr, field);
    if (!net) throw InvalidArgumentError.field(field, "needs a subnet");
    const n = parseIpv4(addr);
    if (!(usable ? isUsableHost(net, n) : contains(net, n))) {
      throw InvalidArgumentError.field(field, `${addr} is not a host address of ${text}`);
    }
    return addr;
  };
}

/**
 * Refuses combinations that cannot work, naming the field to change: a macvtap network has no
 * bridge (so no DHCP server, NAT or VLAN) and needs a parent; a VLAN needs an id and a parent;
 * NAT is for isolated networks (an uplinked network routes through its physical network) and,
 * like DHCP, needs a subnet.
 */
function checkCombination(spec: NetworkSpec): NetworkSpec {
  const bad = (field: string, msg: string) => InvalidArgumentError.field(field, msg);
  if (spec.parentInterface === spec.bridge) {
    throw bad("parent_interface", "must differ from bridge_name");
  }
  if (spec.type === "macvtap") {
    if (!spec.parentInterface) throw bad("parent_interface", "a macvtap network needs one");
    if (spec.dhcp) {
      throw bad("dhcp", "a macvtap network has no bridge on the node to serve DHCP from");
    }
    if (spec.nat) throw bad("nat", "a macvtap network has no bridge on the node to NAT");
  }
  if (spec.type === "vlan") {
    if (spec.vlanId === undefined) throw bad("vlan_id", "a vlan network needs one (1-4094)");
    if (!spec.parentInterface) throw bad("parent_interface", "a vlan network needs one");
  } else if (spec.vlanId !== undefined) {
    throw bad("vlan_id", `only networks of type vlan have one (this one is ${spec.type})`);
  }
  if (spec.nat && spec.parentInterface) {
    throw bad(
      "nat",
      "only isolated networks (no parent_interface) are NATed; an uplinked network routes through its physical network",
    );
  }
  if (spec.nat && !spec.subnet) throw bad("nat", "needs a subnet");
  if (spec.dhcp && !spec.subnet) throw bad("dhcp", "needs a subnet");
  return spec;
}

/** Turns a DetachNetworkRequest into a DetachSpec. */
export function detachSpecFromRequest(req: node.DetachNetworkRequest.$Properties): DetachSpec {
  return { bridge: bridgeName(req.bridgeName ?? ""), networkId: networkId(req.networkId ?? "") };
}

/**
 * What a network attachment asks for, validated: `AttachNetworkRequest`/`DetachNetworkRequest`
 * turned into a typed `NetworkSpec` with every name and address checked and each error naming
 * its field. Pure; the network manager trusts what comes out of here.
 */
import { InvalidArgumentError, UnimplementedError } from "../../shared/errors/errors.ts";
import {
  contains,
  formatCidr,
  isIpv4,
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

/** A DHCP reservation (MAC → IP) for the bridge's DHCP server (issue 8). */
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
  const inSubnet = (addr: string, field: string, usable = true) => {
    ipv4(addr, field);
    if (!subnet) throw InvalidArgumentError.field(field, "needs a subnet");
    const n = parseIpv4(addr);
    if (!(usable ? isUsableHost(subnet, n) : contains(subnet, n))) {
      throw InvalidArgumentError.field(field, `${addr} is not a host address of ${req.subnet}`);
    }
    return addr;
  };

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
  const reservations = (req.reservations ?? []).map((r, i) => {
    let mac: string;
    try {
      mac = normalizeMac(r.mac ?? "");
    } catch (err) {
      throw InvalidArgumentError.field(`reservations.${i}.mac`, (err as Error).message);
    }
    const hostname = r.hostname ?? "";
    if (hostname && !/^[A-Za-z0-9]([A-Za-z0-9-]{0,62})$/.test(hostname)) {
      throw InvalidArgumentError.field(`reservations.${i}.hostname`, `invalid hostname`);
    }
    return { mac, ip: inSubnet(r.ip ?? "", `reservations.${i}.ip`), hostname };
  });

  return {
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
  };
}

/** Turns a DetachNetworkRequest into a DetachSpec. */
export function detachSpecFromRequest(req: node.DetachNetworkRequest.$Properties): DetachSpec {
  return { bridge: bridgeName(req.bridgeName ?? ""), networkId: networkId(req.networkId ?? "") };
}

/**
 * Refuses what this node cannot do yet (uplinks, VLANs, macvtap, NAT, DHCP: issue 8), so a
 * request never half-succeeds with an option silently dropped.
 */
export function assertSupported(spec: NetworkSpec): void {
  const missing: string[] = [];
  if (spec.type !== "bridge") missing.push(`network type ${spec.type}`);
  if (spec.parentInterface) missing.push("parent_interface (bridged uplink)");
  if (spec.vlanId !== undefined) missing.push("vlan_id");
  if (spec.nat) missing.push("nat");
  if (spec.dhcp || spec.reservations.length > 0) missing.push("dhcp");
  if (missing.length > 0) {
    throw new UnimplementedError(`this node does not support ${missing.join(", ")} yet`);
  }
}

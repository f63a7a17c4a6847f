/**
 * What a network may be, pure: the combinations of type, mode, subnet, gateway, VLAN id and
 * NAT a network may have (`checkNetwork`), what each host attachment must name for it
 * (`attachmentProblem`: a parent interface for vlan and macvtap, none for a NATed network),
 * how its NICs become DHCP reservations (`reservationSet`, hostnames as RFC 1123 labels), and
 * the `AttachNetwork` request a node gets for an attachment. The API validates with these, so
 * a node only ever gets what it accepts.
 *
 * What `mode` means: `dhcp` runs a DHCP server on the host's bridge that hands each NIC its
 * IPAM address by MAC (bridge and vlan networks only); `static` gives the guest its address
 * through cloud-init network-config (any type); `none` has no subnet and no IPAM.
 */
import { InvalidArgumentError } from "../../shared/errors/errors.ts";
import { formatCidr, formatIpv4, hostRange, parseCidr, parseIpv4 } from "../../shared/net/ip.ts";
import { node } from "../../shared/proto/mod.ts";
import { isMacvtapName, isTapName } from "../../node/net/tap.ts";
import { checkStaticAddress } from "./ipam.ts";

export const NETWORK_TYPES = ["bridge", "vlan", "macvtap"] as const;
export type NetworkType = typeof NETWORK_TYPES[number];
export const NETWORK_MODES = ["static", "dhcp", "none"] as const;
export type NetworkMode = typeof NETWORK_MODES[number];

/** The fields of a network that decide what hosts build for it. */
export interface NetworkShape {
  id: string;
  name: string;
  type: NetworkType;
  mode: NetworkMode;
  subnet: string | null;
  gateway: string | null;
  dns: string[];
  vlan_id: number | null;
  mtu: number;
  nat: boolean;
}

/** What one host attachment names. */
export interface AttachmentShape {
  bridge_name: string;
  parent_interface: string | null;
}

/** A MAC → IP reservation for a network's DHCP server. */
export interface Reservation {
  mac: string;
  ip: string;
  hostname: string;
}

/**
 * Checks a network's type, mode, subnet, gateway, VLAN id and NAT together; each refusal names
 * its field. Returns the normalised subnet (null for mode none).
 */
export function checkNetwork(n: {
  type: NetworkType;
  mode: NetworkMode;
  subnet?: string | null;
  gateway?: string | null;
  vlan_id?: number | null;
  nat?: boolean;
}): string | null {
  const bad = (field: string, msg: string) => InvalidArgumentError.field(field, msg);
  let subnet: string | null = null;
  if (n.subnet !== undefined && n.subnet !== null) {
    try {
      const net = parseCidr(n.subnet);
      if (net.prefix < 8 || net.prefix > 30) {
        throw bad("subnet", "prefix length must be between /8 and /30");
      }
      subnet = formatCidr(net);
    } catch (err) {
      if (err instanceof InvalidArgumentError && err.details.length) throw err;
      throw bad("subnet", (err as Error).message);
    }
  }
  if (!subnet && n.mode !== "none") {
    throw bad("subnet", `required for mode ${n.mode} (only mode none has no subnet)`);
  }
  if (n.gateway) {
    if (!subnet) throw bad("gateway", "needs a subnet");
    checkStaticAddress({ net: parseCidr(subnet) }, n.gateway, "gateway");
  }
  const vlan = n.vlan_id ?? null;
  if (n.type === "vlan" && vlan === null) {
    throw bad("vlan_id", "a vlan network needs one (1-4094)");
  }
  if (n.type !== "vlan" && vlan !== null) {
    throw bad("vlan_id", `only networks of type vlan have one (this one is ${n.type})`);
  }
  if (n.type === "macvtap" && n.mode === "dhcp") {
    throw bad(
      "mode",
      "a macvtap network has no bridge on the host to serve DHCP from; use static " +
        "(cloud-init) or none",
    );
  }
  if (n.nat) {
    if (n.type !== "bridge") {
      throw bad(
        "nat",
        `only bridge networks are NATed (a ${n.type} network sits on its physical network)`,
      );
    }
    if (!n.gateway) throw bad("nat", "needs a gateway (the host routes for the network)");
  }
  return subnet;
}

/** Why an attachment cannot work for a network. */
export interface AttachmentProblem {
  /** The attach request's field to change. */
  field: "bridge_name" | "parent_interface";
  /** The network's fields whose change (in a PATCH) caused it, first the likeliest fix. */
  networkFields: string[];
  message: string;
}

/**
 * What stops `att` from working for `network`, if anything: vlan and macvtap networks need a
 * parent interface; a NATed network is isolated (no parent); an isolated bridge in mode dhcp
 * serves DHCP from its gateway address, so it needs one; bridge names must not look like the
 * node's own tap and macvtap devices.
 */
export function attachmentProblem(
  network: Pick<NetworkShape, "name" | "type" | "mode" | "gateway" | "nat">,
  att: AttachmentShape,
): AttachmentProblem | undefined {
  if (isTapName(att.bridge_name) || isMacvtapName(att.bridge_name)) {
    return {
      field: "bridge_name",
      networkFields: [],
      message: `"${att.bridge_name}" looks like a VM tap or macvtap device name (qt…/qm…)`,
    };
  }
  const parent = att.parent_interface;
  if (!parent && network.type !== "bridge") {
    return {
      field: "parent_interface",
      networkFields: [],
      message: network.type === "vlan"
        ? "a vlan network needs the host interface that carries the VLAN"
        : "a macvtap network needs the host interface its NICs sit on",
    };
  }
  if (parent && parent === att.bridge_name) {
    return {
      field: "parent_interface",
      networkFields: [],
      message: "must differ from bridge_name",
    };
  }
  if (parent && network.nat) {
    return {
      field: "parent_interface",
      networkFields: ["nat"],
      message: `network ${network.name} is NATed (nat: true), which is only for isolated ` +
        `bridges; an uplinked network routes through its physical network`,
    };
  }
  if (!parent && network.type === "bridge" && network.mode === "dhcp" && !network.gateway) {
    return {
      field: "parent_interface",
      networkFields: ["gateway", "mode"],
      message: `network ${network.name} is in mode dhcp without a gateway: an isolated bridge ` +
        "serves DHCP from the gateway address; give the network a gateway, or name the " +
        "parent_interface whose LAN gives the host an address of the subnet",
    };
  }
  return undefined;
}

/**
 * A VM name as a DHCP hostname: an RFC 1123 label (lowercase letters, digits and inner
 * hyphens, at most 63 characters); "" when nothing usable is left.
 */
export function dhcpHostname(name: string): string {
  return name.toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+/, "")
    .slice(0, 63)
    .replace(/-+$/, "");
}

/**
 * The reservation set of a network from its NICs (those with an address), in address order.
 * A hostname already given to an earlier NIC (a VM with two NICs on the network, or names that
 * sanitise alike) is left empty, so the DHCP server never sees one name for two addresses.
 */
export function reservationSet(
  nics: readonly { mac: string; ip: string | null; vm_name: string }[],
): Reservation[] {
  const seen = new Set<string>();
  return nics
    .filter((n): n is typeof n & { ip: string } => n.ip !== null)
    .map((n) => ({ n, key: parseIpv4(n.ip) }))
    .sort((a, b) => a.key - b.key)
    .map(({ n }) => {
      let hostname = dhcpHostname(n.vm_name);
      if (seen.has(hostname)) hostname = "";
      else if (hostname) seen.add(hostname);
      return { mac: n.mac.toLowerCase(), ip: n.ip, hostname };
    });
}

/** True when two reservation sets are the same (same entries in the same order). */
export function sameReservations(a: readonly Reservation[], b: readonly Reservation[]): boolean {
  return a.length === b.length &&
    a.every((r, i) => r.mac === b[i].mac && r.ip === b[i].ip && r.hostname === b[i].hostname);
}

const PROTO_TYPE: Record<NetworkType, node.NetworkType> = {
  bridge: node.NetworkType.NETWORK_TYPE_BRIDGE,
  vlan: node.NetworkType.NETWORK_TYPE_VLAN,
  macvtap: node.NetworkType.NETWORK_TYPE_MACVTAP,
};

/** The node's type of a network. */
export function protoNetworkType(type: NetworkType): node.NetworkType {
  return PROTO_TYPE[type];
}

/**
 * The AttachNetwork request for a network's attachment to one host: every setting, and in
 * mode dhcp the network's reservations cluster-wide (so a VM moving between hosts needs no
 * ordering). A macvtap network has no bridge: its `bridge_name` is only the attachment's key.
 */
export function attachNetworkRequest(
  network: NetworkShape,
  attachment: AttachmentShape,
  reservations: readonly Reservation[] = [],
): node.AttachNetworkRequest.$Properties {
  const dhcp = network.mode === "dhcp";
  const req: node.AttachNetworkRequest.$Properties = {
    networkId: network.id,
    bridgeName: attachment.bridge_name,
    type: PROTO_TYPE[network.type],
    subnet: network.subnet ?? "",
    gateway: network.gateway ?? "",
    dns: network.dns.join(","),
    parentInterface: attachment.parent_interface ?? "",
    vlanId: network.vlan_id ?? 0,
    nat: network.nat,
    mtu: network.type === "macvtap" ? 0 : network.mtu,
    dhcp,
    reservations: dhcp ? reservations.map((r) => ({ ...r })) : [],
  };
  if (dhcp && network.subnet) {
    const range = hostRange(parseCidr(network.subnet));
    req.dhcpRangeStart = formatIpv4(range.first);
    req.dhcpRangeEnd = formatIpv4(range.last);
  }
  return req;
}

/**
 * The contents of a cloud-init NoCloud seed, built purely from the VM's spec: `meta-data`
 * (instance id = VM id, local hostname from the VM name), `network-config` version 2 (one
 * entry per NIC, matched by MAC, with its static IPv4, gateway and DNS or DHCP) unless the VM
 * brings its own, and the user's `user-data`. No I/O; `seed.ts` writes the image.
 */
import { stringify } from "yaml";
import { InvalidArgumentError } from "../../shared/errors/errors.ts";
import {
  contains,
  formatIpv4,
  isIpv4,
  isUsableHost,
  normalizeMac,
  parseCidr,
  parseIpv4,
} from "../../shared/net/ip.ts";
import { vmId as checkVmId } from "../../shared/net/names.ts";
import type { node } from "../../shared/proto/mod.ts";

/** What the guest should be told about one NIC. */
export interface SeedNic {
  mac?: string;
  /** The guest's address in CIDR form (`10.0.0.5/24`); none means DHCP. */
  ip?: string;
  gateway?: string;
  dns?: string[];
  mtu?: number;
}

/** Everything a seed is built from. */
export interface SeedInput {
  vmId: string;
  name: string;
  userData: string;
  /** The VM's own meta-data, used as given. */
  metaData?: string;
  /** The VM's own network-config, used as given. */
  networkConfig?: string;
  nics: SeedNic[];
}

/** The files of a NoCloud seed. */
export interface SeedFiles {
  "user-data": string;
  "meta-data": string;
  "network-config"?: string;
}

/** A valid hostname (RFC 1123 label) made from a VM name; falls back to `vm-<id prefix>`. */
export function hostnameFor(name: string, vmId: string): string {
  const label = name.toLowerCase().replace(/[^a-z0-9-]+/g, "-").replace(/-+/g, "-")
    .replace(/^-+/, "").slice(0, 63).replace(/-+$/, "");
  return label || `vm-${vmId.replace(/[^A-Za-z0-9]/g, "").slice(0, 8).toLowerCase()}`;
}

/** `meta-data`: instance id and local hostname. */
export function buildMetaData(vmId: string, name: string): string {
  return stringify({ "instance-id": checkVmId(vmId), "local-hostname": hostnameFor(name, vmId) });
}

/**
 * `network-config` version 2 for the NICs that have a MAC (cloud-init matches NICs by MAC);
 * undefined when none has one, so cloud-init falls back to DHCP on the first NIC.
 */
export function buildNetworkConfig(nics: SeedNic[]): string | undefined {
  const ethernets: Record<string, unknown> = {};
  nics.forEach((nic, i) => {
    const field = `networks.${i}`;
    if (!nic.mac) return;
    let mac: string;
    try {
      mac = normalizeMac(nic.mac);
    } catch (err) {
      throw InvalidArgumentError.field(`${field}.mac`, (err as Error).message);
    }
    const name = `eth${i}`;
    const entry: Record<string, unknown> = { match: { macaddress: mac }, "set-name": name };
    if (nic.ip) {
      const { address, prefix } = guestAddress(nic.ip, `${field}.guest_ip`);
      entry.addresses = [`${address}/${prefix}`];
      if (nic.gateway) {
        const net = parseCidr(nic.ip, { strict: false });
        if (!isIpv4(nic.gateway) || !contains(net, parseIpv4(nic.gateway))) {
          throw InvalidArgumentError.field(
            `${field}.guest_gateway`,
            `${nic.gateway} is not an address in ${formatIpv4(net.network)}/${net.prefix}`,
          );
        }
        entry.routes = [{ to: "0.0.0.0/0", via: nic.gateway }];
      }
    } else {
      entry.dhcp4 = true;
    }
    const dns = (nic.dns ?? []).filter(Boolean);
    for (const d of dns) {
      if (!isIpv4(d)) throw InvalidArgumentError.field(`${field}.guest_dns`, `${d} is not IPv4`);
    }
    if (dns.length > 0) entry.nameservers = { addresses: dns };
    if (nic.mtu) entry.mtu = nic.mtu;
    ethernets[name] = entry;
  });
  if (Object.keys(ethernets).length === 0) return undefined;
  return stringify({ version: 2, ethernets });
}

function guestAddress(cidr: string, field: string): { address: string; prefix: number } {
  const m = /^([0-9.]+)\/(\d{1,2})$/.exec(cidr);
  let net;
  try {
    if (!m) throw new Error("expected a.b.c.d/prefix");
    net = parseCidr(cidr, { strict: false });
  } catch (err) {
    throw InvalidArgumentError.field(field, `${cidr}: ${(err as Error).message}`);
  }
  if (!isUsableHost(net, parseIpv4(m[1]))) {
    throw InvalidArgumentError.field(field, `${cidr} is not a host address of its subnet`);
  }
  return { address: m[1], prefix: net.prefix };
}

/** The seed files for `input`: the VM's own meta-data and network-config win over ours. */
export function buildSeedFiles(input: SeedInput): SeedFiles {
  const files: SeedFiles = {
    "user-data": input.userData || "#cloud-config\n",
    "meta-data": input.metaData || buildMetaData(input.vmId, input.name),
  };
  const network = input.networkConfig || buildNetworkConfig(input.nics);
  if (network) files["network-config"] = network;
  return files;
}

/** The seed input of a VM spec, or undefined when it asks for no cloud-init. */
export function seedInputFromVmConfig(config: node.VmConfig.$Properties): SeedInput | undefined {
  const ci = config.cloudInit;
  if (!ci || !(ci.userData || ci.metaData || ci.networkConfig)) return undefined;
  return {
    vmId: config.vmId ?? "",
    name: config.name ?? "",
    userData: ci.userData ?? "",
    metaData: ci.metaData || undefined,
    networkConfig: ci.networkConfig || undefined,
    nics: (config.networks ?? []).map((n) => ({
      mac: n.mac ?? undefined,
      ip: n.guestIp ?? undefined,
      gateway: n.guestGateway ?? undefined,
      dns: n.guestDns ?? [],
      mtu: n.mtu ?? undefined,
    })),
  };
}

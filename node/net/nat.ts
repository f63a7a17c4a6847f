/**
 * Outbound NAT for isolated networks, with nftables: qarax owns the table `ip qarax`, and each
 * NAT network gets its own base chain `nat-<bridge>` on the postrouting hook holding its one
 * masquerade rule. A chain per network means an attach replaces exactly that network's rule
 * (flush + add in one transaction, so re-attaching never duplicates it) and a detach deletes
 * exactly that chain; nothing outside the table is touched. Packet forwarding is switched on
 * for the namespace when the first NAT network is attached (and left on: other things on the
 * host may rely on it by then).
 *
 * The rule masquerades what leaves the subnet through any interface but its own bridge, rather
 * than naming the interface of the default route: it then needs no default route at attach time
 * (a host still bringing its uplink up) and keeps working when the default route moves.
 */
import { z } from "zod";
import { run } from "../../shared/cmd/run.ts";
import { InternalError, UnavailableError } from "../../shared/errors/errors.ts";
import { interfaceName } from "../../shared/net/names.ts";
import { formatCidr, parseCidr } from "../../shared/net/ip.ts";
import type { IpAdapter } from "./ip.ts";

/** The nftables table qarax owns (family `ip`). */
export const NFT_TABLE = "qarax";

/** What one network's NAT looks like. */
export interface NatSpec {
  bridge: string;
  /** `a.b.c.d/p`. */
  subnet: string;
  /** Written as the rule's comment (`qarax:network:<owner>`). */
  owner: string;
}

/** The chain of a network's NAT rule. nft identifiers allow the characters of interface names. */
export function natChain(bridge: string): string {
  return `nat-${interfaceName(bridge, "bridge_name")}`;
}

function comment(owner: string): string {
  if (!/^[A-Za-z0-9_.:-]{1,128}$/.test(owner)) throw new InternalError(`invalid owner: ${owner}`);
  return `qarax:network:${owner}`;
}

/** The nft script that installs (or replaces) a network's NAT rule; one transaction. */
export function natScript(spec: NatSpec): string {
  const chain = natChain(spec.bridge);
  const subnet = formatCidr(parseCidr(spec.subnet));
  return [
    `add table ip ${NFT_TABLE}`,
    `add chain ip ${NFT_TABLE} ${chain} { type nat hook postrouting priority srcnat; policy accept; }`,
    `flush chain ip ${NFT_TABLE} ${chain}`,
    `add rule ip ${NFT_TABLE} ${chain} ip saddr ${subnet} ip daddr != ${subnet} ` +
    `oifname != "${spec.bridge}" masquerade comment "${comment(spec.owner)}"`,
  ].join("\n") + "\n";
}

/**
 * The nft script that removes a network's NAT chain, whether or not it exists (`add` makes the
 * chain when it is missing, so the delete never fails); one transaction.
 */
export function natRemovalScript(bridge: string): string {
  const chain = natChain(bridge);
  return [
    `add table ip ${NFT_TABLE}`,
    `add chain ip ${NFT_TABLE} ${chain}`,
    `flush chain ip ${NFT_TABLE} ${chain}`,
    `delete chain ip ${NFT_TABLE} ${chain}`,
  ].join("\n") + "\n";
}

/** A chain of the qarax table with its rules, as `nft -j list table` shows them. */
export interface NftChain {
  name: string;
  hook?: string;
  rules: { comment?: string; expr: unknown[] }[];
}

const NftJson = z.object({
  nftables: z.array(z.record(z.string(), z.unknown())),
});

/** Reads `nft -j list table ip qarax` output into its chains and their rules. */
export function parseNftTable(text: string): NftChain[] {
  const items = NftJson.parse(JSON.parse(text)).nftables;
  const chains = new Map<string, NftChain>();
  for (const item of items) {
    const c = item.chain as { name: string; hook?: string } | undefined;
    if (c) chains.set(c.name, { name: c.name, hook: c.hook, rules: [] });
  }
  for (const item of items) {
    const r = item.rule as { chain: string; comment?: string; expr?: unknown[] } | undefined;
    if (r) chains.get(r.chain)?.rules.push({ comment: r.comment, expr: r.expr ?? [] });
  }
  return [...chains.values()];
}

/** The NAT rules of the namespace the adapter works in. */
export class NatRules {
  constructor(readonly ip: IpAdapter) {}

  /** Installs or replaces the network's masquerade rule and turns forwarding on. */
  async ensure(spec: NatSpec): Promise<void> {
    await this.#nft(["-f", "-"], natScript(spec));
    await run([...this.ip.nsPrefix, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1"]);
  }

  /**
   * Removes the network's chain (a missing one is fine); drops the table once it is empty. On a
   * host without nft there can be no rule to remove.
   */
  async remove(bridge: string): Promise<void> {
    try {
      await this.#nft(["-f", "-"], natRemovalScript(bridge));
    } catch (err) {
      if (err instanceof UnavailableError) return;
      throw err;
    }
    if ((await this.chains()).length === 0) {
      await this.#nft(["delete", "table", "ip", NFT_TABLE]);
    }
  }

  /** The chains of the qarax table (none when the table does not exist). */
  async chains(): Promise<NftChain[]> {
    const argv = [...this.ip.nsPrefix, "nft", "-j", "list", "table", "ip", NFT_TABLE];
    const result = await run(argv, { okCodes: [0, 1] });
    if (result.code !== 0) {
      if (/No such file or directory/.test(result.stderr)) return [];
      await run(argv); // rethrows with the command and its stderr
    }
    return parseNftTable(result.stdout);
  }

  async #nft(args: string[], stdin?: string): Promise<void> {
    await run([...this.ip.nsPrefix, "nft", ...args], stdin === undefined ? {} : { stdin });
  }
}

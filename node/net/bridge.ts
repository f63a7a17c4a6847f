/**
 * Linux bridges for qarax networks: make sure a bridge exists with its gateway address, MTU and
 * link up, either by creating it or by adopting one the operator already has. A bridge qarax
 * creates carries the alias `qarax:network:<owner>`, so removal deletes exactly the bridges
 * (and addresses) qarax made and leaves everything else alone, even if the state file is lost.
 */
import { ConflictError, FailedPreconditionError } from "../../shared/errors/errors.ts";
import type { IpAdapter } from "./ip.ts";

/** Prefix of the alias that marks a bridge qarax created. */
export const NETWORK_ALIAS_PREFIX = "qarax:network:";

/** What a bridge should look like. */
export interface BridgeSpec {
  name: string;
  /** Owner tag written into the alias of a bridge qarax creates (the network id). */
  owner: string;
  /** Gateway address `a.b.c.d/prefix` to put on the bridge; none for a pure L2 bridge. */
  address?: string;
  /** MTU to set; undefined leaves the bridge's MTU as it is. */
  mtu?: number;
}

/** What `ensureBridge` did, so a later removal can undo exactly that. */
export interface BridgeOutcome {
  /** qarax created the bridge (now or earlier: its alias says so). */
  created: boolean;
  /** qarax added `address` (it was not already on the bridge). */
  addressAdded: boolean;
}

/** The alias qarax writes on a bridge it creates for `owner`. */
export function bridgeAlias(owner: string): string {
  return `${NETWORK_ALIAS_PREFIX}${owner}`;
}

/** Creates or adopts the bridge and brings it to `spec`; idempotent. */
export async function ensureBridge(ip: IpAdapter, spec: BridgeSpec): Promise<BridgeOutcome> {
  const alias = bridgeAlias(spec.owner);
  let link = await ip.link(spec.name);
  let created = false;
  if (!link) {
    await ip.addBridge(spec.name);
    await ip.setLink(spec.name, { alias });
    created = true;
    link = await ip.link(spec.name);
  }
  if (!link) throw new FailedPreconditionError(`bridge ${spec.name} vanished while creating it`);
  if (link.kind !== "bridge") {
    throw new FailedPreconditionError(
      `interface ${spec.name} exists and is not a bridge (kind ${link.kind ?? "none"})`,
    );
  }
  if (link.alias?.startsWith(NETWORK_ALIAS_PREFIX) && link.alias !== alias) {
    throw new ConflictError(
      `bridge ${spec.name} belongs to another qarax network (${
        link.alias.slice(NETWORK_ALIAS_PREFIX.length)
      })`,
    );
  }
  created ||= link.alias === alias;
  if (spec.mtu !== undefined && link.mtu !== spec.mtu) {
    await ip.setLink(spec.name, { mtu: spec.mtu });
  }
  let addressAdded = false;
  if (spec.address && !(await hasAddress(ip, spec.name, spec.address))) {
    await ip.addAddress(spec.name, spec.address);
    addressAdded = true;
  }
  if (!link.up) await ip.setLink(spec.name, { up: true });
  return { created, addressAdded };
}

/** True when `cidr` (`a.b.c.d/p`) is configured on `name`. */
export async function hasAddress(ip: IpAdapter, name: string, cidr: string): Promise<boolean> {
  const [local, prefix] = cidr.split("/");
  return (await ip.addresses(name)).some((a) =>
    a.family === "inet" && a.local === local && a.prefix === Number(prefix)
  );
}

/**
 * Undoes `ensureBridge`: deletes the bridge if qarax created it (and its alias still says so),
 * otherwise only removes the address qarax added. A missing bridge is fine.
 */
export async function removeBridge(
  ip: IpAdapter,
  spec: { name: string; owner: string; address?: string } & BridgeOutcome,
): Promise<void> {
  const link = await ip.link(spec.name);
  if (!link || link.kind !== "bridge") return;
  if (spec.created && link.alias === bridgeAlias(spec.owner)) {
    await ip.deleteLink(spec.name);
  } else if (spec.addressAdded && spec.address) {
    await ip.deleteAddress(spec.name, spec.address);
  }
}

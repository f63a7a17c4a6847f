/**
 * A bridge's uplink to the physical network: either a host NIC the bridge takes over (bridged
 * mode) or an 802.1Q VLAN device on a parent NIC (vlan networks).
 *
 * Taking a NIC over moves its IPv4 addresses and default routes to the bridge, gives a bridge
 * qarax made the NIC's MAC (the LAN keeps seeing the same host), and enslaves the NIC; releasing
 * moves everything back. The order keeps the host reachable: the bridge gets the addresses and
 * routes before the NIC loses them. What was moved is recorded (`UplinkRecord`, kept in the
 * node's state) so a release after an agent restart knows what to give back, and a re-attach
 * after a host reboot (the NIC has its addresses again, the bridge is gone) simply moves them
 * once more.
 *
 * A VLAN device is named `<parent>.<id>` when that fits 15 characters, else `qv` + 6 hex of the
 * parent's name + `.` + id; one qarax made carries the network's alias and is deleted on
 * release, an operator's own (same parent and id) is adopted and only unplugged.
 */
import { createHash } from "node:crypto";
import { CommandFailedError } from "../../shared/cmd/run.ts";
import { FailedPreconditionError } from "../../shared/errors/errors.ts";
import { interfaceName } from "../../shared/net/names.ts";
import { bridgeAlias, hasAddress } from "./bridge.ts";
import type { IpAdapter, Link } from "./ip.ts";
import { isMacvtapName, isTapName } from "./tap.ts";

/** A default route that was moved from the NIC to the bridge. */
export interface MovedRoute {
  gateway: string;
  metric?: number;
}

/** What attaching an uplink changed, so releasing it undoes exactly that. */
export interface UplinkRecord {
  kind: "nic" | "vlan";
  /** The device enslaved to the bridge (the NIC, or the VLAN device). */
  device: string;
  /** For a VLAN: its parent NIC and id. */
  parent?: string;
  vlanId?: number;
  /** qarax created `device` (a VLAN device it will delete). */
  created: boolean;
  /** IPv4 addresses (`a.b.c.d/p`) moved from the NIC to the bridge. */
  addresses: string[];
  /** Default routes moved from the NIC to the bridge. */
  routes: MovedRoute[];
}

/** The VLAN device name for `parent` and `id` (at most 15 characters). */
export function vlanDeviceName(parent: string, id: number): string {
  interfaceName(parent, "parent_interface");
  const plain = `${parent}.${id}`;
  if (plain.length <= 15) return plain;
  return `qv${createHash("sha256").update(parent).digest("hex").slice(0, 6)}.${id}`;
}

/** The uplink a network asks for, or undefined for an isolated bridge. */
export type UplinkSpec =
  | { kind: "nic"; device: string }
  | { kind: "vlan"; parent: string; vlanId: number };

/** True when `record` is the uplink `spec` asks for. */
export function sameUplink(record: UplinkRecord | undefined, spec: UplinkSpec | undefined) {
  if (!record || !spec) return !record && !spec;
  return spec.kind === "nic"
    ? record.kind === "nic" && record.device === spec.device
    : record.kind === "vlan" && record.parent === spec.parent && record.vlanId === spec.vlanId;
}

async function requireParent(ip: IpAdapter, name: string, bridge: string): Promise<Link> {
  const link = await ip.link(interfaceName(name, "parent_interface"));
  if (!link) {
    throw new FailedPreconditionError(`parent interface ${name} does not exist on this node`);
  }
  if (link.kind === "bridge" || isTapName(name) || isMacvtapName(name)) {
    throw new FailedPreconditionError(
      `parent interface ${name} is a ${link.kind === "bridge" ? "bridge" : "VM device"}`,
    );
  }
  if (link.master && link.master !== bridge) {
    throw new FailedPreconditionError(`parent interface ${name} is already part of ${link.master}`);
  }
  return link;
}

/**
 * Makes `spec` the bridge's uplink; idempotent. `prev` is what an earlier attach recorded
 * (its addresses and routes are moved again if they came back, e.g. after a host reboot).
 * `setMac` gives the bridge the NIC's MAC (only for bridges qarax made).
 */
export async function ensureUplink(
  ip: IpAdapter,
  bridge: string,
  spec: UplinkSpec,
  options: { owner: string; setMac: boolean; prev?: UplinkRecord },
): Promise<UplinkRecord> {
  return spec.kind === "nic"
    ? await takeOverNic(ip, bridge, spec.device, options)
    : await ensureVlan(ip, bridge, spec, options.owner);
}

async function takeOverNic(
  ip: IpAdapter,
  bridge: string,
  nic: string,
  options: { setMac: boolean; prev?: UplinkRecord },
): Promise<UplinkRecord> {
  const link = await requireParent(ip, nic, bridge);
  const prev = options.prev?.kind === "nic" && options.prev.device === nic
    ? options.prev
    : undefined;
  const current = (await ip.addresses(nic)).filter((a) => a.family === "inet")
    .map((a) => `${a.local}/${a.prefix}`);
  const addresses = [...new Set([...(prev?.addresses ?? []), ...current])];
  const routes = [...(prev?.routes ?? [])];
  for (const r of await ip.routes(nic)) {
    if (r.dst !== "default" || !r.gateway) continue;
    if (!routes.some((m) => m.gateway === r.gateway && m.metric === r.metric)) {
      routes.push({ gateway: r.gateway, metric: r.metric });
    }
  }
  const br = await ip.link(bridge);
  if (options.setMac && br && br.mac !== link.mac) await ip.setLink(bridge, { address: link.mac });
  for (const a of addresses) {
    if (!(await hasAddress(ip, bridge, a))) await ip.addAddress(bridge, a);
  }
  for (const r of routes) await ip.replaceRoute({ dst: "default", ...r, dev: bridge });
  if (link.master !== bridge || !link.up) await ip.setLink(nic, { master: bridge, up: true });
  for (const a of current) await ip.deleteAddress(nic, a);
  return { kind: "nic", device: nic, created: false, addresses, routes };
}

async function ensureVlan(
  ip: IpAdapter,
  bridge: string,
  spec: { parent: string; vlanId: number },
  owner: string,
): Promise<UplinkRecord> {
  const parent = await requireParent(ip, spec.parent, bridge);
  if (parent.master) {
    throw new FailedPreconditionError(
      `parent interface ${spec.parent} is part of ${parent.master}; a VLAN needs a free parent`,
    );
  }
  const name = vlanDeviceName(spec.parent, spec.vlanId);
  const alias = bridgeAlias(owner);
  let link = await ip.link(name);
  if (
    link && (link.kind !== "vlan" || link.parent !== spec.parent || link.vlanId !== spec.vlanId)
  ) {
    throw new FailedPreconditionError(
      `interface ${name} exists and is not VLAN ${spec.vlanId} of ${spec.parent}`,
    );
  }
  if (link?.master && link.master !== bridge) {
    throw new FailedPreconditionError(`VLAN device ${name} is already part of ${link.master}`);
  }
  let created = link?.alias === alias;
  if (!link) {
    try {
      await ip.addVlan(name, spec.parent, spec.vlanId);
    } catch (err) {
      if (err instanceof CommandFailedError && /Unknown device type/.test(err.result.stderr)) {
        throw new FailedPreconditionError(
          "this host's kernel has no 802.1Q VLAN support (CONFIG_VLAN_8021Q, module 8021q)",
        );
      }
      throw err;
    }
    await ip.setLink(name, { alias });
    created = true;
    link = await ip.link(name);
  }
  if (!parent.up) await ip.setLink(spec.parent, { up: true });
  if (link?.master !== bridge || !link.up) await ip.setLink(name, { master: bridge, up: true });
  return {
    kind: "vlan",
    device: name,
    parent: spec.parent,
    vlanId: spec.vlanId,
    created,
    addresses: [],
    routes: [],
  };
}

/**
 * Undoes `ensureUplink`: a NIC gets its addresses and default routes back and leaves the
 * bridge; a VLAN device qarax made is deleted, an adopted one only leaves the bridge.
 */
export async function releaseUplink(
  ip: IpAdapter,
  bridge: string,
  record: UplinkRecord,
  owner: string,
): Promise<void> {
  const link = await ip.link(record.device);
  if (record.kind === "vlan") {
    if (!link) return;
    if (record.created && link.alias === bridgeAlias(owner)) await ip.deleteLink(record.device);
    else if (link.master === bridge) await ip.setLink(record.device, { master: null });
    return;
  }
  if (!link) return; // the NIC is gone (unplugged): nothing to give back to
  for (const a of record.addresses) {
    if (!(await hasAddress(ip, record.device, a))) await ip.addAddress(record.device, a);
  }
  if (link.master === bridge) await ip.setLink(record.device, { master: null, up: true });
  for (const r of record.routes) {
    await ip.replaceRoute({ dst: "default", ...r, dev: record.device });
  }
  if (await ip.link(bridge)) {
    for (const a of record.addresses) await ip.deleteAddress(bridge, a);
  }
}

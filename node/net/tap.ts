/**
 * Tap devices for VM NICs: deterministic names (`qt` + 8 hex of the VM id + `n` + NIC index),
 * created persistent with the queue layout Cloud Hypervisor will open them with, enslaved to
 * the NIC's bridge, with the MTU, and up. Each tap carries the alias `qarax:vm:<id>:<index>`
 * so a name collision between two VMs is detected and removal only takes what is the VM's.
 * Listing and removal also cover the NICs' macvtap devices (`qm…`, see `macvtap.ts`), which
 * follow the same naming and ownership marks.
 */
import { createHash } from "node:crypto";
import {
  ConflictError,
  FailedPreconditionError,
  InvalidArgumentError,
} from "../../shared/errors/errors.ts";
import { interfaceName, vmId as checkVmId } from "../../shared/net/names.ts";
import type { IpAdapter, Link } from "./ip.ts";

/** Every qarax tap name starts with this. */
export const TAP_PREFIX = "qt";
/** Every qarax macvtap name starts with this. */
export const MACVTAP_PREFIX = "qm";
/** NIC indexes that fit the 15-character interface name limit. */
export const MAX_NIC_INDEX = 9999;
const TAP_ALIAS_PREFIX = "qarax:vm:";
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-([0-9a-f])[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const TAP_NAME = /^qt([0-9a-f]{8})n(\d{1,4})$/;
const MACVTAP_NAME = /^qm([0-9a-f]{8})n(\d{1,4})$/;

/**
 * The 8 hex digits that stand for a VM in its tap names: the first 8 hex of a UUID, so an
 * operator can match taps and VMs by eye. Time-ordered UUIDs (versions 1, 6, 7) start with a
 * timestamp, so VMs created close together would collide: those, and ids that are not UUIDs,
 * use the first 8 hex of the id's sha256 instead.
 */
export function vmTag(vmId: string): string {
  checkVmId(vmId);
  const m = UUID.exec(vmId);
  if (m && !["1", "6", "7"].includes(m[1])) return vmId.slice(0, 8).toLowerCase();
  return createHash("sha256").update(vmId).digest("hex").slice(0, 8);
}

/** The tap name of NIC `index` of VM `vmId` (at most 15 characters). */
export function tapName(vmId: string, index: number): string {
  return `${TAP_PREFIX}${vmTag(vmId)}n${checkIndex(index)}`;
}

/** The alias that says which VM and NIC a tap belongs to. */
export function tapAlias(vmId: string, index: number): string {
  return `${TAP_ALIAS_PREFIX}${checkVmId(vmId)}:${checkIndex(index)}`;
}

/** Reads the owner back from a tap alias; undefined for anything else. */
export function parseTapAlias(
  alias: string | undefined,
): { vmId: string; index: number } | undefined {
  const m = /^qarax:vm:(.+):(\d{1,4})$/.exec(alias ?? "");
  return m ? { vmId: m[1], index: Number(m[2]) } : undefined;
}

/** True for a name qarax's tap naming can produce. */
export function isTapName(name: string): boolean {
  return TAP_NAME.test(name);
}

/** The macvtap device name of NIC `index` of VM `vmId` (at most 15 characters). */
export function macvtapName(vmId: string, index: number): string {
  return `${MACVTAP_PREFIX}${vmTag(vmId)}n${checkIndex(index)}`;
}

/** True for a name qarax's macvtap naming can produce. */
export function isMacvtapName(name: string): boolean {
  return MACVTAP_NAME.test(name);
}

/** The NIC index in a qarax tap or macvtap name (`qt<tag>n<index>`, `qm<tag>n<index>`). */
export function nicDeviceIndex(name: string): number | undefined {
  const m = TAP_NAME.exec(name) ?? MACVTAP_NAME.exec(name);
  return m ? Number(m[2]) : undefined;
}

/** Validates a NIC index. */
export function checkIndex(index: number): number {
  if (!Number.isInteger(index) || index < 0 || index > MAX_NIC_INDEX) {
    throw InvalidArgumentError.field("index", `NIC index must be 0-${MAX_NIC_INDEX}, got ${index}`);
  }
  return index;
}

/**
 * Validates a Cloud Hypervisor `num_queues` for a NIC (it counts RX and TX queues, so it is
 * even; 2 is one pair) and says whether the tap must be multi-queue (more than one pair).
 */
export function tapQueues(numQueues: number): { pairs: number; multiQueue: boolean } {
  if (!Number.isInteger(numQueues) || numQueues < 2 || numQueues % 2 !== 0 || numQueues > 256) {
    throw InvalidArgumentError.field(
      "num_queues",
      `must be an even number from 2 to 256 (RX+TX queues), got ${numQueues}`,
    );
  }
  return { pairs: numQueues / 2, multiQueue: numQueues > 2 };
}

/** What a VM NIC's tap should look like. */
export interface TapSpec {
  vmId: string;
  index: number;
  bridge: string;
  mtu: number;
  /** Cloud Hypervisor's `num_queues` for the NIC (default 2). */
  numQueues: number;
}

/** A qarax tap (or macvtap) found on the host. */
export interface TapInfo {
  name: string;
  kind: "tap" | "macvtap";
  /** Owner from the alias; undefined when the alias is missing (a crash right after creation). */
  vmId?: string;
  index?: number;
  master?: string;
  mtu: number;
  multiQueue: boolean;
  /** A VMM has the device open. */
  inUse: boolean;
}

function tapInfo(link: Link): TapInfo {
  const owner = parseTapAlias(link.alias);
  return {
    name: link.name,
    kind: link.kind === "macvtap" ? "macvtap" : "tap",
    vmId: owner?.vmId,
    index: owner?.index,
    master: link.master,
    mtu: link.mtu,
    multiQueue: link.tun?.multiQueue ?? false,
    // Multi-queue taps count attached queues; single-queue ones only show it as carrier. A
    // macvtap's carrier is its parent's, so whether a VMM holds it cannot be told.
    inUse: link.kind === "tun" &&
      ((link.tun?.numQueues ?? 0) > 0 || (link.up && !link.noCarrier)),
  };
}

/** Creates the tap or brings an existing one to `spec`; returns its name. Idempotent. */
export async function ensureTap(ip: IpAdapter, spec: TapSpec): Promise<string> {
  const name = tapName(spec.vmId, spec.index);
  const alias = tapAlias(spec.vmId, spec.index);
  interfaceName(spec.bridge, "bridge");
  const { multiQueue } = tapQueues(spec.numQueues);
  let link = await ip.link(name);
  if (link) {
    if (link.kind !== "tun" || link.tun?.type !== "tap") {
      throw new FailedPreconditionError(`interface ${name} exists and is not a tap device`);
    }
    const owner = parseTapAlias(link.alias);
    if (owner && (owner.vmId !== spec.vmId || owner.index !== spec.index)) {
      throw new ConflictError(
        `tap ${name} already belongs to VM ${owner.vmId} NIC ${owner.index} (tap name collision)`,
      );
    }
    if (link.tun.multiQueue !== multiQueue) {
      if (tapInfo(link).inUse) {
        throw new FailedPreconditionError(
          `tap ${name} is in use with a different queue layout; stop the VM first`,
        );
      }
      await ip.deleteLink(name);
      link = undefined;
    }
  }
  if (!link) {
    await ip.addTap(name, { multiQueue });
  }
  if (link?.alias !== alias) await ip.setLink(name, { alias });
  if (!link || link.master !== spec.bridge || link.mtu !== spec.mtu || !link.up) {
    await ip.setLink(name, { mtu: spec.mtu, master: spec.bridge, up: true });
  }
  return name;
}

/** Every qarax tap and macvtap on the host (by name pattern), for reconciliation. */
export async function listTaps(ip: IpAdapter): Promise<TapInfo[]> {
  return (await ip.links())
    .filter((l) =>
      (isTapName(l.name) && l.kind === "tun") || (isMacvtapName(l.name) && l.kind === "macvtap")
    )
    .map(tapInfo);
}

/**
 * Deletes the taps and macvtaps of `vmId`: those whose alias names it, and unmarked ones with
 * its tag.
 */
export async function removeVmTaps(ip: IpAdapter, vmId: string): Promise<string[]> {
  const tag = `${vmTag(vmId)}n`;
  const mine = (await listTaps(ip)).filter((t) =>
    t.vmId === vmId || (t.vmId === undefined && t.name.slice(2).startsWith(tag))
  );
  for (const t of mine) await ip.deleteLink(t.name);
  return mine.map((t) => t.name);
}

/**
 * Deletes the tap (or macvtap) of one NIC of `vmId` if it is that NIC's; returns whether one
 * was deleted.
 */
export async function removeNicTap(ip: IpAdapter, vmId: string, index: number): Promise<boolean> {
  let deleted = false;
  for (
    const [name, kind] of [[tapName(vmId, index), "tun"], [macvtapName(vmId, index), "macvtap"]]
  ) {
    const link = await ip.link(name);
    if (!link || link.kind !== kind) continue;
    const owner = parseTapAlias(link.alias);
    if (owner && (owner.vmId !== vmId || owner.index !== index)) continue;
    deleted = await ip.deleteLink(name) || deleted;
  }
  return deleted;
}

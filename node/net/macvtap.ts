/**
 * macvtap devices for VM NICs on a `macvtap` network: one per NIC, in bridge mode on the
 * network's parent interface, named like taps (`qm` + 8 hex of the VM id + `n` + index) and
 * marked with the same `qarax:vm:<id>:<index>` alias. Its MAC is the NIC's MAC (the guest's
 * frames must carry the address the macvtap filters on). Cloud Hypervisor cannot open a macvtap
 * by name: the node opens its character device and passes the queues as descriptors.
 *
 * The character device is looked up by number in sysfs and opened through a private device
 * node, not through `/dev/tap<ifindex>`: ifindexes are per network namespace while /dev is
 * not, so `/dev/tapN` may belong to a macvtap of another namespace.
 */
import { run } from "../../shared/cmd/run.ts";
import {
  ConflictError,
  FailedPreconditionError,
  InternalError,
} from "../../shared/errors/errors.ts";
import { normalizeMac } from "../../shared/net/ip.ts";
import { interfaceName } from "../../shared/net/names.ts";
import { closeFd, mknodChar, O_RDWR, openFd } from "../sys/libc.ts";
import type { IpAdapter } from "./ip.ts";
import { macvtapName, parseTapAlias, tapAlias } from "./tap.ts";

/** What a NIC's macvtap should look like. */
export interface MacvtapSpec {
  vmId: string;
  index: number;
  parent: string;
  mac: string;
  mtu?: number;
}

/** Creates the NIC's macvtap or brings an existing one to `spec`; returns its name. */
export async function ensureMacvtap(ip: IpAdapter, spec: MacvtapSpec): Promise<string> {
  const name = macvtapName(spec.vmId, spec.index);
  const alias = tapAlias(spec.vmId, spec.index);
  const mac = normalizeMac(spec.mac);
  const parent = await ip.link(interfaceName(spec.parent, "parent_interface"));
  if (!parent) {
    throw new FailedPreconditionError(
      `parent interface ${spec.parent} of the macvtap network does not exist on this node`,
    );
  }
  let link = await ip.link(name);
  if (link) {
    if (link.kind !== "macvtap") {
      throw new FailedPreconditionError(`interface ${name} exists and is not a macvtap device`);
    }
    const owner = parseTapAlias(link.alias);
    if (owner && (owner.vmId !== spec.vmId || owner.index !== spec.index)) {
      throw new ConflictError(
        `macvtap ${name} already belongs to VM ${owner.vmId} NIC ${owner.index} (name collision)`,
      );
    }
    if (link.parent !== spec.parent || link.macvtapMode !== "bridge") {
      await ip.deleteLink(name);
      link = undefined;
    }
  }
  if (!link) await ip.addMacvtap(name, spec.parent);
  const mtu = spec.mtu ?? parent.mtu;
  if (!link || link.alias !== alias || link.mac !== mac || link.mtu !== mtu || !link.up) {
    await ip.setLink(name, { alias, address: mac, mtu });
    await ip.setLink(name, { up: true });
  }
  if (!parent.up) await ip.setLink(spec.parent, { up: true });
  return name;
}

/** The device number of a macvtap's character device (`/sys/class/net/<n>/macvtap/tapN/dev`). */
export async function macvtapDevice(
  ip: IpAdapter,
  name: string,
): Promise<{ major: number; minor: number }> {
  const link = await ip.link(name);
  if (link?.kind !== "macvtap") {
    throw new FailedPreconditionError(`macvtap ${name} does not exist`);
  }
  const path = `/sys/class/net/${interfaceName(name)}/macvtap/tap${link.index}/dev`;
  const text = (await run([...ip.nsPrefix, "cat", path])).stdout.trim();
  const m = /^(\d+):(\d+)$/.exec(text);
  if (!m) throw new InternalError(`unexpected device number in ${path}: ${text}`);
  return { major: Number(m[1]), minor: Number(m[2]) };
}

/**
 * Opens `pairs` queues of the macvtap (one descriptor per RX/TX pair) through a device node
 * made in `scratchDir` and removed again at once. The caller passes them on and closes them.
 */
export async function openMacvtapQueues(
  ip: IpAdapter,
  name: string,
  pairs: number,
  scratchDir: string,
): Promise<number[]> {
  const { major, minor } = await macvtapDevice(ip, name);
  const node = `${scratchDir}/.${name}-${crypto.randomUUID().slice(0, 8)}`;
  const fds: number[] = [];
  try {
    mknodChar(node, major, minor);
    for (let i = 0; i < pairs; i++) fds.push(openFd(node, O_RDWR));
    return fds;
  } catch (err) {
    for (const fd of fds) closeFd(fd);
    throw new FailedPreconditionError(
      `cannot open the queues of macvtap ${name}: ${(err as Error).message}`,
      { cause: err },
    );
  } finally {
    await Deno.remove(node).catch(() => {});
  }
}

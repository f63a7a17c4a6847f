/**
 * The adapter around iproute2's `ip`: typed reads from its JSON output and the few link and
 * address changes qarax makes. Every call goes through `shared/cmd/run.ts` (failures name the
 * command and its stderr), every interface name is validated before it reaches the command
 * line, and an adapter may be bound to a network namespace (`ip -n <ns>`), which is how the
 * tests work on private namespaces instead of the host.
 */
import { z } from "zod";
import { run, tryRun } from "../../shared/cmd/run.ts";
import { InternalError } from "../../shared/errors/errors.ts";
import { interfaceName } from "../../shared/net/names.ts";

/** A network interface as `ip -j -d link show` describes it. */
export interface Link {
  name: string;
  index: number;
  mtu: number;
  /** Administratively up (`ip link set … up`). */
  up: boolean;
  /** The kernel reports no carrier (e.g. a tap nobody has opened). */
  noCarrier: boolean;
  mac: string;
  /** `bridge`, `tun`, `veth`, `vlan`, …; undefined for plain devices. */
  kind?: string;
  /** The bridge this link is enslaved to. */
  master?: string;
  /** The interface alias (`ip link set … alias`), qarax's ownership mark. */
  alias?: string;
  /** For tun/tap devices. */
  tun?: { type: string; multiQueue: boolean; numQueues: number; persist: boolean };
}

/** One address of an interface. */
export interface Address {
  family: "inet" | "inet6";
  local: string;
  prefix: number;
}

const LinkJson = z.object({
  ifindex: z.number(),
  ifname: z.string(),
  flags: z.array(z.string()).default([]),
  mtu: z.number(),
  address: z.string().optional(),
  master: z.string().optional(),
  ifalias: z.string().optional(),
  linkinfo: z.object({
    info_kind: z.string().optional(),
    info_data: z.record(z.string(), z.unknown()).optional(),
  }).optional(),
});

const AddrJson = z.object({
  ifname: z.string(),
  addr_info: z.array(z.object({
    family: z.string(),
    local: z.string(),
    prefixlen: z.number(),
  })).default([]),
});

/** Changes `setLink` can make in one `ip link set` call. */
export interface LinkChanges {
  mtu?: number;
  /** A bridge name, or null for `nomaster`. */
  master?: string | null;
  alias?: string;
  up?: boolean;
}

const NETNS = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const NO_DEVICE = /does not exist|Cannot find device/;

/** `ip`, optionally inside one network namespace. */
export class IpAdapter {
  readonly #prefix: string[];

  constructor(readonly options: { netns?: string } = {}) {
    if (options.netns !== undefined && !NETNS.test(options.netns)) {
      throw new InternalError(`invalid network namespace name: ${options.netns}`);
    }
    this.#prefix = options.netns ? ["ip", "-n", options.netns] : ["ip"];
  }

  /** Runs `ip <args>` (in the adapter's namespace); throws CommandFailedError on failure. */
  async exec(args: string[]): Promise<string> {
    return (await run([...this.#prefix, ...args])).stdout;
  }

  /** Every link. */
  async links(): Promise<Link[]> {
    return parseLinks(await this.exec(["-j", "-d", "link", "show"]));
  }

  /** The link called `name`, or undefined when there is none. */
  async link(name: string): Promise<Link | undefined> {
    const argv = [...this.#prefix, "-j", "-d", "link", "show", "dev", interfaceName(name)];
    const result = await tryRun(argv);
    if (result.code !== 0 && NO_DEVICE.test(result.stderr)) return undefined;
    if (result.code !== 0) await run(argv); // rethrows with the command and its stderr
    return parseLinks(result.stdout)[0];
  }

  /** The addresses of `name` (empty when it has none). */
  async addresses(name: string): Promise<Address[]> {
    const out = await this.exec(["-j", "addr", "show", "dev", interfaceName(name)]);
    return z.array(AddrJson).parse(parseJson(out)).flatMap((l) =>
      l.addr_info.filter((a) => a.family === "inet" || a.family === "inet6").map((a) => ({
        family: a.family as "inet" | "inet6",
        local: a.local,
        prefix: a.prefixlen,
      }))
    );
  }

  /** Creates a Linux bridge. */
  async addBridge(name: string): Promise<void> {
    await this.exec(["link", "add", "name", interfaceName(name), "type", "bridge"]);
  }

  /** Creates a persistent tap device; `multiQueue` must match how the VMM will open it. */
  async addTap(name: string, options: { multiQueue: boolean }): Promise<void> {
    const argv = ["tuntap", "add", "dev", interfaceName(name), "mode", "tap"];
    await this.exec(options.multiQueue ? [...argv, "multi_queue"] : argv);
  }

  /** Deletes a link; a missing one is not an error. Returns whether it existed. */
  async deleteLink(name: string): Promise<boolean> {
    const argv = [...this.#prefix, "link", "del", "dev", interfaceName(name)];
    const result = await tryRun(argv);
    if (result.code !== 0 && NO_DEVICE.test(result.stderr)) return false;
    if (result.code !== 0) await run(argv);
    return true;
  }

  /** Applies `changes` to a link in one `ip link set` call. */
  async setLink(name: string, changes: LinkChanges): Promise<void> {
    const args = ["link", "set", "dev", interfaceName(name)];
    if (changes.master === null) args.push("nomaster");
    else if (changes.master !== undefined) args.push("master", interfaceName(changes.master));
    if (changes.mtu !== undefined) args.push("mtu", String(checkMtu(changes.mtu)));
    if (changes.alias !== undefined) args.push("alias", checkAlias(changes.alias));
    if (changes.up !== undefined) args.push(changes.up ? "up" : "down");
    if (args.length > 4) await this.exec(args);
  }

  /** Adds `ip/prefix` to a link. */
  async addAddress(name: string, cidr: string): Promise<void> {
    await this.exec(["addr", "add", checkCidr(cidr), "dev", interfaceName(name)]);
  }

  /** Removes `ip/prefix` from a link; a missing address is not an error. */
  async deleteAddress(name: string, cidr: string): Promise<void> {
    const argv = [...this.#prefix, "addr", "del", checkCidr(cidr), "dev", interfaceName(name)];
    const result = await tryRun(argv);
    if (result.code !== 0 && /Address not found|Cannot assign/.test(result.stderr)) return;
    if (result.code !== 0 && NO_DEVICE.test(result.stderr)) return;
    if (result.code !== 0) await run(argv);
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text || "[]");
  } catch (err) {
    throw new InternalError(`could not parse the JSON output of ip: ${text.slice(0, 200)}`, {
      cause: err,
    });
  }
}

/** Turns `ip -j -d link show` output into typed links. */
export function parseLinks(text: string): Link[] {
  return z.array(LinkJson).parse(parseJson(text)).map((l) => {
    const data = l.linkinfo?.info_data ?? {};
    const kind = l.linkinfo?.info_kind;
    return {
      name: l.ifname,
      index: l.ifindex,
      mtu: l.mtu,
      up: l.flags.includes("UP"),
      noCarrier: l.flags.includes("NO-CARRIER"),
      mac: l.address ?? "",
      kind,
      master: l.master,
      alias: l.ifalias || undefined,
      tun: kind === "tun"
        ? {
          type: String(data.type ?? ""),
          multiQueue: data.multi_queue === true,
          numQueues: typeof data.numqueues === "number" ? data.numqueues : 0,
          persist: data.persist === true,
        }
        : undefined,
    };
  });
}

/** MTUs qarax will set: the Linux limits for Ethernet-like devices. */
export function checkMtu(mtu: number): number {
  if (!Number.isInteger(mtu) || mtu < 68 || mtu > 65535) {
    throw new InternalError(`MTU out of range (68-65535): ${mtu}`);
  }
  return mtu;
}

function checkAlias(alias: string): string {
  if (!/^[A-Za-z0-9:_.@-]{0,200}$/.test(alias)) throw new InternalError(`invalid alias: ${alias}`);
  return alias;
}

function checkCidr(cidr: string): string {
  if (!/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/.test(cidr)) {
    throw new InternalError(`invalid interface address: ${cidr}`);
  }
  return cidr;
}

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
  /** The lower device of a VLAN or macvtap (`ip` calls it `link`; for a veth: its peer). */
  parent?: string;
  /** The 802.1Q id of a VLAN device. */
  vlanId?: number;
  /** The mode of a macvtap/macvlan device (`bridge`, `vepa`, …). */
  macvtapMode?: string;
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
  link: z.string().optional(),
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

/** A route as `ip -j route show` describes it. */
export interface Route {
  /** `default` or `a.b.c.d/p`. */
  dst: string;
  gateway?: string;
  dev?: string;
  metric?: number;
  /** `kernel` for the routes an address brings along. */
  protocol?: string;
}

const RouteJson = z.object({
  dst: z.string(),
  gateway: z.string().optional(),
  dev: z.string().optional(),
  metric: z.number().optional(),
  protocol: z.string().optional(),
});

/** Changes `setLink` can make in one `ip link set` call. */
export interface LinkChanges {
  /** MAC address. */
  address?: string;
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

  /**
   * The argv prefix that runs another command in the adapter's namespace (`ip netns exec
   * <ns>`, which execs rather than forks); empty for the agent's own namespace.
   */
  get nsPrefix(): string[] {
    return this.options.netns ? ["ip", "netns", "exec", this.options.netns] : [];
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

  /** Creates an 802.1Q VLAN device `name` with `id` on `parent`. */
  async addVlan(name: string, parent: string, id: number): Promise<void> {
    if (!Number.isInteger(id) || id < 1 || id > 4094) {
      throw new InternalError(`invalid VLAN id: ${id}`);
    }
    await this.#addStacked(name, parent, ["vlan", "id", String(id)]);
  }

  /** Creates a macvtap device `name` in bridge mode on `parent`. */
  async addMacvtap(name: string, parent: string): Promise<void> {
    await this.#addStacked(name, parent, ["macvtap", "mode", "bridge"]);
  }

  /** `ip link add link <parent> name <name> type <type…>`. */
  async #addStacked(name: string, parent: string, type: string[]): Promise<void> {
    const args = ["link", "add", "link", interfaceName(parent), "name", interfaceName(name)];
    await this.exec([...args, "type", ...type]);
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
    if (changes.address !== undefined) args.push("address", checkMac(changes.address));
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

  /** The IPv4 routes of the main table (optionally only those through `dev`). */
  async routes(dev?: string): Promise<Route[]> {
    const args = ["-j", "-4", "route", "show"];
    if (dev) args.push("dev", interfaceName(dev));
    const out = await this.exec(args);
    // `ip route show dev X` leaves `dev` out of each entry.
    return z.array(RouteJson).parse(parseJson(out)).map((r) => ({ ...r, dev: r.dev ?? dev }));
  }

  /** Adds or replaces a route (`default` or a CIDR) via `gateway` on `dev`. */
  async replaceRoute(route: { dst: string; gateway?: string; dev: string; metric?: number }) {
    const args = ["-4", "route", "replace", checkDst(route.dst)];
    if (route.gateway) args.push("via", checkIp(route.gateway));
    args.push("dev", interfaceName(route.dev));
    if (route.metric !== undefined) args.push("metric", String(checkMetric(route.metric)));
    await this.exec(args);
  }

  /** Deletes a route; a missing one is not an error. */
  async deleteRoute(route: { dst: string; gateway?: string; dev: string; metric?: number }) {
    const args = [...this.#prefix, "-4", "route", "del", checkDst(route.dst)];
    if (route.gateway) args.push("via", checkIp(route.gateway));
    args.push("dev", interfaceName(route.dev));
    if (route.metric !== undefined) args.push("metric", String(checkMetric(route.metric)));
    const result = await tryRun(args);
    if (result.code !== 0 && /No such process|Cannot find device/.test(result.stderr)) return;
    if (result.code !== 0) await run(args);
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
      parent: l.link,
      vlanId: kind === "vlan" && typeof data.id === "number" ? data.id : undefined,
      macvtapMode: (kind === "macvtap" || kind === "macvlan") && typeof data.mode === "string"
        ? data.mode
        : undefined,
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

function checkMac(mac: string): string {
  if (!/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/.test(mac)) throw new InternalError(`invalid MAC: ${mac}`);
  return mac;
}

function checkIp(ip: string): string {
  if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(ip)) throw new InternalError(`invalid IPv4 address: ${ip}`);
  return ip;
}

function checkDst(dst: string): string {
  if (dst !== "default" && !/^\d{1,3}(\.\d{1,3}){3}(\/\d{1,2})?$/.test(dst)) {
    throw new InternalError(`invalid route destination: ${dst}`);
  }
  return dst;
}

function checkMetric(metric: number): number {
  if (!Number.isInteger(metric) || metric < 0 || metric > 0xffffffff) {
    throw new InternalError(`invalid route metric: ${metric}`);
  }
  return metric;
}

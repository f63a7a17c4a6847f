/**
 * The node's network manager: the semantics of `AttachNetwork`/`DetachNetwork`,
 * `SetDhcpReservations` and the per-NIC tap and macvtap operations the VM manager calls.
 * Operations run one at a time so a detach never races a tap being enslaved to the same bridge.
 *
 * An attachment is built in layers, each idempotent and each recorded in the attachment (kept
 * in the state store) so a detach undoes exactly what qarax did and `reconcile()` restores it
 * after an agent or host restart without duplicating anything:
 *   1. the bridge, with the gateway address for an isolated network (`bridge.ts`);
 *   2. its uplink: a host NIC taken over, or a VLAN device on the parent (`uplink.ts`);
 *   3. outbound NAT for isolated networks (`nat.ts`, nftables);
 *   4. the DHCP server answering the reservations (`dhcp.ts`, dnsmasq).
 * A `macvtap` network has no bridge: attaching checks its parent, and each NIC gets its own
 * macvtap device on it (`macvtap.ts`).
 */
import { z } from "zod";
import { SerialQueue } from "../../shared/async/serial.ts";
import {
  ConflictError,
  FailedPreconditionError,
  InvalidArgumentError,
} from "../../shared/errors/errors.ts";
import { logger } from "../../shared/log/logger.ts";
import { interfaceName } from "../../shared/net/names.ts";
import type { StateDocument, StateStore } from "../state/store.ts";
import { bridgeAlias, ensureBridge, removeBridge } from "./bridge.ts";
import { type DhcpAction, DhcpServers, type DhcpServersOptions } from "./dhcp.ts";
import type { IpAdapter } from "./ip.ts";
import { ensureMacvtap, openMacvtapQueues } from "./macvtap.ts";
import { NatRules } from "./nat.ts";
import {
  type DetachSpec,
  type DhcpReservation,
  mtu as checkMtu,
  NETWORK_TYPES,
  type NetworkSpec,
  reservationsForNetwork,
} from "./spec.ts";
import {
  ensureTap,
  isMacvtapName,
  isTapName,
  listTaps,
  removeNicTap,
  removeVmTaps,
  type TapInfo,
} from "./tap.ts";
import {
  ensureUplink,
  releaseUplink,
  sameUplink,
  type UplinkRecord,
  type UplinkSpec,
} from "./uplink.ts";
import { contains, parseCidr, parseIpv4 } from "../../shared/net/ip.ts";
import type { node } from "../../shared/proto/mod.ts";

/** An attached network as remembered across restarts: the request plus what qarax changed. */
export interface NetworkAttachment extends NetworkSpec {
  /** qarax created the bridge (detach deletes it); false when it adopted an existing one. */
  bridgeCreated: boolean;
  /** qarax put the gateway address on the bridge (detach removes it). */
  addressAdded: boolean;
  /** The bridge's uplink and what taking it changed (bridged or vlan networks). */
  uplink?: UplinkRecord;
  attachedAt: string;
}

const Attachment = z.object({
  bridge: z.string(),
  networkId: z.string(),
  type: z.enum(NETWORK_TYPES),
  subnet: z.string().optional(),
  gateway: z.string().optional(),
  mtu: z.number().optional(),
  dns: z.array(z.string()),
  dhcpRange: z.object({ start: z.string(), end: z.string() }).optional(),
  parentInterface: z.string().optional(),
  vlanId: z.number().optional(),
  nat: z.boolean(),
  dhcp: z.boolean(),
  reservations: z.array(z.object({ mac: z.string(), ip: z.string(), hostname: z.string() })),
  bridgeCreated: z.boolean(),
  addressAdded: z.boolean(),
  uplink: z.object({
    kind: z.enum(["nic", "vlan"]),
    device: z.string(),
    parent: z.string().optional(),
    vlanId: z.number().optional(),
    created: z.boolean(),
    addresses: z.array(z.string()),
    routes: z.array(z.object({ gateway: z.string(), metric: z.number().optional() })),
  }).optional(),
  attachedAt: z.string(),
});

/** Where the node keeps per-bridge DHCP files, and how it supervises dnsmasq. */
export interface NetworkManagerOptions {
  /** Directory of the DHCP servers' files (must be searchable by `nobody`, see `dhcp.ts`). */
  dhcpDir: string;
  dhcp?: DhcpServersOptions;
}

/** Options of a VM NIC's tap. */
export interface NicTapOptions {
  bridge: string;
  /** Defaults to the bridge's MTU. */
  mtu?: number;
  /** Cloud Hypervisor `num_queues` of the NIC (RX+TX); default 2. */
  numQueues?: number;
}

/** What a macvtap NIC needs. */
export interface NicMacvtapOptions {
  parent: string;
  mac: string;
  mtu?: number;
}

/** Outcome of `reconcile()`. */
export interface NetworkReconcileReport {
  restored: string[];
  failed: { bridge: string; error: string }[];
}

/** The network operations the VmService RPCs and the VM manager call. */
export class NetworkManager {
  readonly #doc: StateDocument<NetworkAttachment[]>;
  readonly #queue = new SerialQueue();
  readonly #log = logger().child({ component: "net" });
  readonly dhcp: DhcpServers;
  readonly nat: NatRules;

  constructor(readonly ip: IpAdapter, state: StateStore, options: NetworkManagerOptions) {
    this.#doc = state.document("networks", z.array(Attachment), []);
    this.dhcp = new DhcpServers(options.dhcpDir, ip, options.dhcp);
    this.nat = new NatRules(ip);
  }

  /** The attached networks. */
  list(): Promise<NetworkAttachment[]> {
    return this.#doc.read();
  }

  /** Builds (or adopts, or repairs) everything the network needs and remembers it; idempotent. */
  attach(spec: NetworkSpec): Promise<NetworkAttachment> {
    return this.#queue.run(() => this.#attach(spec));
  }

  async #attach(requested: NetworkSpec): Promise<NetworkAttachment> {
    const prev = (await this.#doc.read()).find((a) => a.bridge === requested.bridge);
    if (prev?.networkId && requested.networkId && prev.networkId !== requested.networkId) {
      throw new ConflictError(
        `bridge ${requested.bridge} is attached for network ${prev.networkId}`,
      );
    }
    const spec = { ...requested, networkId: requested.networkId || prev?.networkId || "" };
    if (prev && prev.type !== spec.type) {
      throw new FailedPreconditionError(
        `bridge ${spec.bridge} is attached as a ${prev.type} network; detach it before attaching it as ${spec.type}`,
      );
    }
    const attachment = spec.type === "macvtap"
      ? await this.#attachMacvtap(spec, prev)
      : await this.#attachBridge(spec, prev);
    await this.#doc.update((all) => [
      ...all.filter((a) => a.bridge !== spec.bridge),
      attachment,
    ]);
    this.#log.info("network attached", {
      bridge: spec.bridge,
      network_id: spec.networkId,
      type: spec.type,
      created: attachment.bridgeCreated,
      uplink: attachment.uplink?.device,
      nat: spec.nat,
      dhcp: spec.dhcp,
    });
    return attachment;
  }

  /** A macvtap network: only its parent on the node (each NIC brings its own device). */
  async #attachMacvtap(
    spec: NetworkSpec,
    prev: NetworkAttachment | undefined,
  ): Promise<NetworkAttachment> {
    const parent = await this.ip.link(spec.parentInterface!);
    if (!parent) {
      throw new FailedPreconditionError(
        `parent interface ${spec.parentInterface} does not exist on this node`,
      );
    }
    if (!parent.up) await this.ip.setLink(parent.name, { up: true });
    return {
      ...spec,
      bridgeCreated: false,
      addressAdded: false,
      attachedAt: prev?.attachedAt ?? new Date().toISOString(),
    };
  }

  async #attachBridge(
    spec: NetworkSpec,
    prev: NetworkAttachment | undefined,
  ): Promise<NetworkAttachment> {
    // Isolated: the node is the network's router. Uplinked: the router is on the wire.
    const address = spec.parentInterface ? undefined : gatewayAddress(spec);
    const owner = ownerOf(spec);
    const outcome = await ensureBridge(this.ip, {
      name: spec.bridge,
      owner,
      address,
      mtu: spec.mtu,
    });
    const prevAddress = prev?.addressAdded ? gatewayAddress(prev) : undefined;
    if (prevAddress && prevAddress !== address) {
      await this.ip.deleteAddress(spec.bridge, prevAddress);
    }
    const attachment: NetworkAttachment = {
      ...spec,
      bridgeCreated: outcome.created || (prev?.bridgeCreated ?? false),
      addressAdded: outcome.addressAdded || (!!prevAddress && prevAddress === address),
      uplink: prev?.uplink,
      attachedAt: prev?.attachedAt ?? new Date().toISOString(),
    };
    try {
      await this.#applyLayers(attachment, prev);
    } catch (err) {
      if (!prev) {
        // A first attach that failed half-way leaves nothing behind.
        await this.#teardown(attachment).catch((e) =>
          this.#log.error("could not undo a failed attach", { bridge: spec.bridge, err: e })
        );
      } else {
        // Keep what was done recorded, so a later detach undoes it.
        await this.#doc.update((all) => [
          ...all.filter((a) => a.bridge !== spec.bridge),
          attachment,
        ]);
      }
      throw err;
    }
    return attachment;
  }

  /** Uplink, NAT and DHCP of a bridge network, each brought to what `a` asks for. */
  async #applyLayers(a: NetworkAttachment, prev: NetworkAttachment | undefined): Promise<void> {
    const owner = ownerOf(a);
    const wanted = uplinkSpecOf(a);
    if (a.uplink && !sameUplink(a.uplink, wanted)) {
      await releaseUplink(this.ip, a.bridge, a.uplink, owner);
      a.uplink = undefined;
    }
    if (wanted) {
      a.uplink = await ensureUplink(this.ip, a.bridge, wanted, {
        owner,
        setMac: a.bridgeCreated,
        prev: a.uplink,
      });
    }
    if (a.nat) await this.nat.ensure({ bridge: a.bridge, subnet: a.subnet!, owner });
    else if (prev) await this.nat.remove(a.bridge);
    if (a.dhcp) {
      await this.#requireSubnetAddress(a);
      await this.dhcp.ensure({
        bridge: a.bridge,
        subnet: a.subnet!,
        gateway: a.gateway,
        dns: a.dns,
        mtu: a.mtu,
        reservations: a.reservations,
      });
    } else {
      await this.dhcp.stop(a.bridge);
    }
  }

  /** dnsmasq answers only on a bridge that has an address of the subnet it serves. */
  async #requireSubnetAddress(a: NetworkAttachment): Promise<void> {
    const net = parseCidr(a.subnet!);
    const ok = (await this.ip.addresses(a.bridge)).some((x) =>
      x.family === "inet" && contains(net, parseIpv4(x.local))
    );
    if (!ok) {
      throw new FailedPreconditionError(
        `bridge ${a.bridge} has no address in ${a.subnet}, so a DHCP server on it could not answer; ` +
          (a.parentInterface
            ? `the uplink ${a.parentInterface} brought none (give the host an address of the subnet on it)`
            : "give the network a gateway"),
      );
    }
  }

  /**
   * Removes every layer of a bridge network, top down, then the bridge (if qarax made it). The
   * NAT chain goes whatever the record says: an attach that failed half-way may have left one.
   */
  async #teardown(a: NetworkAttachment): Promise<void> {
    await this.dhcp.stop(a.bridge);
    await this.nat.remove(a.bridge);
    if (a.uplink) await releaseUplink(this.ip, a.bridge, a.uplink, ownerOf(a));
    await removeBridge(this.ip, {
      name: a.bridge,
      owner: ownerOf(a),
      address: gatewayAddress(a),
      created: a.bridgeCreated,
      addressAdded: a.addressAdded,
    });
  }

  /**
   * Replaces the DHCP reservations of an attached network (the whole set, atomically: the
   * hosts file is replaced in one rename and dnsmasq re-reads it). Remembered in the state, so
   * a restarted node serves the same set. Returns what the DHCP server had to do.
   */
  setReservations(
    bridge: string,
    list: node.DhcpReservation.$Properties[],
  ): Promise<DhcpAction | "stored"> {
    return this.#queue.run(async () => {
      const a = (await this.#doc.read()).find((x) => x.bridge === bridge);
      if (!a) {
        throw new FailedPreconditionError(`no network is attached on bridge ${bridge}`);
      }
      const reservations: DhcpReservation[] = reservationsForNetwork(list, a);
      await this.#doc.update((all) =>
        all.map((x) => x.bridge === bridge ? { ...x, reservations } : x)
      );
      if (!a.dhcp) return "stored";
      return await this.dhcp.setReservations(bridge, reservations).catch(async (err) => {
        // No server yet (e.g. it failed to start earlier): build it from the attachment.
        if (!(err instanceof FailedPreconditionError)) throw err;
        return await this.dhcp.ensure({
          bridge,
          subnet: a.subnet!,
          gateway: a.gateway,
          dns: a.dns,
          mtu: a.mtu,
          reservations,
        });
      });
    });
  }

  /**
   * Removes what attaching the network created (an adopted bridge stays, minus the address
   * qarax added; a taken-over NIC gets its addresses back) and forgets it. Refused while VM
   * taps are on the bridge (or VM macvtaps on a macvtap network's parent). Detaching a network
   * that is not attached succeeds. Returns whether anything was attached.
   */
  detach(spec: DetachSpec): Promise<boolean> {
    return this.#queue.run(async () => {
      const rec = (await this.#doc.read()).find((a) => a.bridge === spec.bridge);
      if (rec && spec.networkId && rec.networkId && rec.networkId !== spec.networkId) {
        throw new ConflictError(`bridge ${spec.bridge} is attached for network ${rec.networkId}`);
      }
      const links = await this.ip.links();
      const users = rec?.type === "macvtap"
        ? links.filter((l) => l.parent === rec.parentInterface && isMacvtapName(l.name))
        : links.filter((l) => l.master === spec.bridge && isTapName(l.name));
      if (users.length > 0) {
        throw new FailedPreconditionError(
          `network on ${spec.bridge} still has VM devices: ${users.map((t) => t.name).join(", ")}`,
        );
      }
      if (rec) {
        if (rec.type !== "macvtap") await this.#teardown(rec);
        await this.#doc.update((all) => all.filter((a) => a.bridge !== spec.bridge));
      } else {
        // Not in the state (e.g. it was lost): the alias still proves what qarax created.
        const link = await this.ip.link(spec.bridge);
        if (link?.kind === "bridge" && link.alias === bridgeAlias(ownerOf(spec))) {
          await this.dhcp.stop(spec.bridge);
          await this.nat.remove(spec.bridge);
          await this.ip.deleteLink(spec.bridge);
        }
      }
      this.#log.info("network detached", { bridge: spec.bridge, known: !!rec });
      return !!rec;
    });
  }

  /** Re-applies every remembered attachment (after a restart); one failure does not stop the rest. */
  reconcile(): Promise<NetworkReconcileReport> {
    return this.#queue.run(async () => {
      const report: NetworkReconcileReport = { restored: [], failed: [] };
      for (const a of await this.#doc.read()) {
        try {
          await this.#attach(a);
          report.restored.push(a.bridge);
        } catch (err) {
          this.#log.error("could not restore network", { bridge: a.bridge, err });
          report.failed.push({ bridge: a.bridge, error: (err as Error).message });
        }
      }
      return report;
    });
  }

  /** Creates (or fixes) the tap of NIC `index` of `vmId` on its bridge; returns the tap name. */
  ensureNicTap(vmId: string, index: number, options: NicTapOptions): Promise<string> {
    return this.#queue.run(async () => {
      const bridge = await this.ip.link(interfaceName(options.bridge, "bridge"));
      if (!bridge || bridge.kind !== "bridge") {
        throw new FailedPreconditionError(
          `bridge ${options.bridge} does not exist on this node (attach its network first)`,
        );
      }
      const tapMtu = checkMtu(options.mtu, "mtu") ?? bridge.mtu;
      if (tapMtu < 1280) {
        throw InvalidArgumentError.field(
          "mtu",
          `Cloud Hypervisor needs at least 1280, got ${tapMtu}`,
        );
      }
      return await ensureTap(this.ip, {
        vmId,
        index,
        bridge: options.bridge,
        mtu: tapMtu,
        numQueues: options.numQueues ?? 2,
      });
    });
  }

  /** Creates (or fixes) the macvtap of NIC `index` of `vmId` on its parent; returns its name. */
  ensureNicMacvtap(vmId: string, index: number, options: NicMacvtapOptions): Promise<string> {
    return this.#queue.run(() =>
      ensureMacvtap(this.ip, {
        vmId,
        index,
        parent: options.parent,
        mac: options.mac,
        mtu: checkMtu(options.mtu, "mtu"),
      })
    );
  }

  /**
   * Opens `pairs` queues of a NIC's macvtap (one descriptor each), through a device node made
   * and removed in `scratchDir`. The caller passes them to the VMM and closes them.
   */
  openNicQueues(name: string, pairs: number, scratchDir: string): Promise<number[]> {
    return openMacvtapQueues(this.ip, name, pairs, scratchDir);
  }

  /** Stops supervising the DHCP servers (agent shutdown; they keep running). */
  close(): void {
    this.dhcp.close();
  }

  /** Deletes the tap (or macvtap) of one NIC (hot-unplug); returns whether there was one. */
  removeNicTap(vmId: string, index: number): Promise<boolean> {
    return this.#queue.run(() => removeNicTap(this.ip, vmId, index));
  }

  /** Deletes every tap and macvtap of `vmId`; returns their names. */
  removeVmTaps(vmId: string): Promise<string[]> {
    return this.#queue.run(() => removeVmTaps(this.ip, vmId));
  }

  /** Every qarax tap and macvtap on the node (to find those of VMs that no longer exist). */
  listTaps(): Promise<TapInfo[]> {
    return listTaps(this.ip);
  }
}

function uplinkSpecOf(a: NetworkSpec): UplinkSpec | undefined {
  if (!a.parentInterface) return undefined;
  return a.type === "vlan"
    ? { kind: "vlan", parent: a.parentInterface, vlanId: a.vlanId! }
    : { kind: "nic", device: a.parentInterface };
}

function ownerOf(spec: { networkId: string; bridge: string }): string {
  return spec.networkId || spec.bridge;
}

function gatewayAddress(spec: { subnet?: string; gateway?: string }): string | undefined {
  if (!spec.gateway || !spec.subnet) return undefined;
  return `${spec.gateway}/${spec.subnet.split("/")[1]}`;
}

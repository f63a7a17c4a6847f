/**
 * The node's network manager: the semantics of `AttachNetwork`/`DetachNetwork` (bridges with
 * their gateway address, remembered in the state store and re-applied by `reconcile()` after
 * an agent or host restart) and the per-NIC tap operations the VM manager calls. Operations
 * run one at a time so a detach never races a tap being enslaved to the same bridge.
 *
 * Issue 8 plugs in here: uplinks/VLANs around `ensureBridge`, and DHCP and NAT after it, each
 * recorded in the attachment so detach and reconcile can undo or restore them.
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
import type { IpAdapter } from "./ip.ts";
import {
  assertSupported,
  type DetachSpec,
  mtu as checkMtu,
  NETWORK_TYPES,
  type NetworkSpec,
} from "./spec.ts";
import { ensureTap, isTapName, listTaps, removeNicTap, removeVmTaps, type TapInfo } from "./tap.ts";

/** An attached network as remembered across restarts: the request plus what qarax changed. */
export interface NetworkAttachment extends NetworkSpec {
  /** qarax created the bridge (detach deletes it); false when it adopted an existing one. */
  bridgeCreated: boolean;
  /** qarax put the gateway address on the bridge (detach removes it). */
  addressAdded: boolean;
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
  attachedAt: z.string(),
});

/** Options of a VM NIC's tap. */
export interface NicTapOptions {
  bridge: string;
  /** Defaults to the bridge's MTU. */
  mtu?: number;
  /** Cloud Hypervisor `num_queues` of the NIC (RX+TX); default 2. */
  numQueues?: number;
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

  constructor(readonly ip: IpAdapter, state: StateStore) {
    this.#doc = state.document("networks", z.array(Attachment), []);
  }

  /** The attached networks. */
  list(): Promise<NetworkAttachment[]> {
    return this.#doc.read();
  }

  /** Creates or adopts the network's bridge and remembers it; idempotent. */
  attach(spec: NetworkSpec): Promise<NetworkAttachment> {
    return this.#queue.run(() => this.#attach(spec));
  }

  async #attach(requested: NetworkSpec): Promise<NetworkAttachment> {
    assertSupported(requested);
    const prev = (await this.#doc.read()).find((a) => a.bridge === requested.bridge);
    if (prev?.networkId && requested.networkId && prev.networkId !== requested.networkId) {
      throw new ConflictError(
        `bridge ${requested.bridge} is attached for network ${prev.networkId}`,
      );
    }
    const spec = { ...requested, networkId: requested.networkId || prev?.networkId || "" };
    const address = gatewayAddress(spec);
    const outcome = await ensureBridge(this.ip, {
      name: spec.bridge,
      owner: ownerOf(spec),
      address,
      mtu: spec.mtu,
    });
    const prevAddress = prev ? gatewayAddress(prev) : undefined;
    if (prev?.addressAdded && prevAddress && prevAddress !== address) {
      await this.ip.deleteAddress(spec.bridge, prevAddress);
    }
    const attachment: NetworkAttachment = {
      ...spec,
      bridgeCreated: outcome.created || (prev?.bridgeCreated ?? false),
      addressAdded: outcome.addressAdded || (!!prev?.addressAdded && prevAddress === address),
      attachedAt: prev?.attachedAt ?? new Date().toISOString(),
    };
    await this.#doc.update((all) => [
      ...all.filter((a) => a.bridge !== spec.bridge),
      attachment,
    ]);
    this.#log.info("network attached", {
      bridge: spec.bridge,
      network_id: spec.networkId,
      created: attachment.bridgeCreated,
    });
    return attachment;
  }

  /**
   * Removes what attaching the network created (an adopted bridge stays, minus the address
   * qarax added) and forgets it. Refused while VM taps are on the bridge. Detaching a network
   * that is not attached succeeds. Returns whether anything was attached.
   */
  detach(spec: DetachSpec): Promise<boolean> {
    return this.#queue.run(async () => {
      const rec = (await this.#doc.read()).find((a) => a.bridge === spec.bridge);
      if (rec && spec.networkId && rec.networkId && rec.networkId !== spec.networkId) {
        throw new ConflictError(`bridge ${spec.bridge} is attached for network ${rec.networkId}`);
      }
      const taps = (await this.ip.links()).filter((l) =>
        l.master === spec.bridge && isTapName(l.name)
      );
      if (taps.length > 0) {
        throw new FailedPreconditionError(
          `bridge ${spec.bridge} still has VM taps: ${taps.map((t) => t.name).join(", ")}`,
        );
      }
      if (rec) {
        await removeBridge(this.ip, {
          name: rec.bridge,
          owner: ownerOf(rec),
          address: gatewayAddress(rec),
          created: rec.bridgeCreated,
          addressAdded: rec.addressAdded,
        });
        await this.#doc.update((all) => all.filter((a) => a.bridge !== spec.bridge));
      } else {
        // Not in the state (e.g. it was lost): the alias still proves what qarax created.
        const link = await this.ip.link(spec.bridge);
        if (link?.kind === "bridge" && link.alias === bridgeAlias(ownerOf(spec))) {
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

  /** Deletes the tap of one NIC (hot-unplug); returns whether there was one. */
  removeNicTap(vmId: string, index: number): Promise<boolean> {
    return this.#queue.run(() => removeNicTap(this.ip, vmId, index));
  }

  /** Deletes every tap of `vmId`; returns their names. */
  removeVmTaps(vmId: string): Promise<string[]> {
    return this.#queue.run(() => removeVmTaps(this.ip, vmId));
  }

  /** Every qarax tap on the node (to find taps of VMs that no longer exist). */
  listTaps(): Promise<TapInfo[]> {
    return listTaps(this.ip);
  }
}

function ownerOf(spec: { networkId: string; bridge: string }): string {
  return spec.networkId || spec.bridge;
}

function gatewayAddress(spec: { subnet?: string; gateway?: string }): string | undefined {
  if (!spec.gateway || !spec.subnet) return undefined;
  return `${spec.gateway}/${spec.subnet.split("/")[1]}`;
}

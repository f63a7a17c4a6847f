/**
 * Host attachments on the node: a network (`AttachNetwork`: bridge, uplink, NAT, DHCP with its
 * reservations) and a storage pool's directory (`AttachStoragePool`) made real on one host.
 * Both node calls are idempotent, so applying an attachment again (host init, recovery, before
 * a VM starts, after a network changed) is always safe. The attachment row records the
 * outcome: `ready`, or `failed` with the node's message. DHCP reservations follow the NIC
 * records: after every change the full set of the network goes to every host where it is
 * attached (`syncReservations`); a host that misses it gets it with its next apply.
 */
import { FailedPreconditionError, UnimplementedError } from "../../shared/errors/errors.ts";
import { node } from "../../shared/proto/mod.ts";
import { getHost, type HostRow } from "../db/hosts.ts";
import {
  getNetworkAttachment,
  type HostNetworkRow,
  listNetworkAttachments,
} from "../db/host_networks.ts";
import { getPoolAttachment, type HostStoragePoolRow } from "../db/host_storage_pools.ts";
import { type NetworkRow, networks } from "../db/networks.ts";
import { type Db, run } from "../db/query.ts";
import { nicAddressesOn } from "../db/network_interfaces.ts";
import { type StoragePoolRow, storagePools } from "../db/storage_pools.ts";
import {
  attachNetworkRequest,
  type Reservation,
  reservationSet,
  sameReservations,
} from "../domain/networks.ts";
import type { Services } from "../services.ts";

/**
 * Whether attachment changes go to a host's node right away: `up` and `maintenance` hosts
 * answer; others get them when initialised or back up.
 */
export function talksToNode(status: string): boolean {
  return status === "up" || status === "maintenance";
}

/** The AttachStoragePool request for a pool. */
export function attachPoolRequest(pool: StoragePoolRow): node.AttachStoragePoolRequest.$Properties {
  if (pool.type !== "local") {
    throw new UnimplementedError(`storage pools of type ${pool.type} are not supported yet`);
  }
  return {
    poolId: pool.id,
    poolKind: node.StoragePoolKind.STORAGE_POOL_KIND_LOCAL,
    configJson: JSON.stringify({ path: pool.path }),
  };
}

async function setAttachmentStatus(
  db: Db,
  table: "host_networks" | "host_storage_pools",
  key: { column: "network_id" | "storage_pool_id"; id: string },
  hostId: string,
  status: "ready" | "failed",
  reason: string | null,
): Promise<void> {
  await run(() =>
    db`update ${db(table)} set status = ${status}, status_reason = ${reason}
       where ${db(key.column)} = ${key.id} and host_id = ${hostId}
         and (status <> ${status} or status_reason is distinct from ${reason})`
  );
}

/**
 * Applies a network's attachment on the host's node (AttachNetwork with every setting and, in
 * mode dhcp, the network's full reservation set) and records the outcome; throws the node's
 * error (after recording `failed`). Returns undefined when there is no attachment. A
 * reservation change that raced with the call is pushed right after (see `pushReservations`).
 */
export async function applyNetwork(
  svc: Services,
  host: HostRow,
  networkId: string,
  signal?: AbortSignal,
): Promise<HostNetworkRow | undefined> {
  const att = await getNetworkAttachment(svc.sql, networkId, host.id);
  const network = await networks.get(svc.sql, networkId);
  if (!att || !network) return undefined;
  const reservations = network.mode === "dhcp" ? await networkReservations(svc.sql, networkId) : [];
  const client = svc.nodes.get(host);
  const key = { column: "network_id" as const, id: networkId };
  try {
    await client.call(
      `AttachNetwork ${network.name} (bridge ${att.bridge_name})`,
      (o, n) => n.vm.attachNetwork(attachNetworkRequest(network, att, reservations), o),
      { signal },
    );
  } catch (err) {
    await setAttachmentStatus(svc.sql, "host_networks", key, host.id, "failed", errText(err));
    throw err;
  }
  await setAttachmentStatus(svc.sql, "host_networks", key, host.id, "ready", null);
  if (network.mode === "dhcp") {
    await pushReservations(svc, host, network, att, reservations, signal, false).catch((err) =>
      syncFailed(svc, network, host, att, "SetDhcpReservations", err)
    );
  }
  return await getNetworkAttachment(svc.sql, networkId, host.id);
}

/** The DHCP reservations of a network: every NIC with an address, cluster-wide. */
export async function networkReservations(db: Db, networkId: string): Promise<Reservation[]> {
  return reservationSet(await nicAddressesOn(db, networkId));
}

/** Pushes that may follow each other before a node is taken to have the current set. */
const MAX_PUSH_ROUNDS = 10;

/**
 * Makes the node's reservation set for the attachment equal to the database's, after the node
 * was sent `sent` (or nothing yet: pass null). The set is read again after each push and
 * pushed again while it changed in between: a concurrent change's own push may have reached
 * the node first and been overwritten by an older set, and this way the last writer always
 * leaves the node with the newest set. A node that does not have the attachment any more
 * (FAILED_PRECONDITION, e.g. its state was wiped) gets it whole again.
 */
async function pushReservations(
  svc: Services,
  host: HostRow,
  network: NetworkRow,
  att: HostNetworkRow,
  sent: Reservation[] | null,
  signal?: AbortSignal,
  mayReattach = true,
): Promise<void> {
  const client = svc.nodes.get(host);
  for (let round = 0; round < MAX_PUSH_ROUNDS; round++) {
    const current = await networkReservations(svc.sql, network.id);
    if (sent && sameReservations(current, sent)) return;
    try {
      await client.call(
        `SetDhcpReservations ${network.name} (bridge ${att.bridge_name})`,
        (o, n) =>
          n.vm.setDhcpReservations({ bridgeName: att.bridge_name, reservations: current }, o),
        { signal },
      );
    } catch (err) {
      if (!(err instanceof FailedPreconditionError) || !mayReattach) throw err;
      svc.logger.info("node lost a network attachment; attaching it again", {
        network_id: network.id,
        host_id: host.id,
        err,
      });
      await applyNetwork(svc, host, network.id, signal);
      return;
    }
    sent = current;
  }
  svc.logger.warn("reservations kept changing while being pushed; the next change pushes them", {
    network_id: network.id,
    host_id: host.id,
  });
}

/** Outcome of pushing reservations or settings to the hosts of a network. */
export interface SyncReport {
  /** Hosts whose node now has the network's current settings / reservations. */
  synced: string[];
  /** Hosts whose node could not be brought up to date (recorded as events). */
  failed: { host_id: string; error: string }[];
}

/**
 * Pushes the full reservation set of each given network in mode dhcp to every host where it
 * is attached and whose node answers (`up` or `maintenance`), in parallel. Call it after the
 * change committed. Never throws: a host that fails is logged and recorded as a
 * `network.sync_failed` event, and it gets the full set when its attachments are next applied
 * (host init or recovery, a VM start there). Networks in other modes are skipped.
 */
export async function syncReservations(
  svc: Services,
  networkIds: Iterable<string>,
  signal?: AbortSignal,
): Promise<Record<string, SyncReport>> {
  const out: Record<string, SyncReport> = {};
  for (const id of new Set(networkIds)) {
    try {
      const network = await networks.get(svc.sql, id);
      if (!network || network.mode !== "dhcp") continue;
      out[id] = await forEachAttachedHost(
        svc,
        network,
        "SetDhcpReservations",
        (host, att) => pushReservations(svc, host, network, att, null, signal),
      );
    } catch (err) {
      // The database went away after the change committed: the next apply catches up.
      svc.logger.warn("could not push a network's reservations", { network_id: id, err });
    }
  }
  return out;
}

/**
 * Applies a network's current settings (AttachNetwork) on every host where it is attached and
 * whose node answers, in parallel; used after the network was changed. Never throws (see
 * syncReservations); a host whose node refuses has its attachment marked `failed`.
 */
export async function reapplyNetwork(
  svc: Services,
  networkId: string,
  signal?: AbortSignal,
): Promise<SyncReport> {
  try {
    const network = await networks.get(svc.sql, networkId);
    if (!network) return { synced: [], failed: [] };
    return await forEachAttachedHost(
      svc,
      network,
      "AttachNetwork",
      (host) => applyNetwork(svc, host, networkId, signal).then(() => {}),
    );
  } catch (err) {
    svc.logger.warn("could not apply a changed network on its hosts", {
      network_id: networkId,
      err,
    });
    return { synced: [], failed: [] };
  }
}

async function forEachAttachedHost(
  svc: Services,
  network: NetworkRow,
  operation: string,
  fn: (host: HostRow, att: HostNetworkRow) => Promise<void>,
): Promise<SyncReport> {
  const report: SyncReport = { synced: [], failed: [] };
  const targets = await attachedHosts(svc.sql, network.id);
  await Promise.all(targets.map(async ({ host, att }) => {
    // A pending attachment is being applied right now (or waits for its host): that apply
    // sends the current state anyway.
    if (!talksToNode(host.status) || att.status === "pending") return;
    try {
      await fn(host, att);
      report.synced.push(host.id);
    } catch (err) {
      report.failed.push({ host_id: host.id, error: errText(err) });
      await syncFailed(svc, network, host, att, operation, err);
    }
  }));
  report.synced.sort();
  return report;
}

/** The attachments of a network with their hosts. */
async function attachedHosts(
  db: Db,
  networkId: string,
): Promise<{ host: HostRow; att: HostNetworkRow }[]> {
  const out = [];
  for (const att of await listNetworkAttachments(db, networkId)) {
    const host = await getHost(db, att.host_id);
    if (host) out.push({ host, att });
  }
  return out;
}

/** Logs a failed push and records it as a `network.sync_failed` event. */
async function syncFailed(
  svc: Services,
  network: NetworkRow,
  host: HostRow,
  att: HostNetworkRow,
  operation: string,
  err: unknown,
): Promise<void> {
  const error = errText(err);
  svc.logger.warn("a node could not be brought up to date with its network", {
    network_id: network.id,
    host_id: host.id,
    operation,
    err,
  });
  await svc.events.transaction((_tx, emit) =>
    emit({
      type: "network.sync_failed",
      resource_type: "network",
      resource_id: network.id,
      data: {
        network_id: network.id,
        name: network.name,
        host_id: host.id,
        host: host.name,
        bridge_name: att.bridge_name,
        operation,
        error,
      },
    })
  ).catch((e) => svc.logger.error("could not record network.sync_failed", { err: e }));
}

/** Applies a pool's attachment on the host's node and records the outcome (see applyNetwork). */
export async function applyPool(
  svc: Services,
  host: HostRow,
  poolId: string,
  signal?: AbortSignal,
): Promise<HostStoragePoolRow | undefined> {
  const att = await getPoolAttachment(svc.sql, poolId, host.id);
  const pool = await storagePools.get(svc.sql, poolId);
  if (!att || !pool) return undefined;
  const client = svc.nodes.get(host);
  const key = { column: "storage_pool_id" as const, id: poolId };
  try {
    const req = attachPoolRequest(pool);
    await client.call(
      `AttachStoragePool ${pool.name} (${pool.path})`,
      (o, n) => n.vm.attachStoragePool(req, o),
      { signal },
    );
  } catch (err) {
    await setAttachmentStatus(svc.sql, "host_storage_pools", key, host.id, "failed", errText(err));
    throw err;
  }
  await setAttachmentStatus(svc.sql, "host_storage_pools", key, host.id, "ready", null);
  return await getPoolAttachment(svc.sql, poolId, host.id);
}

/** Outcome of re-applying every attachment of a host. */
export interface ReapplyReport {
  networks: number;
  pools: number;
  failed: { kind: "network" | "storage_pool"; id: string; error: string }[];
}

/** Re-applies all of a host's network and pool attachments (failures are recorded, not thrown). */
export async function reapplyAttachments(
  svc: Services,
  host: HostRow,
  signal?: AbortSignal,
): Promise<ReapplyReport> {
  const report: ReapplyReport = { networks: 0, pools: 0, failed: [] };
  const nets = await run(() =>
    svc.sql<{ id: string }[]>`
      select network_id as id from host_networks where host_id = ${host.id} order by created_at`
  );
  for (const { id } of nets) {
    try {
      await applyNetwork(svc, host, id, signal);
      report.networks++;
    } catch (err) {
      report.failed.push({ kind: "network", id, error: errText(err) });
    }
  }
  const pools = await run(() =>
    svc.sql<{ id: string }[]>`
      select storage_pool_id as id from host_storage_pools where host_id = ${host.id}
      order by created_at`
  );
  for (const { id } of pools) {
    try {
      await applyPool(svc, host, id, signal);
      report.pools++;
    } catch (err) {
      report.failed.push({ kind: "storage_pool", id, error: errText(err) });
    }
  }
  return report;
}

function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Removes a network's bridge from the host's node (DetachNetwork). */
export async function detachNetworkOnNode(
  svc: Services,
  host: HostRow,
  network: NetworkRow,
  attachment: Pick<HostNetworkRow, "bridge_name">,
): Promise<void> {
  const client = svc.nodes.get(host);
  await client.call(
    `DetachNetwork ${network.name} (bridge ${attachment.bridge_name})`,
    (o, n) =>
      n.vm.detachNetwork({
        bridgeName: attachment.bridge_name,
        subnet: network.subnet ?? "",
        networkId: network.id,
      }, o),
  );
}

/** Forgets a pool on the host's node (DetachStoragePool; nothing in it is deleted). */
export async function detachPoolOnNode(
  svc: Services,
  host: HostRow,
  pool: StoragePoolRow,
): Promise<void> {
  const client = svc.nodes.get(host);
  const req = attachPoolRequest(pool);
  await client.call(
    `DetachStoragePool ${pool.name}`,
    (o, n) => n.vm.detachStoragePool(req, o),
  );
}

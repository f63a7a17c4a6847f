/**
 * Host attachments on the node: a network's bridge (`AttachNetwork`) and a storage pool's
 * directory (`AttachStoragePool`) made real on one host. Both node calls are idempotent, so
 * applying an attachment again (host init, recovery, before a VM starts) is always safe. The
 * attachment row records the outcome: `ready`, or `failed` with the node's message.
 */
import { UnimplementedError } from "../../shared/errors/errors.ts";
import { formatIpv4, hostRange, parseCidr } from "../../shared/net/ip.ts";
import { node } from "../../shared/proto/mod.ts";
import type { HostRow } from "../db/hosts.ts";
import { getNetworkAttachment, type HostNetworkRow } from "../db/host_networks.ts";
import { getPoolAttachment, type HostStoragePoolRow } from "../db/host_storage_pools.ts";
import { type NetworkRow, networks } from "../db/networks.ts";
import { type Db, run } from "../db/query.ts";
import { type StoragePoolRow, storagePools } from "../db/storage_pools.ts";
import type { Services } from "../services.ts";

/**
 * Whether attachment changes go to a host's node right away: `up` and `maintenance` hosts
 * answer; others get them when initialised or back up.
 */
export function talksToNode(status: string): boolean {
  return status === "up" || status === "maintenance";
}

/** A MAC → IP reservation for a network's DHCP server. */
export interface Reservation {
  mac: string;
  ip: string;
  hostname: string;
}

/** The AttachNetwork request for a network's attachment to one host. */
export function attachNetworkRequest(
  network: NetworkRow,
  attachment: Pick<HostNetworkRow, "bridge_name" | "parent_interface">,
  reservations: Reservation[] = [],
): node.AttachNetworkRequest.$Properties {
  const type = {
    bridge: node.NetworkType.NETWORK_TYPE_BRIDGE,
    vlan: node.NetworkType.NETWORK_TYPE_VLAN,
    macvtap: node.NetworkType.NETWORK_TYPE_MACVTAP,
  }[network.type];
  const req: node.AttachNetworkRequest.$Properties = {
    networkId: network.id,
    bridgeName: attachment.bridge_name,
    type,
    subnet: network.subnet ?? "",
    gateway: network.gateway ?? "",
    dns: network.dns.join(","),
    parentInterface: attachment.parent_interface ?? "",
    vlanId: network.vlan_id ?? 0,
    nat: network.nat,
    mtu: network.mtu,
    dhcp: network.mode === "dhcp",
  };
  if (network.mode === "dhcp" && network.subnet) {
    const range = hostRange(parseCidr(network.subnet));
    req.dhcpRangeStart = formatIpv4(range.first);
    req.dhcpRangeEnd = formatIpv4(range.last);
    req.reservations = reservations;
  }
  return req;
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

/** DHCP reservations of the NICs on `networkId` whose VMs are placed on `hostId`. */
export function reservationsOn(db: Db, networkId: string, hostId: string): Promise<Reservation[]> {
  return run(() =>
    db<Reservation[]>`
      select n.mac_address::text as mac, host(n.ip_address) as ip, v.name as hostname
      from network_interfaces n join vms v on v.id = n.vm_id
      where n.network_id = ${networkId} and v.host_id = ${hostId} and n.ip_address is not null
      order by n.ip_address`
  );
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
 * Applies a network's attachment on the host's node and records the outcome; throws the
 * node's error (after recording `failed`). Returns undefined when there is no attachment.
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
  const reservations = network.mode === "dhcp"
    ? await reservationsOn(svc.sql, networkId, host.id)
    : [];
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
  return await getNetworkAttachment(svc.sql, networkId, host.id);
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

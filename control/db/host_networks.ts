/** Queries of `host_networks` (a network made available on a host through a bridge). */
import type { Db } from "./query.ts";
import { run } from "./query.ts";

/** An attachment row. */
export interface HostNetworkRow {
  network_id: string;
  host_id: string;
  bridge_name: string;
  parent_interface: string | null;
  status: "pending" | "ready" | "failed";
  status_reason: string | null;
  created_at: Date;
  updated_at: Date;
  version: number;
}

const COLUMNS = [
  "network_id",
  "host_id",
  "bridge_name",
  "parent_interface",
  "status",
  "status_reason",
  "created_at",
  "updated_at",
  "version",
];

/** Records an attachment. */
export async function attachNetwork(
  db: Db,
  row: {
    network_id: string;
    host_id: string;
    bridge_name: string;
    parent_interface: string | null;
  },
): Promise<HostNetworkRow> {
  const [out] = await run(() =>
    db<HostNetworkRow[]>`insert into host_networks ${db(row)} returning ${db(COLUMNS)}`
  );
  return out;
}

/** One attachment. */
export async function getNetworkAttachment(
  db: Db,
  networkId: string,
  hostId: string,
): Promise<HostNetworkRow | undefined> {
  const [row] = await run(() =>
    db<HostNetworkRow[]>`
      select ${db(COLUMNS)} from host_networks
      where network_id = ${networkId} and host_id = ${hostId}`
  );
  return row;
}

/** Every attachment of a network (bounded by the number of hosts). */
export function listNetworkAttachments(db: Db, networkId: string): Promise<HostNetworkRow[]> {
  return run(() =>
    db<HostNetworkRow[]>`
      select ${db(COLUMNS)} from host_networks where network_id = ${networkId}
      order by created_at, host_id`
  );
}

/** Removes an attachment; true when it existed. */
export async function detachNetwork(db: Db, networkId: string, hostId: string): Promise<boolean> {
  const rows = await run(() =>
    db`delete from host_networks where network_id = ${networkId} and host_id = ${hostId}
       returning host_id`
  );
  return rows.length > 0;
}

/** Names of VMs placed on `hostId` with a NIC on `networkId` (first few). */
export async function vmsUsingNetworkOnHost(
  db: Db,
  networkId: string,
  hostId: string,
): Promise<string[]> {
  const rows = await run(() =>
    db<{ name: string }[]>`
      select distinct v.name from vms v join network_interfaces n on n.vm_id = v.id
      where v.host_id = ${hostId} and n.network_id = ${networkId} order by v.name limit 5`
  );
  return rows.map((r) => r.name);
}

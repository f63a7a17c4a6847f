/** Queries of `host_networks` (a network made available on a host through a bridge). */
import { attachmentQueries } from "./host_attachments.ts";
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
const q = attachmentQueries<HostNetworkRow>("host_networks", "network_id", COLUMNS);

/** Records an attachment. */
export function attachNetwork(
  db: Db,
  row: {
    network_id: string;
    host_id: string;
    bridge_name: string;
    parent_interface: string | null;
  },
): Promise<HostNetworkRow> {
  return q.insert(db, row);
}

/** One attachment. */
export const getNetworkAttachment = q.get;

/** Every attachment of a network (bounded by the number of hosts). */
export const listNetworkAttachments = q.list;

/** Removes an attachment; true when it existed. */
export const detachNetwork = q.remove;

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

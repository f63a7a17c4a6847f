/** Queries of `host_storage_pools` (a pool made available on a host). */
import { attachmentQueries } from "./host_attachments.ts";
import type { Db } from "./query.ts";
import { run } from "./query.ts";

/** An attachment row. */
export interface HostStoragePoolRow {
  storage_pool_id: string;
  host_id: string;
  status: "pending" | "ready" | "failed";
  status_reason: string | null;
  created_at: Date;
  updated_at: Date;
  version: number;
}

const COLUMNS = [
  "storage_pool_id",
  "host_id",
  "status",
  "status_reason",
  "created_at",
  "updated_at",
  "version",
];
const q = attachmentQueries<HostStoragePoolRow>("host_storage_pools", "storage_pool_id", COLUMNS);

/** Records an attachment. */
export function attachPool(db: Db, poolId: string, hostId: string): Promise<HostStoragePoolRow> {
  return q.insert(db, { storage_pool_id: poolId, host_id: hostId });
}

/** One attachment. */
export const getPoolAttachment = q.get;

/** Every attachment of a pool (bounded by the number of hosts). */
export const listPoolAttachments = q.list;

/** Removes an attachment; true when it existed. */
export const detachPool = q.remove;

/** The hosts a pool is attached to, with their names (by name). */
export function poolHosts(
  db: Db,
  poolId: string,
): Promise<{ host_id: string; host_name: string }[]> {
  return run(() =>
    db<{ host_id: string; host_name: string }[]>`
      select a.host_id, h.name as host_name from host_storage_pools a
      join hosts h on h.id = a.host_id where a.storage_pool_id = ${poolId}
      order by h.name, h.id`
  );
}

/** Queries of `host_storage_pools` (a pool made available on a host). */
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

/** Records an attachment. */
export async function attachPool(
  db: Db,
  poolId: string,
  hostId: string,
): Promise<HostStoragePoolRow> {
  const [row] = await run(() =>
    db<HostStoragePoolRow[]>`
      insert into host_storage_pools (storage_pool_id, host_id) values (${poolId}, ${hostId})
      returning ${db(COLUMNS)}`
  );
  return row;
}

/** One attachment. */
export async function getPoolAttachment(
  db: Db,
  poolId: string,
  hostId: string,
): Promise<HostStoragePoolRow | undefined> {
  const [row] = await run(() =>
    db<HostStoragePoolRow[]>`
      select ${db(COLUMNS)} from host_storage_pools
      where storage_pool_id = ${poolId} and host_id = ${hostId}`
  );
  return row;
}

/** Every attachment of a pool (bounded by the number of hosts). */
export function listPoolAttachments(db: Db, poolId: string): Promise<HostStoragePoolRow[]> {
  return run(() =>
    db<HostStoragePoolRow[]>`
      select ${db(COLUMNS)} from host_storage_pools where storage_pool_id = ${poolId}
      order by created_at, host_id`
  );
}

/** Removes an attachment; true when it existed. */
export async function detachPool(db: Db, poolId: string, hostId: string): Promise<boolean> {
  const rows = await run(() =>
    db`delete from host_storage_pools where storage_pool_id = ${poolId} and host_id = ${hostId}
       returning host_id`
  );
  return rows.length > 0;
}

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

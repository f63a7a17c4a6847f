/** Queries of `storage_objects`. */
import type { Db } from "./query.ts";
import { run, tableQueries } from "./query.ts";

export const STORAGE_OBJECT_TYPES = [
  "disk",
  "kernel",
  "initrd",
  "firmware",
  "iso",
  "image",
  "snapshot",
] as const;
export type StorageObjectType = typeof STORAGE_OBJECT_TYPES[number];
export const STORAGE_OBJECT_STATUSES = ["creating", "ready", "failed"] as const;

/** A storage object row. */
export interface StorageObjectRow {
  id: string;
  name: string;
  storage_pool_id: string;
  type: StorageObjectType;
  format: "raw" | "qcow2" | null;
  path: string;
  size_bytes: number | null;
  parent_id: string | null;
  /** The host holding the file (local pools); null when shared or unknown. */
  host_id: string | null;
  status: typeof STORAGE_OBJECT_STATUSES[number];
  status_reason: string | null;
  source_url: string | null;
  sha256: string | null;
  created_at: Date;
  updated_at: Date;
  version: number;
}

export const storageObjects = tableQueries<StorageObjectRow>("storage_objects", [
  "id",
  "name",
  "storage_pool_id",
  "type",
  "format",
  "path",
  "size_bytes",
  "parent_id",
  "host_id",
  "status",
  "status_reason",
  "source_url",
  "sha256",
  "created_at",
  "updated_at",
  "version",
]);

/** What refers to an object: VM disks, boot sources, child objects (first few of each). */
export async function objectUsers(db: Db, id: string): Promise<string[]> {
  const rows = await run(() =>
    db<{ what: string }[]>`
      (select 'vm ' || v.name || ' (' || d.device_id || ')' as what
         from vm_disks d join vms v on v.id = d.vm_id where d.storage_object_id = ${id} limit 3)
      union all
      (select 'boot source ' || name from boot_sources
         where ${id} in (kernel_image_id, initrd_image_id, firmware_image_id) limit 3)
      union all
      (select 'storage object ' || name from storage_objects where parent_id = ${id} limit 3)`
  );
  return rows.map((r) => r.what);
}

/**
 * Names of (up to `limit`) storage objects whose file lives on a host (in one pool when
 * `poolId` is given), and their count.
 */
export async function objectsOnHost(
  db: Db,
  hostId: string,
  options: { poolId?: string; limit?: number } = {},
): Promise<{ count: number; names: string[] }> {
  const pool = options.poolId ? db`and storage_pool_id = ${options.poolId}` : db``;
  const rows = await run(() =>
    db<{ name: string; total: number }[]>`
      select name, count(*) over ()::int as total from storage_objects
      where host_id = ${hostId} ${pool} order by name limit ${options.limit ?? 5}`
  );
  return { count: rows[0]?.total ?? 0, names: rows.map((r) => r.name) };
}

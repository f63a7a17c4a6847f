/** Queries of `storage_objects`. */
import { AlreadyExistsError } from "../../shared/errors/errors.ts";
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

/** An object already at a path, with the name of the host holding it (null: every host). */
export interface PathHolder {
  id: string;
  name: string;
  host_id: string | null;
  host_name: string | null;
  status: string;
}

/**
 * The object (other than `exceptId`) that a new object of the pool at `path` on `hostId`
 * would collide with: one on the same host or on every host (host null); for `hostId` null
 * (every host, a shared pool, or not yet placed), any object at that path. An every-host
 * object is named first, then by host name, so the answer is stable.
 */
export async function pathHolder(
  db: Db,
  poolId: string,
  path: string,
  hostId: string | null,
  exceptId?: string,
): Promise<PathHolder | undefined> {
  const host = hostId === null ? db`` : db`and (o.host_id is null or o.host_id = ${hostId})`;
  const except = exceptId ? db`and o.id <> ${exceptId}` : db``;
  const [row] = await run(() =>
    db<PathHolder[]>`
      select o.id, o.name, o.host_id, h.name as host_name, o.status::text as status
      from storage_objects o left join hosts h on h.id = o.host_id
      where o.storage_pool_id = ${poolId} and o.path = ${path} ${host} ${except}
      order by h.name nulls first, o.name limit 1`
  );
  return row;
}

/**
 * Throws 409 (naming the other object and where it is) when a new object of `pool` at `path`
 * on `hostId` would collide with an existing one; see `pathHolder`.
 */
export async function assertPathFree(
  db: Db,
  pool: { id: string; name: string },
  path: string,
  hostId: string | null,
  exceptId?: string,
): Promise<void> {
  const other = await pathHolder(db, pool.id, path, hostId, exceptId);
  if (!other) return;
  const where = other.host_id
    ? `on host ${other.host_name ?? other.host_id}`
    : other.status === "creating"
    ? "its host not chosen yet"
    : "on every host";
  throw new AlreadyExistsError(
    `path ${path} of storage pool ${pool.name} is taken by storage object ${other.name} ` +
      `(${other.id}, ${where})`,
    { details: [{ field: "path", message: `taken by storage object ${other.name} ${where}` }] },
  );
}

/** Queries of `vm_snapshots` (a VM's snapshots) and the directory each one is in. */
import type { Db } from "./query.ts";
import { run, tableQueries } from "./query.ts";

export const SNAPSHOT_STATUSES = ["creating", "ready", "failed"] as const;
export type SnapshotStatus = typeof SNAPSHOT_STATUSES[number];

/** A snapshot row. */
export interface SnapshotRow {
  id: string;
  vm_id: string;
  name: string;
  status: SnapshotStatus;
  status_reason: string | null;
  host_id: string | null;
  storage_object_id: string;
  created_at: Date;
  updated_at: Date;
  version: number;
}

export const vmSnapshots = tableQueries<SnapshotRow>("vm_snapshots", [
  "id",
  "vm_id",
  "name",
  "status",
  "status_reason",
  "host_id",
  "storage_object_id",
  "created_at",
  "updated_at",
  "version",
]);

/** Where a snapshot's files are: its pool and the directory's absolute path on the host. */
export interface SnapshotLocation {
  storage_pool_id: string;
  pool_type: "local" | "nfs";
  /** Absolute path of the snapshot directory. */
  dir: string;
}

/** The directory of a snapshot (undefined when its object is gone). */
export async function snapshotLocation(
  db: Db,
  snapshotId: string,
): Promise<SnapshotLocation | undefined> {
  const [row] = await run(() =>
    db<SnapshotLocation[]>`
      select p.id as storage_pool_id, p.type::text as pool_type,
             rtrim(p.path, '/') || '/' || o.path as dir
      from vm_snapshots s
      join storage_objects o on o.id = s.storage_object_id
      join storage_pools p on p.id = o.storage_pool_id
      where s.id = ${snapshotId}`
  );
  return row;
}

/** Sets a snapshot's status and that of its directory object. */
export async function setSnapshotStatus(
  db: Db,
  id: string,
  status: SnapshotStatus,
  reason: string | null,
): Promise<SnapshotRow | undefined> {
  const row = await vmSnapshots.update(db, id, { status, status_reason: reason });
  if (row) {
    await run(() =>
      db`update storage_objects set status = ${status}, status_reason = ${reason}
         where id = ${row.storage_object_id}`
    );
  }
  return row;
}

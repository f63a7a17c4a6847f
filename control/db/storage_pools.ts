/** Queries of `storage_pools`. */
import type { Db } from "./query.ts";
import { run, tableQueries } from "./query.ts";

/** A storage pool row. */
export interface StoragePoolRow {
  id: string;
  name: string;
  description: string | null;
  type: "local" | "nfs";
  status: "active" | "inactive" | "error";
  path: string;
  config: Record<string, unknown>;
  capacity_bytes: number | null;
  created_at: Date;
  updated_at: Date;
  version: number;
}

export const storagePools = tableQueries<StoragePoolRow>("storage_pools", [
  "id",
  "name",
  "description",
  "type",
  "status",
  "path",
  "config",
  "capacity_bytes",
  "created_at",
  "updated_at",
  "version",
], ["config"]);

/** How many objects a pool holds and how many hosts it is attached to. */
export async function poolUsage(db: Db, id: string): Promise<{ objects: number; hosts: number }> {
  const [row] = await run(() =>
    db<{ objects: number; hosts: number }[]>`
      select (select count(*) from storage_objects where storage_pool_id = ${id})::int as objects,
             (select count(*) from host_storage_pools where storage_pool_id = ${id})::int as hosts`
  );
  return row;
}

/** Queries of `boot_sources`. */
import type { Db } from "./query.ts";
import { run, tableQueries } from "./query.ts";

/** A boot source row. */
export interface BootSourceRow {
  id: string;
  name: string;
  description: string | null;
  boot_mode: "kernel" | "firmware";
  kernel_image_id: string | null;
  initrd_image_id: string | null;
  kernel_params: string | null;
  firmware_image_id: string | null;
  created_at: Date;
  updated_at: Date;
  version: number;
}

export const bootSources = tableQueries<BootSourceRow>("boot_sources", [
  "id",
  "name",
  "description",
  "boot_mode",
  "kernel_image_id",
  "initrd_image_id",
  "kernel_params",
  "firmware_image_id",
  "created_at",
  "updated_at",
  "version",
]);

/** VMs and templates using a boot source (first few names). */
export async function bootSourceUsers(db: Db, id: string): Promise<string[]> {
  const rows = await run(() =>
    db<{ what: string }[]>`
      (select 'vm ' || name as what from vms where boot_source_id = ${id} order by name limit 3)
      union all
      (select 'vm template ' || name from vm_templates where boot_source_id = ${id}
       order by name limit 3)`
  );
  return rows.map((r) => r.what);
}

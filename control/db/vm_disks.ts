/** Queries of `vm_disks` (a VM's disks). */
import type { Db } from "./query.ts";
import { run } from "./query.ts";

/** A disk row. */
export interface DiskRow {
  id: string;
  vm_id: string;
  device_id: string;
  storage_object_id: string;
  boot_order: number | null;
  read_only: boolean;
  created_at: Date;
  updated_at: Date;
  version: number;
}

const COLUMNS = [
  "id",
  "vm_id",
  "device_id",
  "storage_object_id",
  "boot_order",
  "read_only",
  "created_at",
  "updated_at",
  "version",
];

/** Inserts a disk. */
export async function insertDisk(
  db: Db,
  row: Omit<DiskRow, "id" | "created_at" | "updated_at" | "version">,
): Promise<DiskRow> {
  const [out] = await run(() =>
    db<DiskRow[]>`insert into vm_disks ${db(row)} returning ${db(COLUMNS)}`
  );
  return out;
}

/** The disks of a VM. */
export function listDisks(db: Db, vmId: string): Promise<DiskRow[]> {
  return run(() =>
    db<DiskRow[]>`select ${db(COLUMNS)} from vm_disks where vm_id = ${vmId}
                  order by created_at, length(device_id), device_id`
  );
}

/** One disk of a VM by device id. */
export async function getDisk(
  db: Db,
  vmId: string,
  deviceId: string,
): Promise<DiskRow | undefined> {
  const [row] = await run(() =>
    db<DiskRow[]>`select ${
      db(COLUMNS)
    } from vm_disks where vm_id = ${vmId} and device_id = ${deviceId}`
  );
  return row;
}

/** VMs (names) that have `objectId` attached, other than `exceptVm`. */
export async function attachmentsOf(
  db: Db,
  objectId: string,
  exceptVm?: string,
): Promise<string[]> {
  const rows = await run(() =>
    db<{ name: string }[]>`
      select v.name from vm_disks d join vms v on v.id = d.vm_id
      where d.storage_object_id = ${objectId} ${exceptVm ? db`and d.vm_id <> ${exceptVm}` : db``}
      order by v.name limit 5`
  );
  return rows.map((r) => r.name);
}

/** Removes a disk row. */
export async function deleteDisk(db: Db, id: string): Promise<void> {
  await run(() => db`delete from vm_disks where id = ${id}`);
}

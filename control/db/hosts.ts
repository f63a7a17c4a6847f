/** Queries of `hosts`. */
import type { Db, Page, PageOf } from "./query.ts";
import { deleteById, getById, insertRow, listPage, run, updateRow } from "./query.ts";
import { HOLDS_RESOURCES } from "../domain/vm_status.ts";

export const HOST_STATUSES = [
  "unknown",
  "down",
  "installing",
  "installation_failed",
  "initializing",
  "up",
  "maintenance",
] as const;
export type HostStatus = typeof HOST_STATUSES[number];

/** A host row. */
export interface HostRow {
  id: string;
  name: string;
  address: string;
  port: number;
  status: HostStatus;
  status_reason: string | null;
  labels: Record<string, string>;
  reservation_class: string | null;
  architecture: string | null;
  total_cpus: number | null;
  total_memory_bytes: number | null;
  available_memory_bytes: number | null;
  load_average: number | null;
  cloud_hypervisor_version: string | null;
  kernel_version: string | null;
  node_version: string | null;
  cloud_hypervisor_emulated: boolean | null;
  kvm_available: boolean | null;
  disk_total_bytes: number | null;
  disk_available_bytes: number | null;
  last_seen_at: Date | null;
  created_at: Date;
  updated_at: Date;
  version: number;
}

const TABLE = "hosts";
export const HOST_COLUMNS = [
  "id",
  "name",
  "address",
  "port",
  "status",
  "status_reason",
  "labels",
  "reservation_class",
  "architecture",
  "total_cpus",
  "total_memory_bytes",
  "available_memory_bytes",
  "load_average",
  "cloud_hypervisor_version",
  "kernel_version",
  "node_version",
  "cloud_hypervisor_emulated",
  "kvm_available",
  "disk_total_bytes",
  "disk_available_bytes",
  "last_seen_at",
  "created_at",
  "updated_at",
  "version",
] as const;
const LIST_COLUMNS = HOST_COLUMNS.filter((c) => c !== "version");
const JSON_COLUMNS = ["labels"];

/** Exact-match filters of the host list. */
export interface HostFilters {
  name?: string;
  status?: HostStatus;
  architecture?: string;
  reservation_class?: string;
}

/** Inserts a host. */
export function insertHost(db: Db, row: Partial<HostRow>): Promise<HostRow> {
  return insertRow<HostRow>(db, TABLE, HOST_COLUMNS, row, JSON_COLUMNS);
}

/** One host; `lock` takes a row lock. */
export function getHost(db: Db, id: string, lock = false): Promise<HostRow | undefined> {
  return getById<HostRow>(db, TABLE, HOST_COLUMNS, id, lock);
}

/** Updates fields of a host. */
export function updateHost(
  db: Db,
  id: string,
  fields: Partial<HostRow>,
): Promise<HostRow | undefined> {
  return updateRow<HostRow>(db, TABLE, HOST_COLUMNS, id, fields, JSON_COLUMNS);
}

/** Deletes a host. */
export function deleteHost(db: Db, id: string): Promise<boolean> {
  return deleteById(db, TABLE, id);
}

/** Oldest first. */
export function listHosts(db: Db, f: HostFilters, page: Page): Promise<PageOf<HostRow>> {
  const where = [];
  if (f.name !== undefined) where.push(db`name = ${f.name}`);
  if (f.status !== undefined) where.push(db`status = ${f.status}`);
  if (f.architecture !== undefined) where.push(db`architecture = ${f.architecture}`);
  if (f.reservation_class !== undefined) {
    where.push(db`reservation_class = ${f.reservation_class}`);
  }
  return listPage<HostRow>(db, { list: "hosts", table: TABLE, columns: LIST_COLUMNS, where, page });
}

/** Names of (up to `limit`) VMs placed on a host, and their count. */
export async function vmsOnHost(
  db: Db,
  hostId: string,
  limit = 5,
): Promise<{ count: number; names: string[] }> {
  const rows = await run(() =>
    db<{ name: string; count: number }[]>`
      select name, count(*) over () as count from vms where host_id = ${hostId}
      order by name limit ${limit}`
  );
  return { count: rows[0]?.count ?? 0, names: rows.map((r) => r.name) };
}

/** vCPUs and memory held by the host's VMs (those in a status that holds resources). */
export async function allocatedOnHost(
  db: Db,
  hostId: string,
): Promise<{ vms: number; vcpus: number; memory_bytes: number }> {
  const [row] = await run(() =>
    db<{ vms: number; vcpus: number; memory_bytes: number }[]>`
      select count(*)::int as vms,
             coalesce(sum(boot_vcpus), 0)::int as vcpus,
             coalesce(sum(memory_size), 0)::int8 as memory_bytes
      from vms
      where host_id = ${hostId} and status = any(${db.array([...HOLDS_RESOURCES])}::vm_status[])`
  );
  return row;
}

/**
 * Queries of `vms`. Status changes by the orchestration layer go through its own function
 * (which also records the event); this module offers the plain row operations.
 */
import type { Db } from "./query.ts";
import { tableQueries } from "./query.ts";
import type { Placement, VmConsole } from "../domain/vm_fields.ts";
import type { VmStatus } from "../domain/vm_status.ts";

/** A VM row. */
export interface VmRow {
  id: string;
  name: string;
  description: string | null;
  tags: string[];
  status: VmStatus;
  status_reason: string | null;
  host_id: string | null;
  hypervisor: "cloud_hv";
  architecture: string | null;
  boot_mode: "kernel" | "firmware";
  boot_source_id: string | null;
  instance_type_id: string | null;
  vm_template_id: string | null;
  boot_vcpus: number;
  max_vcpus: number;
  memory_size: number;
  memory_hotplug_size: number | null;
  memory_shared: boolean;
  memory_hugepages: boolean;
  /** Where the serial console goes: a log file on the node, or an interactive socket. */
  console: VmConsole;
  cloud_init_user_data: string | null;
  cloud_init_meta_data: string | null;
  cloud_init_network_config: string | null;
  placement: Placement;
  config: Record<string, unknown>;
  created_at: Date;
  updated_at: Date;
  version: number;
}

export const VM_COLUMNS = [
  "id",
  "name",
  "description",
  "tags",
  "status",
  "status_reason",
  "host_id",
  "hypervisor",
  "architecture",
  "boot_mode",
  "boot_source_id",
  "instance_type_id",
  "vm_template_id",
  "boot_vcpus",
  "max_vcpus",
  "memory_size",
  "memory_hotplug_size",
  "memory_shared",
  "memory_hugepages",
  "console",
  "cloud_init_user_data",
  "cloud_init_meta_data",
  "cloud_init_network_config",
  "placement",
  "config",
  "created_at",
  "updated_at",
  "version",
] as const;

export const vms = tableQueries<VmRow>("vms", VM_COLUMNS, ["placement", "config"]);

/** Exact-match filters of the VM list; `tags` means "carries all of these". */
export interface VmFilters {
  name?: string;
  status?: VmStatus;
  host_id?: string;
  tags?: string[];
}

/** Filters as SQL conditions. */
export function vmFilters(db: Db, f: VmFilters) {
  const where = [];
  if (f.name !== undefined) where.push(db`name = ${f.name}`);
  if (f.status !== undefined) where.push(db`status = ${f.status}`);
  if (f.host_id !== undefined) where.push(db`host_id = ${f.host_id}`);
  if (f.tags?.length) where.push(db`tags @> ${db.array(f.tags)}::text[]`);
  return where;
}

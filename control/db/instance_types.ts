/** Queries of `instance_types` (sizing presets). */
import { tableQueries } from "./query.ts";

/** An instance type row. */
export interface InstanceTypeRow {
  id: string;
  name: string;
  description: string | null;
  architecture: string | null;
  boot_vcpus: number;
  max_vcpus: number | null;
  memory_size: number;
  memory_hotplug_size: number | null;
  memory_shared: boolean | null;
  memory_hugepages: boolean | null;
  created_at: Date;
  updated_at: Date;
  version: number;
}

export const instanceTypes = tableQueries<InstanceTypeRow>("instance_types", [
  "id",
  "name",
  "description",
  "architecture",
  "boot_vcpus",
  "max_vcpus",
  "memory_size",
  "memory_hotplug_size",
  "memory_shared",
  "memory_hugepages",
  "created_at",
  "updated_at",
  "version",
]);

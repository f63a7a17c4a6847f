/** Queries of `vm_templates`. */
import { tableQueries } from "./query.ts";
import type { Placement, TemplateNic, VmConsole } from "../domain/vm_fields.ts";

/** A VM template row. */
export interface VmTemplateRow {
  id: string;
  name: string;
  description: string | null;
  hypervisor: "cloud_hv" | null;
  architecture: string | null;
  boot_mode: "kernel" | "firmware" | null;
  boot_source_id: string | null;
  boot_vcpus: number | null;
  max_vcpus: number | null;
  memory_size: number | null;
  memory_hotplug_size: number | null;
  memory_shared: boolean | null;
  memory_hugepages: boolean | null;
  console: VmConsole | null;
  cloud_init_user_data: string | null;
  cloud_init_meta_data: string | null;
  cloud_init_network_config: string | null;
  placement: Partial<Placement> | null;
  tags: string[];
  config: Record<string, unknown>;
  nics: TemplateNic[];
  created_at: Date;
  updated_at: Date;
  version: number;
}

export const vmTemplates = tableQueries<VmTemplateRow>("vm_templates", [
  "id",
  "name",
  "description",
  "hypervisor",
  "architecture",
  "boot_mode",
  "boot_source_id",
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
  "tags",
  "config",
  "nics",
  "created_at",
  "updated_at",
  "version",
], ["placement", "config", "nics"]);

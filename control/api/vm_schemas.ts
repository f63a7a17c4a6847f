/** zod schemas shared by VMs and VM templates (sizing, boot, cloud-init, placement, NICs). */
import { z } from "@hono/zod-openapi";
import {
  Architecture,
  Description,
  HotplugSize,
  Id,
  Labels,
  MemorySize,
  Name,
  Tag,
  Vcpus,
} from "./common.ts";
import { VM_CONSOLES } from "../domain/vm_fields.ts";

/** Cloud-init documents: text up to 256 KiB each. */
export const CloudInitText = z.string().max(256 * 1024);

export const Hypervisor = z.enum(["cloud_hv"]);
export const BootMode = z.enum(["kernel", "firmware"]);

const ClassName = z.string().regex(
  /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/,
  "1-63 of A-Z a-z 0-9 _ . -",
);

/** Placement constraints (input; every key optional). */
export const PlacementInput = z.strictObject({
  reservation_class: ClassName.nullable().optional(),
  required_host_labels: Labels.optional(),
  preferred_host_labels: Labels.optional(),
  affinity_tags: z.array(Tag).max(32).optional(),
  anti_affinity_tags: z.array(Tag).max(32).optional(),
  spread_tags: z.array(Tag).max(32).optional(),
}).openapi("PlacementInput");

/** A merge patch of a placement: null removes a key (or a label). */
export const PlacementPatch = z.strictObject({
  reservation_class: ClassName.nullable().optional(),
  required_host_labels: z.record(z.string(), z.string().max(255).nullable()).nullable().optional(),
  preferred_host_labels: z.record(z.string(), z.string().max(255).nullable()).nullable().optional(),
  affinity_tags: z.array(Tag).max(32).nullable().optional(),
  anti_affinity_tags: z.array(Tag).max(32).nullable().optional(),
  spread_tags: z.array(Tag).max(32).nullable().optional(),
}).openapi("PlacementPatch");

/** Placement as stored and served (every key present). */
export const Placement = z.object({
  reservation_class: z.string().nullable(),
  required_host_labels: z.record(z.string(), z.string()),
  preferred_host_labels: z.record(z.string(), z.string()),
  affinity_tags: z.array(z.string()),
  anti_affinity_tags: z.array(z.string()),
  spread_tags: z.array(z.string()),
}).openapi("Placement");

/** Free-form VM config (JSON object). */
export const Config = z.record(z.string(), z.unknown());

/** A NIC a template gives every VM made from it. */
export const TemplateNic = z.strictObject({
  network_id: Id,
  mtu: z.int().min(68).max(65535).nullable().optional(),
}).openapi("TemplateNic");

/** Where the VM's serial console goes (a VM's own, else its template's, else `log`). */
export const VmConsoleMode = z.enum(VM_CONSOLES).openapi({
  description: "Serial console: `log` (a log file on the node, GET /vms/{id}/console) or " +
    "`socket` (interactive, GET /vms/{id}/console/attach). Default: the template's, else `log`.",
});

/** Same fields as a merge patch (placement keys may be null). */
export function vmFieldsPatch() {
  return { ...VmFieldsInput, placement: PlacementPatch.nullable().optional() };
}

/** Fields both a VM and a template may set (all optional; null = not set). */
export const VmFieldsInput = {
  description: Description.nullable().optional(),
  hypervisor: Hypervisor.nullable().optional(),
  architecture: Architecture.nullable().optional(),
  boot_mode: BootMode.nullable().optional(),
  boot_source_id: Id.nullable().optional(),
  boot_vcpus: Vcpus.nullable().optional(),
  max_vcpus: Vcpus.nullable().optional(),
  memory_size: MemorySize.nullable().optional(),
  memory_hotplug_size: HotplugSize.nullable().optional(),
  memory_shared: z.boolean().nullable().optional(),
  memory_hugepages: z.boolean().nullable().optional(),
  console: VmConsoleMode.nullable().optional(),
  cloud_init_user_data: CloudInitText.nullable().optional(),
  cloud_init_meta_data: CloudInitText.nullable().optional(),
  cloud_init_network_config: CloudInitText.nullable().optional(),
  placement: PlacementInput.nullable().optional(),
  tags: z.array(Tag).max(64).nullable().optional(),
  config: Config.nullable().optional(),
};

export { Name };

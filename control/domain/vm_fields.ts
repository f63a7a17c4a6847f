/**
 * Resolution of a new VM's fields, pure: each field comes from the request, else the instance
 * type (sizing and architecture), else the template, else the server's `vm_defaults` (the
 * console: `log`); then the
 * combination is checked (max_vcpus ≥ boot_vcpus, boot source matching the boot mode).
 */
import { InvalidArgumentError } from "../../shared/errors/errors.ts";

/** Where VMs may be placed; stored normalised (every key present). */
export interface Placement {
  reservation_class: string | null;
  required_host_labels: Record<string, string>;
  preferred_host_labels: Record<string, string>;
  affinity_tags: string[];
  anti_affinity_tags: string[];
  spread_tags: string[];
}

/** A placement with every key present. */
export function normalizePlacement(p: Partial<Placement> | null | undefined): Placement {
  return {
    reservation_class: p?.reservation_class ?? null,
    required_host_labels: { ...(p?.required_host_labels ?? {}) },
    preferred_host_labels: { ...(p?.preferred_host_labels ?? {}) },
    affinity_tags: [...(p?.affinity_tags ?? [])],
    anti_affinity_tags: [...(p?.anti_affinity_tags ?? [])],
    spread_tags: [...(p?.spread_tags ?? [])],
  };
}

/** Where a VM's serial console goes: a log file on the node, or an interactive socket. */
export const VM_CONSOLES = ["log", "socket"] as const;
export type VmConsole = typeof VM_CONSOLES[number];

/** A NIC a template gives to each VM made from it. */
export interface TemplateNic {
  network_id: string;
  mtu?: number | null;
}

/** The sizing fields an instance type sets. */
export interface SizingFields {
  architecture?: string | null;
  boot_vcpus?: number | null;
  max_vcpus?: number | null;
  memory_size?: number | null;
  memory_hotplug_size?: number | null;
  memory_shared?: boolean | null;
  memory_hugepages?: boolean | null;
}

/** Fields a template (or a request) may set; null and undefined both mean "not set". */
export interface VmFieldSet extends SizingFields {
  hypervisor?: "cloud_hv" | null;
  boot_mode?: "kernel" | "firmware" | null;
  boot_source_id?: string | null;
  console?: VmConsole | null;
  cloud_init_user_data?: string | null;
  cloud_init_meta_data?: string | null;
  cloud_init_network_config?: string | null;
  placement?: Partial<Placement> | null;
  tags?: string[] | null;
  config?: Record<string, unknown> | null;
  nics?: TemplateNic[] | null;
}

/** Server defaults (config `vm_defaults`, architecture already resolved). */
export interface VmDefaults {
  hypervisor: "cloud_hv";
  boot_mode: "kernel" | "firmware";
  architecture: string;
  boot_vcpus: number;
  memory_size: number;
}

/** The resolved fields stored on the VM row. */
export interface ResolvedVmFields {
  hypervisor: "cloud_hv";
  architecture: string;
  boot_mode: "kernel" | "firmware";
  boot_source_id: string | null;
  boot_vcpus: number;
  max_vcpus: number;
  memory_size: number;
  memory_hotplug_size: number | null;
  memory_shared: boolean;
  memory_hugepages: boolean;
  console: VmConsole;
  cloud_init_user_data: string | null;
  cloud_init_meta_data: string | null;
  cloud_init_network_config: string | null;
  placement: Placement;
  tags: string[];
  config: Record<string, unknown>;
  nics: TemplateNic[];
}

function pick<K extends keyof VmFieldSet>(
  key: K,
  ...layers: (VmFieldSet | SizingFields | undefined)[]
): NonNullable<VmFieldSet[K]> | undefined {
  for (const layer of layers) {
    const v = (layer as VmFieldSet | undefined)?.[key];
    if (v !== undefined && v !== null) return v as NonNullable<VmFieldSet[K]>;
  }
  return undefined;
}

/** Resolves request > instance type > template > defaults and checks the result. */
export function resolveVmFields(
  request: VmFieldSet,
  instanceType: SizingFields | undefined,
  template: VmFieldSet | undefined,
  defaults: VmDefaults,
): ResolvedVmFields {
  const sized = [request, instanceType, template] as const;
  const boot_vcpus = pick("boot_vcpus", ...sized) ?? defaults.boot_vcpus;
  let max_vcpus = pick("max_vcpus", ...sized) ?? boot_vcpus;
  if (max_vcpus < boot_vcpus) {
    if (request.max_vcpus !== undefined && request.max_vcpus !== null) {
      throw InvalidArgumentError.field(
        "max_vcpus",
        `must be at least boot_vcpus (${boot_vcpus})`,
      );
    }
    // A preset's maximum below the requested boot count is raised rather than refused.
    max_vcpus = boot_vcpus;
  }
  const boot_mode = pick("boot_mode", request, template) ?? defaults.boot_mode;
  return {
    hypervisor: pick("hypervisor", request, template) ?? defaults.hypervisor,
    architecture: pick("architecture", ...sized) ?? defaults.architecture,
    boot_mode,
    boot_source_id: pick("boot_source_id", request, template) ?? null,
    boot_vcpus,
    max_vcpus,
    memory_size: pick("memory_size", ...sized) ?? defaults.memory_size,
    memory_hotplug_size: pick("memory_hotplug_size", ...sized) ?? null,
    memory_shared: pick("memory_shared", ...sized) ?? false,
    memory_hugepages: pick("memory_hugepages", ...sized) ?? false,
    // Instance types are sizing only, so the console comes from the request or the template.
    console: pick("console", request, template) ?? "log",
    cloud_init_user_data: pick("cloud_init_user_data", request, template) ?? null,
    cloud_init_meta_data: pick("cloud_init_meta_data", request, template) ?? null,
    cloud_init_network_config: pick("cloud_init_network_config", request, template) ?? null,
    placement: normalizePlacement(pick("placement", request, template)),
    tags: [...new Set(pick("tags", request, template) ?? [])],
    // Template config keys are kept unless the request sets the same key.
    config: { ...(template?.config ?? {}), ...(request.config ?? {}) },
    nics: pick("nics", request, template) ?? [],
  };
}

/** The fields of an existing VM that a template keeps (with `resolveVmFields`, they give them back). */
export type VmReusableFields = Omit<ResolvedVmFields, "nics" | "architecture"> & {
  architecture: string | null;
};

/**
 * The template fields that recreate VM `vm`: its reusable fields and one template NIC per NIC
 * (network and MTU; addresses and MACs are per VM). Identity, host and status are not copied.
 */
export function templateFieldsOf(
  vm: VmReusableFields,
  nics: readonly TemplateNic[],
): Required<Omit<VmFieldSet, "placement">> & { placement: Placement; nics: TemplateNic[] } {
  return {
    hypervisor: vm.hypervisor,
    architecture: vm.architecture,
    boot_mode: vm.boot_mode,
    boot_source_id: vm.boot_source_id,
    boot_vcpus: vm.boot_vcpus,
    max_vcpus: vm.max_vcpus,
    memory_size: vm.memory_size,
    memory_hotplug_size: vm.memory_hotplug_size,
    memory_shared: vm.memory_shared,
    memory_hugepages: vm.memory_hugepages,
    console: vm.console,
    cloud_init_user_data: vm.cloud_init_user_data,
    cloud_init_meta_data: vm.cloud_init_meta_data,
    cloud_init_network_config: vm.cloud_init_network_config,
    placement: normalizePlacement(vm.placement),
    tags: [...vm.tags],
    config: structuredClone(vm.config),
    nics: nics.map((n) => ({ network_id: n.network_id, mtu: n.mtu ?? null })),
  };
}

/** Checks that a boot source fits the VM's boot mode. */
export function checkBootSource(
  bootMode: "kernel" | "firmware",
  source: { id: string; boot_mode: "kernel" | "firmware" } | undefined,
): void {
  if (source && source.boot_mode !== bootMode) {
    throw InvalidArgumentError.field(
      "boot_source_id",
      `boot source ${source.id} boots ${source.boot_mode}, but boot_mode is ${bootMode}`,
    );
  }
}

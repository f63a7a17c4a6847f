/**
 * VM placement, pure: filter the hosts a VM can run on, then rank the survivors. Filters, in
 * order: host status (only `up`; `maintenance` hosts are never chosen), architecture,
 * reservation class, required labels, networks and storage pools attached to the host, the
 * host holding its files of local pools (such a file exists on one host only), vCPU
 * and memory capacity (overcommit ratios applied, counting the VMs that hold resources) and
 * anti-affinity tags. Ranking: preferred labels, affinity tags (more is better), spread tags
 * (fewer is better), then the strategy (`spread`: least loaded; `pack`: most loaded), then
 * name and id, so equal inputs always give the same answer. When nothing fits, the result
 * says which filter removed which hosts.
 */
import type { Placement } from "./vm_fields.ts";

/** What placement needs to know about the VM. */
export interface PlacementVm {
  id: string;
  name: string;
  architecture: string | null;
  boot_vcpus: number;
  memory_size: number;
  tags: string[];
  placement: Placement;
  /** Networks its NICs are on. */
  networks: string[];
  /** Storage pools its disks and boot files are in. */
  pools: string[];
  /** Its disks and boot files that live on one host (local pools, host known). */
  local_objects: LocalObject[];
}

/** A storage object whose file exists on one host only. */
export interface LocalObject {
  id: string;
  name: string;
  host_id: string;
  host_name: string;
}

/** What placement needs to know about a host (the caller fills the sums and sets). */
export interface PlacementHost {
  id: string;
  name: string;
  status: string;
  architecture: string | null;
  labels: Record<string, string>;
  reservation_class: string | null;
  total_cpus: number | null;
  total_memory_bytes: number | null;
  /** vCPUs and memory of the VMs on the host that hold resources (not this VM). */
  allocated_vcpus: number;
  allocated_memory_bytes: number;
  /** Networks and storage pools attached to the host. */
  networks: string[];
  pools: string[];
  /** Tags of each VM on the host that holds resources (not this VM). */
  vm_tags: string[][];
}

/** The knobs from configuration (`scheduling`). */
export interface PlacementPolicy {
  cpu_overcommit_ratio: number;
  memory_overcommit_ratio: number;
  strategy: "spread" | "pack";
}

/** The filters, in the order they apply. */
export const FILTERS = [
  "status",
  "architecture",
  "reservation_class",
  "labels",
  "networks",
  "storage_pools",
  "local_objects",
  "vcpus",
  "memory",
  "anti_affinity",
] as const;
export type FilterName = typeof FILTERS[number];

/** Why one host was removed. */
export interface Rejection {
  filter: FilterName;
  host_id: string;
  host: string;
  reason: string;
}

/** A host that fits, with the parts of its rank. */
export interface Candidate {
  host: PlacementHost;
  preferred_labels: number;
  affinity: number;
  spread: number;
  /** Fraction of the host's capacity in use once the VM is placed (0..1+). */
  load: number;
}

/** The outcome: the chosen host and the ranking, or why nothing fits. */
export type PlacementResult =
  | { ok: true; host: PlacementHost; ranked: Candidate[]; rejections: Rejection[] }
  | { ok: false; rejections: Rejection[]; message: string };

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

/** Bytes as a short human string (GiB or MiB). */
export function formatBytes(n: number): string {
  if (Math.abs(n) >= GiB) return `${+(n / GiB).toFixed(2)} GiB`;
  return `${+(n / MiB).toFixed(0)} MiB`;
}

function capacity(total: number | null, ratio: number): number | null {
  return total === null ? null : Math.floor(total * ratio);
}

function carriesAny(tags: string[], wanted: string[]): boolean {
  return wanted.some((t) => tags.includes(t));
}

/**
 * Whether `host` has room for `vm`'s vCPUs and memory (overcommit ratios applied, next to
 * what its other resource-holding VMs use); null when it does. Placement and resizing a
 * running VM both ask this.
 */
export function capacityRejection(
  vm: Pick<PlacementVm, "boot_vcpus" | "memory_size">,
  host: Pick<
    PlacementHost,
    "total_cpus" | "total_memory_bytes" | "allocated_vcpus" | "allocated_memory_bytes"
  >,
  policy: Omit<PlacementPolicy, "strategy">,
): { filter: "vcpus" | "memory"; reason: string } | null {
  const cpuCap = capacity(host.total_cpus, policy.cpu_overcommit_ratio);
  if (cpuCap === null) return { filter: "vcpus", reason: "has unknown capacity" };
  const cpuFree = cpuCap - host.allocated_vcpus;
  if (cpuFree < vm.boot_vcpus) {
    return {
      filter: "vcpus",
      reason: `has ${Math.max(cpuFree, 0)} of ${cpuCap} vCPUs free, the vm needs ${vm.boot_vcpus}`,
    };
  }
  const memCap = capacity(host.total_memory_bytes, policy.memory_overcommit_ratio);
  if (memCap === null) return { filter: "memory", reason: "has unknown capacity" };
  const memFree = memCap - host.allocated_memory_bytes;
  if (memFree < vm.memory_size) {
    return {
      filter: "memory",
      reason: `has ${formatBytes(Math.max(memFree, 0))} of ${formatBytes(memCap)} free, the vm ` +
        `needs ${formatBytes(vm.memory_size)}`,
    };
  }
  return null;
}

/** The first filter `host` fails, with a reason, or null when it passes them all. */
export function rejectionOf(
  vm: PlacementVm,
  host: PlacementHost,
  policy: PlacementPolicy,
): { filter: FilterName; reason: string } | null {
  const p = vm.placement;
  if (host.status !== "up") {
    const why = host.status === "maintenance"
      ? "is in maintenance"
      : host.status === "unknown"
      ? "is not initialised"
      : `is ${host.status}`;
    return { filter: "status", reason: why };
  }
  if (vm.architecture && host.architecture !== vm.architecture) {
    return {
      filter: "architecture",
      reason: `is ${
        host.architecture ?? "of unknown architecture"
      }, the vm needs ${vm.architecture}`,
    };
  }
  if ((p.reservation_class ?? null) !== (host.reservation_class ?? null)) {
    return {
      filter: "reservation_class",
      reason: host.reservation_class
        ? `is reserved for class ${host.reservation_class}`
        : `has no reservation class (the vm asks for ${p.reservation_class})`,
    };
  }
  const missing = Object.entries(p.required_host_labels)
    .filter(([k, v]) => host.labels[k] !== v).map(([k, v]) => `${k}=${v}`);
  if (missing.length) {
    return { filter: "labels", reason: `lacks label ${missing.join(", ")}` };
  }
  const nets = vm.networks.filter((n) => !host.networks.includes(n));
  if (nets.length) {
    return { filter: "networks", reason: `does not have network ${nets.join(", ")} attached` };
  }
  const pools = vm.pools.filter((n) => !host.pools.includes(n));
  if (pools.length) {
    return {
      filter: "storage_pools",
      reason: `does not have storage pool ${pools.join(", ")} attached`,
    };
  }
  const away = vm.local_objects.filter((o) => o.host_id !== host.id);
  if (away.length) {
    return {
      filter: "local_objects",
      reason: `does not hold ${away.map((o) => `${o.name} (on ${o.host_name})`).join(", ")}`,
    };
  }
  const short = capacityRejection(vm, host, policy);
  if (short) return short;
  if (p.anti_affinity_tags.length) {
    const clash = host.vm_tags.filter((tags) => carriesAny(tags, p.anti_affinity_tags)).length;
    if (clash) {
      return {
        filter: "anti_affinity",
        reason: `runs ${clash} vm(s) tagged ${p.anti_affinity_tags.join(" or ")}`,
      };
    }
  }
  return null;
}

function candidate(vm: PlacementVm, host: PlacementHost, policy: PlacementPolicy): Candidate {
  const p = vm.placement;
  const cpuCap = capacity(host.total_cpus, policy.cpu_overcommit_ratio) || 1;
  const memCap = capacity(host.total_memory_bytes, policy.memory_overcommit_ratio) || 1;
  return {
    host,
    preferred_labels: Object.entries(p.preferred_host_labels)
      .filter(([k, v]) => host.labels[k] === v).length,
    affinity: p.affinity_tags.length
      ? host.vm_tags.filter((t) => carriesAny(t, p.affinity_tags)).length
      : 0,
    spread: p.spread_tags.length
      ? host.vm_tags.filter((t) => carriesAny(t, p.spread_tags)).length
      : 0,
    load: Math.max(
      (host.allocated_vcpus + vm.boot_vcpus) / cpuCap,
      (host.allocated_memory_bytes + vm.memory_size) / memCap,
    ),
  };
}

/** Orders candidates best first (deterministic). */
export function compareCandidates(strategy: PlacementPolicy["strategy"]) {
  return (a: Candidate, b: Candidate): number =>
    b.preferred_labels - a.preferred_labels ||
    b.affinity - a.affinity ||
    a.spread - b.spread ||
    (strategy === "spread" ? a.load - b.load : b.load - a.load) ||
    (a.host.name < b.host.name ? -1 : a.host.name > b.host.name ? 1 : 0) ||
    (a.host.id < b.host.id ? -1 : a.host.id > b.host.id ? 1 : 0);
}

/** Chooses a host for `vm` among `hosts`. */
export function place(
  vm: PlacementVm,
  hosts: readonly PlacementHost[],
  policy: PlacementPolicy,
): PlacementResult {
  const rejections: Rejection[] = [];
  const fit: Candidate[] = [];
  for (const host of hosts) {
    const r = rejectionOf(vm, host, policy);
    if (r) rejections.push({ ...r, host_id: host.id, host: host.name });
    else fit.push(candidate(vm, host, policy));
  }
  if (fit.length) {
    const ranked = fit.sort(compareCandidates(policy.strategy));
    return { ok: true, host: ranked[0].host, ranked, rejections };
  }
  return { ok: false, rejections, message: noFitMessage(vm, rejections) };
}

/** "no host fits vm x: status: a is down; memory: b has …" (at most 5 hosts per filter). */
export function noFitMessage(vm: PlacementVm, rejections: readonly Rejection[]): string {
  const head = `no host can run vm ${vm.name} (${vm.boot_vcpus} vCPU, ` +
    `${formatBytes(vm.memory_size)})`;
  if (rejections.length === 0) return `${head}: there are no hosts`;
  const parts: string[] = [];
  const split = splitLocalObjects(vm);
  for (const filter of FILTERS) {
    const rs = rejections.filter((r) => r.filter === filter);
    if (!rs.length) continue;
    if (filter === "local_objects" && split) {
      parts.push(`${filter}: ${split}`);
      continue;
    }
    const shown = rs.slice(0, 5).map((r) => `${r.host} ${r.reason}`);
    const more = rs.length > 5 ? ` (and ${rs.length - 5} more)` : "";
    parts.push(`${filter}: ${shown.join(", ")}${more}`);
  }
  return `${head}: ${parts.join("; ")}`;
}

/**
 * When the VM's local-pool files are on several hosts no host can ever hold them all: says so,
 * naming them ("its local-pool files are on different hosts: root on a; data on b"), else null.
 */
export function splitLocalObjects(vm: PlacementVm): string | null {
  const byHost = new Map<string, LocalObject[]>();
  for (const o of vm.local_objects) byHost.set(o.host_id, [...byHost.get(o.host_id) ?? [], o]);
  if (byHost.size < 2) return null;
  const hosts = [...byHost.values()].sort((x, y) =>
    x[0].host_name < y[0].host_name ? -1 : x[0].host_name > y[0].host_name ? 1 : 0
  );
  const where = hosts.map((os) => `${os.map((o) => o.name).join(", ")} on ${os[0].host_name}`);
  return `its files in local pools are on different hosts (${where.join("; ")}), so no ` +
    "single host can run it; move or recreate them on one host";
}

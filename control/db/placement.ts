/**
 * The host side of placement, read inside the placing transaction: every candidate host
 * locked (so two placements never use the same free capacity), with what its resource-holding
 * VMs use, which of the needed networks and pools it has, and (only when the VM's policy uses
 * tags) the tags of the VMs on it; and the VM's files that live on one host (local pools).
 */
import type { Db } from "./query.ts";
import { run } from "./query.ts";
import type { LocalObject, PlacementHost } from "../domain/placement.ts";
import { HOLDS_RESOURCES } from "../domain/vm_status.ts";

/** What to read. */
export interface HostQuery {
  /** The VM being placed (not counted on its current host). */
  vmId: string;
  /** Only this host (a VM that already has one); all hosts otherwise. */
  hostId?: string | null;
  networks: string[];
  pools: string[];
  /** Tags whose holders matter (affinity, anti-affinity, spread); empty skips the read. */
  tags: string[];
}

/** Candidate hosts for placement; `up` hosts are locked until the transaction ends. */
export async function placementHosts(tx: Db, q: HostQuery): Promise<PlacementHost[]> {
  const only = q.hostId ? tx`where h.id = ${q.hostId}` : tx``;
  // Lock the hosts that can be chosen, in id order (no deadlock between placements).
  await run(() =>
    tx`select id from hosts h ${only} ${q.hostId ? tx`and` : tx`where`} h.status = 'up'
       order by id for no key update`
  );
  const hosts = await run(() =>
    tx<
      (Omit<PlacementHost, "networks" | "pools" | "vm_tags">)[]
    >`
      select h.id, h.name, h.status::text as status, h.architecture, h.labels,
             h.reservation_class, h.total_cpus, h.total_memory_bytes,
             coalesce(a.vcpus, 0)::int as allocated_vcpus,
             coalesce(a.memory, 0)::int8 as allocated_memory_bytes
      from hosts h
      left join (
        select host_id, sum(boot_vcpus) as vcpus, sum(memory_size) as memory from vms
        where host_id is not null and id <> ${q.vmId}
          and status = any(${tx.array([...HOLDS_RESOURCES])}::vm_status[])
        group by host_id
      ) a on a.host_id = h.id
      ${only}
      order by h.name, h.id`
  );
  const ids = hosts.map((h) => h.id);
  const nets = q.networks.length
    ? await run(() =>
      tx<{ host_id: string; id: string }[]>`
        select host_id, network_id as id from host_networks
        where network_id = any(${tx.array(q.networks)}::uuid[]) and status <> 'failed'`
    )
    : [];
  const pools = q.pools.length
    ? await run(() =>
      tx<{ host_id: string; id: string }[]>`
        select host_id, storage_pool_id as id from host_storage_pools
        where storage_pool_id = any(${tx.array(q.pools)}::uuid[]) and status <> 'failed'`
    )
    : [];
  const tagged = q.tags.length
    ? await run(() =>
      tx<{ host_id: string; tags: string[] }[]>`
        select host_id, tags from vms
        where host_id = any(${tx.array(ids)}::uuid[]) and id <> ${q.vmId}
          and status = any(${tx.array([...HOLDS_RESOURCES])}::vm_status[])
          and tags && ${tx.array(q.tags)}::text[]`
    )
    : [];
  return hosts.map((h) => ({
    ...h,
    networks: nets.filter((n) => n.host_id === h.id).map((n) => n.id),
    pools: pools.filter((p) => p.host_id === h.id).map((p) => p.id),
    vm_tags: tagged.filter((t) => t.host_id === h.id).map((t) => t.tags),
  }));
}

/**
 * The VM's disks and boot-source files (kernel, initrd, firmware) that exist on one host only:
 * objects of local pools whose host is known. Objects of shared pools, and local ones whose
 * host is unknown (null), do not constrain placement.
 */
export function vmLocalObjects(
  db: Db,
  vmId: string,
  bootSourceId: string | null,
): Promise<LocalObject[]> {
  return run(() =>
    db<LocalObject[]>`
      select o.id, o.name, o.host_id, h.name as host_name
      from storage_objects o
      join storage_pools p on p.id = o.storage_pool_id and p.type = 'local'
      join hosts h on h.id = o.host_id
      where o.id in (
        select storage_object_id from vm_disks where vm_id = ${vmId}
        union all
        select x from boot_sources b,
          unnest(array[b.kernel_image_id, b.initrd_image_id, b.firmware_image_id]) x
        where b.id = ${bootSourceId} and x is not null
      )
      order by o.name, o.id`
  );
}

/**
 * What a VM needs on its host, read for placement and for the node spec: its disks and boot
 * files resolved to paths (pool directory + object path) with their pools, its NICs with their
 * networks and the bridge each network has on the VM's host.
 */
import type { Db } from "./query.ts";
import { run } from "./query.ts";
import type { SpecDisk, SpecNic } from "../domain/node_spec.ts";
import { objectFile, type ResolvedBootSource } from "../domain/node_spec.ts";

/** A disk with its object's state and pool. */
export interface VmDiskFile extends SpecDisk {
  storage_object_id: string;
  object_name: string;
  object_status: "creating" | "ready" | "failed";
  pool_id: string;
}

/** A NIC with its network; `bridge` is null when the network is not attached to the host. */
export interface VmNicNetwork extends Omit<SpecNic, "bridge"> {
  network_id: string;
  network_name: string;
  bridge: string | null;
}

/** The VM's disks in device order, with their files. */
export async function vmDiskFiles(db: Db, vmId: string): Promise<VmDiskFile[]> {
  const rows = await run(() =>
    db<(Omit<VmDiskFile, "path"> & { pool_path: string; object_path: string })[]>`
      select d.device_id, d.read_only, d.boot_order, o.format, o.id as storage_object_id,
             o.name as object_name, o.status as object_status, o.path as object_path,
             p.id as pool_id, p.path as pool_path
      from vm_disks d
      join storage_objects o on o.id = d.storage_object_id
      join storage_pools p on p.id = o.storage_pool_id
      where d.vm_id = ${vmId}
      order by d.created_at, length(d.device_id), d.device_id`
  );
  return rows.map(({ pool_path, object_path, ...r }) => ({
    ...r,
    path: objectFile(pool_path, object_path),
  }));
}

/** The VM's NICs in device order, with their networks and bridges on `hostId`. */
export async function vmNicNetworks(
  db: Db,
  vmId: string,
  hostId: string | null,
): Promise<VmNicNetwork[]> {
  const rows = await run(() =>
    db<
      (Omit<VmNicNetwork, "network"> & {
        type: SpecNic["network"]["type"];
        mode: SpecNic["network"]["mode"];
        subnet: string | null;
        gateway: string | null;
        dns: string[];
        network_mtu: number;
      })[]
    >`
      select n.device_id, n.mac_address::text as mac_address, host(n.ip_address) as ip_address,
             n.mtu, n.network_id, w.name as network_name, w.type, w.mode,
             w.subnet::text as subnet, host(w.gateway) as gateway,
             array(select host(x) from unnest(w.dns) x) as dns, w.mtu as network_mtu,
             hn.bridge_name as bridge, hn.parent_interface
      from network_interfaces n
      join networks w on w.id = n.network_id
      left join host_networks hn on hn.network_id = n.network_id and hn.host_id = ${hostId}
      where n.vm_id = ${vmId}
      order by n.created_at, length(n.device_id), n.device_id`
  );
  return rows.map(({ type, mode, subnet, gateway, dns, network_mtu, ...r }) => ({
    ...r,
    network: { type, mode, subnet, gateway, dns, mtu: network_mtu },
  }));
}

/** A boot source with its files, and the pools they are in. */
export async function bootSourceFiles(
  db: Db,
  bootSourceId: string,
): Promise<{ source: ResolvedBootSource; pools: string[] } | undefined> {
  const [src] = await run(() =>
    db<{ name: string; kernel_params: string | null }[]>`
      select name, kernel_params from boot_sources where id = ${bootSourceId}`
  );
  if (!src) return undefined;
  const files = await run(() =>
    db<{ role: string; pool_id: string; pool_path: string; path: string }[]>`
      select r.role, p.id as pool_id, p.path as pool_path, o.path
      from boot_sources b
      cross join lateral (values ('kernel', b.kernel_image_id), ('initramfs', b.initrd_image_id),
                                 ('firmware', b.firmware_image_id)) r(role, object_id)
      join storage_objects o on o.id = r.object_id
      join storage_pools p on p.id = o.storage_pool_id
      where b.id = ${bootSourceId}`
  );
  const source: ResolvedBootSource = { name: src.name, kernel_params: src.kernel_params };
  for (const f of files) {
    source[f.role as "kernel" | "initramfs" | "firmware"] = objectFile(f.pool_path, f.path);
  }
  return { source, pools: [...new Set(files.map((f) => f.pool_id))] };
}

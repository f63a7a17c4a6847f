/** Queries of `network_interfaces` (a VM's NICs). */
import type { Db } from "./query.ts";
import { run } from "./query.ts";

/** A NIC row. */
export interface NicRow {
  id: string;
  vm_id: string;
  device_id: string;
  network_id: string;
  mac_address: string;
  ip_address: string | null;
  mtu: number | null;
  created_at: Date;
  updated_at: Date;
  version: number;
}

export const NIC_COLUMNS = [
  "id",
  "vm_id",
  "device_id",
  "network_id",
  "mac_address",
  "ip_address",
  "mtu",
  "created_at",
  "updated_at",
  "version",
];

const SELECT = (db: Db) =>
  db`id, vm_id, device_id, network_id, mac_address, host(ip_address) as ip_address, mtu,
     created_at, updated_at, version`;

/** Inserts a NIC unless its MAC is taken (then returns undefined so the caller draws again). */
export async function insertNic(
  db: Db,
  row: Omit<NicRow, "created_at" | "updated_at" | "version" | "id"> & { id: string },
): Promise<NicRow | undefined> {
  const [out] = await run(() =>
    db<NicRow[]>`
      insert into network_interfaces ${db(row)}
      on conflict (mac_address) do nothing
      returning ${SELECT(db)}`
  );
  return out;
}

/** The NICs of a VM in device order. */
export function listNics(db: Db, vmId: string): Promise<NicRow[]> {
  return run(() =>
    db<NicRow[]>`select ${SELECT(db)} from network_interfaces where vm_id = ${vmId}
                 order by created_at, length(device_id), device_id`
  );
}

/** One NIC of a VM by device id. */
export async function getNic(db: Db, vmId: string, deviceId: string): Promise<NicRow | undefined> {
  const [row] = await run(() =>
    db<NicRow[]>`select ${SELECT(db)} from network_interfaces
                 where vm_id = ${vmId} and device_id = ${deviceId}`
  );
  return row;
}

/** Removes a NIC (its address goes with it by cascade). */
export async function deleteNic(db: Db, id: string): Promise<void> {
  await run(() => db`delete from network_interfaces where id = ${id}`);
}

/** The NICs with an address on a network, cluster-wide, with their VMs' names. */
export function nicAddressesOn(
  db: Db,
  networkId: string,
): Promise<{ mac: string; ip: string | null; vm_name: string }[]> {
  return run(() =>
    db<{ mac: string; ip: string | null; vm_name: string }[]>`
      select n.mac_address::text as mac, host(n.ip_address) as ip, v.name as vm_name
      from network_interfaces n join vms v on v.id = n.vm_id
      where n.network_id = ${networkId} and n.ip_address is not null
      order by n.ip_address`
  );
}

/** The distinct networks of a VM's NICs. */
export async function networksOfVm(db: Db, vmId: string): Promise<string[]> {
  const rows = await run(() =>
    db<{ id: string }[]>`
      select distinct network_id as id from network_interfaces where vm_id = ${vmId}
      order by network_id`
  );
  return rows.map((r) => r.id);
}

/** Changes a NIC's MAC, address or MTU (its allocation follows in `moveAllocation`). */
export async function updateNic(
  db: Db,
  id: string,
  fields: Partial<Pick<NicRow, "mac_address" | "ip_address" | "mtu">>,
): Promise<NicRow | undefined> {
  const [row] = await run(() =>
    db<NicRow[]>`update network_interfaces set ${db(fields)} where id = ${id}
                 returning ${SELECT(db)}`
  );
  return row;
}

/**
 * Queries of `ip_allocations`, the IPAM table. Callers hold the network's row lock while
 * choosing an address, and the (network, address) unique key backs that up.
 */
import type { Db, PageOf } from "./query.ts";
import { decodeCursor, encodeCursor, run } from "./query.ts";
import { InvalidArgumentError } from "../../shared/errors/errors.ts";
import { isIpv4 } from "../../shared/net/ip.ts";

/** An allocation as the API shows it. */
export interface IpAllocationRow {
  ip_address: string;
  network_id: string;
  vm_id: string | null;
  nic_id: string | null;
  device_id: string | null;
  allocated_at: Date;
}

/** Addresses in use on a network, as unsigned integers. */
export async function usedAddresses(db: Db, networkId: string): Promise<number[]> {
  const rows = await run(() =>
    db<{ n: number }[]>`
      select (ip_address - '0.0.0.0'::inet) as n from ip_allocations where network_id = ${networkId}`
  );
  return rows.map((r) => Number(r.n));
}

/** Records an allocation; a taken address is a 409 from the unique key. */
export async function insertAllocation(
  db: Db,
  row: { network_id: string; ip_address: string; vm_id: string; nic_id: string },
): Promise<void> {
  await run(() => db`insert into ip_allocations ${db(row)}`);
}

/** Who holds `address` on a network, if anyone. */
export async function allocationOf(
  db: Db,
  networkId: string,
  address: string,
): Promise<{ vm_id: string | null; vm_name: string | null } | undefined> {
  const [row] = await run(() =>
    db<{ vm_id: string | null; vm_name: string | null }[]>`
      select a.vm_id, v.name as vm_name from ip_allocations a left join vms v on v.id = a.vm_id
      where a.network_id = ${networkId} and a.ip_address = ${address}::inet`
  );
  return row;
}

/** A page of a network's allocations in address order. */
export async function listAllocations(
  db: Db,
  networkId: string,
  page: { limit: number; cursor?: string },
): Promise<PageOf<IpAllocationRow>> {
  let after: string | undefined;
  if (page.cursor) {
    const [a] = decodeCursor(page.cursor, "ips");
    if (typeof a !== "string" || !isIpv4(a)) {
      throw InvalidArgumentError.field("cursor", "not a cursor of this list");
    }
    after = a;
  }
  const rows = await run(() =>
    db<IpAllocationRow[]>`
      select host(a.ip_address) as ip_address, a.network_id, a.vm_id, a.nic_id,
             n.device_id, a.allocated_at
      from ip_allocations a left join network_interfaces n on n.id = a.nic_id
      where a.network_id = ${networkId}
        ${after ? db`and a.ip_address > ${after}::inet` : db``}
      order by a.ip_address limit ${page.limit + 1}`
  );
  const items = rows.slice(0, page.limit);
  return {
    items,
    next_cursor: rows.length > page.limit
      ? encodeCursor({ list: "ips", key: [items.at(-1)!.ip_address] })
      : null,
  };
}

/** Moves a NIC's allocation to another address (a taken address is a 409 from the unique key). */
export async function moveAllocation(db: Db, nicId: string, address: string): Promise<void> {
  await run(() =>
    db`update ip_allocations set ip_address = ${address}::inet where nic_id = ${nicId}`
  );
}

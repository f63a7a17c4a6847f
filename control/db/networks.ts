/** Queries of `networks`. */
import type { Db } from "./query.ts";
import { run, tableQueries } from "./query.ts";

/** A network row. */
export interface NetworkRow {
  id: string;
  name: string;
  description: string | null;
  type: "bridge" | "macvtap" | "vlan";
  mode: "static" | "dhcp" | "none";
  subnet: string | null;
  gateway: string | null;
  dns: string[];
  vlan_id: number | null;
  mtu: number;
  nat: boolean;
  status: "active" | "inactive";
  created_at: Date;
  updated_at: Date;
  version: number;
}

export const networks = tableQueries<NetworkRow>("networks", [
  "id",
  "name",
  "description",
  "type",
  "mode",
  "subnet",
  "gateway",
  "dns",
  "vlan_id",
  "mtu",
  "nat",
  "status",
  "created_at",
  "updated_at",
  "version",
]);

/** NICs on a network and hosts it is attached to. */
export async function networkUsage(db: Db, id: string): Promise<{ nics: number; hosts: number }> {
  const [row] = await run(() =>
    db<{ nics: number; hosts: number }[]>`
      select (select count(*) from network_interfaces where network_id = ${id})::int as nics,
             (select count(*) from host_networks where network_id = ${id})::int as hosts`
  );
  return row;
}

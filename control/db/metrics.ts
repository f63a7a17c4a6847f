/** Aggregate counts the control plane's `/metrics` reads at scrape time. */
import type { Db } from "./query.ts";
import { run } from "./query.ts";

/** Number of VMs in each status (statuses with none are absent). */
export async function vmCountsByStatus(db: Db): Promise<{ status: string; n: number }[]> {
  return await run(() =>
    db<{ status: string; n: number }[]>`
      select status::text as status, count(*)::int as n from vms group by status`
  );
}

/** Number of hosts in each status (statuses with none are absent). */
export async function hostCountsByStatus(db: Db): Promise<{ status: string; n: number }[]> {
  return await run(() =>
    db<{ status: string; n: number }[]>`
      select status::text as status, count(*)::int as n from hosts group by status`
  );
}

/** Number of jobs of each type in each status. */
export async function jobCountsByTypeAndStatus(
  db: Db,
): Promise<{ type: string; status: string; n: number }[]> {
  return await run(() =>
    db<{ type: string; status: string; n: number }[]>`
      select type, status::text as status, count(*)::int as n from jobs group by type, status`
  );
}

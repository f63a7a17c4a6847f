/**
 * The queries every "resource attached to a host" table shares (`host_networks`,
 * `host_storage_pools`): rows keyed by (resource column, host_id), recorded, read, listed per
 * resource (bounded by the number of hosts) and removed.
 */
import type { Db } from "./query.ts";
import { run } from "./query.ts";

/** The shared queries of one attachment table. */
export interface AttachmentQueries<T> {
  insert(db: Db, row: Record<string, unknown>): Promise<T>;
  get(db: Db, resourceId: string, hostId: string): Promise<T | undefined>;
  list(db: Db, resourceId: string): Promise<T[]>;
  /** True when the attachment existed. */
  remove(db: Db, resourceId: string, hostId: string): Promise<boolean>;
}

/** Builds the queries of `table`, whose rows name their resource in `key`. */
export function attachmentQueries<T extends object>(
  table: string,
  key: string,
  columns: readonly string[],
): AttachmentQueries<T> {
  const cols = columns as string[];
  return {
    insert: async (db, row) => {
      const [out] = await run(() =>
        db<T[]>`insert into ${db(table)} ${db(row)} returning ${db(cols)}`
      );
      return out;
    },
    get: async (db, resourceId, hostId) => {
      const [row] = await run(() =>
        db<T[]>`
          select ${db(cols)} from ${db(table)}
          where ${db(key)} = ${resourceId} and host_id = ${hostId}`
      );
      return row;
    },
    list: (db, resourceId) =>
      run(() =>
        db<T[]>`
          select ${db(cols)} from ${db(table)} where ${db(key)} = ${resourceId}
          order by created_at, host_id`
      ),
    remove: async (db, resourceId, hostId) => {
      const rows = await run(() =>
        db`delete from ${db(table)} where ${db(key)} = ${resourceId} and host_id = ${hostId}
           returning host_id`
      );
      return rows.length > 0;
    },
  };
}

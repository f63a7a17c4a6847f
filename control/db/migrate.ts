/**
 * The migration runner: applies pending `migrations/` files in order, each in its own
 * transaction, under a PostgreSQL advisory lock so concurrent control planes apply each file
 * exactly once, and refuses to run when an applied file changed or is unknown.
 */
import type { Sql } from "postgres";
import { FailedPreconditionError, InvalidArgumentError } from "../../shared/errors/errors.ts";
import { logger } from "../../shared/log/logger.ts";
import type { Migration } from "../../migrations/mod.ts";

/** Advisory lock key used by the runner ("qarax" migrations). */
export const MIGRATION_LOCK_KEY = 0x71617278;

const NAME = /^\d{4}_[a-z0-9_]+\.sql$/;

/** What a run did. */
export interface MigrateResult {
  applied: string[];
  skipped: string[];
}

/** Hex sha256 of a migration's text. */
export async function checksum(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Checks names and order of a migration list; throws on the first problem. */
export function validateMigrations(migrations: readonly Migration[]): void {
  let previous = "";
  for (const m of migrations) {
    if (!NAME.test(m.name)) {
      throw new InvalidArgumentError(`migration ${m.name}: name must look like 0001_name.sql`);
    }
    if (m.name <= previous) {
      throw new InvalidArgumentError(`migration ${m.name}: out of order after ${previous}`);
    }
    previous = m.name;
  }
}

/** Applies every pending migration; safe to call from several processes at once. */
export async function migrate(sql: Sql, migrations: readonly Migration[]): Promise<MigrateResult> {
  validateMigrations(migrations);
  const sums = await Promise.all(migrations.map((m) => checksum(m.sql)));
  const log = logger();
  const conn = await sql.reserve();
  try {
    await conn`select pg_advisory_lock(${MIGRATION_LOCK_KEY})`;
    try {
      await conn.unsafe(`
        create table if not exists schema_migrations (
          name text primary key,
          checksum text not null,
          applied_at timestamptz not null default now()
        )`);
      const rows = await conn<{ name: string; checksum: string }[]>`
        select name, checksum from schema_migrations order by name`;
      const known = new Map(migrations.map((m, i) => [m.name, sums[i]]));
      for (const row of rows) {
        const expected = known.get(row.name);
        if (expected === undefined) {
          throw new FailedPreconditionError(
            `database has migration ${row.name}, which this qarax does not know (a newer version applied it)`,
          );
        }
        if (expected !== row.checksum) {
          throw new FailedPreconditionError(
            `migration ${row.name} changed after it was applied (checksum ${row.checksum} in the database, ${expected} now); restore the original file`,
          );
        }
      }
      const done = new Set(rows.map((r) => r.name));
      const result: MigrateResult = { applied: [], skipped: [...done] };
      for (const [i, m] of migrations.entries()) {
        if (done.has(m.name)) continue;
        await conn.unsafe("begin");
        try {
          await conn.unsafe(m.sql);
          await conn`insert into schema_migrations (name, checksum) values (${m.name}, ${sums[i]})`;
          await conn.unsafe("commit");
        } catch (err) {
          await conn.unsafe("rollback").catch(() => {});
          throw new FailedPreconditionError(
            `migration ${m.name} failed: ${(err as Error).message}`,
            { cause: err },
          );
        }
        log.info("migration applied", { migration: m.name });
        result.applied.push(m.name);
      }
      return result;
    } finally {
      await conn`select pg_advisory_unlock(${MIGRATION_LOCK_KEY})`.catch(() => {});
    }
  } finally {
    conn.release();
  }
}

/** Names of the applied migrations, or null when the table does not exist yet. */
export async function appliedMigrations(sql: Sql): Promise<string[] | null> {
  const [{ exists }] = await sql<{ exists: boolean }[]>`
    select to_regclass('schema_migrations') is not null as exists`;
  if (!exists) return null;
  const rows = await sql<{ name: string }[]>`select name from schema_migrations order by name`;
  return rows.map((r) => r.name);
}

/**
 * The embedded database: PGlite (PostgreSQL compiled to WASM) stored under the data directory
 * and served to postgres.js through `@electric-sql/pglite-socket` on a private unix socket, so
 * the rest of the control plane has one SQL code path. Limits (deno-stack.md 4c): one backend
 * session shared by every connection (hence a pool of one), no LISTEN/NOTIFY, advisory locks
 * that do not exclude. An exclusive lock file makes a second process on the same data
 * directory fail at once instead of corrupting it.
 */
import { PGlite } from "@electric-sql/pglite";
import { PGLiteSocketServer } from "@electric-sql/pglite-socket";
import postgres, { type Sql } from "postgres";
import { FailedPreconditionError } from "../../shared/errors/errors.ts";
import type { Logger } from "../../shared/log/logger.ts";
import { connectionOptions } from "./connect.ts";
import { pgliteAssets } from "./pglite_assets.ts";

/** A running embedded database. */
export interface EmbeddedDatabase {
  sql: Sql;
  /** The PGlite data directory. */
  dataDir: string;
  close(): Promise<void>;
}

// Unix socket paths are limited to 107 bytes (sun_path).
const MAX_SOCKET_PATH = 100;

/** Opens (creating on first use) the embedded database under `dir`. */
export async function openEmbedded(dir: string, log: Logger): Promise<EmbeddedDatabase> {
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  const lockPath = `${dir}/qarax.lock`;
  const lock = await Deno.open(lockPath, { read: true, write: true, create: true });
  if (!await lock.tryLock(true)) {
    lock.close();
    throw new FailedPreconditionError(
      `the embedded database in ${dir} is in use by another qarax process (lock ${lockPath}); ` +
        "stop it, or give this one another application.data_dir or a database.url",
    );
  }
  const cleanups: (() => Promise<void> | void)[] = [() => lock.close()];
  const cleanup = async () => {
    for (const fn of cleanups.reverse()) await Promise.resolve(fn()).catch(() => {});
  };
  try {
    await lock.truncate(0);
    await lock.write(new TextEncoder().encode(`${Deno.pid}\n`));
    const dataDir = `${dir}/pgdata`;
    const started = performance.now();
    const db = await PGlite.create(dataDir, await pgliteAssets());
    cleanups.push(() => db.close());
    let socketDir = dir;
    if (`${Deno.realPathSync(dir)}/pg.sock`.length > MAX_SOCKET_PATH) {
      socketDir = await Deno.makeTempDir({ prefix: "qarax-pg-" });
      cleanups.push(() => Deno.remove(socketDir, { recursive: true }));
    }
    const socketPath = `${Deno.realPathSync(socketDir)}/pg.sock`;
    await Deno.remove(socketPath).catch(() => {});
    const server = new PGLiteSocketServer({ db, path: socketPath });
    await server.start();
    cleanups.push(() => server.stop());
    cleanups.push(() => Deno.remove(socketPath).catch(() => {}));
    const base = connectionOptions("postgres://postgres@localhost/postgres", {
      max: 1,
      applicationName: "qarax",
    });
    // One connection: every pglite-socket connection shares PGlite's single session.
    const sql = postgres({ ...base, host: undefined, path: socketPath, max: 1 });
    log.debug("embedded database open", {
      data_dir: dataDir,
      ms: Math.round(performance.now() - started),
    });
    return {
      sql,
      dataDir,
      async close() {
        await sql.end({ timeout: 5 }).catch(() => {});
        await cleanup();
      },
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

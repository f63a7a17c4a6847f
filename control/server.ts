/**
 * The control-plane process: opens the database, applies migrations, and serves the REST API
 * until asked to stop. `startServer` is what `qarax serve` runs and what tests start.
 */
import type { Sql } from "postgres";
import { Hono } from "hono";
import type { ControlConfig } from "../shared/config/schema.ts";
import { assertSafeListen, parseListen } from "../shared/net/listen.ts";
import { logger } from "../shared/log/logger.ts";
import { FailedPreconditionError } from "../shared/errors/errors.ts";
import { connectPostgres } from "./db/connect.ts";
import { appliedMigrations, migrate } from "./db/migrate.ts";
import { MIGRATIONS } from "../migrations/mod.ts";

/** A running control plane. */
export interface ServerHandle {
  url: string;
  port: number;
  sql: Sql;
  shutdown(): Promise<void>;
}

/** Opens the database described by the config (migrations not applied). */
export function openDatabase(config: ControlConfig): Sql {
  if (!config.database.url) {
    throw new FailedPreconditionError(
      "no database.url configured (set DATABASE_URL); the embedded database is not available yet",
    );
  }
  return connectPostgres(config.database.url, {
    max: config.database.max_connections,
    connectTimeoutS: config.database.connect_timeout_s,
  });
}

/** Builds the HTTP app. */
export function createApp(sql: Sql): Hono {
  const app = new Hono();
  app.get("/healthz", (c) => c.json({ status: "ok" }));
  app.get("/readyz", async (c) => {
    try {
      const applied = await appliedMigrations(sql);
      const pending = MIGRATIONS.filter((m) => !applied?.includes(m.name)).map((m) => m.name);
      if (pending.length) return c.json({ status: "migrations pending", pending }, 503);
      return c.json({ status: "ready" });
    } catch (err) {
      return c.json({ status: "database unreachable", error: (err as Error).message }, 503);
    }
  });
  return app;
}

/** Starts the control plane: database, migrations, HTTP listener. */
export async function startServer(config: ControlConfig): Promise<ServerHandle> {
  const log = logger();
  const listen = parseListen(`${config.application.host}:${config.application.port}`);
  if (listen.transport !== "tcp") throw new Error("unreachable");
  assertSafeListen(
    listen,
    config.auth.enabled,
    config.application.allow_insecure_listen,
    "application.allow_insecure_listen",
  );
  const sql = openDatabase(config);
  await migrate(sql, MIGRATIONS);
  const app = createApp(sql);
  const ac = new AbortController();
  const { promise: listening, resolve } = Promise.withResolvers<Deno.NetAddr>();
  const server = Deno.serve({
    hostname: listen.hostname,
    port: listen.port,
    signal: ac.signal,
    onListen: (addr) => resolve(addr as Deno.NetAddr),
  }, app.fetch);
  const addr = await listening;
  const host = addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname;
  const url = `http://${host}:${addr.port}`;
  log.info("control plane listening", { url });
  return {
    url,
    port: addr.port,
    sql,
    async shutdown() {
      ac.abort();
      await server.finished;
      await sql.end({ timeout: 5 });
    },
  };
}

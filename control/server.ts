/**
 * The control-plane process: opens the database (PostgreSQL or embedded), applies migrations,
 * builds the app and serves it with `Deno.serve` until asked to stop. `startServer` is what
 * `qarax serve` runs and what tests start.
 */
import type { Sql } from "postgres";
import type { ControlConfig } from "../shared/config/schema.ts";
import { assertSafeListen, parseListen } from "../shared/net/listen.ts";
import { type Logger, logger as rootLogger } from "../shared/log/logger.ts";
import { InvalidArgumentError } from "../shared/errors/errors.ts";
import { type Database, openDatabase } from "./db/open.ts";
import { migrate } from "./db/migrate.ts";
import { MIGRATIONS } from "../migrations/mod.ts";
import { createApp } from "./api/app.ts";
import type { AppDeps } from "./api/deps.ts";
import { type Runtime, startRuntime } from "./runtime.ts";

/** A running control plane. */
export interface ServerHandle {
  /** Base URL, e.g. `http://127.0.0.1:8000`. */
  url: string;
  port: number;
  sql: Sql;
  deps: AppDeps;
  runtime: Runtime;
  /** Stops serving and the runtime; `exiting` as in `Runtime.stop`. */
  shutdown(options?: { exiting?: boolean }): Promise<void>;
}

/** Options for tests and embedding; the config decides everything else. */
export interface StartOptions {
  logger?: Logger;
  /** An already open database (tests); it is not closed on shutdown. */
  database?: Database;
}

/** Starts the control plane: database, migrations, HTTP listener. */
export async function startServer(
  config: ControlConfig,
  options: StartOptions = {},
): Promise<ServerHandle> {
  const log = options.logger ?? rootLogger();
  const listen = parseListen(`${config.application.host}:${config.application.port}`);
  if (listen.transport !== "tcp") {
    throw InvalidArgumentError.field("application.host", "must be a host name or address");
  }
  assertSafeListen(
    listen,
    config.auth.enabled,
    config.application.allow_insecure_listen,
    "application.allow_insecure_listen",
  );
  if (config.auth.enabled && config.auth.tokens.length === 0) {
    log.warn("auth is enabled but auth.tokens is empty: every API request will get 401");
  }
  const db = options.database ?? await openDatabase(config, log);
  const ownsDb = !options.database;
  let runtime: Runtime | undefined;
  try {
    await migrate(db.sql, MIGRATIONS);
    runtime = await startRuntime({ sql: db.sql, config, logger: log, database: db.kind });
    const ac = new AbortController();
    const deps: AppDeps = {
      ...runtime.svc,
      shutdown: ac.signal,
      clock: () => new Date(),
      migrations: MIGRATIONS,
      database: { kind: db.kind, location: db.location },
    };
    const app = createApp(deps);
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
    log.info("control plane listening", {
      api: `${url}/v1`,
      docs: `${url}/docs`,
      database: db.kind,
      auth: config.auth.enabled,
      instance: runtime.instance,
    });
    const rt = runtime;
    let stopping: Promise<void> | undefined;
    return {
      url,
      port: addr.port,
      sql: db.sql,
      deps,
      runtime: rt,
      shutdown(options) {
        stopping ??= (async () => {
          ac.abort();
          await server.finished;
          await rt.stop(options);
          if (ownsDb) await db.close();
        })();
        return stopping;
      },
    };
  } catch (err) {
    await runtime?.stop();
    if (ownsDb) await db.close();
    throw err;
  }
}

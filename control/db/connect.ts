/**
 * Opens the postgres.js pool for a PostgreSQL URL. Unix sockets are given as
 * `postgres://user@localhost/db?host=/var/run/postgresql` (postgres.js ignores that parameter
 * itself, so it is translated here), and the user is always explicit.
 */
import postgres, { type Sql } from "postgres";
import { InvalidArgumentError } from "../../shared/errors/errors.ts";
import { redactUrl } from "../../shared/config/redact.ts";

export interface ConnectOptions {
  max?: number;
  connectTimeoutS?: number;
  /** Application name shown in pg_stat_activity. */
  applicationName?: string;
}

/** postgres.js options for `url` (exported for tests). */
export function connectionOptions(url: string, options: ConnectOptions = {}) {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new InvalidArgumentError(`database url is not a URL: ${redactUrl(url)}`);
  }
  if (u.protocol !== "postgres:" && u.protocol !== "postgresql:") {
    throw new InvalidArgumentError(`database url must start with postgres://: ${redactUrl(url)}`);
  }
  const socketDir = u.searchParams.get("host");
  const port = Number(u.port || 5432);
  return {
    host: socketDir ? undefined : (u.hostname || "127.0.0.1"),
    path: socketDir ? `${socketDir.replace(/\/$/, "")}/.s.PGSQL.${port}` : undefined,
    port,
    user: decodeURIComponent(u.username) || "postgres",
    password: u.password ? decodeURIComponent(u.password) : undefined,
    database: decodeURIComponent(u.pathname.replace(/^\//, "")) || "postgres",
    max: options.max ?? 10,
    connect_timeout: options.connectTimeoutS ?? 10,
    onnotice: () => {},
    // int8 (sizes, counts) as JS numbers: every value the schema stores fits in 2^53.
    types: {
      bigint: {
        to: 20,
        from: [20],
        serialize: (x: number) => String(x),
        parse: (x: string) => Number(x),
      },
    },
    connection: { application_name: options.applicationName ?? "qarax" },
  };
}

/** A postgres.js pool for `url`. */
export function connectPostgres(url: string, options: ConnectOptions = {}): Sql {
  return postgres(connectionOptions(url, options));
}

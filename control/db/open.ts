/**
 * Opens the control plane's database from its configuration: PostgreSQL at `database.url`,
 * or the embedded database under `application.data_dir` when the URL is empty.
 */
import type { Sql } from "postgres";
import type { ControlConfig } from "../../shared/config/schema.ts";
import { redactUrl } from "../../shared/config/redact.ts";
import type { Logger } from "../../shared/log/logger.ts";
import { connectPostgres } from "./connect.ts";
import { openEmbedded } from "./embedded.ts";

/** An open database and how to describe and close it. */
export interface Database {
  sql: Sql;
  kind: "postgres" | "embedded";
  /** Where it is (URL with password redacted, or the data directory). */
  location: string;
  close(): Promise<void>;
}

/** Opens the configured database (migrations not applied). */
export async function openDatabase(config: ControlConfig, log: Logger): Promise<Database> {
  if (config.database.url) {
    const sql = connectPostgres(config.database.url, {
      max: config.database.max_connections,
      connectTimeoutS: config.database.connect_timeout_s,
    });
    const location = redactUrl(config.database.url);
    log.info("database: PostgreSQL", { url: location });
    return { sql, kind: "postgres", location, close: () => sql.end({ timeout: 5 }) };
  }
  const dir = config.application.data_dir.replace(/\/$/, "") || ".";
  log.info("database: embedded (PGlite); set database.url to use PostgreSQL", { data_dir: dir });
  const db = await openEmbedded(dir, log);
  return { sql: db.sql, kind: "embedded", location: db.dataDir, close: db.close };
}

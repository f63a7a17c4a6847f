/**
 * What the HTTP app is built from (`AppDeps`: the process's services plus what only the HTTP
 * layer needs) and the per-request context every handler sees (`AppEnv`).
 */
import type { Logger } from "../../shared/log/logger.ts";
import type { Migration } from "../../migrations/mod.ts";
import type { Services } from "../services.ts";

/** Which database the control plane runs on. */
export interface DatabaseInfo {
  kind: "postgres" | "embedded";
  /** Human-readable location, secrets redacted. */
  location: string;
}

/** Everything the app needs from the outside world. */
export interface AppDeps extends Services {
  /** Aborted when the process shuts down: ends event streams and long polls. */
  shutdown: AbortSignal;
  /** Current time; replaced in tests. */
  clock: () => Date;
  /** Migrations that must be applied for `/readyz` to answer ready. */
  migrations: readonly Migration[];
  database: DatabaseInfo;
}

/** Per-request values set by the middleware. */
export interface RequestVars {
  requestId: string;
  /** Logger carrying the request id (and the actor once known). */
  log: Logger;
  /** Audit actor: the token's name, or `anonymous` when auth is off. */
  actor: string;
}

/** The Hono environment of every router. */
export type AppEnv = { Variables: RequestVars };

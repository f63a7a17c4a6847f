/**
 * An API under test: a fresh migrated database and the control plane's app on it, called with
 * `app.request()` (no socket). Log lines are captured so tests can check them.
 */
import type { OpenAPIHono } from "@hono/zod-openapi";
import { createApp } from "../../control/api/app.ts";
import type { AppDeps, AppEnv } from "../../control/api/deps.ts";
import { migrate } from "../../control/db/migrate.ts";
import { MIGRATIONS } from "../../migrations/mod.ts";
import { loadControlConfig } from "../../shared/config/load.ts";
import type { ControlConfig } from "../../shared/config/schema.ts";
import { Logger } from "../../shared/log/logger.ts";
import { type Runtime, startRuntime } from "../../control/runtime.ts";
import { createTestDatabase, type TestDatabase } from "./db.ts";

/** A response as tests want it. */
export interface ApiResponse {
  status: number;
  // deno-lint-ignore no-explicit-any
  body: any;
  headers: Headers;
}

/** The app plus helpers. */
export interface TestApi {
  app: OpenAPIHono<AppEnv>;
  db: TestDatabase;
  deps: AppDeps;
  /** The orchestration runtime (workers and monitors only with `active: true`). */
  runtime: Runtime;
  logs: string[];
  /** Sends a request; objects are sent as JSON. */
  request(
    method: string,
    path: string,
    body?: unknown,
    headers?: Record<string, string>,
  ): Promise<ApiResponse>;
  get(path: string, headers?: Record<string, string>): Promise<ApiResponse>;
  post(path: string, body?: unknown, headers?: Record<string, string>): Promise<ApiResponse>;
  patch(path: string, body?: unknown, headers?: Record<string, string>): Promise<ApiResponse>;
  del(path: string, headers?: Record<string, string>): Promise<ApiResponse>;
  /** Waits (≤ `seconds`) for the job of a 202 response (or a job id) to end; returns it. */
  // deno-lint-ignore no-explicit-any
  awaitJob(job: ApiResponse | string, seconds?: number): Promise<any>;
  /** POST that must answer 201/202; returns the body. */
  // deno-lint-ignore no-explicit-any
  create(path: string, body: unknown): Promise<any>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** The default test configuration with `patch` applied per section. */
export function testConfig(patch: Partial<ControlConfig> = {}): ControlConfig {
  const { config } = loadControlConfig({ env: {} });
  return { ...config, ...patch };
}

/** Timings that keep tests fast: quick polls, short leases and probes. */
export function fastConfig(patch: Partial<ControlConfig> = {}): Partial<ControlConfig> {
  const base = testConfig();
  return {
    ...patch,
    nodes: {
      ...base.nodes,
      call_timeout_ms: 2000,
      stop_timeout_ms: 1000,
      start_timeout_ms: 3000,
      health_interval_ms: 200,
      health_failure_threshold: 2,
      reconcile_interval_ms: 1000,
      watch_backoff_max_ms: 300,
      ...patch.nodes,
    },
    jobs: {
      ...base.jobs,
      poll_interval_ms: 200,
      lease_ms: 2000,
      retry_delay_ms: 100,
      ...patch.jobs,
    },
    cluster: { ...base.cluster, leader_lease_ms: 1000, ...patch.cluster },
  };
}

/** Options of a test API. */
export interface TestApiOptions {
  /** Run job workers and the monitors (default: API only). */
  active?: boolean;
  /** Log level of the captured logs (default debug). */
  logLevel?: "debug" | "info" | "warn" | "error";
}

/** A migrated fresh database with the app on it. */
export async function createTestApi(
  config: Partial<ControlConfig> = {},
  options: TestApiOptions = {},
): Promise<TestApi> {
  const db = await createTestDatabase(8);
  try {
    await migrate(db.sql, MIGRATIONS);
  } catch (err) {
    await db.drop();
    throw err;
  }
  const logs: string[] = [];
  const logger = new Logger({
    level: options.logLevel ?? "debug",
    format: "json",
    sink: (l) => logs.push(l),
  });
  const runtime = await startRuntime({
    sql: db.sql,
    config: testConfig(config),
    logger,
    database: "postgres",
    active: options.active ?? false,
  });
  const ac = new AbortController();
  const deps: AppDeps = {
    ...runtime.svc,
    shutdown: ac.signal,
    clock: () => new Date(),
    migrations: MIGRATIONS,
    database: { kind: "postgres", location: db.name },
  };
  const app = createApp(deps);
  const request = async (
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<ApiResponse> => {
    const init: RequestInit = { method, headers: { ...headers } };
    if (body !== undefined) {
      init.body = typeof body === "string" ? body : JSON.stringify(body);
      (init.headers as Record<string, string>)["content-type"] ??= "application/json";
    }
    const res = await app.request(path, init);
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch { /* not JSON */ }
    return { status: res.status, body: parsed, headers: res.headers };
  };
  const api: TestApi = {
    app,
    db,
    deps,
    runtime,
    logs,
    request,
    get: (p, h) => request("GET", p, undefined, h),
    post: (p, b, h) => request("POST", p, b, h),
    patch: (p, b, h) => request("PATCH", p, b, h),
    del: (p, h) => request("DELETE", p, undefined, h),
    async awaitJob(job, seconds = 30) {
      if (typeof job !== "string" && job.status !== 202) {
        throw new Error(`expected 202 + job, got ${job.status} ${JSON.stringify(job.body)}`);
      }
      const id = typeof job === "string" ? job : job.body.id;
      const deadline = Date.now() + seconds * 1000;
      for (;;) {
        const left = Math.ceil((deadline - Date.now()) / 1000);
        const res = await request("GET", `/v1/jobs/${id}?wait=${Math.max(0, Math.min(60, left))}`);
        const st = res.body?.status;
        if (st === "succeeded" || st === "failed" || st === "cancelled" || left <= 0) {
          return res.body;
        }
      }
    },
    async create(path, body) {
      const res = await request("POST", path, body);
      if (res.status !== 201 && res.status !== 202) {
        throw new Error(`POST ${path} → ${res.status} ${JSON.stringify(res.body)}`);
      }
      return res.body;
    },
    async [Symbol.asyncDispose]() {
      ac.abort();
      await runtime.stop();
      await db.drop();
    },
  };
  return api;
}

/** The `details[].field` values of an error response. */
export function fieldsOf(res: ApiResponse): string[] {
  return (res.body?.details ?? []).map((d: { field?: string }) => d.field);
}

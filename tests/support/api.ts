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

/** A migrated fresh database with the app on it. */
export async function createTestApi(config: Partial<ControlConfig> = {}): Promise<TestApi> {
  const db = await createTestDatabase(8);
  try {
    await migrate(db.sql, MIGRATIONS);
  } catch (err) {
    await db.drop();
    throw err;
  }
  const logs: string[] = [];
  const deps: AppDeps = {
    sql: db.sql,
    config: testConfig(config),
    logger: new Logger({ level: "debug", format: "json", sink: (l) => logs.push(l) }),
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
    logs,
    request,
    get: (p, h) => request("GET", p, undefined, h),
    post: (p, b, h) => request("POST", p, b, h),
    patch: (p, b, h) => request("PATCH", p, b, h),
    del: (p, h) => request("DELETE", p, undefined, h),
    async create(path, body) {
      const res = await request("POST", path, body);
      if (res.status !== 201 && res.status !== 202) {
        throw new Error(`POST ${path} → ${res.status} ${JSON.stringify(res.body)}`);
      }
      return res.body;
    },
    [Symbol.asyncDispose]: () => db.drop(),
  };
  return api;
}

/** The `details[].field` values of an error response. */
export function fieldsOf(res: ApiResponse): string[] {
  return (res.body?.details ?? []).map((d: { field?: string }) => d.field);
}

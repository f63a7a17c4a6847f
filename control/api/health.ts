/** `/healthz` (the process answers) and `/readyz` (database reachable, migrations applied). */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { appliedMigrations } from "../db/migrate.ts";
import { json, validationHook } from "./common.ts";
import type { AppDeps, AppEnv } from "./deps.ts";

const Health = z.object({ status: z.string() }).openapi("Health");
const Ready = z.object({
  status: z.enum(["ready", "migrations pending", "database unreachable"]),
  database: z.enum(["postgres", "embedded"]),
  pending: z.array(z.string()).optional(),
  error: z.string().optional(),
}).openapi("Ready");

/** The health routes (public). */
export function healthRouter(deps: AppDeps) {
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });
  app.openapi(
    createRoute({
      method: "get",
      path: "/healthz",
      tags: ["health"],
      summary: "Liveness: the process answers",
      security: [],
      responses: { 200: json(Health, "Alive") },
    }),
    (c) => c.json({ status: "ok" }, 200),
  );
  app.openapi(
    createRoute({
      method: "get",
      path: "/readyz",
      tags: ["health"],
      summary: "Readiness: database reachable and migrations applied",
      security: [],
      responses: { 200: json(Ready, "Ready"), 503: json(Ready, "Not ready") },
    }),
    async (c) => {
      const database = deps.database.kind;
      try {
        const applied = new Set(await appliedMigrations(deps.sql) ?? []);
        const pending = deps.migrations.filter((m) => !applied.has(m.name)).map((m) => m.name);
        if (pending.length) {
          return c.json({ status: "migrations pending" as const, database, pending }, 503);
        }
        return c.json({ status: "ready" as const, database }, 200);
      } catch (err) {
        deps.logger.warn("readiness check failed", { error: err as Error });
        return c.json({
          status: "database unreachable" as const,
          database,
          error: (err as Error).message,
        }, 503);
      }
    },
  );
  return app;
}

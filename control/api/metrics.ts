/**
 * `GET /metrics`: this process's Prometheus metrics in the text exposition format 0.0.4. It
 * follows auth like the API (scrapers send a bearer token) unless `metrics.public` is set.
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { CONTENT_TYPE } from "../../shared/metrics/registry.ts";
import { validationHook } from "./common.ts";
import type { AppDeps, AppEnv } from "./deps.ts";

/** The metrics route. */
export function metricsRouter(deps: AppDeps) {
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });
  app.openapi(
    createRoute({
      method: "get",
      path: "/metrics",
      tags: ["health"],
      summary: "Prometheus metrics (text format 0.0.4)",
      description: "HTTP requests by route, method and status with latency histograms; jobs " +
        "finished by type and outcome; VMs, hosts and jobs by status (read from the database " +
        "at scrape time). Needs a token when auth is enabled, unless `metrics.public` is set.",
      ...(deps.config.metrics.public ? { security: [] } : {}),
      responses: {
        200: {
          description: "The metrics",
          content: { [CONTENT_TYPE]: { schema: z.string() } },
        },
      },
    }),
    async (c) => c.text(await deps.metrics.render(), 200, { "Content-Type": CONTENT_TYPE }),
  );
  return app;
}

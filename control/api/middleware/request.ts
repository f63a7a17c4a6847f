/**
 * The first middleware of every request: takes a sane `x-request-id` or makes one, echoes it,
 * gives the request a child logger carrying it, and writes one access-log line and the
 * request metrics (by route pattern) per request.
 */
import type { Context, MiddlewareHandler } from "hono";
import { matchedRoutes } from "hono/route";
import type { Logger } from "../../../shared/log/logger.ts";
import { type ControlMetrics, UNMATCHED_ROUTE } from "../../metrics.ts";
import type { AppEnv } from "../deps.ts";

const SANE_ID = /^[A-Za-z0-9._:@-]{1,128}$/;

/** The pattern of the route that answered (`/v1/vms/:id`), not the raw path. */
export function routePattern(c: Context): string {
  // Middleware is registered for every method ("ALL"); the last method route is the handler.
  const handler = matchedRoutes(c).findLast((r) => r.method !== "ALL");
  return handler?.path ?? UNMATCHED_ROUTE;
}

/** Request id, child logger, access log and request metrics. */
export function requestContext(root: Logger, metrics?: ControlMetrics): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const started = performance.now();
    const given = c.req.header("x-request-id");
    const requestId = given && SANE_ID.test(given) ? given : crypto.randomUUID();
    c.set("requestId", requestId);
    c.set("actor", "anonymous");
    c.set("log", root.child({ request_id: requestId }));
    c.header("x-request-id", requestId);
    await next();
    const status = c.res.status;
    const elapsedMs = performance.now() - started;
    metrics?.observeRequest(routePattern(c), c.req.method, status, elapsedMs / 1000);
    const fields = {
      method: c.req.method,
      path: c.req.path,
      status,
      duration_ms: Math.round(elapsedMs * 100) / 100,
      actor: c.get("actor"),
    };
    const log = c.get("log");
    if (status >= 500) log.warn("request", fields);
    else log.info("request", fields);
  };
}

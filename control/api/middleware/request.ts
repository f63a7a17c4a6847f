/**
 * The first middleware of every request: takes a sane `x-request-id` or makes one, echoes it,
 * gives the request a child logger carrying it, and writes one access-log line per request.
 */
import type { MiddlewareHandler } from "hono";
import type { Logger } from "../../../shared/log/logger.ts";
import type { AppEnv } from "../deps.ts";

const SANE_ID = /^[A-Za-z0-9._:@-]{1,128}$/;

/** Request id, child logger and access log. */
export function requestContext(root: Logger): MiddlewareHandler<AppEnv> {
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
    const fields = {
      method: c.req.method,
      path: c.req.path,
      status,
      duration_ms: Math.round((performance.now() - started) * 100) / 100,
      actor: c.get("actor"),
    };
    const log = c.get("log");
    if (status >= 500) log.warn("request", fields);
    else log.info("request", fields);
  };
}

/**
 * Builds the control plane's HTTP app from its dependencies: middleware (request id + access
 * log and request metrics, body limit, auth), the health, metrics and docs routes, one router per resource under `/v1`,
 * the OpenAPI 3.1 document at `/openapi.json`, and the JSON error handling.
 */
import { OpenAPIHono } from "@hono/zod-openapi";
import { MalformedRequestError } from "../../shared/errors/errors.ts";
import { VERSION } from "../../shared/version.ts";
import type { AppDeps, AppEnv } from "./deps.ts";
import { validationHook } from "./common.ts";
import { requestContext } from "./middleware/request.ts";
import { bodyLimit } from "./middleware/body_limit.ts";
import { bearerAuth } from "./middleware/auth.ts";
import { errorHandler, notFoundHandler } from "./middleware/errors.ts";
import { healthRouter } from "./health.ts";
import { metricsRouter } from "./metrics.ts";
import { docsRouter } from "./docs.ts";
import { hostsRouter } from "./hosts.ts";
import { jobsRouter } from "./jobs.ts";
import { instanceTypesRouter } from "./instance_types.ts";
import { networksRouter } from "./networks.ts";
import { vmsRouter } from "./vms.ts";
import { vmActionsRouter } from "./vm_actions.ts";
import { vmResizeRouter } from "./vm_resize.ts";
import { eventsRouter } from "./events.ts";
import { vmDevicesRouter } from "./vm_devices.ts";
import { vmSnapshotsRouter } from "./vm_snapshots.ts";
import { CONSOLE_ATTACH_PATH, vmConsoleRouter } from "./vm_console.ts";
import { bootSourcesRouter } from "./boot_sources.ts";
import { vmTemplatesRouter } from "./vm_templates.ts";
import { storagePoolsRouter } from "./storage_pools.ts";
import { storageObjectsRouter } from "./storage_objects.ts";
import { auditLogsRouter } from "./audit_logs.ts";

export type { AppDeps, AppEnv } from "./deps.ts";

/** Largest accepted request body (cloud-init user data included). */
export const MAX_BODY_BYTES = 4 * 1024 * 1024;

/** The routers mounted under `/v1`, in documentation order. */
const RESOURCE_ROUTERS = [
  hostsRouter,
  vmsRouter,
  vmActionsRouter,
  vmResizeRouter,
  vmDevicesRouter,
  vmSnapshotsRouter,
  vmConsoleRouter,
  networksRouter,
  storagePoolsRouter,
  storageObjectsRouter,
  bootSourcesRouter,
  instanceTypesRouter,
  vmTemplatesRouter,
  jobsRouter,
  eventsRouter,
  auditLogsRouter,
];

/** Builds the HTTP app. */
export function createApp(deps: AppDeps): OpenAPIHono<AppEnv> {
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });
  app.onError(errorHandler);
  app.notFound(notFoundHandler);
  app.use("*", requestContext(deps.logger, deps.metrics));
  app.use(
    "*",
    bodyLimit(MAX_BODY_BYTES, () => {
      throw new MalformedRequestError(`the request body is larger than ${MAX_BODY_BYTES} bytes`);
    }),
  );
  app.use(
    "*",
    bearerAuth(deps.config.auth, {
      publicMetrics: deps.config.metrics.public,
      queryTokenPath: CONSOLE_ATTACH_PATH,
    }),
  );

  app.route("/", healthRouter(deps));
  app.route("/", metricsRouter(deps));
  app.route("/", docsRouter());
  for (const router of RESOURCE_ROUTERS) app.route("/v1", router(deps));

  app.openAPIRegistry.registerComponent("securitySchemes", "bearerAuth", {
    type: "http",
    scheme: "bearer",
    description: "A token from `auth.tokens` (when auth is enabled).",
  });
  app.doc31("/openapi.json", {
    openapi: "3.1.0",
    info: {
      title: "qarax API",
      version: VERSION,
      description:
        "Control plane of qarax: hosts, VMs, networks, storage and jobs. Lists are paginated " +
        "with `limit`/`cursor`; updates are JSON merge patches honouring `If-Match`; errors are " +
        '`{"code","message","details","request_id"}`.',
    },
    security: deps.config.auth.enabled ? [{ bearerAuth: [] }] : [],
  });
  return app;
}

/** `/v1/audit-logs`: who changed what, newest first. */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { NotFoundError } from "../../shared/errors/errors.ts";
import { getAuditLog, listAuditLogs } from "../db/audit_logs.ts";
import {
  errors,
  Id,
  IdParams,
  json,
  ListOf,
  PageQuery,
  Timestamp,
  validationHook,
} from "./common.ts";
import type { AppDeps, AppEnv } from "./deps.ts";

const AuditLog = z.object({
  id: Id,
  created_at: Timestamp,
  actor: z.string(),
  action: z.string().openapi({ example: "create" }),
  resource_type: z.string().openapi({ example: "vm" }),
  resource_id: Id.nullable(),
  request_id: z.string().nullable(),
  summary: z.record(z.string(), z.unknown()),
}).openapi("AuditLog");

const ListQuery = z.object({
  ...PageQuery,
  actor: z.string().optional(),
  action: z.string().optional(),
  resource_type: z.string().optional(),
  resource_id: Id.optional(),
  request_id: z.string().optional(),
});

const tags = ["audit"];

/** The audit log router. */
export function auditLogsRouter(deps: AppDeps) {
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });
  app.openapi(
    createRoute({
      method: "get",
      path: "/audit-logs",
      tags,
      summary: "List audit log entries (newest first)",
      request: { query: ListQuery },
      responses: {
        200: json(ListOf(AuditLog, "AuditLogList"), "A page of entries"),
        ...errors(422),
      },
    }),
    async (c) => {
      const { limit, cursor, ...filters } = c.req.valid("query");
      return c.json(await listAuditLogs(deps.sql, filters, { limit, cursor }), 200);
    },
  );
  app.openapi(
    createRoute({
      method: "get",
      path: "/audit-logs/{id}",
      tags,
      summary: "Get an audit log entry",
      request: { params: IdParams },
      responses: { 200: json(AuditLog, "The entry"), ...errors(404) },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const row = await getAuditLog(deps.sql, id);
      if (!row) throw NotFoundError.of("audit log", id);
      return c.json(row, 200);
    },
  );
  return app;
}

/**
 * The audit helper: handlers call `audit(tx, c, …)` inside the transaction of their change,
 * so an audit row exists exactly when the change committed. Actor and request id come from
 * the request context.
 */
import type { Context } from "hono";
import { insertAuditLog } from "../db/audit_logs.ts";
import type { Db } from "../db/query.ts";
import type { AppEnv } from "./deps.ts";

/** One audited change. */
export interface AuditEntry {
  action: string;
  resource_type: string;
  resource_id: string | null;
  summary?: Record<string, unknown>;
}

/** Records `entry` for the current request in transaction `tx`. */
export async function audit(tx: Db, c: Context<AppEnv>, entry: AuditEntry): Promise<void> {
  await insertAuditLog(tx, {
    actor: c.get("actor"),
    request_id: c.get("requestId"),
    action: entry.action,
    resource_type: entry.resource_type,
    resource_id: entry.resource_id,
    summary: entry.summary ?? {},
  });
}

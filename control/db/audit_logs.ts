/** Queries of `audit_logs`: one row per successful mutating request, written in its transaction. */
import type { Db, Page, PageOf } from "./query.ts";
import { getById, insertRow, listPage } from "./query.ts";

/** A stored audit entry. */
export interface AuditLogRow {
  id: string;
  created_at: Date;
  actor: string;
  action: string;
  resource_type: string;
  resource_id: string | null;
  request_id: string | null;
  summary: Record<string, unknown>;
}

/** What a caller records. */
export type NewAuditLog = Omit<AuditLogRow, "id" | "created_at">;

const TABLE = "audit_logs";
export const AUDIT_COLUMNS = [
  "id",
  "created_at",
  "actor",
  "action",
  "resource_type",
  "resource_id",
  "request_id",
  "summary",
] as const;

/** Exact-match filters of the audit list. */
export interface AuditFilters {
  actor?: string;
  action?: string;
  resource_type?: string;
  resource_id?: string;
  request_id?: string;
}

/** Writes one entry (call inside the transaction of the change). */
export function insertAuditLog(db: Db, entry: NewAuditLog): Promise<AuditLogRow> {
  return insertRow<AuditLogRow>(db, TABLE, AUDIT_COLUMNS, { ...entry }, ["summary"]);
}

/** One entry. */
export function getAuditLog(db: Db, id: string): Promise<AuditLogRow | undefined> {
  return getById<AuditLogRow>(db, TABLE, AUDIT_COLUMNS, id);
}

/** Newest first. */
export function listAuditLogs(db: Db, f: AuditFilters, page: Page): Promise<PageOf<AuditLogRow>> {
  const where = [];
  if (f.actor !== undefined) where.push(db`actor = ${f.actor}`);
  if (f.action !== undefined) where.push(db`action = ${f.action}`);
  if (f.resource_type !== undefined) where.push(db`resource_type = ${f.resource_type}`);
  if (f.resource_id !== undefined) where.push(db`resource_id = ${f.resource_id}`);
  if (f.request_id !== undefined) where.push(db`request_id = ${f.request_id}`);
  return listPage<AuditLogRow>(db, {
    list: "audit_logs",
    table: TABLE,
    columns: AUDIT_COLUMNS,
    where,
    page,
    descending: true,
  });
}

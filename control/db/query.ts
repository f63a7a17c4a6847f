/**
 * Shared SQL building blocks for the per-table query modules: the `Db` type (pool or
 * transaction), the transaction helper, keyset pagination over `(created_at, id)`, and
 * generic get/insert/update/delete by id. Every module writes raw SQL with postgres.js tagged
 * templates; this file only removes the repetition.
 */
import type { Fragment, Sql, TransactionSql } from "postgres";
import { InvalidArgumentError } from "../../shared/errors/errors.ts";
import { mapDbError } from "./errors.ts";

/** A pool or a transaction: anything queries can run on. */
export type Db = Sql | TransactionSql;

/** Runs `fn` in one transaction; database errors come out as domain errors. */
export async function transaction<T>(sql: Sql, fn: (tx: TransactionSql) => Promise<T>): Promise<T> {
  try {
    return (await sql.begin(fn)) as T;
  } catch (err) {
    throw mapDbError(err);
  }
}

/** Runs one query (or a few) outside a transaction, mapping database errors. */
export async function run<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw mapDbError(err);
  }
}

/** A decoded list position: the sort key of the last row of the previous page. */
export interface Cursor {
  /** Which list it belongs to; a cursor of another list is refused. */
  list: string;
  key: (string | number)[];
}

/** One page request. */
export interface Page {
  limit: number;
  cursor?: string;
}

/** One page of results. */
export interface PageOf<T> {
  items: T[];
  next_cursor: string | null;
}

/** Opaque cursor text for a list position. */
export function encodeCursor(c: Cursor): string {
  const bytes = new TextEncoder().encode(JSON.stringify([c.list, ...c.key]));
  return btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_")
    .replace(/=+$/, "");
}

/** Decodes a cursor of list `list`; anything else is a 422 naming `cursor`. */
export function decodeCursor(text: string, list: string): (string | number)[] {
  const bad = () =>
    InvalidArgumentError.field("cursor", "not a cursor of this list (use next_cursor as given)");
  let parsed: unknown;
  try {
    const b64 = text.replaceAll("-", "+").replaceAll("_", "/");
    const bin = atob(b64 + "=".repeat((4 - b64.length % 4) % 4));
    parsed = JSON.parse(new TextDecoder().decode(Uint8Array.from(bin, (ch) => ch.charCodeAt(0))));
  } catch {
    throw bad();
  }
  if (!Array.isArray(parsed) || parsed[0] !== list) throw bad();
  const key = parsed.slice(1);
  if (!key.every((k) => typeof k === "string" || typeof k === "number")) throw bad();
  return key;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** True for text shaped like a UUID (any version). */
export function isUuid(text: string): boolean {
  return UUID.test(text);
}

/** AND of the fragments (`true` for none). */
export function and(db: Db, conds: Fragment[]): Fragment {
  if (conds.length === 0) return db`true`;
  return conds.slice(1).reduce((acc, c) => db`${acc} and ${c}`, conds[0]);
}

/** `column = value` for each defined filter; keys are validated query fields named as columns. */
export function equalTo(db: Db, filters: Record<string, unknown>): Fragment[] {
  return Object.entries(filters)
    .filter(([, v]) => v !== undefined)
    .map(([column, v]) => db`${db(column)} = ${v as string}`);
}

/** Options of a keyset-paginated list over `(created_at, id)`. */
export interface ListSpec {
  /** Cursor namespace, e.g. "vms". */
  list: string;
  table: string;
  columns: readonly string[];
  where: Fragment[];
  page: Page;
  /** Newest first (jobs, audit logs) instead of oldest first. */
  descending?: boolean;
}

interface Keyed {
  id: string;
  created_at: Date;
}

/**
 * Lists rows ordered by `(created_at, id)`. The cursor is the last row's key, so a walk sees
 * every row that exists throughout it exactly once, whatever is inserted in between.
 */
export async function listPage<T extends object>(db: Db, spec: ListSpec): Promise<PageOf<T>> {
  const conds = [...spec.where];
  if (spec.page.cursor) {
    const key = decodeCursor(spec.page.cursor, spec.list);
    const [ms, id] = key;
    if (typeof ms !== "number" || typeof id !== "string" || !isUuid(id)) {
      throw InvalidArgumentError.field("cursor", "not a cursor of this list");
    }
    const at = new Date(ms);
    conds.push(
      spec.descending
        ? db`(created_at, id) < (${at}, ${id}::uuid)`
        : db`(created_at, id) > (${at}, ${id}::uuid)`,
    );
  }
  const order = spec.descending ? db`created_at desc, id desc` : db`created_at, id`;
  const rows = await run(() =>
    db<(T & Keyed)[]>`
      select ${db(spec.columns as string[])} from ${db(spec.table)}
      where ${and(db, conds)} order by ${order} limit ${spec.page.limit + 1}`
  );
  const items = rows.slice(0, spec.page.limit);
  const last = items.at(-1);
  return {
    items,
    next_cursor: rows.length > spec.page.limit && last
      ? encodeCursor({ list: spec.list, key: [last.created_at.getTime(), last.id] })
      : null,
  };
}

/**
 * One row by id, or undefined. `lock` takes a row lock (inside a transaction); `no key update`
 * so inserts of rows that reference this one (FK checks) are not blocked.
 */
export async function getById<T extends object>(
  db: Db,
  table: string,
  columns: readonly string[],
  id: string,
  lock = false,
): Promise<T | undefined> {
  if (!isUuid(id)) return undefined;
  const rows = await run(() =>
    lock
      ? db<T[]>`select ${db(columns as string[])} from ${
        db(table)
      } where id = ${id} for no key update`
      : db<T[]>`select ${db(columns as string[])} from ${db(table)} where id = ${id}`
  );
  return rows[0];
}

/** Wraps plain objects/arrays of JSON columns for postgres.js. */
function prepare(db: Db, row: Record<string, unknown>, json: readonly string[]) {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(row)) {
    if (v === undefined) continue;
    // deno-lint-ignore no-explicit-any
    out[k] = json.includes(k) && v !== null ? db.json(v as any) : v;
  }
  return out;
}

/** Inserts `row` and returns the stored columns. */
export async function insertRow<T extends object>(
  db: Db,
  table: string,
  columns: readonly string[],
  row: Record<string, unknown>,
  json: readonly string[] = [],
): Promise<T> {
  const values = prepare(db, row, json);
  const rows = await run(() =>
    db<T[]>`insert into ${db(table)} ${db(values)} returning ${db(columns as string[])}`
  );
  return rows[0];
}

/** Updates the given fields of one row; returns it, or undefined when it does not exist. */
export async function updateRow<T extends object>(
  db: Db,
  table: string,
  columns: readonly string[],
  id: string,
  fields: Record<string, unknown>,
  json: readonly string[] = [],
): Promise<T | undefined> {
  const values = prepare(db, fields, json);
  if (Object.keys(values).length === 0) return getById<T>(db, table, columns, id);
  const rows = await run(() =>
    db<T[]>`update ${db(table)} set ${db(values)} where id = ${id}
      returning ${db(columns as string[])}`
  );
  return rows[0];
}

/** Deletes one row by id; true when it existed. */
export async function deleteById(db: Db, table: string, id: string): Promise<boolean> {
  if (!isUuid(id)) return false;
  const rows = await run(() => db`delete from ${db(table)} where id = ${id} returning id`);
  return rows.length > 0;
}

/** The generic queries of one resource table (rows carry `id`, `created_at`, `version`). */
export interface TableQueries<T extends object> {
  readonly table: string;
  /** Columns of a single resource (with `version`, for the ETag). */
  readonly columns: readonly string[];
  /** Columns of list items (without `version`). */
  readonly listColumns: readonly string[];
  get(db: Db, id: string, lock?: boolean): Promise<T | undefined>;
  insert(db: Db, row: Record<string, unknown>): Promise<T>;
  update(db: Db, id: string, fields: Record<string, unknown>): Promise<T | undefined>;
  remove(db: Db, id: string): Promise<boolean>;
  list(db: Db, where: Fragment[], page: Page): Promise<PageOf<Omit<T, "version">>>;
}

/** Builds the generic queries of `table`; JSON columns are wrapped for postgres.js. */
export function tableQueries<T extends object>(
  table: string,
  columns: readonly string[],
  json: readonly string[] = [],
): TableQueries<T> {
  const listColumns = columns.filter((c) => c !== "version");
  return {
    table,
    columns,
    listColumns,
    get: (db, id, lock = false) => getById<T>(db, table, columns, id, lock),
    insert: (db, row) => insertRow<T>(db, table, columns, row, json),
    update: (db, id, fields) => updateRow<T>(db, table, columns, id, fields, json),
    remove: (db, id) => deleteById(db, table, id),
    list: (db, where, page) =>
      listPage<Omit<T, "version">>(db, { list: table, table, columns: listColumns, where, page }),
  };
}

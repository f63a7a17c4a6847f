/**
 * The shared shapes of create / patch / delete handlers: one transaction holding the row lock,
 * the If-Match check, the change, and its audit row; then the 201/200/204 response. Routers
 * supply only what differs (how to insert, what a patch changes, what blocks a delete).
 */
import type { Context } from "hono";
import { NotFoundError } from "../../shared/errors/errors.ts";
import { type Db, transaction } from "../db/query.ts";
import { audit } from "./audit.ts";
import { checkIfMatch, withEtag } from "./common.ts";
import type { AppDeps, AppEnv } from "./deps.ts";

interface Versioned {
  id: string;
  version: number;
  name?: string;
}

/** Inserts in a transaction with its audit row; answers 201 + Location + ETag. */
export async function createResource<T extends Versioned>(
  c: Context<AppEnv>,
  deps: AppDeps,
  opts: {
    resourceType: string;
    /** Collection path, e.g. `/v1/hosts`. */
    collection: string;
    insert: (tx: Db) => Promise<T>;
    summary?: (row: T) => Record<string, unknown>;
  },
): Promise<Omit<T, "version">> {
  const row = await transaction(deps.sql, async (tx) => {
    const created = await opts.insert(tx);
    await audit(tx, c, {
      action: "create",
      resource_type: opts.resourceType,
      resource_id: created.id,
      summary: opts.summary?.(created) ?? { name: created.name },
    });
    return created;
  });
  c.header("Location", `${opts.collection}/${row.id}`);
  return withEtag(c, row);
}

/** Locks the row, checks If-Match, applies `change`, audits; answers the new row + ETag. */
export async function patchResource<T extends Versioned>(
  c: Context<AppEnv>,
  deps: AppDeps,
  opts: {
    resourceType: string;
    id: string;
    get: (tx: Db, id: string, lock: boolean) => Promise<T | undefined>;
    /** Validates and applies the patch; returns the updated row and the changed fields. */
    change: (tx: Db, current: T) => Promise<{ row: T | undefined; fields: string[] }>;
  },
): Promise<Omit<T, "version">> {
  const noun = opts.resourceType.replaceAll("_", " ");
  const row = await transaction(deps.sql, async (tx) => {
    const current = await opts.get(tx, opts.id, true);
    if (!current) throw NotFoundError.of(noun, opts.id);
    checkIfMatch(c, current.version, `${noun} ${opts.id}`);
    const { row, fields } = await opts.change(tx, current);
    if (!row) throw NotFoundError.of(noun, opts.id);
    await audit(tx, c, {
      action: "update",
      resource_type: opts.resourceType,
      resource_id: opts.id,
      summary: { name: row.name ?? current.name, fields },
    });
    return row;
  });
  return withEtag(c, row);
}

/** Locks the row, checks If-Match and `guard`, deletes, audits; answers 204. */
export async function deleteResource<T extends Versioned>(
  c: Context<AppEnv>,
  deps: AppDeps,
  opts: {
    resourceType: string;
    id: string;
    get: (tx: Db, id: string, lock: boolean) => Promise<T | undefined>;
    /** Throws when the resource may not go (in use, wrong state). */
    guard?: (tx: Db, current: T) => Promise<void>;
    remove: (tx: Db, id: string) => Promise<unknown>;
    summary?: (row: T) => Record<string, unknown>;
  },
): Promise<Response> {
  const noun = opts.resourceType.replaceAll("_", " ");
  await transaction(deps.sql, async (tx) => {
    const current = await opts.get(tx, opts.id, true);
    if (!current) throw NotFoundError.of(noun, opts.id);
    checkIfMatch(c, current.version, `${noun} ${opts.id}`);
    await opts.guard?.(tx, current);
    await opts.remove(tx, opts.id);
    await audit(tx, c, {
      action: "delete",
      resource_type: opts.resourceType,
      resource_id: opts.id,
      summary: opts.summary?.(current) ?? { name: current.name },
    });
  });
  return c.body(null, 204);
}

/** Fetches one row or throws 404; answers it with its ETag. */
export async function getResource<T extends Versioned>(
  c: Context<AppEnv>,
  resourceType: string,
  id: string,
  get: () => Promise<T | undefined>,
): Promise<Omit<T, "version">> {
  const row = await get();
  if (!row) throw NotFoundError.of(resourceType.replaceAll("_", " "), id);
  return withEtag(c, row);
}

/** The subset of `patch` keys whose value is not undefined (what a merge patch sets). */
export function presentKeys(patch: Record<string, unknown>): string[] {
  return Object.keys(patch).filter((k) => patch[k] !== undefined);
}

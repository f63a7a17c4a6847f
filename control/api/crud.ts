/**
 * The shared shapes of create / patch / delete handlers: one transaction holding the row lock,
 * the If-Match check, the change, and its audit row; then the 201/200/204 response. Routers
 * supply only what differs (how to insert, what a patch changes, what blocks a delete). The
 * route builders below register the list / create / get / delete routes whose documentation
 * and handler are the same for every resource but for names and schemas.
 */
import { createRoute, type OpenAPIHono, type z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { NotFoundError } from "../../shared/errors/errors.ts";
import { type Db, type Page, type PageOf, transaction } from "../db/query.ts";
import { audit } from "./audit.ts";
import {
  body,
  checkIfMatch,
  defined,
  errors,
  IdParams,
  IfMatchHeaders,
  json,
  ListOf,
  patchBody,
  withEtag,
} from "./common.ts";
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

// ---- route builders ----------------------------------------------------------------------

/** What documents a route (`path` relative to `/v1`). */
interface RouteDoc {
  path: string;
  tags: string[];
  summary: string;
  description?: string;
}

/** The documentation fields of a route, picked from a builder's options. */
function docOf({ path, tags, summary, description }: RouteDoc): RouteDoc {
  return { path, tags, summary, description };
}

/** Registers `GET {path}`: a page of `item`s (`{Name}List`), filtered by `query`. */
export function listRoute<Q extends z.ZodObject, T extends object>(
  app: OpenAPIHono<AppEnv>,
  deps: AppDeps,
  opts: RouteDoc & {
    item: z.ZodType;
    /** Component name of the page schema, e.g. `NetworkList`. */
    listName: string;
    /** Description of the 200 response. */
    page?: string;
    query: Q;
    list: (db: Db, filters: Omit<z.infer<Q>, "limit" | "cursor">, page: Page) => Promise<
      PageOf<T>
    >;
  },
): void {
  app.openapi(
    createRoute({
      method: "get",
      ...docOf(opts),
      request: { query: opts.query },
      responses: {
        200: json(ListOf(opts.item, opts.listName), opts.page ?? "A page"),
        ...errors(422),
      },
    }),
    async (c) => {
      const { limit, cursor, ...filters } = c.req.valid("query" as never) as z.infer<Q> & Page;
      return c.json(await opts.list(deps.sql, filters, { limit, cursor }), 200) as never;
    },
  );
}

/** Registers `POST {path}`: inserts with {@link createResource}; 201 + Location + ETag. */
export function postRoute<B extends z.ZodType, T extends Versioned>(
  app: OpenAPIHono<AppEnv>,
  deps: AppDeps,
  opts: RouteDoc & {
    body: B;
    schema: z.ZodType;
    /** Description of the 201 response. */
    created?: string;
    resourceType: string;
    /** Validates (throwing rolls back) and inserts. */
    insert: (tx: Db, input: z.infer<B>) => Promise<T>;
    auditSummary?: (row: T) => Record<string, unknown>;
  },
): void {
  app.openapi(
    createRoute({
      method: "post",
      ...docOf(opts),
      request: { body: body(opts.body) },
      responses: {
        201: json(opts.schema, opts.created ?? "Created", true),
        ...errors(400, 409, 422),
      },
    }),
    async (c) => {
      const input = c.req.valid("json" as never) as z.infer<B>;
      const row = await createResource(c, deps, {
        resourceType: opts.resourceType,
        collection: `/v1${opts.path}`,
        insert: (tx) => opts.insert(tx, input),
        summary: opts.auditSummary,
      });
      return c.json(row, 201) as never;
    },
  );
}

/** Registers `GET {path}` (ending in `/{id}`): the row with its ETag, 404 when absent. */
export function getRoute<T extends Versioned>(
  app: OpenAPIHono<AppEnv>,
  deps: AppDeps,
  opts: RouteDoc & {
    schema: z.ZodType;
    /** Description of the 200 response. */
    found: string;
    resourceType: string;
    get: (db: Db, id: string) => Promise<T | undefined>;
  },
): void {
  app.openapi(
    createRoute({
      method: "get",
      ...docOf(opts),
      request: { params: IdParams },
      responses: { 200: json(opts.schema, opts.found, true), ...errors(404) },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const row = await getResource(c, opts.resourceType, id, () => opts.get(deps.sql, id));
      return c.json(row, 200) as never;
    },
  );
}

/**
 * Registers `PATCH {path}` (ending in `/{id}`): a JSON merge patch applied with
 * {@link patchResource}; the audit names the fields the patch sets.
 */
export function patchRoute<B extends z.ZodType, T extends Versioned>(
  app: OpenAPIHono<AppEnv>,
  deps: AppDeps,
  opts: RouteDoc & {
    body: B;
    schema: z.ZodType;
    resourceType: string;
    get: (tx: Db, id: string, lock: boolean) => Promise<T | undefined>;
    /** Validates the patch (its defined fields) against `current` and stores it. */
    update: (tx: Db, id: string, patch: Partial<z.infer<B>>, current: T) => Promise<T | undefined>;
  },
): void {
  app.openapi(
    createRoute({
      method: "patch",
      ...docOf(opts),
      request: { params: IdParams, headers: IfMatchHeaders, body: patchBody(opts.body) },
      responses: { 200: json(opts.schema, "Updated", true), ...errors(400, 404, 409, 412, 422) },
    }),
    async (c) => {
      const { id } = c.req.valid("param" as never) as { id: string };
      const patch = defined(c.req.valid("json" as never) as Record<string, unknown>) as Partial<
        z.infer<B>
      >;
      const row = await patchResource<T>(c, deps, {
        resourceType: opts.resourceType,
        id,
        get: opts.get,
        change: async (tx, current) => ({
          row: await opts.update(tx, id, patch, current),
          fields: Object.keys(patch),
        }),
      });
      return c.json(row, 200) as never;
    },
  );
}

/**
 * Registers `DELETE {path}` (ending in `/{id}`) with {@link deleteResource}; 204. A `guard` is
 * what can refuse with 409, so the route documents 409 exactly when there is one.
 */
export function deleteRoute<T extends Versioned>(
  app: OpenAPIHono<AppEnv>,
  deps: AppDeps,
  opts: RouteDoc & {
    /** Description of the 204 response. */
    deleted?: string;
    resourceType: string;
    get: (tx: Db, id: string, lock: boolean) => Promise<T | undefined>;
    guard?: (tx: Db, current: T, id: string) => Promise<void>;
    remove: (tx: Db, id: string) => Promise<unknown>;
  },
): void {
  const { guard } = opts;
  app.openapi(
    createRoute({
      method: "delete",
      ...docOf(opts),
      request: { params: IdParams, headers: IfMatchHeaders },
      responses: {
        204: { description: opts.deleted ?? "Deleted" },
        ...(guard ? errors(404, 409, 412) : errors(404, 412)),
      },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      return await deleteResource<T>(c, deps, {
        resourceType: opts.resourceType,
        id,
        get: opts.get,
        guard: guard && ((tx, current) => guard(tx, current, id)),
        remove: opts.remove,
      });
    },
  );
}

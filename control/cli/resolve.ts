/**
 * Names or ids wherever the CLI expects an id: a UUID is used as it is, anything else is
 * looked up with the collection's `?name=` filter. Unknown and ambiguous names are clear
 * errors; `Names` turns ids in tables back into names with one list request per kind.
 */
import { InvalidArgumentError, NotFoundError } from "../../shared/errors/errors.ts";
import type { ApiClient, Query } from "./client.ts";

/** A resource kind the CLI can name. */
export interface Kind {
  /** Singular noun for messages (`storage pool`). */
  noun: string;
  /** Collection path (`/v1/storage-pools`). */
  path: string;
  /** False for kinds without names (jobs, audit logs). */
  named: boolean;
}

export const KINDS = {
  host: { noun: "host", path: "/v1/hosts", named: true },
  vm: { noun: "vm", path: "/v1/vms", named: true },
  network: { noun: "network", path: "/v1/networks", named: true },
  pool: { noun: "storage pool", path: "/v1/storage-pools", named: true },
  object: { noun: "storage object", path: "/v1/storage-objects", named: true },
  bootSource: { noun: "boot source", path: "/v1/boot-sources", named: true },
  instanceType: { noun: "instance type", path: "/v1/instance-types", named: true },
  template: { noun: "vm template", path: "/v1/vm-templates", named: true },
  job: { noun: "job", path: "/v1/jobs", named: false },
  audit: { noun: "audit log", path: "/v1/audit-logs", named: false },
} as const satisfies Record<string, Kind>;

export type KindName = keyof typeof KINDS;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** True for a UUID (names never look like one in practice; ids win). */
export function isId(ref: string): boolean {
  return UUID.test(ref);
}

/**
 * The id of `ref` (a name or an id). `narrow` adds list filters (e.g. a storage object's
 * pool) and `hint` tells the user how to narrow when a name is ambiguous.
 */
export async function resolveId(
  client: ApiClient,
  kind: KindName,
  ref: string,
  opts: { narrow?: Query; hint?: string } = {},
): Promise<string> {
  const k: Kind = KINDS[kind];
  if (isId(ref)) return ref;
  if (!k.named) {
    throw new InvalidArgumentError(`"${ref}" is not a ${k.noun} id (${k.noun}s have no names)`);
  }
  if (!ref) throw new InvalidArgumentError(`empty ${k.noun} name`);
  const page = await client.get<{ items: { id: string; name: string }[] }>(k.path, {
    ...opts.narrow,
    name: ref,
    limit: 20,
  });
  const matches = page.items.filter((i) => i.name === ref);
  if (matches.length === 1) return matches[0].id;
  if (matches.length === 0) throw new NotFoundError(`no ${k.noun} named "${ref}"`);
  throw new InvalidArgumentError(
    `${matches.length} ${k.noun}s are named "${ref}" (${
      matches.map((m) => m.id).join(", ")
    }); pass an id${opts.hint ? ` or ${opts.hint}` : ""}`,
  );
}

/** Fetches one resource by name or id. */
export async function fetchOne<T = Record<string, unknown>>(
  client: ApiClient,
  kind: KindName,
  ref: string,
  opts: { narrow?: Query; hint?: string } = {},
): Promise<T> {
  const id = await resolveId(client, kind, ref, opts);
  return await client.get<T>(`${KINDS[kind].path}/${id}`);
}

/** Id → name for table columns, one list request per kind. */
export class Names {
  readonly #client: ApiClient;
  readonly #maps = new Map<KindName, Map<string, string>>();

  constructor(client: ApiClient) {
    this.#client = client;
  }

  /** Loads the names of `kinds` (before rendering, which is synchronous). */
  async load(...kinds: KindName[]): Promise<this> {
    for (const kind of kinds) {
      if (this.#maps.has(kind)) continue;
      try {
        const page = await this.#client.list<{ id: string; name: string }>(
          KINDS[kind].path,
          {},
          5000,
        );
        this.#maps.set(kind, new Map(page.items.map((i) => [i.id, i.name])));
      } catch {
        // Names are a nicety: without them the table shows ids.
        this.#maps.set(kind, new Map());
      }
    }
    return this;
  }

  /** The name of `id`, or the id when unknown. */
  of(kind: KindName, id: string | null | undefined): string {
    if (!id) return "";
    return this.#maps.get(kind)?.get(id) ?? id;
  }
}

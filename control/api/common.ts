/**
 * Shared API building blocks: zod schemas reused by every router (ids, names, labels, errors,
 * list envelopes), OpenAPI response helpers, the 422 hook that turns zod issues into our error
 * body, JSON merge patch, ETag / If-Match handling, and the 201 + Location response.
 */
import { type RouteConfig, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import {
  type ErrorDetail,
  InvalidArgumentError,
  NotFoundError,
  PreconditionFailedError,
} from "../../shared/errors/errors.ts";
import type { AppEnv } from "./deps.ts";

// ---- schemas ---------------------------------------------------------------------------

/** A resource id (UUID text). */
export const Id = z.guid().openapi({
  format: "uuid",
  example: "0b6f2a1e-8a4c-4e0f-9d51-1c2b3a4d5e6f",
});

/** Resource names: also used as host names and file names, hence the strict alphabet. */
export const Name = z.string().regex(
  /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/,
  "1-63 characters of A-Z a-z 0-9 _ . -, starting with a letter or digit",
);

/** Free text, bounded. */
export const Description = z.string().max(1024);

/** Label keys and values (hosts, placement). */
export const Labels = z.record(
  z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_./-]{0,62}$/, "label keys: 1-63 of A-Z a-z 0-9 _ . / -"),
  z.string().max(255),
).openapi({ example: { zone: "a", gpu: "none" } });

/** A tag on a VM. */
export const Tag = z.string().regex(
  /^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,62}$/,
  "1-63 of A-Z a-z 0-9 _ . : / -, starting with a letter or digit",
);

/** Bytes, up to 2^53 (exact in JSON numbers). */
export const Bytes = z.int().min(0).max(Number.MAX_SAFE_INTEGER);
/** A count of vCPUs. */
export const Vcpus = z.int().min(1).max(512);

/** Timestamps (ISO 8601 on the wire). */
export const Timestamp = z.date().openapi({ type: "string", format: "date-time" });

/** `x86_64` or `aarch64`. */
export const Architecture = z.enum(["x86_64", "aarch64"]);

/** The body of every error response. */
export const ErrorBody = z.object({
  code: z.string().openapi({ example: "invalid_argument" }),
  message: z.string(),
  details: z.array(
    z.object({ field: z.string().optional(), message: z.string() }).catchall(z.unknown()),
  ),
  request_id: z.string().nullable(),
}).openapi("Error");

/** `{items, next_cursor}` of a list. */
export function ListOf<T extends z.ZodType>(item: T, name: string) {
  return z.object({
    items: z.array(item),
    next_cursor: z.string().nullable().openapi({
      description: "Pass as `cursor` for the next page; null on the last page.",
    }),
  }).openapi(name);
}

/** Query parameters every list accepts. */
export const PageQuery = {
  limit: z.coerce.number().int().min(1).max(1000).default(100).openapi({
    description: "Page size (1-1000).",
  }),
  cursor: z.string().max(512).optional().openapi({
    description: "`next_cursor` of the previous page.",
  }),
};

/** `?force=true`: forget a host attachment even though the host's node cannot be reached. */
export const ForceQuery = z.object({
  force: z.enum(["true", "false"]).optional().openapi({
    description: "Forget the attachment even though the host's node cannot be reached",
  }),
});

/** Path parameter `{id}`. */
export const IdParams = z.object({ id: Id.openapi({ param: { name: "id", in: "path" } }) });

// ---- OpenAPI helpers ---------------------------------------------------------------------

const ERROR_TEXT: Record<number, string> = {
  400: "Malformed request (broken JSON, wrong content type)",
  401: "Missing or wrong bearer token",
  404: "Not found",
  409: "Conflict: duplicate, in use, or not allowed in the current state",
  412: "If-Match does not match the current ETag",
  422: "Validation failed; `details` names each bad field",
};

/** Error responses for a route (401 is added to every /v1 route). */
export function errors(...codes: (400 | 404 | 409 | 412 | 422)[]): RouteConfig["responses"] {
  const out: RouteConfig["responses"] = {};
  for (const code of [...codes, 401]) {
    out[code] = {
      description: ERROR_TEXT[code],
      content: { "application/json": { schema: ErrorBody } },
    };
  }
  return out;
}

/** A JSON response. */
export function json<T extends z.ZodType>(schema: T, description: string, headers = false) {
  return {
    description,
    content: { "application/json": { schema } },
    ...(headers ? { headers: z.object({ ETag: z.string() }) } : {}),
  };
}

/** A required JSON request body. */
export function body<T extends z.ZodType>(schema: T) {
  return { required: true, content: { "application/json": { schema } } };
}

/** A required JSON merge-patch body (plain application/json is accepted too). */
export function patchBody<T extends z.ZodType>(schema: T) {
  return { required: true, content: { "application/merge-patch+json": { schema } } };
}

/** The If-Match header a PATCH/DELETE may carry. */
export const IfMatchHeaders = z.object({
  "if-match": z.string().optional().openapi({
    description: "ETag from a previous GET; the change applies only if it still matches (412).",
  }),
});

// ---- validation --------------------------------------------------------------------------

interface Issue {
  code: string;
  path: PropertyKey[];
  message: string;
  keys?: string[];
}

/** zod issues → one detail per bad field (`patch`: unknown keys may be fixed fields). */
export function issueDetails(issues: readonly Issue[], patch = false): ErrorDetail[] {
  const out: ErrorDetail[] = [];
  const unknown = patch ? "unknown field, or one that cannot be changed" : "unknown field";
  for (const issue of issues) {
    const path = issue.path.map(String).join(".");
    if (issue.code === "unrecognized_keys" && issue.keys) {
      for (const k of issue.keys) {
        out.push({ field: path ? `${path}.${k}` : k, message: unknown });
      }
    } else {
      out.push({ field: path || "(body)", message: issue.message.replace(/^Invalid input: /, "") });
    }
  }
  // One complaint per field: the first (e.g. "too small" before "not a multiple of 1 MiB").
  const seen = new Set<string | undefined>();
  return out.filter((d) => !seen.has(d.field) && seen.add(d.field));
}

/** The `defaultHook` of every router: failed validation → 422 (404 for a malformed path id). */
export function validationHook(
  result: { success: boolean; target?: string; error?: { issues: readonly Issue[] } },
  c: Context,
): void {
  if (result.success || !result.error) return;
  const details = issueDetails(result.error.issues, c.req.method === "PATCH");
  if (result.target === "param") {
    throw new NotFoundError(
      `${c.req.path} not found (${details.map((d) => d.field).join(", ")} is not a valid id)`,
      {
        details,
      },
    );
  }
  const fields = details.map((d) => d.field).join(", ");
  throw new InvalidArgumentError(
    `invalid ${result.target === "query" ? "query" : "request"}: ${fields}`,
    {
      details,
    },
  );
}

// ---- merge patch, ETags, responses -------------------------------------------------------

/** RFC 7396 JSON merge patch: null removes, objects merge recursively, anything else replaces. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== "object" || Array.isArray(patch)) return patch;
  const out: Record<string, unknown> = target !== null && typeof target === "object" &&
      !Array.isArray(target)
    ? { ...(target as Record<string, unknown>) }
    : {};
  for (const [k, v] of Object.entries(patch as Record<string, unknown>)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

/** The ETag of a row version. */
export function etagOf(version: number): string {
  return `"${version}"`;
}

/** Throws 412 unless `If-Match` is absent, `*`, or lists the current ETag. */
export function checkIfMatch(c: Context, version: number, what: string): void {
  const header = c.req.header("if-match");
  if (header === undefined) return;
  const tags = header.split(",").map((t) => t.trim().replace(/^W\//, ""));
  if (tags.includes("*") || tags.includes(etagOf(version))) return;
  throw new PreconditionFailedError(
    `${what} has changed (current ETag ${
      etagOf(version)
    }, If-Match ${header}); fetch it again and retry`,
  );
}

/** Strips `version` from a row, setting it as the ETag header. */
export function withEtag<T extends { version: number }>(
  c: Context<AppEnv>,
  row: T,
): Omit<T, "version"> {
  const { version, ...rest } = row;
  c.header("ETag", etagOf(version));
  return rest;
}

const MiB = 1024 * 1024;

/** Guest memory in bytes: a whole number of MiB, at least 1 MiB. */
export const MemorySize = z.int().min(MiB).max(Number.MAX_SAFE_INTEGER).refine(
  (n) => n % MiB === 0,
  "must be a multiple of 1 MiB (1048576)",
);

/** Hot-pluggable memory in bytes: a whole number of MiB (0 = none). */
export const HotplugSize = z.int().min(0).max(Number.MAX_SAFE_INTEGER).refine(
  (n) => n % MiB === 0,
  "must be a multiple of 1 MiB (1048576)",
);

/** Throws a 422 naming `max_vcpus` when it is below `boot_vcpus`. */
export function checkVcpus(boot: number, max: number | null | undefined): void {
  if (max !== null && max !== undefined && max < boot) {
    throw InvalidArgumentError.field("max_vcpus", `must be at least boot_vcpus (${boot})`);
  }
}

/** Only the keys of `patch` that are set (undefined dropped). */
export function defined<T extends Record<string, unknown>>(patch: T): Partial<T> {
  return Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined)) as Partial<
    T
  >;
}

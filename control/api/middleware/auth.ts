/**
 * Bearer-token authentication: tokens come from config `auth.tokens` as sha256 hex digests;
 * the presented token is hashed and compared with every configured digest in constant time.
 * The matching token's name becomes the audit actor. Health, the API document and the docs
 * page stay public; `/metrics` too when `metrics.public` says so (a scraper usually carries a
 * token, so by default it follows auth like the API). WebSocket upgrades of the console attach
 * route may carry the token as `?token=` instead, because browsers cannot set headers on a
 * WebSocket; the header wins when both are present, and the token is never logged (request
 * logs carry the path only).
 */
import type { MiddlewareHandler } from "hono";
import { UnauthenticatedError } from "../../../shared/errors/errors.ts";
import type { ControlConfig } from "../../../shared/config/schema.ts";
import type { AppEnv } from "../deps.ts";

/** What else may be served without a token. */
export interface AuthOptions {
  /** `/metrics` too (config `metrics.public`). */
  publicMetrics?: boolean;
  /** Paths whose WebSocket upgrades may carry the token as `?token=` (the console attach). */
  queryTokenPath?: RegExp;
}

/** The token a request presents: the Authorization header, else `?token=` where allowed. */
function presentedToken(
  req: { header(name: string): string | undefined; query(name: string): string | undefined },
  path: string,
  options: AuthOptions,
): { header: string; token: string | undefined } {
  const header = req.header("authorization") ?? "";
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (m) return { header, token: m[1] };
  if (
    !header && options.queryTokenPath?.test(path) &&
    req.header("upgrade")?.toLowerCase() === "websocket"
  ) {
    const q = req.query("token");
    if (q) return { header, token: q };
  }
  return { header, token: undefined };
}

/** Paths that never need a token. */
export function isPublicPath(path: string, options: AuthOptions = {}): boolean {
  return path === "/healthz" || path === "/readyz" || path === "/openapi.json" ||
    path === "/docs" || path.startsWith("/docs/") ||
    (path === "/metrics" && options.publicMetrics === true);
}

/** Hex sha256 of a string. */
export async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Compares equal-length strings without an early exit. */
function equalConstantTime(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

/** The auth middleware; a no-op (actor `anonymous`) when auth is disabled. */
export function bearerAuth(
  auth: ControlConfig["auth"],
  options: AuthOptions = {},
): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    if (!auth.enabled || isPublicPath(c.req.path, options)) return await next();
    const { header, token } = presentedToken(c.req, c.req.path, options);
    if (token === undefined) {
      c.header("WWW-Authenticate", 'Bearer realm="qarax"');
      throw new UnauthenticatedError(
        header ? "the Authorization header must be `Bearer <token>`" : "missing bearer token",
      );
    }
    const digest = await sha256Hex(token);
    let name: string | undefined;
    for (const t of auth.tokens) {
      // Every digest is compared so the time taken does not reveal which one matched.
      if (equalConstantTime(digest, t.sha256) && name === undefined) name = t.name;
    }
    if (name === undefined) {
      c.header("WWW-Authenticate", 'Bearer realm="qarax", error="invalid_token"');
      throw new UnauthenticatedError("invalid bearer token");
    }
    c.set("actor", name);
    c.set("log", c.get("log").child({ actor: name }));
    await next();
  };
}

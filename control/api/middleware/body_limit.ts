/**
 * The request body size limit. A declared Content-Length is checked as declared; a body of
 * unknown length (chunked, or a POST with no length at all as `curl -X POST` sends) is read up
 * to the limit and handed on as bytes.
 *
 * Hono's `bodyLimit` does the same but re-creates the request as `new Request(c.req.raw, …)`,
 * and constructing a Request from another reads the incoming one's `signal`. Under
 * `Deno.serve` that marks the request's signal as used, and Deno then prints its one-time
 * "request.signal aborts on successful responses (legacy behavior)" notice after the
 * response. Here the replacement request is built from the URL, so the incoming signal is
 * never touched.
 */
import type { MiddlewareHandler } from "hono";

/** Rejects bodies over `maxBytes` by calling `tooLarge` (which throws or answers). */
export function bodyLimit(
  maxBytes: number,
  tooLarge: () => Response | Promise<Response>,
): MiddlewareHandler {
  return async (c, next) => {
    const raw = c.req.raw;
    if (!raw.body) return await next();
    const length = raw.headers.get("content-length");
    if (length !== null && !raw.headers.has("transfer-encoding")) {
      if (Number.parseInt(length, 10) > maxBytes) return await tooLarge();
      return await next();
    }
    const reader = raw.body.getReader();
    const chunks: Uint8Array[] = [];
    let size = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.length;
      if (size > maxBytes) {
        await reader.cancel().catch(() => {});
        return await tooLarge();
      }
      chunks.push(value);
    }
    const body = new Uint8Array(size);
    let offset = 0;
    for (const chunk of chunks) {
      body.set(chunk, offset);
      offset += chunk.length;
    }
    const headers = new Headers(raw.headers);
    headers.delete("transfer-encoding");
    headers.set("content-length", String(size));
    c.req.raw = new Request(raw.url, { method: raw.method, headers, body });
    return await next();
  };
}

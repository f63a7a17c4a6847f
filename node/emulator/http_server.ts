/**
 * An HTTP server that behaves like firecracker's micro-http as CH uses it: HTTP/1.0 and 1.1
 * only, methods GET/PUT/PATCH/DELETE, Content-Length bodies (4 MiB limit), `Expect:
 * 100-continue`, keep-alive and pipelining, at most 10 connections (the 11th gets the fixed
 * 503 and is closed), parse errors answered in micro-http's `{ "error": ... }` form, and
 * responses framed byte for byte like micro-http (no reason phrase, no length on 204).
 * Requests are handed to one handler; the handler serialises them (see `vmm.ts`).
 */

import { closeFd } from "../sys/libc.ts";

export type HttpMethod = "GET" | "PUT" | "PATCH" | "DELETE";

/** A fully received request. */
export interface HttpRequest {
  method: HttpMethod;
  uri: string;
  /** The path part of the URI (`/api/v1/vm.boot`), host and scheme stripped. */
  path: string;
  version: "HTTP/1.0" | "HTTP/1.1";
  /** null when there is no body (Content-Length absent or 0). */
  body: Uint8Array | null;
  /** Descriptors that came with the request (SCM_RIGHTS); whoever handles it closes them. */
  fds: number[];
}

/** A connection the server reads requests from (a Deno.UnixConn or an FdSocket). */
export interface HttpConn {
  read(buf: Uint8Array): Promise<number | null>;
  write(data: Uint8Array): Promise<number>;
  close(): void;
  /** Descriptors received so far, when the transport can carry them. */
  takeFds?(): number[];
}

/** Where connections come from (a Deno unix listener or an FdListener). */
export interface HttpListener {
  accept(): Promise<HttpConn>;
  close(): void;
}

/** What to send back. `body` null/absent: no body (Content-Length 0 unless 204). */
export interface HttpAnswer {
  status: number;
  body?: string | null;
  /** `Server` header; CH's routes say "Cloud Hypervisor API". */
  server?: string;
  contentType?: string;
  /** Runs after the answer has been written (e.g. exiting after `vmm.shutdown`). */
  after?: () => void | Promise<void>;
}

export type HttpHandler = (req: HttpRequest) => Promise<HttpAnswer>;

export interface MicroHttpOptions {
  maxConnections?: number;
  maxPayload?: number;
  /** Called with each connection-level event worth logging. */
  log?: (msg: string) => void;
}

/** micro-http's fixed answer to the connection over the limit (note: no trailing space). */
export const SERVER_FULL_RESPONSE = "HTTP/1.1 503\r\nServer: Firecracker API\r\n" +
  'Connection: close\r\nContent-Length: 40\r\n\r\n{ "error": "Too many open connections" }';

export const MAX_PAYLOAD = 4 * 1024 * 1024;
const REQUEST_LINE_LIMIT = 1024;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A micro-http parse failure (its Display text). */
export class ParseError extends Error {}

/** Incremental request parser with micro-http's state machine and error texts. */
export class RequestParser {
  #buf: Uint8Array = new Uint8Array(0);
  #state: "line" | "headers" | "body" = "line";
  #req: Omit<HttpRequest, "body" | "fds"> | null = null;
  #length = 0;
  #expect = false;
  readonly #maxPayload: number;

  constructor(maxPayload = MAX_PAYLOAD) {
    this.#maxPayload = maxPayload;
  }

  /**
   * Feeds bytes and returns the requests they complete. `onContinue` is called (with the
   * request's HTTP version) when a head with `Expect: 100-continue` must be acknowledged.
   * Throws ParseError.
   */
  push(
    chunk: Uint8Array,
    onContinue?: (version: string) => void,
  ): Omit<HttpRequest, "fds">[] {
    this.#buf = concat(this.#buf, chunk);
    const out: Omit<HttpRequest, "fds">[] = [];
    for (;;) {
      if (this.#state === "line") {
        const end = indexOfCrlf(this.#buf);
        if (end < 0) {
          if (this.#buf.length >= REQUEST_LINE_LIMIT) throw new ParseError("Invalid request.");
          return out;
        }
        const line = decoder.decode(this.#buf.subarray(0, end));
        this.#buf = this.#buf.slice(end + 2);
        this.#req = parseRequestLine(line);
        this.#length = 0;
        this.#expect = false;
        this.#state = "headers";
      } else if (this.#state === "headers") {
        const end = indexOfCrlf(this.#buf);
        if (end < 0) {
          if (this.#buf.length >= REQUEST_LINE_LIMIT) {
            // micro-http's (odd) wording for a header line longer than its 1 KiB buffer.
            throw new ParseError(
              `Invalid header. Reason: Invalid content length. Header: ${
                decoder.decode(this.#buf.subarray(0, REQUEST_LINE_LIMIT))
              }`,
            );
          }
          return out;
        }
        const line = decoder.decode(this.#buf.subarray(0, end));
        this.#buf = this.#buf.slice(end + 2);
        if (line === "") {
          if (this.#length > this.#maxPayload) {
            throw new ParseError(
              `Request payload with size ${this.#length} is larger than the limit of ${this.#maxPayload} allowed by server.`,
            );
          }
          if (this.#length === 0) {
            out.push({ ...this.#req!, body: null });
            this.#state = "line";
          } else {
            if (this.#expect) onContinue?.(this.#req!.version);
            this.#state = "body";
          }
        } else {
          this.#header(line);
        }
      } else {
        if (this.#buf.length < this.#length) return out;
        const body = this.#buf.slice(0, this.#length);
        this.#buf = this.#buf.slice(this.#length);
        out.push({ ...this.#req!, body });
        this.#state = "line";
      }
    }
  }

  /** Forgets everything buffered (after a parse error). */
  reset(): void {
    this.#buf = new Uint8Array(0);
    this.#state = "line";
    this.#req = null;
  }

  #header(line: string): void {
    const colon = line.indexOf(":");
    if (colon < 0) {
      throw new ParseError(`Invalid header. Reason: Header is incorrectly formatted. Key: ${line}`);
    }
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1);
    if (name === "content-length") {
      const v = value.trim();
      if (!/^\d+$/.test(v) || Number(v) > 0xffffffff) {
        throw new ParseError(
          `Invalid header. Reason: Invalid value. Key:Content-Length; Value:${value}`,
        );
      }
      this.#length = Number(v);
    } else if (name === "expect") {
      if (value.trim() === "100-continue") this.#expect = true;
    }
    // Every other header, known or not, is accepted and ignored.
  }
}

function parseRequestLine(line: string): Omit<HttpRequest, "body" | "fds"> {
  const sp1 = line.indexOf(" ");
  const method = sp1 < 0 ? line : line.slice(0, sp1);
  if (!["GET", "PUT", "PATCH", "DELETE"].includes(method)) {
    throw new ParseError("Invalid HTTP Method: Unsupported HTTP method.");
  }
  const rest = sp1 < 0 ? "" : line.slice(sp1 + 1);
  const sp2 = rest.indexOf(" ");
  const uri = sp2 < 0 ? rest : rest.slice(0, sp2);
  const version = sp2 < 0 ? "" : rest.slice(sp2 + 1);
  if (uri === "") throw new ParseError("Invalid URI: Empty URI not allowed.");
  if (version !== "HTTP/1.0" && version !== "HTTP/1.1") {
    throw new ParseError("Invalid HTTP Version: Unsupported HTTP version.");
  }
  return { method: method as HttpMethod, uri, path: absPath(uri), version };
}

/** micro-http's `Uri::get_abs_path`: drops `http://host`, keeps the rest verbatim. */
export function absPath(uri: string): string {
  const scheme = "http://";
  if (!uri.startsWith(scheme)) return uri;
  const slash = uri.indexOf("/", scheme.length);
  return slash < 0 ? "" : uri.slice(slash);
}

/** Encodes an answer the way micro-http writes a Response. */
export function encodeAnswer(a: HttpAnswer): Uint8Array {
  let head = `HTTP/1.1 ${a.status} \r\nServer: ${a.server ?? "Cloud Hypervisor API"}\r\n` +
    "Connection: keep-alive\r\n";
  const body = encoder.encode(a.body ?? "");
  if (a.status !== 204 && a.status >= 200) {
    head += `Content-Type: ${a.contentType ?? "application/json"}\r\n` +
      `Content-Length: ${body.length}\r\n`;
  }
  return concat(encoder.encode(head + "\r\n"), a.status === 204 ? new Uint8Array(0) : body);
}

/** The parse-error answer (400, server "Firecracker API", text/plain, raw newline inside). */
export function parseErrorAnswer(reason: string): HttpAnswer {
  return {
    status: 400,
    server: "Firecracker API",
    contentType: "text/plain",
    body: `{ "error": "${reason}\nAll previous unanswered requests will be dropped." }`,
  };
}

/** Serves one unix listener with micro-http semantics. */
export class MicroHttpServer {
  readonly #listener: HttpListener;
  readonly #handler: HttpHandler;
  readonly #max: number;
  readonly #maxPayload: number;
  readonly #log: (msg: string) => void;
  readonly #conns = new Set<HttpConn>();
  #closed = false;

  constructor(
    listener: HttpListener,
    handler: HttpHandler,
    opts: MicroHttpOptions = {},
  ) {
    this.#listener = listener;
    this.#handler = handler;
    this.#max = opts.maxConnections ?? 10;
    this.#maxPayload = opts.maxPayload ?? MAX_PAYLOAD;
    this.#log = opts.log ?? (() => {});
  }

  /** Accepts connections until closed. */
  async serve(): Promise<void> {
    for (;;) {
      let conn: HttpConn;
      try {
        conn = await this.#listener.accept();
      } catch {
        if (this.#closed) return;
        continue;
      }
      if (this.#conns.size >= this.#max) {
        this.#log("HTTP server full, refusing connection");
        conn.write(encoder.encode(SERVER_FULL_RESPONSE)).catch(() => {}).finally(() => {
          try {
            conn.close();
          } catch { /* gone */ }
        });
        continue;
      }
      this.#conns.add(conn);
      this.#handle(conn).finally(() => {
        this.#conns.delete(conn);
        try {
          conn.close();
        } catch { /* already closed */ }
      });
    }
  }

  /** Stops accepting and drops every connection. */
  close(): void {
    this.#closed = true;
    try {
      this.#listener.close();
    } catch { /* already closed */ }
    for (const c of this.#conns) {
      try {
        c.close();
      } catch { /* already closed */ }
    }
    this.#conns.clear();
  }

  async #handle(conn: HttpConn): Promise<void> {
    const parser = new RequestParser(this.#maxPayload);
    const buf = new Uint8Array(64 * 1024);
    const fds: number[] = [];
    const send = async (a: HttpAnswer) => {
      try {
        await writeAll(conn, encodeAnswer(a));
      } catch {
        // the client went away; CH just drops the answer
      }
    };
    for (;;) {
      let n: number | null;
      try {
        n = await conn.read(buf);
      } catch {
        return closeAll([...fds, ...conn.takeFds?.() ?? []]);
      }
      // Descriptors arrive with the first byte of the message they were sent with, so those
      // received since the last complete request belong to the next one.
      fds.push(...conn.takeFds?.() ?? []);
      if (n === null) return closeAll(fds);
      let requests: Omit<HttpRequest, "fds">[];
      const continues: string[] = [];
      try {
        requests = parser.push(buf.subarray(0, n), (v) => continues.push(v));
      } catch (err) {
        if (!(err instanceof ParseError)) throw err;
        parser.reset();
        closeAll(fds);
        await send(parseErrorAnswer(err.message));
        continue;
      }
      for (const version of continues) {
        // micro-http acknowledges in the request's own HTTP version, with its default server.
        const ack = `${version} 100 \r\nServer: Firecracker API\r\nConnection: keep-alive\r\n\r\n`;
        await writeAll(conn, encoder.encode(ack)).catch(() => {});
      }
      for (const head of requests) {
        const answer = await this.#handler({ ...head, fds: fds.splice(0) });
        await send(answer);
        if (answer.after) await answer.after();
      }
    }
  }
}

function closeAll(fds: number[]): void {
  for (const fd of fds.splice(0)) closeFd(fd);
}

async function writeAll(conn: HttpConn, data: Uint8Array): Promise<void> {
  let off = 0;
  while (off < data.length) off += await conn.write(data.subarray(off));
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b.slice();
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

function indexOfCrlf(b: Uint8Array): number {
  for (let i = 0; i + 1 < b.length; i++) if (b[i] === 13 && b[i + 1] === 10) return i;
  return -1;
}

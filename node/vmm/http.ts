/**
 * A minimal HTTP/1.1 client over one kept-alive unix-socket connection, written for Cloud
 * Hypervisor's micro-http server: requests are serialised on the connection (CH serves one at
 * a time anyway and allows only 10 connections), bodies use Content-Length only (never
 * chunked), status lines may lack a reason phrase and 204 answers carry no Content-Length.
 * A dropped connection is re-opened on the next request; a request that certainly did not
 * reach the server, or a retry-safe one, is retried once.
 */
import { VmmTransportError } from "./errors.ts";

/** A complete HTTP answer; header names are lower-cased. */
export interface HttpResponse {
  status: number;
  headers: Record<string, string>;
  body: Uint8Array;
}

export interface HttpRequestOptions {
  /** Abort the request (and drop the connection) after this many milliseconds. */
  timeoutMs: number;
  /** May be sent again if the connection dropped after it was written (idempotent calls). */
  retrySafe?: boolean;
  signal?: AbortSignal;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const HEAD_END = encoder.encode("\r\n\r\n");
const MAX_HEAD = 64 * 1024;

/** One lazily opened, kept-alive connection to a unix socket; requests queue on it. */
export class UnixHttpConnection {
  readonly socketPath: string;
  #conn: Deno.UnixConn | null = null;
  #pending: Uint8Array = new Uint8Array(0);
  #tail: Promise<unknown> = Promise.resolve();
  #closed = false;

  constructor(socketPath: string) {
    this.socketPath = socketPath;
  }

  /** True while a connection is open (for tests and diagnostics). */
  get connected(): boolean {
    return this.#conn !== null;
  }

  /** Sends one request and reads its answer, after every earlier request has finished. */
  request(
    method: string,
    target: string,
    body: Uint8Array | null,
    options: HttpRequestOptions,
  ): Promise<HttpResponse> {
    const run = this.#tail.then(() => this.#exchange(method, target, body, options));
    this.#tail = run.catch(() => {});
    return run;
  }

  /** Closes the connection; later requests fail. */
  close(): void {
    this.#closed = true;
    this.#drop();
  }

  async #exchange(
    method: string,
    target: string,
    body: Uint8Array | null,
    options: HttpRequestOptions,
  ): Promise<HttpResponse> {
    if (this.#closed) {
      throw new VmmTransportError("unreachable", this.socketPath, "client is closed");
    }
    const request = encodeRequest(method, target, body);
    const deadline = performance.now() + options.timeoutMs;
    for (let attempt = 0;; attempt++) {
      const reused = this.#conn !== null;
      const conn = this.#conn ?? await this.#connect();
      const progress = { written: false, received: false };
      try {
        return await this.#roundTrip(conn, request, deadline, progress, options.signal);
      } catch (err) {
        this.#drop();
        if (!(err instanceof VmmTransportError) || err.kind !== "dropped") throw err;
        // A write refused by the peer never reached it (unix sockets fail at once); a reused
        // connection that died silently is retried only when sending twice is harmless.
        const retry = attempt === 0 && reused &&
          (!progress.written || (!progress.received && options.retrySafe === true));
        if (!retry) throw err;
      }
    }
  }

  async #connect(): Promise<Deno.UnixConn> {
    try {
      this.#conn = await Deno.connect({ transport: "unix", path: this.socketPath });
      this.#pending = new Uint8Array(0);
      return this.#conn;
    } catch (err) {
      throw new VmmTransportError(
        "unreachable",
        this.socketPath,
        `cannot connect to ${this.socketPath}: ${(err as Error).message}`,
        { cause: err },
      );
    }
  }

  #drop(): void {
    const conn = this.#conn;
    this.#conn = null;
    this.#pending = new Uint8Array(0);
    if (conn) {
      try {
        conn.close();
      } catch {
        // already closed
      }
    }
  }

  async #roundTrip(
    conn: Deno.UnixConn,
    request: Uint8Array,
    deadline: number,
    progress: { written: boolean; received: boolean },
    signal?: AbortSignal,
  ): Promise<HttpResponse> {
    let interrupted: "timeout" | "cancelled" | null = null;
    const interrupt = (why: "timeout" | "cancelled") => {
      interrupted = why;
      this.#drop();
    };
    const remaining = Math.max(0, deadline - performance.now());
    const timer = setTimeout(() => interrupt("timeout"), remaining);
    const onAbort = () => interrupt("cancelled");
    if (signal?.aborted) onAbort();
    signal?.addEventListener("abort", onAbort);
    try {
      if (interrupted) throw new Error("interrupted");
      await writeAll(conn, request);
      progress.written = true;
      for (;;) {
        const response = await this.#readResponse(conn, progress);
        if (response.status >= 100 && response.status < 200) continue;
        if ((response.headers["connection"] ?? "").toLowerCase() === "close") this.#drop();
        return response;
      }
    } catch (err) {
      if (interrupted === "timeout") {
        throw new VmmTransportError(
          "timeout",
          this.socketPath,
          "no answer from the VMM in time",
          { cause: err },
        );
      }
      if (interrupted === "cancelled") {
        throw new VmmTransportError("cancelled", this.socketPath, "request cancelled", {
          cause: err,
        });
      }
      if (err instanceof VmmTransportError) throw err;
      throw new VmmTransportError(
        "dropped",
        this.socketPath,
        `connection to ${this.socketPath} lost: ${(err as Error).message}`,
        { cause: err },
      );
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    }
  }

  async #readResponse(
    conn: Deno.UnixConn,
    progress: { received: boolean },
  ): Promise<HttpResponse> {
    let eof = false;
    for (;;) {
      let parsed: ReturnType<typeof parseResponse>;
      try {
        parsed = parseResponse(this.#pending, eof);
      } catch (err) {
        if (err instanceof ResponseFormatError) throw this.#protocol(err.message);
        throw err;
      }
      if (parsed) {
        this.#pending = parsed.rest;
        return parsed.response;
      }
      if (eof) {
        throw new Error(
          indexOf(this.#pending, HEAD_END) < 0
            ? "connection closed by the VMM"
            : "connection closed in the middle of a body",
        );
      }
      eof = !await this.#fill(conn);
      if (!eof) progress.received = true;
    }
  }

  async #fill(conn: Deno.UnixConn): Promise<boolean> {
    const chunk = new Uint8Array(64 * 1024);
    const n = await conn.read(chunk);
    if (n === null) return false;
    const merged = new Uint8Array(this.#pending.length + n);
    merged.set(this.#pending);
    merged.set(chunk.subarray(0, n), this.#pending.length);
    this.#pending = merged;
    return true;
  }

  #protocol(message: string): VmmTransportError {
    return new VmmTransportError("protocol", this.socketPath, `malformed answer: ${message}`);
  }
}

/** An answer that is not HTTP as micro-http writes it. */
export class ResponseFormatError extends Error {}

/**
 * Parses one response from the front of `buf`: null when more bytes are needed, otherwise the
 * response and the bytes after it. `eof` says no more bytes will come (a body framed by the
 * connection's end is complete then). Throws ResponseFormatError for malformed answers.
 */
export function parseResponse(
  buf: Uint8Array,
  eof: boolean,
): { response: HttpResponse; rest: Uint8Array } | null {
  const headEnd = indexOf(buf, HEAD_END);
  if (headEnd < 0) {
    if (buf.length > MAX_HEAD) throw new ResponseFormatError("response head too large");
    return null;
  }
  const head = decoder.decode(buf.subarray(0, headEnd));
  const bodyStart = headEnd + HEAD_END.length;
  const [statusLine, ...headerLines] = head.split("\r\n");
  const m = /^HTTP\/1\.[01] (\d{3})(?: .*)?$/.exec(statusLine);
  if (!m) throw new ResponseFormatError(`bad status line ${JSON.stringify(statusLine)}`);
  const status = Number(m[1]);
  const headers: Record<string, string> = {};
  for (const line of headerLines) {
    const colon = line.indexOf(":");
    if (colon <= 0) throw new ResponseFormatError(`bad header line ${JSON.stringify(line)}`);
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  const lengthHeader = headers["content-length"];
  let bodyEnd: number;
  if (lengthHeader !== undefined) {
    if (!/^\d+$/.test(lengthHeader)) {
      throw new ResponseFormatError(`bad Content-Length ${lengthHeader}`);
    }
    bodyEnd = bodyStart + Number(lengthHeader);
    if (buf.length < bodyEnd) return null;
  } else if (status < 200 || status === 204 || status === 304) {
    bodyEnd = bodyStart;
  } else if ((headers["connection"] ?? "").toLowerCase() === "close") {
    if (!eof) return null;
    bodyEnd = buf.length;
  } else {
    // micro-http always frames other answers with Content-Length.
    throw new ResponseFormatError(`status ${status} without Content-Length`);
  }
  return {
    response: { status, headers, body: buf.slice(bodyStart, bodyEnd) },
    rest: buf.slice(bodyEnd),
  };
}

/** Encodes a request with Content-Length framing (no body: no length header at all). */
export function encodeRequest(method: string, target: string, body: Uint8Array | null): Uint8Array {
  let head = `${method} ${target} HTTP/1.1\r\nHost: localhost\r\nAccept: application/json\r\n`;
  if (body && body.length > 0) {
    head += `Content-Type: application/json\r\nContent-Length: ${body.length}\r\n`;
  }
  head += "\r\n";
  const headBytes = encoder.encode(head);
  if (!body || body.length === 0) return headBytes;
  const out = new Uint8Array(headBytes.length + body.length);
  out.set(headBytes);
  out.set(body, headBytes.length);
  return out;
}

async function writeAll(conn: Deno.UnixConn, data: Uint8Array): Promise<void> {
  let off = 0;
  while (off < data.length) off += await conn.write(data.subarray(off));
}

function indexOf(hay: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

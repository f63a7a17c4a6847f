/**
 * The CLI's HTTP client for the REST API (`fetch`): bearer token, JSON bodies, pagination,
 * and one translation of failures. An error response becomes the domain error of its `code`
 * (shared/errors) whose `cause` is a `ServerAnswer` (status, request id); a server that cannot
 * be reached becomes an UnavailableError without one, which is how exit codes tell them apart.
 */
import {
  type ErrorCode,
  type ErrorDetail,
  errorFromCode,
  InternalError,
  isErrorCode,
  QaraxError,
  UnavailableError,
} from "../../shared/errors/errors.ts";
import { VERSION } from "../../shared/version.ts";

/** Where an error came from on the server side: the response (or job) that carried it. */
export class ServerAnswer {
  constructor(
    readonly status: number | null,
    readonly requestId: string | null,
    /** Set when the error is a job's outcome. */
    readonly jobId?: string,
  ) {}
}

/** The server answered with this error (false: it was never reached, or it was local). */
export function fromServer(err: unknown): err is QaraxError & { cause: ServerAnswer } {
  return err instanceof QaraxError && err.cause instanceof ServerAnswer;
}

/** `{items, next_cursor}` of every list route. */
export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

/** A successful response. */
export interface Answer<T> {
  status: number;
  body: T;
  headers: Headers;
}

/** Query values; arrays repeat the parameter, undefined is left out. */
export type Query = Record<string, string | number | boolean | string[] | undefined>;

export interface RequestOptions {
  query?: Query;
  body?: unknown;
  headers?: Record<string, string>;
  /** Give up after this long (default 60 s). */
  timeoutMs?: number;
  signal?: AbortSignal;
}

const STATUS_CODES: Record<number, ErrorCode> = {
  400: "malformed_request",
  401: "unauthenticated",
  403: "permission_denied",
  404: "not_found",
  409: "conflict",
  412: "precondition_failed",
  422: "invalid_argument",
  429: "resource_exhausted",
  501: "unimplemented",
  503: "unavailable",
  504: "deadline_exceeded",
};

/** The useful part of a fetch failure ("tcp connect error: Connection refused", "dns error: …"). */
export function fetchFailureReason(err: unknown): string {
  let e = err;
  while (e instanceof Error && e.cause instanceof Error) e = e.cause;
  const text = e instanceof Error ? e.message : String(e);
  return text
    .replace(/^error sending request for url \([^)]*\): /, "")
    .replace(/^client error \([^)]*\): /, "")
    .replace(/^Fetch failed: /, "")
    .replace(/ \(os error \d+\)$/, "");
}

/** Builds the domain error for an error response. */
export function errorFromResponse(status: number, body: unknown, headers: Headers): QaraxError {
  const b = (body && typeof body === "object" ? body : {}) as Record<string, unknown>;
  const requestId = typeof b.request_id === "string" ? b.request_id : headers.get("x-request-id");
  const answer = new ServerAnswer(status, requestId);
  const details = Array.isArray(b.details) ? b.details as ErrorDetail[] : [];
  if (isErrorCode(b.code) && typeof b.message === "string") {
    return errorFromCode(b.code, b.message, { details, cause: answer });
  }
  // Not our error body (a proxy, an old server): keep what it said.
  const text = typeof body === "string" && body.trim()
    ? body.trim().split("\n")[0].slice(0, 200)
    : `HTTP ${status}`;
  const code = STATUS_CODES[status] ?? (status >= 500 ? "internal" : "malformed_request");
  return errorFromCode(code, `the server answered ${status}: ${text}`, { cause: answer });
}

/** A client for one server. */
export class ApiClient {
  readonly baseUrl: string;
  readonly #token?: string;
  readonly #fetch: typeof fetch;

  constructor(baseUrl: string, token?: string, fetchImpl: typeof fetch = fetch) {
    this.baseUrl = baseUrl.replace(/\/+$/, "");
    this.#token = token;
    this.#fetch = fetchImpl;
  }

  /** True when a token will be sent. */
  get hasToken(): boolean {
    return this.#token !== undefined;
  }

  /** The absolute URL of an API path with its query. */
  url(path: string, query: Query = {}): string {
    const u = new URL(this.baseUrl + path);
    for (const [k, v] of Object.entries(query)) {
      if (v === undefined) continue;
      for (const one of Array.isArray(v) ? v : [v]) u.searchParams.append(k, String(one));
    }
    return u.toString();
  }

  /** Sends a request; throws the domain error of a non-2xx answer. */
  async request<T = unknown>(
    method: string,
    path: string,
    opts: RequestOptions = {},
  ): Promise<Answer<T>> {
    const res = await this.send(method, path, opts);
    const text = await res.text();
    let body: unknown = null;
    if (text) {
      try {
        body = JSON.parse(text);
      } catch {
        throw new InternalError(
          `${method} ${path} answered ${res.status} with a body that is not JSON: ${
            text.slice(0, 200)
          }`,
          { cause: new ServerAnswer(res.status, res.headers.get("x-request-id")) },
        );
      }
    }
    return { status: res.status, body: body as T, headers: res.headers };
  }

  /** Sends a request and returns the raw response (for streams); errors as in `request`. */
  async send(method: string, path: string, opts: RequestOptions = {}): Promise<Response> {
    const headers: Record<string, string> = {
      accept: "application/json",
      "user-agent": `qarax-cli/${VERSION}`,
      ...opts.headers,
    };
    if (this.#token !== undefined) headers.authorization = `Bearer ${this.#token}`;
    let body: string | undefined;
    if (opts.body !== undefined) {
      body = JSON.stringify(opts.body);
      headers["content-type"] ??= "application/json";
    }
    const timeoutMs = opts.timeoutMs ?? 60_000;
    const timeout = AbortSignal.timeout(timeoutMs);
    const signal = opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout;
    const url = this.url(path, opts.query);
    let res: Response;
    try {
      res = await this.#fetch(url, { method, headers, body, signal });
    } catch (err) {
      if (opts.signal?.aborted) throw opts.signal.reason;
      if (timeout.aborted) {
        throw new UnavailableError(
          `qarax at ${this.baseUrl} did not answer ${method} ${path} within ${timeoutMs / 1000} s`,
          { cause: err },
        );
      }
      throw new UnavailableError(
        `cannot reach qarax at ${this.baseUrl}: ${fetchFailureReason(err)}`,
        {
          cause: err,
        },
      );
    }
    if (!res.ok) {
      const text = await res.text();
      let parsed: unknown = text;
      try {
        parsed = JSON.parse(text);
      } catch { /* not JSON: keep the text */ }
      throw errorFromResponse(res.status, parsed, res.headers);
    }
    return res;
  }

  /** Opens a WebSocket to an API path, with the token in the Authorization header. */
  websocket(path: string, query: Query = {}): WebSocket {
    const url = new URL(this.url(path, query));
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    const headers: Record<string, string> = { "user-agent": `qarax-cli/${VERSION}` };
    if (this.#token !== undefined) headers.authorization = `Bearer ${this.#token}`;
    // Deno's WebSocket takes headers as a second-argument option (not in the web standard).
    return new WebSocket(url, { headers } as unknown as string[]);
  }

  get<T = unknown>(path: string, query?: Query, opts: RequestOptions = {}): Promise<T> {
    return this.request<T>("GET", path, { ...opts, query }).then((a) => a.body);
  }

  /** Every item of a list (following `next_cursor`), at most `max`. */
  async list<T = Record<string, unknown>>(
    path: string,
    query: Query = {},
    max = Infinity,
  ): Promise<Page<T>> {
    const items: T[] = [];
    let cursor: string | undefined;
    for (;;) {
      const limit = Math.min(1000, max - items.length);
      const page = await this.get<Page<T>>(path, { ...query, limit, cursor });
      items.push(...page.items);
      if (!page.next_cursor || items.length >= max) {
        return { items, next_cursor: page.next_cursor };
      }
      cursor = page.next_cursor;
    }
  }
}

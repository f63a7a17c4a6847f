/**
 * Server middleware of the node's gRPC services: call metrics (method, code, latency),
 * bearer-token authentication, the translation of domain errors into gRPC statuses (via the
 * one mapping in shared/errors), and draining (refuse new calls, know when the last one in
 * flight has finished) for shutdown.
 */
import {
  type CallContext,
  ServerError,
  type ServerMiddleware,
  type ServerMiddlewareCall,
  Status,
} from "nice-grpc-common";
import { toServerError } from "../../shared/errors/grpc.ts";
import { logger } from "../../shared/log/logger.ts";

/** Constant-time string equality (tokens must not leak through timing). */
export function safeEqual(a: string, b: string): boolean {
  const x = new TextEncoder().encode(a);
  const y = new TextEncoder().encode(b);
  let diff = x.length ^ y.length;
  for (let i = 0; i < Math.max(x.length, y.length); i++) diff |= (x[i] ?? 0) ^ (y[i] ?? 0);
  return diff === 0;
}

/** Requires `authorization: Bearer <token>` on every call when `token` is non-empty. */
export function authMiddleware(token: string) {
  return async function* auth<Req, Res>(
    call: ServerMiddlewareCall<Req, Res>,
    context: CallContext,
  ) {
    if (token) {
      const header = context.metadata.get("authorization");
      const given = typeof header === "string" ? header.replace(/^Bearer\s+/i, "") : "";
      if (!given || !safeEqual(given, token)) {
        throw new ServerError(Status.UNAUTHENTICATED, "missing or invalid bearer token");
      }
    }
    return yield* call.next(call.request, context);
  };
}

/** Where the metrics middleware reports each served call. */
export interface CallObserver {
  observeCall(method: string, code: string, seconds: number): void;
}

/** The status a call ended with, from what its handler threw (or not). */
export function callCode(err: unknown, aborted: boolean): Status {
  if (err instanceof ServerError) return err.code;
  if (err === undefined) return aborted ? Status.CANCELLED : Status.OK;
  return aborted || (err instanceof Error && err.name === "AbortError")
    ? Status.CANCELLED
    : Status.UNKNOWN;
}

/**
 * Counts every call by method and final code, with its duration. It goes outermost, so it
 * sees the codes the error and auth middleware produce.
 */
export function metricsMiddleware(observer: CallObserver) {
  return async function* metrics<Req, Res>(
    call: ServerMiddlewareCall<Req, Res>,
    context: CallContext,
  ) {
    const started = performance.now();
    let thrown: unknown;
    try {
      return yield* call.next(call.request, context);
    } catch (err) {
      thrown = err ?? new Error("undefined thrown");
      throw err;
    } finally {
      // A stream the client cancelled ends here without an error, its signal aborted.
      const code = callCode(thrown, context.signal.aborted);
      observer.observeCall(call.method.path, Status[code], (performance.now() - started) / 1000);
    }
  };
}

/** Maps thrown domain errors to gRPC statuses and logs unexpected ones. */
export async function* errorMiddleware<Req, Res>(
  call: ServerMiddlewareCall<Req, Res>,
  context: CallContext,
) {
  try {
    return yield* call.next(call.request, context);
  } catch (err) {
    if (err instanceof ServerError) throw err;
    const mapped = toServerError(err, context.trailer);
    const level = mapped.code === Status.INTERNAL || mapped.code === Status.UNKNOWN
      ? "error"
      : "debug";
    logger()[level]("rpc failed", { method: call.method.path, err });
    throw mapped;
  }
}

/**
 * Counts calls in flight and, once `drain()` is called, refuses new ones with UNAVAILABLE (a
 * status clients retry elsewhere or later).
 */
export class Drain {
  #inflight = 0;
  #draining = false;
  #idle = Promise.withResolvers<void>();

  /** Calls running now. */
  get inflight(): number {
    return this.#inflight;
  }

  /** The middleware; add it first so refused calls cost nothing. */
  readonly middleware: ServerMiddleware = (call, context) => this.#run(call, context);

  async *#run<Req, Res>(call: ServerMiddlewareCall<Req, Res>, context: CallContext) {
    if (this.#draining) throw new ServerError(Status.UNAVAILABLE, "node agent is shutting down");
    this.#inflight++;
    try {
      return yield* call.next(call.request, context);
    } finally {
      if (--this.#inflight === 0 && this.#draining) this.#idle.resolve();
    }
  }

  /** Refuses new calls; resolves when none is in flight any more. */
  drain(): Promise<void> {
    this.#draining = true;
    if (this.#inflight === 0) this.#idle.resolve();
    return this.#idle.promise;
  }
}

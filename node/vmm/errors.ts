/**
 * Errors of the Cloud Hypervisor client: `VmmApiError` (an error answer from the VMM, with its
 * status, message chain and endpoint) and the one mapping from it, and from transport
 * failures, onto qarax's domain errors. Nothing else in qarax interprets CH status codes.
 */
import {
  AlreadyExistsError,
  CancelledError,
  DeadlineExceededError,
  FailedPreconditionError,
  InternalError,
  InvalidArgumentError,
  NotFoundError,
  type QaraxError,
  ResourceExhaustedError,
  UnavailableError,
} from "../../shared/errors/errors.ts";

/** An error answer from the VMM: status code, CH's error chain (outermost first), endpoint. */
export class VmmApiError extends Error {
  constructor(
    readonly endpoint: string,
    readonly status: number,
    readonly messages: string[],
    readonly body: string,
  ) {
    super(`${endpoint}: HTTP ${status}${messages.length ? `: ${messages.join(": ")}` : ""}`);
    this.name = "VmmApiError";
  }

  /** The innermost message of the chain (the root cause), or "" when the body had none. */
  get rootCause(): string {
    return this.messages.at(-1) ?? "";
  }
}

/**
 * Reads CH's error body: a JSON array of strings (VMM errors), or micro-http's
 * `{ "error": "..." }` (parse errors, server full; its string may hold a raw newline, which
 * makes it invalid JSON, so it is matched rather than parsed), or anything else verbatim.
 */
export function parseErrorBody(body: string): string[] {
  const text = body.trim();
  if (text === "") return [];
  try {
    const parsed: unknown = JSON.parse(text);
    if (Array.isArray(parsed) && parsed.every((m) => typeof m === "string")) return parsed;
    if (isRecord(parsed) && typeof parsed.error === "string") return splitLines(parsed.error);
  } catch {
    // micro-http bodies are not always valid JSON; fall through to matching.
  }
  const m = /^\{\s*"error"\s*:\s*"([\s\S]*)"\s*\}$/.exec(text);
  if (m) return splitLines(m[1].replaceAll('\\"', '"'));
  return [text];
}

function splitLines(s: string): string[] {
  return s.split("\n").map((l) => l.trim()).filter((l) => l !== "");
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

// Root causes (last chain element) that mean "the VM is in the wrong state for this call".
// CH answers all of them with 500, so only the message tells them apart from real failures.
const WRONG_STATE = [
  /^VM is not running$/,
  /^VM is not created$/,
  /^VM is already created$/,
  /^VM config is missing$/,
  /InvalidStateTransition|invalid VM state transition/i,
  /^Trying to snapshot while VM is running$/,
  /currently migrating/,
  /memory restore is still in progress/,
  /^Error locking disk images/,
  /^Too many virtio-vsock devices$/,
  /^Failed resizing a disk image$/,
];

/** True when a 500 answer means "wrong state" (a precondition), not a VMM failure. */
export function isWrongStateError(err: VmmApiError): boolean {
  return err.status === 500 && err.messages.some((m) => WRONG_STATE.some((re) => re.test(m)));
}

/** Maps a CH error answer onto the domain error hierarchy, keeping it as `cause`. */
export function toDomainError(err: VmmApiError): QaraxError {
  const chain = err.messages.length ? err.messages.join(": ") : `HTTP ${err.status}`;
  const message = `${err.endpoint}: ${chain}`;
  const options = { cause: err };
  switch (err.status) {
    case 400:
      return new InvalidArgumentError(message, options);
    case 404:
      return new NotFoundError(message, options);
    case 409:
      return new AlreadyExistsError(message, options);
    case 429:
      return new ResourceExhaustedError(message, options);
    case 503:
      return new UnavailableError(message, options);
    case 500:
      return isWrongStateError(err)
        ? new FailedPreconditionError(message, options)
        : new InternalError(message, options);
    default:
      return new InternalError(message, options);
  }
}

/** Why talking to the VMM failed below the HTTP level. */
export type TransportFailure = "unreachable" | "dropped" | "timeout" | "cancelled" | "protocol";

/** A failure of the socket itself (no usable HTTP answer). */
export class VmmTransportError extends Error {
  constructor(
    readonly kind: TransportFailure,
    readonly socketPath: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "VmmTransportError";
  }
}

/** Maps a transport failure onto the domain hierarchy (unavailable, deadline, cancelled...). */
export function transportToDomainError(endpoint: string, err: VmmTransportError): QaraxError {
  const message = `${endpoint}: ${err.message}`;
  switch (err.kind) {
    case "timeout":
      return new DeadlineExceededError(message, { cause: err });
    case "cancelled":
      return new CancelledError(message, { cause: err });
    case "protocol":
      return new InternalError(message, { cause: err });
    default:
      return new UnavailableError(message, { cause: err });
  }
}

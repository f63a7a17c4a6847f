/**
 * The single mapping between domain errors and gRPC status codes, both ways: the node turns
 * domain errors into `ServerError`s, the control plane turns `ClientError`s back into domain
 * errors. The precise domain code travels in a trailer so nothing is lost on the round trip.
 */
import { ClientError, Metadata, ServerError, Status } from "nice-grpc-common";
import {
  asQaraxError,
  type ErrorCode,
  type ErrorDetail,
  errorFromCode,
  isErrorCode,
  QaraxError,
  UnavailableError,
} from "./errors.ts";

/** gRPC status for each error code. */
export const GRPC_STATUS: Record<ErrorCode, Status> = {
  not_found: Status.NOT_FOUND,
  already_exists: Status.ALREADY_EXISTS,
  conflict: Status.ABORTED,
  failed_precondition: Status.FAILED_PRECONDITION,
  precondition_failed: Status.ABORTED,
  invalid_argument: Status.INVALID_ARGUMENT,
  malformed_request: Status.INVALID_ARGUMENT,
  unauthenticated: Status.UNAUTHENTICATED,
  permission_denied: Status.PERMISSION_DENIED,
  resource_exhausted: Status.RESOURCE_EXHAUSTED,
  unavailable: Status.UNAVAILABLE,
  deadline_exceeded: Status.DEADLINE_EXCEEDED,
  unimplemented: Status.UNIMPLEMENTED,
  cancelled: Status.CANCELLED,
  internal: Status.INTERNAL,
};

/** Domain code chosen for a gRPC status that arrives without our trailer. */
const FROM_STATUS: Partial<Record<Status, ErrorCode>> = {
  [Status.NOT_FOUND]: "not_found",
  [Status.ALREADY_EXISTS]: "already_exists",
  [Status.ABORTED]: "conflict",
  [Status.FAILED_PRECONDITION]: "failed_precondition",
  [Status.INVALID_ARGUMENT]: "invalid_argument",
  [Status.OUT_OF_RANGE]: "invalid_argument",
  [Status.UNAUTHENTICATED]: "unauthenticated",
  [Status.PERMISSION_DENIED]: "permission_denied",
  [Status.RESOURCE_EXHAUSTED]: "resource_exhausted",
  [Status.UNAVAILABLE]: "unavailable",
  [Status.DEADLINE_EXCEEDED]: "deadline_exceeded",
  [Status.UNIMPLEMENTED]: "unimplemented",
  [Status.CANCELLED]: "cancelled",
};

/** Trailer carrying `{code, details}` of a domain error. */
export const ERROR_TRAILER = "qarax-error-bin";

/** Turns anything thrown into a ServerError; writes the domain code into `trailer` if given. */
export function toServerError(err: unknown, trailer?: Metadata): ServerError {
  if (err instanceof ServerError) return err;
  const error = asQaraxError(err);
  trailer?.set(
    ERROR_TRAILER,
    new TextEncoder().encode(JSON.stringify({ code: error.code, details: error.details })),
  );
  return new ServerError(GRPC_STATUS[error.code], error.message);
}

/** Turns a gRPC client failure into a domain error; `what` names the call for the message. */
export function fromGrpcError(err: unknown, what?: string, trailer?: Metadata): QaraxError {
  if (err instanceof QaraxError) return err;
  const prefix = what ? `${what}: ` : "";
  if (err instanceof ClientError) {
    let code = FROM_STATUS[err.code] ?? "internal";
    let details: ErrorDetail[] = [];
    const raw = trailer?.get(ERROR_TRAILER);
    if (raw instanceof Uint8Array) {
      try {
        const parsed = JSON.parse(new TextDecoder().decode(raw));
        if (isErrorCode(parsed.code)) code = parsed.code;
        if (Array.isArray(parsed.details)) details = parsed.details;
      } catch { /* a malformed trailer only costs precision */ }
    }
    return errorFromCode(code, `${prefix}${err.details}`, { details, cause: err });
  }
  if (err instanceof Error && /ECONNREFUSED|ENOENT|No connection established/.test(err.message)) {
    return new UnavailableError(`${prefix}${err.message}`, { cause: err });
  }
  return asQaraxError(err);
}

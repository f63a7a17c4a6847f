/**
 * The one error hierarchy of qarax. Every module throws these; only `http.ts` and `grpc.ts`
 * in this folder turn them into status codes, so no handler ever picks a status itself.
 */

/** Stable machine-readable error codes, as they appear in API bodies. */
export type ErrorCode =
  | "not_found"
  | "already_exists"
  | "conflict"
  | "failed_precondition"
  | "precondition_failed"
  | "invalid_argument"
  | "malformed_request"
  | "unauthenticated"
  | "permission_denied"
  | "resource_exhausted"
  | "unavailable"
  | "deadline_exceeded"
  | "unimplemented"
  | "cancelled"
  | "internal";

/** One precise complaint, usually about one field of the input. */
export interface ErrorDetail {
  /** Dotted path of the offending field (`memory_size`, `disks.0.path`), when there is one. */
  field?: string;
  message: string;
  [extra: string]: unknown;
}

/** Base class: a message meant for the user, a code, optional details and the cause. */
export class QaraxError extends Error {
  readonly code: ErrorCode = "internal";
  readonly details: ErrorDetail[];

  constructor(message: string, options: { details?: ErrorDetail[]; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = new.target.name;
    this.details = options.details ?? [];
  }
}

/** The named resource does not exist. */
export class NotFoundError extends QaraxError {
  override readonly code = "not_found";
  /** Builds the usual "<kind> <id> not found" message. */
  static of(kind: string, id: string): NotFoundError {
    return new NotFoundError(`${kind} ${id} not found`);
  }
}

/** A resource with the same identity (name, address, id) already exists. */
export class AlreadyExistsError extends QaraxError {
  override readonly code = "already_exists";
}

/** A concurrent or competing operation got there first (e.g. an active job on the VM). */
export class ConflictError extends QaraxError {
  override readonly code = "conflict";
}

/** The resource is in a state that does not allow the operation (running, in use, ...). */
export class FailedPreconditionError extends QaraxError {
  override readonly code = "failed_precondition";
}

/** An `If-Match` (ETag) precondition did not hold: the client's copy is stale. */
export class PreconditionFailedError extends QaraxError {
  override readonly code = "precondition_failed";
}

/** The input is well-formed but invalid; `details` names each bad field. */
export class InvalidArgumentError extends QaraxError {
  override readonly code = "invalid_argument";
  /** One error for one field. */
  static field(field: string, message: string): InvalidArgumentError {
    return new InvalidArgumentError(`${field}: ${message}`, { details: [{ field, message }] });
  }
}

/** The input could not even be parsed (broken JSON, wrong content type). */
export class MalformedRequestError extends QaraxError {
  override readonly code = "malformed_request";
}

/** No credentials, or wrong ones. */
export class UnauthenticatedError extends QaraxError {
  override readonly code = "unauthenticated";
}

/** Valid credentials that do not allow this operation. */
export class PermissionDeniedError extends QaraxError {
  override readonly code = "permission_denied";
}

/** A quota or rate limit was hit; retrying later may succeed. */
export class ResourceExhaustedError extends QaraxError {
  override readonly code = "resource_exhausted";
}

/** A dependency (node, database, VMM) could not be reached. */
export class UnavailableError extends QaraxError {
  override readonly code = "unavailable";
}

/** The operation did not finish within its deadline. */
export class DeadlineExceededError extends QaraxError {
  override readonly code = "deadline_exceeded";
}

/** The operation is not supported by this build, backend or version. */
export class UnimplementedError extends QaraxError {
  override readonly code = "unimplemented";
}

/** The operation was cancelled by its caller. */
export class CancelledError extends QaraxError {
  override readonly code = "cancelled";
}

/** A bug or an unexpected failure; the message is safe to show, the cause goes to the log. */
export class InternalError extends QaraxError {
  override readonly code = "internal";
}

const byCode: Record<
  ErrorCode,
  new (message: string, options?: {
    details?: ErrorDetail[];
    cause?: unknown;
  }) => QaraxError
> = {
  not_found: NotFoundError,
  already_exists: AlreadyExistsError,
  conflict: ConflictError,
  failed_precondition: FailedPreconditionError,
  precondition_failed: PreconditionFailedError,
  invalid_argument: InvalidArgumentError,
  malformed_request: MalformedRequestError,
  unauthenticated: UnauthenticatedError,
  permission_denied: PermissionDeniedError,
  resource_exhausted: ResourceExhaustedError,
  unavailable: UnavailableError,
  deadline_exceeded: DeadlineExceededError,
  unimplemented: UnimplementedError,
  cancelled: CancelledError,
  internal: InternalError,
};

/** Every code, in a stable order (for tests and documentation). */
export const ERROR_CODES = Object.keys(byCode) as ErrorCode[];

/** Rebuilds a domain error from its code (used when decoding errors that crossed a wire). */
export function errorFromCode(
  code: ErrorCode,
  message: string,
  options: { details?: ErrorDetail[]; cause?: unknown } = {},
): QaraxError {
  return new byCode[code](message, options);
}

/** True for a string that is one of our error codes. */
export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === "string" && value in byCode;
}

/** Wraps anything thrown into a QaraxError, keeping domain errors as they are. */
export function asQaraxError(err: unknown): QaraxError {
  if (err instanceof QaraxError) return err;
  if (err instanceof Error) return new InternalError("internal error", { cause: err });
  return new InternalError("internal error", { cause: err });
}

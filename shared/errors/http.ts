/** The single mapping from domain errors to HTTP status codes and the JSON error body. */
import { asQaraxError, type ErrorCode, type ErrorDetail, type QaraxError } from "./errors.ts";

/** HTTP status for each error code. */
export const HTTP_STATUS: Record<ErrorCode, number> = {
  not_found: 404,
  already_exists: 409,
  conflict: 409,
  failed_precondition: 409,
  precondition_failed: 412,
  invalid_argument: 422,
  malformed_request: 400,
  unauthenticated: 401,
  permission_denied: 403,
  resource_exhausted: 429,
  unavailable: 503,
  deadline_exceeded: 504,
  unimplemented: 501,
  cancelled: 409,
  internal: 500,
};

/** The JSON shape of every API error response. */
export interface HttpErrorBody {
  code: ErrorCode;
  message: string;
  details: ErrorDetail[];
  request_id: string | null;
}

/** Turns anything thrown into an HTTP status and body; internal causes never leak. */
export function toHttpError(
  err: unknown,
  requestId: string | null,
): { status: number; body: HttpErrorBody; error: QaraxError } {
  const error = asQaraxError(err);
  return {
    status: HTTP_STATUS[error.code],
    body: {
      code: error.code,
      message: error.message,
      details: error.details,
      request_id: requestId,
    },
    error,
  };
}

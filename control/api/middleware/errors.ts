/**
 * The app's error handler and not-found handler: every failure leaves as our JSON error body
 * with the request id. Database errors are mapped by `db/errors.ts`, Hono's own exceptions
 * (broken JSON 400, unsupported media type 415, body too large 413) become malformed_request,
 * and only real bugs are 500s (logged with their cause, never shown).
 */
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import { MalformedRequestError, NotFoundError } from "../../../shared/errors/errors.ts";
import { toHttpError } from "../../../shared/errors/http.ts";
import { mapDbError } from "../../db/errors.ts";
import type { AppEnv } from "../deps.ts";

function fromHttpException(err: HTTPException): MalformedRequestError {
  if (err.status === 415) {
    return new MalformedRequestError(
      "the request body must be JSON (Content-Type: application/json)",
    );
  }
  if (err.status === 413) return new MalformedRequestError("the request body is too large");
  const message = err.message || "malformed request";
  return new MalformedRequestError(
    /malformed json/i.test(message) ? "the request body is not valid JSON" : message,
  );
}

/** `app.onError`: any thrown value → status + JSON error body. */
export function errorHandler(err: Error, c: Context<AppEnv>): Response {
  const requestId = c.get("requestId") ?? null;
  const mapped = err instanceof HTTPException && err.status < 500
    ? fromHttpException(err)
    : mapDbError(err);
  const { status, body, error } = toHttpError(mapped, requestId);
  const log = c.get("log");
  if (status >= 500) {
    log?.error("request failed", { error: err, method: c.req.method, path: c.req.path });
  } else {
    log?.debug("request refused", { code: error.code, message: error.message });
  }
  return c.json(body, status as 400);
}

/** `app.notFound`: unknown paths get the same error body. */
export function notFoundHandler(c: Context<AppEnv>): Response {
  return errorHandler(new NotFoundError(`no route ${c.req.method} ${c.req.path}`), c);
}

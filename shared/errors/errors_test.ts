import assert from "node:assert/strict";
import { ClientError, Metadata, ServerError, Status } from "nice-grpc-common";
import {
  AlreadyExistsError,
  asQaraxError,
  ERROR_CODES,
  errorFromCode,
  FailedPreconditionError,
  InternalError,
  InvalidArgumentError,
  NotFoundError,
  PreconditionFailedError,
  UnavailableError,
} from "./errors.ts";
import { HTTP_STATUS, toHttpError } from "./http.ts";
import { ERROR_TRAILER, fromGrpcError, GRPC_STATUS, toServerError } from "./grpc.ts";

// The documented table (README "Errors"): code -> HTTP status, gRPC status.
const TABLE: [string, number, Status][] = [
  ["not_found", 404, Status.NOT_FOUND],
  ["already_exists", 409, Status.ALREADY_EXISTS],
  ["conflict", 409, Status.ABORTED],
  ["failed_precondition", 409, Status.FAILED_PRECONDITION],
  ["precondition_failed", 412, Status.ABORTED],
  ["invalid_argument", 422, Status.INVALID_ARGUMENT],
  ["malformed_request", 400, Status.INVALID_ARGUMENT],
  ["unauthenticated", 401, Status.UNAUTHENTICATED],
  ["permission_denied", 403, Status.PERMISSION_DENIED],
  ["resource_exhausted", 429, Status.RESOURCE_EXHAUSTED],
  ["unavailable", 503, Status.UNAVAILABLE],
  ["deadline_exceeded", 504, Status.DEADLINE_EXCEEDED],
  ["unimplemented", 501, Status.UNIMPLEMENTED],
  ["cancelled", 409, Status.CANCELLED],
  ["internal", 500, Status.INTERNAL],
];

Deno.test("every error code maps to its documented HTTP status and gRPC code", () => {
  assert.deepEqual(TABLE.map(([c]) => c).sort(), [...ERROR_CODES].sort());
  for (const [code, http, grpc] of TABLE) {
    const err = errorFromCode(code as never, "m");
    assert.equal(err.code, code);
    assert.equal(toHttpError(err, "r1").status, http, code);
    assert.equal(HTTP_STATUS[err.code], http, code);
    assert.equal(toServerError(err).code, grpc, code);
    assert.equal(GRPC_STATUS[err.code], grpc, code);
  }
});

Deno.test("HTTP body carries code, message, details and the request id", () => {
  const { status, body } = toHttpError(
    InvalidArgumentError.field("memory_size", "too small"),
    "rq",
  );
  assert.equal(status, 422);
  assert.deepEqual(body, {
    code: "invalid_argument",
    message: "memory_size: too small",
    details: [{ field: "memory_size", message: "too small" }],
    request_id: "rq",
  });
});

Deno.test("unknown throwables become internal errors without leaking their text", () => {
  const { status, body, error } = toHttpError(new TypeError("x is undefined at secret.ts:3"), null);
  assert.equal(status, 500);
  assert.equal(body.message, "internal error");
  assert.ok(error.cause instanceof TypeError);
  assert.ok(asQaraxError("boom") instanceof InternalError);
});

Deno.test("a domain error survives a gRPC round trip with its precise code and details", () => {
  const original = new AlreadyExistsError("vm exists", { details: [{ message: "same id" }] });
  const trailer = Metadata();
  const server = toServerError(original, trailer);
  assert.ok(server instanceof ServerError);
  assert.ok(trailer.has(ERROR_TRAILER));
  const client = new ClientError("/node.VmService/CreateVM", server.code, server.details);
  const back = fromGrpcError(client, "CreateVM", trailer);
  assert.ok(back instanceof AlreadyExistsError);
  assert.equal(back.message, "CreateVM: vm exists");
  assert.deepEqual(back.details, [{ message: "same id" }]);
});

Deno.test("without the trailer the gRPC status decides the domain class", () => {
  const cases: [Status, new (...a: never[]) => Error][] = [
    [Status.NOT_FOUND, NotFoundError],
    [Status.FAILED_PRECONDITION, FailedPreconditionError],
    [Status.UNAVAILABLE, UnavailableError],
    [Status.UNKNOWN, InternalError],
  ];
  for (const [status, cls] of cases) {
    const err = fromGrpcError(new ClientError("/p", status, "d"));
    assert.ok(err instanceof cls, `${Status[status]} -> ${err.constructor.name}`);
  }
  assert.ok(fromGrpcError(new PreconditionFailedError("etag")) instanceof PreconditionFailedError);
});

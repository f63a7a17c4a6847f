import assert from "node:assert/strict";
import {
  AlreadyExistsError,
  CancelledError,
  DeadlineExceededError,
  FailedPreconditionError,
  InternalError,
  InvalidArgumentError,
  NotFoundError,
  ResourceExhaustedError,
  UnavailableError,
} from "../../shared/errors/errors.ts";
import {
  isWrongStateError,
  parseErrorBody,
  toDomainError,
  transportToDomainError,
  VmmApiError,
  VmmTransportError,
} from "./errors.ts";

const chain = (...m: string[]) => ["Error from API", ...m];

Deno.test("error bodies: CH's JSON arrays, micro-http's { error } with a raw newline, others", () => {
  assert.deepEqual(
    parseErrorBody(JSON.stringify(chain("The VM could not boot", "VM config is missing"))),
    [
      "Error from API",
      "The VM could not boot",
      "VM config is missing",
    ],
  );
  const microHttp =
    '{ "error": "Invalid HTTP Method: Unsupported HTTP method.\nAll previous unanswered requests will be dropped." }';
  assert.deepEqual(parseErrorBody(microHttp), [
    "Invalid HTTP Method: Unsupported HTTP method.",
    "All previous unanswered requests will be dropped.",
  ]);
  assert.deepEqual(parseErrorBody('{ "error": "Too many open connections" }'), [
    "Too many open connections",
  ]);
  assert.deepEqual(parseErrorBody(""), []);
  assert.deepEqual(parseErrorBody("boom"), ["boom"]);
});

Deno.test("every CH status maps once onto a domain error, keeping the CH error as cause", () => {
  const cases: [number, string[], new (...a: never[]) => Error][] = [
    [404, chain("The VM info is not available", "VM is not created"), NotFoundError],
    [
      409,
      chain(
        "The disk could not be added to the VM",
        "Failed to validate config",
        "Identifier x is not unique",
      ),
      AlreadyExistsError,
    ],
    [
      400,
      ["Failed to deserialize JSON", "missing field `id` at line 1 column 2"],
      InvalidArgumentError,
    ],
    [429, ["Too Many Requests"], ResourceExhaustedError],
    [503, ["Too many open connections"], UnavailableError],
    [500, chain("The VM could not be paused", "VM is not running"), FailedPreconditionError],
    [500, chain("The VM could not boot", "VM is already created"), FailedPreconditionError],
    [
      500,
      chain(
        "The VM could not resume",
        "Cannot resume VM",
        "x",
        "Invalid transition: InvalidStateTransition(Running, Running)",
      ),
      FailedPreconditionError,
    ],
    [
      500,
      chain(
        "The VM could not be snapshotted",
        "Cannot snapshot VM",
        "x",
        "Trying to snapshot while VM is running",
      ),
      FailedPreconditionError,
    ],
    [
      500,
      chain(
        "The VM could not boot",
        "Error locking disk images: Another instance likely holds a lock",
      ),
      FailedPreconditionError,
    ],
    [
      500,
      chain(
        "The VM could not boot",
        "Cannot open kernel file",
        "No such file or directory (os error 2)",
      ),
      InternalError,
    ],
    [418, [], InternalError],
  ];
  for (const [status, messages, cls] of cases) {
    const api = new VmmApiError("vm.boot", status, messages, JSON.stringify(messages));
    const err = toDomainError(api);
    assert.ok(err instanceof cls, `${status} ${messages.at(-1)} → ${err.name}`);
    assert.equal(err.cause, api);
    assert.equal(
      err.message,
      `vm.boot: ${messages.length ? messages.join(": ") : `HTTP ${status}`}`,
    );
  }
});

Deno.test("only 500s with a wrong-state root cause count as wrong state", () => {
  assert.ok(
    isWrongStateError(new VmmApiError("vm.pause", 500, chain("x", "VM is not running"), "")),
  );
  assert.ok(
    !isWrongStateError(new VmmApiError("vm.info", 404, chain("x", "VM is not created"), "")),
  );
  assert.ok(
    !isWrongStateError(new VmmApiError("vm.boot", 500, chain("x", "Failed to create VM"), "")),
  );
});

Deno.test("transport failures map to unavailable, deadline, cancelled, internal", () => {
  const t = (kind: VmmTransportError["kind"]) =>
    transportToDomainError("vm.info", new VmmTransportError(kind, "/s", "why"));
  assert.ok(t("unreachable") instanceof UnavailableError);
  assert.ok(t("dropped") instanceof UnavailableError);
  assert.ok(t("timeout") instanceof DeadlineExceededError);
  assert.ok(t("cancelled") instanceof CancelledError);
  assert.ok(t("protocol") instanceof InternalError);
  assert.equal(t("timeout").message, "vm.info: why");
});

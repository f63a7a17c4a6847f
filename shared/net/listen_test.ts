import assert from "node:assert/strict";
import { assertSafeListen, formatListen, isLoopback, parseListen } from "./listen.ts";
import { FailedPreconditionError, InvalidArgumentError } from "../errors/errors.ts";

Deno.test("listen addresses parse in every accepted form", () => {
  assert.deepEqual(parseListen("127.0.0.1:50051"), {
    transport: "tcp",
    hostname: "127.0.0.1",
    port: 50051,
  });
  assert.deepEqual(parseListen("[::1]:8000"), { transport: "tcp", hostname: "::1", port: 8000 });
  assert.deepEqual(parseListen("unix:/run/q.sock"), { transport: "unix", path: "/run/q.sock" });
  assert.deepEqual(parseListen("unix:///run/q.sock"), { transport: "unix", path: "/run/q.sock" });
  assert.equal(formatListen(parseListen("[::1]:8000")), "[::1]:8000");
  for (const bad of ["8000", "host:99999", "unix:rel/path", "a b:1"]) {
    assert.throws(() => parseListen(bad), InvalidArgumentError, bad);
  }
});

Deno.test("only loopback and unix sockets may go without authentication", () => {
  assert.ok(isLoopback(parseListen("127.0.0.1:1")));
  assert.ok(isLoopback(parseListen("localhost:1")));
  assert.ok(isLoopback(parseListen("unix:/x")));
  assert.ok(!isLoopback(parseListen("0.0.0.0:1")));
  const open = parseListen("0.0.0.0:8000");
  assert.throws(
    () => assertSafeListen(open, false, false, "application.allow_insecure_listen"),
    (e: unknown) =>
      e instanceof FailedPreconditionError && /allow_insecure_listen: true/.test(e.message),
  );
  assertSafeListen(open, true, false, "x");
  assertSafeListen(open, false, true, "x");
});

import assert from "node:assert/strict";
import { type CallContext, ServerError, type ServerMiddlewareCall, Status } from "nice-grpc-common";
import { Drain } from "./middleware.ts";

/** A unary call through `drain.middleware` whose handler finishes when `done` resolves. */
function call(drain: Drain, done: Promise<void>): Promise<unknown> {
  const c = {
    method: { path: "/node.VmService/ListVms" },
    request: {},
    // deno-lint-ignore require-yield
    next: async function* () {
      await done;
      return "answer";
    },
  } as unknown as ServerMiddlewareCall<unknown, unknown>;
  const gen = drain.middleware(c, {} as CallContext);
  return gen.next().then((r) => r.value);
}

Deno.test("drain: waits for calls in flight and refuses new ones with UNAVAILABLE", async () => {
  const drain = new Drain();
  const release = Promise.withResolvers<void>();
  const running = call(drain, release.promise);
  await new Promise((r) => setTimeout(r, 0));
  assert.equal(drain.inflight, 1);

  let drained = false;
  const idle = drain.drain().then(() => drained = true);
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(drained, false, "drain resolved while a call was running");

  await assert.rejects(call(drain, Promise.resolve()), (e) => {
    assert.ok(e instanceof ServerError);
    assert.equal(e.code, Status.UNAVAILABLE);
    return true;
  });

  release.resolve();
  assert.equal(await running, "answer");
  await idle;
  assert.equal(drained, true);
  assert.equal(drain.inflight, 0);
});

Deno.test("drain: with nothing in flight it resolves at once", async () => {
  await new Drain().drain();
});

import assert from "node:assert/strict";
import {
  CancelledError,
  DeadlineExceededError,
  FailedPreconditionError,
  NotFoundError,
  UnavailableError,
} from "../../shared/errors/errors.ts";
import { startFakeNode } from "../../tests/support/fake_node.ts";
import { NodePool, targetOf } from "./client.ts";

const target = (port: number) => ({ id: "h1", name: "node-a", address: "127.0.0.1", port });

Deno.test("node client: token, deadline, and errors mapped back to domain errors", async () => {
  await using fake = await startFakeNode({ token: "s3cret" });
  const pool = new NodePool({ token: "s3cret", callTimeoutMs: 2000 });
  try {
    const c = pool.get(target(fake.port));
    const info = await c.call("GetNodeInfo", (o, n) => n.vm.getNodeInfo({}, o));
    assert.equal(info.architecture, "x86_64");

    // The node's domain error (code + message) survives the trip, named after the call.
    const err = await c.call("GetVmInfo", (o, n) => n.vm.getVmInfo({ id: "nope" }, o)).catch((e) =>
      e
    );
    assert.ok(err instanceof NotFoundError);
    assert.match(err.message, /^node node-a \(127\.0\.0\.1:\d+\): GetVmInfo: vm nope not found/);

    await fake.fail("pauseVM", "failed_precondition", "vm is busy");
    await assert.rejects(
      () => c.call("PauseVM", (o, n) => n.vm.pauseVM({ id: "x" }, o)),
      FailedPreconditionError,
    );

    // Without the middleware the deadline would be ignored and this would hang for 5 s.
    await fake.delay("listVms", 5000);
    const started = Date.now();
    await assert.rejects(
      () => c.call("ListVms", (o, n) => n.vm.listVms({}, o), { timeoutMs: 200 }),
      DeadlineExceededError,
    );
    assert.ok(Date.now() - started < 2000);
    await fake.delay("listVms", 0);

    // Same host, same address: the same client; a changed address: a new one.
    assert.equal(pool.get(target(fake.port)), c);
    assert.notEqual(pool.get({ ...target(fake.port), address: "localhost" }), c);
  } finally {
    pool.close();
  }
});

Deno.test("node client: a refused token is a setup problem; no node is unavailable", async () => {
  await using fake = await startFakeNode({ token: "s3cret" });
  const pool = new NodePool({ token: "wrong", callTimeoutMs: 2000 });
  try {
    const c = pool.get(target(fake.port));
    await assert.rejects(
      () => c.call("GetNodeInfo", (o, n) => n.vm.getNodeInfo({}, o)),
      (e) => {
        assert.ok(e instanceof FailedPreconditionError);
        assert.match(e.message, /refused the control plane's token .*nodes\.auth_token/);
        return true;
      },
    );
    await fake.stop();
    pool.reset("h1");
    const d = pool.get(target(fake.port));
    await assert.rejects(() => d.call("GetNodeInfo", (o, n) => n.vm.getNodeInfo({}, o)), (e) => {
      assert.ok(e instanceof UnavailableError || e instanceof DeadlineExceededError, String(e));
      return true;
    });
  } finally {
    pool.close();
  }
});

Deno.test("node client: server streams yield messages and map a broken stream", async () => {
  await using fake = await startFakeNode();
  const pool = new NodePool({ token: "", callTimeoutMs: 2000 });
  try {
    const c = pool.get(target(fake.port));
    await c.call("CreateVM", (o, n) => n.vm.createVM({ vmId: "vm1", name: "a" }, o));
    const seen: number[] = [];
    const ac = new AbortController();
    const reading = (async () => {
      for await (
        const e of c.stream("WatchEvents", (o, n) => n.vm.watchEvents({}, o), { signal: ac.signal })
      ) {
        seen.push(e.status ?? 0);
        if (seen.length === 1) await fake.stop();
      }
    })();
    await new Promise((r) => setTimeout(r, 100));
    await c.call("StartVM", (o, n) => n.vm.startVM({ id: "vm1" }, o));
    // A server going away cancels the stream (a killed process: unavailable).
    await assert.rejects(
      reading,
      (e) => e instanceof CancelledError || e instanceof UnavailableError,
    );
    assert.deepEqual(seen, [2]);
  } finally {
    pool.close();
  }
});

Deno.test("targetOf brackets IPv6 literals", () => {
  assert.equal(targetOf({ address: "10.0.0.1", port: 1 }), "10.0.0.1:1");
  assert.equal(targetOf({ address: "fd00::1", port: 2 }), "[fd00::1]:2");
});

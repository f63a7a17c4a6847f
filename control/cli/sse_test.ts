import assert from "node:assert/strict";
import { ApiClient } from "./client.ts";
import { followEvents, SseParser } from "./sse.ts";

Deno.test("the SSE parser handles split chunks, multi-line data, comments, ids and retry", () => {
  const p = new SseParser();
  assert.deepEqual(p.feed(": keep-alive\nid: 1\nevent: vm.status\nda"), []);
  assert.deepEqual(p.feed('ta: {"a":1}\n\n'), [{ id: "1", event: "vm.status", data: '{"a":1}' }]);
  assert.deepEqual(p.feed("data: line1\r\ndata: line2\r\n\r\n"), [
    // The last id persists for events without one (as browsers do).
    { id: "1", event: "message", data: "line1\nline2" },
  ]);
  assert.deepEqual(p.feed("retry: 2500\nid: 2\n\nid: 3\ndata:x\n\n"), [
    { id: "3", event: "message", data: "x" },
  ]);
  assert.equal(p.retryMs, 2500);
  assert.equal(p.lastEventId, "3");
  // An event without data is not dispatched.
  assert.deepEqual(p.feed("event: ping\n\n"), []);
});

Deno.test("following reconnects after a dropped stream, resuming with Last-Event-ID", async () => {
  const seen: (string | null)[] = [];
  let connection = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    seen.push(req.headers.get("last-event-id"));
    const n = ++connection;
    const body = n === 1
      ? "retry: 50\nid: 1\nevent: a\ndata: one\n\nid: 2\nevent: a\ndata: two\n\n"
      : `id: ${n + 1}\nevent: b\ndata: after ${req.headers.get("last-event-id")}\n\n`;
    // Each connection sends its events and ends: the client must come back.
    return new Response(body, { headers: { "content-type": "text/event-stream" } });
  });
  const ac = new AbortController();
  const reconnects: string[] = [];
  try {
    const client = new ApiClient(`http://127.0.0.1:${server.addr.port}`);
    const got: string[] = [];
    for await (
      const ev of followEvents(client, "/v1/events", {
        signal: ac.signal,
        lastEventId: "0",
        onReconnect: (_attempt, delay) => reconnects.push(String(delay)),
      })
    ) {
      got.push(`${ev.id}:${ev.event}:${ev.data}`);
      if (got.length === 4) break;
    }
    assert.deepEqual(got, ["1:a:one", "2:a:two", "3:b:after 2", "4:b:after 3"]);
    assert.deepEqual(seen.slice(0, 3), ["0", "2", "3"]);
    // The server's retry (50 ms) sets the pause.
    assert.equal(reconnects[0], "50");
  } finally {
    ac.abort();
    await server.shutdown();
  }
});

Deno.test("following stops on errors retrying cannot fix (401, 404)", async () => {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () =>
    new Response(
      JSON.stringify({
        code: "unauthenticated",
        message: "missing bearer token",
        details: [],
        request_id: "r",
      }),
      { status: 401, headers: { "content-type": "application/json" } },
    ));
  try {
    const client = new ApiClient(`http://127.0.0.1:${server.addr.port}`);
    const ac = new AbortController();
    await assert.rejects(async () => {
      for await (const _ of followEvents(client, "/v1/events", { signal: ac.signal })) {
        /* none */
      }
    }, /missing bearer token/);
  } finally {
    await server.shutdown();
  }
});

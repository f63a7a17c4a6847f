import assert from "node:assert/strict";
import { Hono } from "hono";
import { bodyLimit } from "./body_limit.ts";

function app(max: number) {
  const a = new Hono();
  a.use("*", bodyLimit(max, () => new Response("too large", { status: 413 })));
  a.post("/echo", async (c) => c.text(await c.req.text()));
  return a;
}

/** A request whose body is a stream of `parts`: no Content-Length, as chunked bodies arrive. */
function streamed(parts: string[]): Request {
  const enc = new TextEncoder();
  const body = new ReadableStream<Uint8Array>({
    start(ctl) {
      for (const p of parts) ctl.enqueue(enc.encode(p));
      ctl.close();
    },
  });
  return new Request("http://qarax/echo", {
    method: "POST",
    body,
    headers: { "transfer-encoding": "chunked" },
    // @ts-ignore: duplex is required by Deno for stream bodies but missing from the DOM types
    duplex: "half",
  });
}

Deno.test("bodyLimit: declared lengths are checked without reading the body", async () => {
  const a = app(8);
  const ok = await a.request("/echo", { method: "POST", body: "12345678" });
  assert.equal(ok.status, 200);
  assert.equal(await ok.text(), "12345678");
  const big = await a.request("/echo", { method: "POST", body: "123456789" });
  assert.equal(big.status, 413);
});

Deno.test("bodyLimit: a body of unknown length is read up to the limit and handed on", async () => {
  const ok = await app(8).request(streamed(["1234", "5678"]));
  assert.equal(ok.status, 200);
  assert.equal(await ok.text(), "12345678");
  const big = await app(8).request(streamed(["12345", "6789"]));
  assert.equal(big.status, 413);
  const empty = await app(8).request(streamed([]));
  assert.equal(empty.status, 200);
  assert.equal(await empty.text(), "");
});

Deno.test("bodyLimit: the request handed on does not follow the incoming one's signal", async () => {
  // Following it means reading it, which Deno.serve reports with its legacy-abort notice.
  const ac = new AbortController();
  const incoming = new Request(streamed(["{}"]), { signal: ac.signal });
  let handed: Request | undefined;
  const a = new Hono();
  a.use("*", bodyLimit(8, () => new Response(null, { status: 413 })));
  a.post("/echo", (c) => {
    handed = c.req.raw;
    return c.text("ok");
  });
  assert.equal((await a.request(incoming)).status, 200);
  assert.notEqual(handed, incoming);
  assert.equal(handed!.headers.get("content-length"), "2");
  assert.equal(handed!.headers.has("transfer-encoding"), false);
  ac.abort();
  assert.equal(handed!.signal.aborted, false);
});

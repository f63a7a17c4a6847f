import assert from "node:assert/strict";
import { VmmTransportError } from "./errors.ts";
import { encodeRequest, UnixHttpConnection } from "./http.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

type Script = (req: string, conn: Deno.UnixConn, connIndex: number) => Promise<"close" | void>;

/** A unix-socket server that hands each complete request head (+ body) to `script`. */
class FakeServer implements AsyncDisposable {
  readonly path: string;
  readonly requests: { conn: number; text: string; at: number }[] = [];
  connections = 0;
  #listener: Deno.Listener<Deno.UnixConn>;
  #conns = new Set<Deno.UnixConn>();
  #tasks: Promise<void>[] = [];
  #accepting: Promise<void>;

  constructor(readonly dir: string, readonly script: Script) {
    this.path = `${dir}/fake.sock`;
    this.#listener = Deno.listen({ transport: "unix", path: this.path });
    this.#accepting = this.#accept();
  }

  async #accept(): Promise<void> {
    for await (const conn of this.#listener) {
      const index = this.connections++;
      this.#conns.add(conn);
      this.#tasks.push(this.#serve(conn, index));
    }
  }

  async #serve(conn: Deno.UnixConn, index: number): Promise<void> {
    let buf = "";
    const chunk = new Uint8Array(4096);
    try {
      for (;;) {
        const n = await conn.read(chunk);
        if (n === null) break;
        buf += decoder.decode(chunk.subarray(0, n));
        for (;;) {
          const end = buf.indexOf("\r\n\r\n");
          if (end < 0) break;
          const len = Number(/content-length: (\d+)/i.exec(buf.slice(0, end))?.[1] ?? 0);
          if (buf.length < end + 4 + len) break;
          const text = buf.slice(0, end + 4 + len);
          buf = buf.slice(end + 4 + len);
          this.requests.push({ conn: index, text, at: performance.now() });
          if (await this.script(text, conn, index) === "close") {
            conn.close();
            this.#conns.delete(conn);
            return;
          }
        }
      }
    } catch {
      // client went away
    }
    try {
      conn.close();
    } catch { /* already closed */ }
    this.#conns.delete(conn);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.#listener.close();
    for (const c of this.#conns) {
      try {
        c.close();
      } catch { /* closed */ }
    }
    await this.#accepting.catch(() => {});
    await Promise.all(this.#tasks);
  }
}

async function send(conn: Deno.UnixConn, text: string): Promise<void> {
  const bytes = encoder.encode(text);
  let off = 0;
  while (off < bytes.length) off += await conn.write(bytes.subarray(off));
}

const OK = (body = "{}") => `HTTP/1.1 200 \r\nContent-Length: ${body.length}\r\n\r\n${body}`;

async function withServer(script: Script, fn: (s: FakeServer) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "qarax-http-" });
  try {
    await using server = new FakeServer(dir, script);
    await fn(server);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("requests share one kept-alive connection; reason-less status lines parse", async () => {
  await withServer(async (_req, conn) => await send(conn, OK('{"a":1}')), async (s) => {
    const http = new UnixHttpConnection(s.path);
    try {
      for (let i = 0; i < 3; i++) {
        const res = await http.request("GET", "/api/v1/vmm.ping", null, { timeoutMs: 2000 });
        assert.equal(res.status, 200);
        assert.equal(decoder.decode(res.body), '{"a":1}');
      }
      assert.equal(s.connections, 1);
    } finally {
      http.close();
    }
  });
});

Deno.test("204 without Content-Length, a body split across writes, interim 100", async () => {
  let n = 0;
  await withServer(async (_req, conn) => {
    n++;
    if (n === 1) await send(conn, "HTTP/1.1 204 \r\nServer: Cloud Hypervisor API\r\n\r\n");
    else if (n === 2) {
      await send(conn, "HTTP/1.1 200 \r\nContent-Length: 10\r\n\r\n01234");
      await new Promise((r) => setTimeout(r, 20));
      await send(conn, "56789");
    } else {
      await send(conn, "HTTP/1.1 100 \r\n\r\n" + OK());
    }
  }, async (s) => {
    const http = new UnixHttpConnection(s.path);
    try {
      const a = await http.request("PUT", "/x", null, { timeoutMs: 2000 });
      assert.equal(a.status, 204);
      assert.equal(a.body.length, 0);
      const b = await http.request("GET", "/y", null, { timeoutMs: 2000 });
      assert.equal(decoder.decode(b.body), "0123456789");
      const c = await http.request("PUT", "/z", encoder.encode("{}"), { timeoutMs: 2000 });
      assert.equal(c.status, 200);
      assert.equal(s.connections, 1);
    } finally {
      http.close();
    }
  });
});

Deno.test("concurrent calls are serialised: the next request is sent after the last answer", async () => {
  const answeredAt: number[] = [];
  await withServer(async (_req, conn) => {
    await new Promise((r) => setTimeout(r, 30));
    await send(conn, OK());
    answeredAt.push(performance.now());
  }, async (s) => {
    const http = new UnixHttpConnection(s.path);
    try {
      await Promise.all(
        [0, 1, 2].map(() => http.request("GET", "/api/v1/vm.info", null, { timeoutMs: 2000 })),
      );
      assert.equal(s.requests.length, 3);
      for (let i = 1; i < 3; i++) assert.ok(s.requests[i].at >= answeredAt[i - 1]);
    } finally {
      http.close();
    }
  });
});

Deno.test("a connection dropped after the request was sent: retried only if retry-safe", async () => {
  for (const retrySafe of [true, false]) {
    let seen = 0;
    // The second request on the first connection is read, then that connection dies.
    await withServer(async (_req, conn, index) => {
      if (index === 0 && seen++ === 1) return "close";
      await send(conn, OK());
    }, async (s) => {
      const http = new UnixHttpConnection(s.path);
      try {
        await http.request("PUT", "/a", null, { timeoutMs: 2000 });
        const second = http.request("PUT", "/b", null, { timeoutMs: 2000, retrySafe });
        if (retrySafe) {
          assert.equal((await second).status, 200);
          assert.equal(s.connections, 2, "reconnected");
          assert.equal(s.requests.length, 3, "sent again");
        } else {
          await assert.rejects(
            second,
            (err) => err instanceof VmmTransportError && err.kind === "dropped",
          );
          assert.equal(s.requests.length, 2, "not sent twice");
          // The next call reconnects by itself.
          assert.equal((await http.request("GET", "/c", null, { timeoutMs: 2000 })).status, 200);
        }
      } finally {
        http.close();
      }
    });
  }
});

Deno.test("a server that closed the idle connection: the request is re-sent on a new one", async () => {
  await withServer(async (_req, conn) => {
    await send(conn, OK());
    return "close";
  }, async (s) => {
    const http = new UnixHttpConnection(s.path);
    try {
      await http.request("PUT", "/a", null, { timeoutMs: 2000 });
      await new Promise((r) => setTimeout(r, 30));
      // Not retry-safe, but the write itself is refused, so the server never saw it.
      const res = await http.request("PUT", "/b", null, { timeoutMs: 2000 });
      assert.equal(res.status, 200);
      assert.equal(s.requests.length, 2);
    } finally {
      http.close();
    }
  });
});

Deno.test("timeouts drop the connection and the next call reconnects", async () => {
  let n = 0;
  await withServer(async (_req, conn) => {
    if (n++ === 0) return; // never answer the first request
    await send(conn, OK());
  }, async (s) => {
    const http = new UnixHttpConnection(s.path);
    try {
      await assert.rejects(
        http.request("PUT", "/vm.boot", null, { timeoutMs: 100 }),
        (err) => err instanceof VmmTransportError && err.kind === "timeout",
      );
      assert.equal(http.connected, false);
      assert.equal((await http.request("GET", "/x", null, { timeoutMs: 2000 })).status, 200);
    } finally {
      http.close();
    }
  });
});

Deno.test("an abort signal cancels the call", async () => {
  await withServer(async () => {}, async (s) => {
    const http = new UnixHttpConnection(s.path);
    try {
      const ac = new AbortController();
      const call = http.request("GET", "/x", null, { timeoutMs: 5000, signal: ac.signal });
      setTimeout(() => ac.abort(), 30);
      await assert.rejects(
        call,
        (err) => err instanceof VmmTransportError && err.kind === "cancelled",
      );
    } finally {
      http.close();
    }
  });
});

Deno.test("a missing socket is unreachable; garbage is a protocol error", async () => {
  const http = new UnixHttpConnection("/nonexistent/qarax.sock");
  await assert.rejects(
    http.request("GET", "/x", null, { timeoutMs: 1000 }),
    (err) => err instanceof VmmTransportError && err.kind === "unreachable",
  );
  http.close();
  await withServer(async (_req, conn) => await send(conn, "SSH-2.0-nope\r\n\r\n"), async (s) => {
    const bad = new UnixHttpConnection(s.path);
    try {
      await assert.rejects(
        bad.request("GET", "/x", null, { timeoutMs: 1000 }),
        (err) => err instanceof VmmTransportError && err.kind === "protocol",
      );
    } finally {
      bad.close();
    }
  });
});

Deno.test("requests are framed with Content-Length only when there is a body", () => {
  assert.equal(
    decoder.decode(encodeRequest("PUT", "/api/v1/vm.boot", null)),
    "PUT /api/v1/vm.boot HTTP/1.1\r\nHost: localhost\r\nAccept: application/json\r\n\r\n",
  );
  const withBody = decoder.decode(
    encodeRequest("PUT", "/api/v1/vm.resize", encoder.encode('{"a":"é"}')),
  );
  assert.match(withBody, /Content-Length: 10\r\n\r\n\{"a":"é"\}$/);
  assert.doesNotMatch(withBody, /Transfer-Encoding/);
});

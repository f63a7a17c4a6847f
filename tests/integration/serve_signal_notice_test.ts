/**
 * `qarax serve` as a process answers requests whose body has no declared length (a POST with
 * no body at all, as `curl -X POST` sends, and a chunked one) without Deno.serve's one-time
 * "request.signal aborts on successful responses (legacy behavior)" notice on its stderr:
 * nothing on the request path may read the incoming request's signal.
 */
import assert from "node:assert/strict";
import { createTestDatabase } from "../support/db.ts";
import { freePort, spawn, waitFor } from "../support/process.ts";

const MAIN = new URL("../../control/main.ts", import.meta.url).pathname;

/** One HTTP/1.1 exchange on a fresh connection (closed by the server); returns status + body. */
async function rawHttp(port: number, request: string): Promise<{ status: number; body: string }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(new TextEncoder().encode(request));
    const text = await new Response(conn.readable).text();
    const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1]);
    return { status, body: text.slice(text.indexOf("\r\n\r\n") + 4) };
  } catch (err) {
    conn.close();
    throw err;
  }
}

Deno.test({
  name: "serve: length-less request bodies do not trigger Deno's legacy request.signal notice",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await using db = await createTestDatabase(1);
    const port = freePort();
    await using proc = spawn(Deno.execPath(), [
      "run",
      "-A",
      "--quiet",
      MAIN,
      "serve",
      "--host",
      "127.0.0.1",
      "--port",
      String(port),
    ], {
      env: { ...Deno.env.toObject(), NO_COLOR: "1", QARAX_DATABASE__URL: db.url },
    });
    await waitFor(() => /qarax API:/.test(proc.output()), 60_000, "qarax serve").catch((e) => {
      throw new Error(`${e.message}\n${proc.output()}`);
    });

    // No Content-Length and no Transfer-Encoding: an empty body, as `curl -X POST` sends it.
    const bare = await rawHttp(
      port,
      "POST /v1/vms HTTP/1.1\r\nHost: qarax\r\nConnection: close\r\n\r\n",
    );
    assert.ok(bare.status >= 400 && bare.status < 500, `${bare.status} ${bare.body}`);

    // A chunked body still reaches the handler intact.
    const json = JSON.stringify({ name: "chunked-1" });
    const chunked = await rawHttp(
      port,
      "POST /v1/vms HTTP/1.1\r\nHost: qarax\r\nConnection: close\r\n" +
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" +
        `${json.length.toString(16)}\r\n${json}\r\n0\r\n\r\n`,
    );
    assert.equal(chunked.status, 201, chunked.body);
    assert.equal(JSON.parse(chunked.body).name, "chunked-1");

    const status = await proc.stop();
    assert.equal(status.code, 0, proc.output());
    assert.doesNotMatch(proc.output(), /request\.signal aborts on successful responses/);
  },
});

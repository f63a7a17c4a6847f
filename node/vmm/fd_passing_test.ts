import assert from "node:assert/strict";
import { closeFd, O_RDONLY, openFd } from "../sys/libc.ts";
import { FdListener } from "../sys/unix_socket.ts";
import { VmmTransportError } from "./errors.ts";
import { requestWithFds } from "./fd_passing.ts";

const encoder = new TextEncoder();

/** A one-connection server: reads one request head, then runs `answer`. */
async function withServer(
  answer: (
    conn: Awaited<ReturnType<FdListener["accept"]>>,
    head: string,
    fds: number[],
  ) => Promise<void>,
  fn: (path: string) => Promise<void>,
) {
  const dir = await Deno.makeTempDir({ prefix: "qarax-fdpass-" });
  const listener = FdListener.listen(`${dir}/api.sock`);
  const served = (async () => {
    const conn = await listener.accept();
    let text = "";
    const buf = new Uint8Array(4096);
    while (!text.includes("\r\n\r\n")) {
      const n = await conn.read(buf);
      if (n === null) break;
      text += new TextDecoder().decode(buf.subarray(0, n));
    }
    const fds = conn.takeFds();
    try {
      await answer(conn, text, fds);
    } finally {
      for (const fd of fds) closeFd(fd);
      conn.close();
    }
  })();
  try {
    await fn(`${dir}/api.sock`);
  } finally {
    await served.catch(() => {});
    listener.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("a request goes with its descriptors; a 100 Continue is skipped; the answer is read", async () => {
  const fd = openFd("/dev/null", O_RDONLY);
  try {
    await withServer(async (conn, head, fds) => {
      assert.match(head, /^PUT \/api\/v1\/vm\.add-net HTTP\/1\.1\r\n/);
      assert.equal(fds.length, 1);
      assert.equal(Deno.readLinkSync(`/proc/self/fd/${fds[0]}`), "/dev/null");
      await conn.write(encoder.encode("HTTP/1.1 100 \r\n\r\n"));
      await conn.write(encoder.encode("HTTP/1.1 204 \r\nServer: Cloud Hypervisor API\r\n\r\n"));
    }, async (path) => {
      const res = await requestWithFds(path, "PUT", "/api/v1/vm.add-net", encoder.encode("{}"), [
        fd,
      ], {
        timeoutMs: 5_000,
      });
      assert.equal(res.status, 204);
    });
  } finally {
    closeFd(fd);
  }
});

Deno.test("no answer in time is a timeout; a closed connection is a drop", async () => {
  await withServer(async () => {
    await new Promise((r) => setTimeout(r, 300));
  }, async (path) => {
    await assert.rejects(
      () => requestWithFds(path, "GET", "/api/v1/vm.info", null, [], { timeoutMs: 100 }),
      (e) => e instanceof VmmTransportError && e.kind === "timeout",
    );
  });
  await withServer(async () => {}, async (path) => {
    await assert.rejects(
      () => requestWithFds(path, "GET", "/api/v1/vm.info", null, [], { timeoutMs: 5_000 }),
      (e) => e instanceof VmmTransportError && e.kind === "dropped",
    );
  });
  await assert.rejects(
    () => requestWithFds("/nonexistent/api.sock", "GET", "/x", null, [], { timeoutMs: 1_000 }),
    (e) => e instanceof VmmTransportError && e.kind === "unreachable",
  );
});

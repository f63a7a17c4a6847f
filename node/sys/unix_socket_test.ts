import assert from "node:assert/strict";
import { closeFd, O_RDONLY, openFd } from "./libc.ts";
import { FdListener, FdSocket, SocketTimeoutError } from "./unix_socket.ts";

async function withListener(fn: (l: FdListener, path: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "qarax-fdsock-" });
  const listener = FdListener.listen(`${dir}/s.sock`);
  try {
    await fn(listener, `${dir}/s.sock`);
  } finally {
    listener.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("descriptors ride along with data (SCM_RIGHTS) and arrive as working descriptors", async () => {
  await withListener(async (listener, path) => {
    const accepted = listener.accept();
    const client = await FdSocket.connect(path);
    const server = await accepted;
    const file = await Deno.makeTempFile();
    await Deno.writeTextFile(file, "hello through a passed descriptor");
    const fd = openFd(file, O_RDONLY);
    try {
      await client.send(new TextEncoder().encode("PUT /x"), [fd, fd]);
    } finally {
      closeFd(fd);
    }
    const buf = new Uint8Array(64);
    const n = await server.read(buf);
    assert.equal(new TextDecoder().decode(buf.subarray(0, n!)), "PUT /x");
    const fds = server.takeFds();
    assert.equal(fds.length, 2);
    assert.notEqual(fds[0], fds[1], "each passed descriptor is a new one in the receiver");
    assert.equal(Deno.readLinkSync(`/proc/self/fd/${fds[0]}`), file);
    assert.deepEqual(server.takeFds(), [], "taken once");
    for (const f of fds) closeFd(f);

    // Plain data back, then end of stream once the peer closes.
    await server.write(new TextEncoder().encode("ok"));
    assert.equal(await client.read(buf), 2);
    client.close();
    assert.equal(await server.read(buf), null);
    server.close();
    await Deno.remove(file);
  });
});

Deno.test("reads time out, and a closed socket ends a pending read", async () => {
  await withListener(async (listener, path) => {
    const accepted = listener.accept();
    const client = await FdSocket.connect(path);
    const server = await accepted;
    await assert.rejects(() => client.read(new Uint8Array(8), 50), SocketTimeoutError);
    const pending = server.read(new Uint8Array(8));
    server.close();
    assert.equal(await pending, null);
    client.close();
  });
});

Deno.test("connecting to a missing socket fails with the OS error", async () => {
  await assert.rejects(() => FdSocket.connect("/nonexistent/qarax.sock"), /No such file/);
});

/**
 * A TCP forwarder for tests: listens on a unix socket and forwards each connection to
 * `host:port`. Run inside a network namespace (`ip netns exec`), it lets a test in the root
 * namespace reach a server listening in that namespace through the shared filesystem.
 * Usage: unix_proxy.ts <socket path> <host> <port>; prints READY once listening.
 */
const [path, hostname, port] = Deno.args;
await Deno.remove(path).catch(() => {});
const listener = Deno.listen({ transport: "unix", path });
console.log("READY");
for await (const conn of listener) {
  (async () => {
    try {
      const target = await Deno.connect({ hostname, port: Number(port) });
      await Promise.allSettled([
        conn.readable.pipeTo(target.writable),
        target.readable.pipeTo(conn.writable),
      ]);
    } catch {
      try {
        conn.close();
      } catch { /* closed */ }
    }
  })();
}

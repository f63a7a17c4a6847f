/**
 * A TCP listener for networking tests (run inside a namespace): it answers every connection
 * with the address the connection came from, so a test sees whether a guest's traffic was
 * source-translated on its way. Usage: `peer_echo.ts <port>`; prints "listening" when ready.
 */
const port = Number(Deno.args[0]);
const listener = Deno.listen({ hostname: "0.0.0.0", port });
console.log("listening");
for await (const conn of listener) {
  const peer = (conn.remoteAddr as Deno.NetAddr).hostname;
  conn.write(new TextEncoder().encode(`${peer}\n`)).finally(() => conn.close());
}

/**
 * A TCP front for a test server: accepts on a fixed port and forwards each
 * connection to the real server's port. `cut()` drops the listener and every connection at
 * the TCP level, so clients see a peer that vanished (as after a crash or a cable pull)
 * without the server ever saying goodbye. Fake nodes go offline this way because a gRPC
 * server shutdown sends HTTP/2 GOAWAY, and Deno 2.9's HTTP/2 client can crash or hang on a
 * GOAWAY that arrives while calls are in flight (denoland/deno#36788).
 */
export class TcpFront {
  #listener: Deno.Listener | undefined;
  readonly #conns = new Set<Deno.Conn>();
  port: number;

  constructor(readonly targetPort: number, port = 0, readonly hostname = "127.0.0.1") {
    this.port = port;
  }

  /** Listens on `hostname` (a free port the first time, the same port after a cut). */
  open(): this {
    const listener = Deno.listen({ hostname: this.hostname, port: this.port });
    this.port = (listener.addr as Deno.NetAddr).port;
    this.#listener = listener;
    this.#accept(listener);
    return this;
  }

  get isOpen(): boolean {
    return this.#listener !== undefined;
  }

  async #accept(listener: Deno.Listener): Promise<void> {
    try {
      for await (const conn of listener) this.#forward(conn);
    } catch { /* listener closed */ }
  }

  async #forward(conn: Deno.Conn): Promise<void> {
    this.#conns.add(conn);
    let target: Deno.Conn | undefined;
    try {
      target = await Deno.connect({ hostname: "127.0.0.1", port: this.targetPort });
      this.#conns.add(target);
      await Promise.allSettled([
        conn.readable.pipeTo(target.writable),
        target.readable.pipeTo(conn.writable),
      ]);
    } catch {
      /* either side went away */
    } finally {
      for (const c of [conn, target]) {
        if (!c) continue;
        this.#conns.delete(c);
        try {
          c.close();
        } catch { /* closed */ }
      }
    }
  }

  /** Stops accepting and closes every forwarded connection. */
  cut(): void {
    this.#listener?.close();
    this.#listener = undefined;
    for (const c of this.#conns) {
      try {
        c.close();
      } catch { /* closed */ }
    }
    this.#conns.clear();
  }
}

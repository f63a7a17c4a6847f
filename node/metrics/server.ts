/**
 * The agent's metrics listener (`node.metrics_listen`): plain HTTP serving `GET /metrics`,
 * on TCP or a unix socket, with its own optional bearer token (`node.metrics_token`) so a
 * scraper never needs the token that controls VMs.
 */
import { formatListen, type ListenAddr } from "../../shared/net/listen.ts";
import { CONTENT_TYPE } from "../../shared/metrics/registry.ts";
import { safeEqual } from "../rpc/middleware.ts";
import type { NodeMetrics } from "./metrics.ts";

export interface MetricsServerOptions {
  listen: ListenAddr;
  /** Bearer token scrapers must present; empty: none. */
  token: string;
  metrics: NodeMetrics;
}

/** A listening metrics server. */
export interface MetricsServer {
  /** The bound address (`host:port` with the real port, or `unix:/path`). */
  address: string;
  shutdown(): Promise<void>;
}

/** Answers one scrape request. */
export async function handleScrape(
  req: Request,
  options: Pick<MetricsServerOptions, "token" | "metrics">,
): Promise<Response> {
  const { pathname } = new URL(req.url);
  if (pathname !== "/metrics") return new Response("not found\n", { status: 404 });
  if (req.method !== "GET" && req.method !== "HEAD") {
    return new Response("method not allowed\n", { status: 405, headers: { Allow: "GET, HEAD" } });
  }
  if (options.token) {
    const given = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.get("authorization") ?? "")?.[1];
    if (!given || !safeEqual(given, options.token)) {
      return new Response("missing or invalid bearer token\n", {
        status: 401,
        headers: { "WWW-Authenticate": 'Bearer realm="qarax-node"' },
      });
    }
  }
  const body = await options.metrics.render();
  return new Response(req.method === "HEAD" ? null : body, {
    headers: { "Content-Type": CONTENT_TYPE },
  });
}

/** Starts the listener; resolves once it is bound. */
export async function startMetricsServer(options: MetricsServerOptions): Promise<MetricsServer> {
  const ac = new AbortController();
  const { promise: listening, resolve } = Promise.withResolvers<Deno.Addr>();
  const common = { signal: ac.signal, onListen: resolve };
  const handler = (req: Request) => handleScrape(req, options);
  let server: Deno.HttpServer;
  if (options.listen.transport === "unix") {
    await Deno.remove(options.listen.path).catch(() => {});
    server = Deno.serve({ ...common, path: options.listen.path }, handler);
  } else {
    server = Deno.serve(
      { ...common, hostname: options.listen.hostname, port: options.listen.port },
      handler,
    );
  }
  const addr = await listening;
  const listen = options.listen;
  return {
    address: listen.transport === "unix"
      ? formatListen(listen)
      : formatListen({ ...listen, port: (addr as Deno.NetAddr).port }),
    async shutdown() {
      ac.abort();
      await server.finished;
    },
  };
}

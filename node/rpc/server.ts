/**
 * Builds the node's gRPC server: middleware (metrics, drain, errors, auth) and the services,
 * listening on a TCP or unix address. Service implementations live beside this file, one per
 * service.
 */
import { createServer, type Server } from "nice-grpc";
import { FileTransferServiceDefinition, VmServiceDefinition } from "../../shared/proto/mod.ts";
import { formatListen, type ListenAddr } from "../../shared/net/listen.ts";
import type { PoolManager } from "../storage/pools.ts";
import { fileTransferService } from "./file_transfer.ts";
import {
  authMiddleware,
  type CallObserver,
  Drain,
  errorMiddleware,
  metricsMiddleware,
} from "./middleware.ts";
import { vmService, type VmServiceDeps } from "./vm_service.ts";

export interface NodeServerOptions {
  listen: ListenAddr;
  authToken: string;
  runtimeDir: string;
  vmmBinary: string;
  /** The attached storage pools; every disk path of every RPC is confined to them. */
  pools: PoolManager;
  /** The VM, network and event managers (without them only GetNodeInfo is served). */
  vms?: VmServiceDeps["vms"];
  /** Told about every served call (the agent's metrics). */
  metrics?: CallObserver;
}

/** A listening node server. */
export interface NodeServer {
  server: Server;
  /** The bound address (`host:port` with the real port, or `unix:/path`). */
  address: string;
  /**
   * Refuses new calls and waits up to `graceMs` for the calls in flight. It deliberately does
   * not close the HTTP/2 sessions: a gRPC server shutdown sends GOAWAY, and a Deno 2.9 client
   * (the control plane) can abort or hang on a GOAWAY that arrives while it has calls open
   * (denoland/deno#36788). The caller exits the process afterwards, so peers see the TCP
   * connections close, which they handle like any lost node. Returns the calls cut short.
   */
  drain(graceMs: number): Promise<number>;
  /** Closes the listener and every session (in-process use only, e.g. tests). */
  shutdown(): Promise<void>;
}

/** Starts the gRPC server on `options.listen`. */
export async function startNodeServer(options: NodeServerOptions): Promise<NodeServer> {
  const drain = new Drain();
  const observer = options.metrics ?? { observeCall: () => {} };
  const server = createServer()
    .use(metricsMiddleware(observer))
    .use(drain.middleware)
    .use(errorMiddleware)
    .use(authMiddleware(options.authToken));
  server.add(VmServiceDefinition, vmService(options));
  server.add(FileTransferServiceDefinition, fileTransferService({ pools: options.pools }));
  let address: string;
  if (options.listen.transport === "unix") {
    await Deno.remove(options.listen.path).catch(() => {});
    await server.listen(`unix://${options.listen.path}`);
    address = formatListen(options.listen);
  } else {
    const port = await server.listen(formatListen(options.listen));
    address = formatListen({ ...options.listen, port });
  }
  return {
    server,
    address,
    async drain(graceMs) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const grace = new Promise<void>((r) => timer = setTimeout(r, graceMs));
      await Promise.race([drain.drain(), grace]);
      clearTimeout(timer);
      return drain.inflight;
    },
    shutdown: () => server.shutdown(),
  };
}

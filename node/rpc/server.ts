/**
 * Builds the node's gRPC server: middleware (metrics, errors, auth) and the services, listening on a
 * TCP or unix address. Service implementations live beside this file, one per service.
 */
import { createServer, type Server } from "nice-grpc";
import { FileTransferServiceDefinition, VmServiceDefinition } from "../../shared/proto/mod.ts";
import { formatListen, type ListenAddr } from "../../shared/net/listen.ts";
import type { PoolManager } from "../storage/pools.ts";
import { fileTransferService } from "./file_transfer.ts";
import {
  authMiddleware,
  type CallObserver,
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
  shutdown(): Promise<void>;
}

/** Starts the gRPC server on `options.listen`. */
export async function startNodeServer(options: NodeServerOptions): Promise<NodeServer> {
  const observer = options.metrics ?? { observeCall: () => {} };
  const server = createServer().use(metricsMiddleware(observer)).use(errorMiddleware).use(
    authMiddleware(options.authToken),
  );
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
  return { server, address, shutdown: () => server.shutdown() };
}

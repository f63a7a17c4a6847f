/**
 * Builds the node's gRPC server: middleware (errors, auth) and the services, listening on a
 * TCP or unix address. Service implementations live beside this file, one per service.
 */
import { createServer, type Server } from "nice-grpc";
import {
  FileTransferServiceDefinition,
  node,
  VmServiceDefinition,
} from "../../shared/proto/mod.ts";
import { formatListen, type ListenAddr } from "../../shared/net/listen.ts";
import { collectHostFacts } from "../info.ts";
import type { PoolManager } from "../storage/pools.ts";
import { fileTransferService } from "./file_transfer.ts";
import { authMiddleware, errorMiddleware } from "./middleware.ts";
import { withUnimplemented } from "./unimplemented.ts";

export interface NodeServerOptions {
  listen: ListenAddr;
  authToken: string;
  runtimeDir: string;
  vmmBinary: string;
  /** The attached storage pools; every disk path of every RPC is confined to them. */
  pools: PoolManager;
}

/** A listening node server. */
export interface NodeServer {
  server: Server;
  /** The bound address (`host:port` with the real port, or `unix:/path`). */
  address: string;
  shutdown(): Promise<void>;
}

/** The VmService implementation (only GetNodeInfo so far). */
export function vmService(options: NodeServerOptions) {
  return withUnimplemented(VmServiceDefinition, {
    async getNodeInfo(): Promise<node.NodeInfo.$Properties> {
      const f = await collectHostFacts(options.runtimeDir, options.vmmBinary);
      return {
        hostname: f.hostname,
        cloudHypervisorVersion: f.cloudHypervisorVersion,
        kernelVersion: f.kernelVersion,
        totalCpus: f.totalCpus,
        totalMemoryBytes: f.totalMemoryBytes,
        availableMemoryBytes: f.availableMemoryBytes,
        loadAverage_1m: f.loadAverage1m,
        diskTotalBytes: f.diskTotalBytes,
        diskAvailableBytes: f.diskAvailableBytes,
        nodeVersion: f.nodeVersion,
        architecture: f.architecture,
        kvmAvailable: f.kvmAvailable,
        cloudHypervisorEmulated: f.cloudHypervisorEmulated,
      };
    },
  });
}

/** Starts the gRPC server on `options.listen`. */
export async function startNodeServer(options: NodeServerOptions): Promise<NodeServer> {
  const server = createServer().use(errorMiddleware).use(authMiddleware(options.authToken));
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

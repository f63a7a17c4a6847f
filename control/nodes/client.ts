/**
 * gRPC clients of the qarax-node agents: one channel per host (address:port), the deadline
 * middleware (without it nice-grpc ignores `deadline`), the bearer token from
 * `nodes.auth_token`, a deadline on every unary call, and every failure turned back into the
 * node's domain error (`fromGrpcError` with the `qarax-error-bin` trailer), so a job's error
 * says exactly what the node said.
 */
import {
  type Channel,
  type Client,
  type ClientError,
  createChannel,
  createClientFactory,
  Metadata,
} from "nice-grpc";
import { deadlineMiddleware } from "nice-grpc-client-middleware-deadline";
import { fromGrpcError } from "../../shared/errors/grpc.ts";
import {
  FailedPreconditionError,
  PermissionDeniedError,
  type QaraxError,
  UnauthenticatedError,
  UnavailableError,
} from "../../shared/errors/errors.ts";
import { FileTransferServiceDefinition, VmServiceDefinition } from "../../shared/proto/mod.ts";

export type VmClient = Client<typeof VmServiceDefinition>;
export type FilesClient = Client<typeof FileTransferServiceDefinition>;

/** Where a node listens. */
export interface NodeTarget {
  /** The host id (the pool's key). */
  id: string;
  name?: string;
  address: string;
  port: number;
}

/** Call options the wrappers build; pass them to a client method. */
export interface NodeCallOptions {
  deadline?: Date;
  metadata: Metadata;
  signal?: AbortSignal;
  onTrailer(trailer: Metadata): void;
}

export interface NodeClientOptions {
  /** Bearer token; empty sends none. */
  token: string;
  /** Default deadline of unary calls. */
  callTimeoutMs: number;
}

/** `host:port`, bracketing IPv6 literals. */
export function targetOf(t: { address: string; port: number }): string {
  return `${t.address.includes(":") ? `[${t.address}]` : t.address}:${t.port}`;
}

const factory = createClientFactory().use(deadlineMiddleware);

// Reconnect quickly after a node restarts (grpc-js backs off up to 2 minutes by default), and
// notice a silently dead peer on long event streams.
const CHANNEL_OPTIONS = {
  "grpc.initial_reconnect_backoff_ms": 250,
  "grpc.max_reconnect_backoff_ms": 2000,
  "grpc.keepalive_time_ms": 15_000,
  "grpc.keepalive_timeout_ms": 5_000,
  "grpc.keepalive_permit_without_calls": 1,
};

/** The generated clients of one channel. */
export interface NodeRpc {
  vm: VmClient;
  files: FilesClient;
}

/**
 * One HTTP/2 connection and the calls it carries. A node keeps one connection for as long as
 * it answers: Deno 2.9's HTTP/2 can crash a process when sessions close while others carry
 * calls (denoland/deno#36788; seen as `free(): invalid pointer` in a node agent whose client
 * cycled connections, and as an nghttp2 assertion in a client receiving GOAWAY). So a
 * connection is only replaced after it failed with UNAVAILABLE (its peer is gone, closing it
 * sends nothing), and nodes never send GOAWAY (they drain and exit instead).
 */
interface Connection extends NodeRpc {
  channel: Channel;
  /** Calls (and streams) not finished yet. */
  inflight: number;
  retired: boolean;
}

/** One node: its connections, and call wrappers that add deadline and token and map errors. */
export class NodeClient {
  readonly target: string;
  readonly #options: NodeClientOptions;
  readonly #label: string;
  #conn: Connection | undefined;
  readonly #open = new Set<Connection>();
  #closed = false;

  constructor(node: NodeTarget, options: NodeClientOptions) {
    this.target = targetOf(node);
    this.#label = node.name ? `node ${node.name} (${this.target})` : `node ${this.target}`;
    this.#options = options;
  }

  /** Connections open now (for tests). */
  get connections(): number {
    return this.#open.size;
  }

  #acquire(): Connection {
    if (this.#closed) throw new UnavailableError(`${this.#label}: client closed`);
    let conn = this.#conn;
    if (!conn) {
      const channel = createChannel(this.target, undefined, CHANNEL_OPTIONS);
      conn = {
        channel,
        vm: factory.create(VmServiceDefinition, channel),
        files: factory.create(FileTransferServiceDefinition, channel),
        inflight: 0,
        retired: false,
      };
      this.#conn = conn;
      this.#open.add(conn);
    }
    conn.inflight++;
    return conn;
  }

  #release(conn: Connection): void {
    conn.inflight--;
    if (conn.retired && conn.inflight === 0) this.#close(conn);
  }

  #retire(conn: Connection): void {
    conn.retired = true;
    if (this.#conn === conn) this.#conn = undefined;
    if (conn.inflight === 0) this.#close(conn);
  }

  #close(conn: Connection): void {
    this.#open.delete(conn);
    conn.channel.close();
  }

  /**
   * Runs one unary call with a deadline (`timeoutMs`, default `nodes.call_timeout_ms`), the
   * token and `signal`; failures come out as domain errors named after `what`.
   */
  async call<T>(
    what: string,
    fn: (opts: NodeCallOptions, rpc: NodeRpc) => Promise<T>,
    options: { timeoutMs?: number; signal?: AbortSignal } = {},
  ): Promise<T> {
    const { opts, error } = this.options(options.timeoutMs ?? this.#options.callTimeoutMs, {
      signal: options.signal,
    });
    const conn = this.#acquire();
    try {
      return await fn(opts, conn);
    } catch (err) {
      throw this.#failed(conn, error(what, err));
    } finally {
      this.#release(conn);
    }
  }

  /** A connection that could not reach the node is not reused (grpc-js would back off). */
  #failed(conn: Connection, err: QaraxError): QaraxError {
    if (err instanceof UnavailableError) this.#retire(conn);
    return err;
  }

  /**
   * Iterates a server stream (no deadline unless `timeoutMs`); a failure while opening or
   * reading it comes out as a domain error named after `what`.
   */
  async *stream<T>(
    what: string,
    fn: (opts: NodeCallOptions, rpc: NodeRpc) => AsyncIterable<T>,
    options: { timeoutMs?: number; signal?: AbortSignal } = {},
  ): AsyncGenerator<T> {
    const { opts, error } = this.options(options.timeoutMs, { signal: options.signal });
    const conn = this.#acquire();
    try {
      yield* fn(opts, conn);
    } catch (err) {
      throw this.#failed(conn, error(what, err));
    } finally {
      this.#release(conn);
    }
  }

  /** Call options plus the error mapper that reads the trailer they capture. */
  options(
    timeoutMs: number | undefined,
    extra: { signal?: AbortSignal } = {},
  ): { opts: NodeCallOptions; error: (what: string, err: unknown) => QaraxError } {
    let trailer: Metadata | undefined;
    const metadata = new Metadata();
    if (this.#options.token) metadata.set("authorization", `Bearer ${this.#options.token}`);
    const opts: NodeCallOptions = {
      metadata,
      signal: extra.signal,
      onTrailer: (t) => trailer = t,
      ...(timeoutMs === undefined ? {} : { deadline: new Date(Date.now() + timeoutMs) }),
    };
    const error = (what: string, err: unknown) => {
      const e = fromGrpcError(err as ClientError, `${this.#label}: ${what}`, trailer);
      // The node refusing our token is a setup problem of this control plane, not the
      // caller's credentials (a 401 to an API user would mislead).
      if (e instanceof UnauthenticatedError || e instanceof PermissionDeniedError) {
        return new FailedPreconditionError(
          `${this.#label}: ${what}: the node refused the control plane's token (${e.message}); ` +
            "nodes.auth_token must equal the node's node.auth_token",
          { cause: e },
        );
      }
      return e;
    };
    return { opts, error };
  }

  /** Closes every connection (pending calls fail). */
  close(): void {
    this.#closed = true;
    this.#conn = undefined;
    for (const conn of [...this.#open]) this.#close(conn);
  }
}

/** One client per host, replaced when its address changes or after it is reset. */
export class NodePool {
  readonly #clients = new Map<string, NodeClient>();
  readonly #options: NodeClientOptions;

  constructor(options: NodeClientOptions) {
    this.#options = options;
  }

  /** The client of a host. */
  get(node: NodeTarget): NodeClient {
    const existing = this.#clients.get(node.id);
    if (existing && existing.target === targetOf(node)) return existing;
    existing?.close();
    const client = new NodeClient(node, this.#options);
    this.#clients.set(node.id, client);
    return client;
  }

  /** Drops a host's channel so the next call connects afresh. */
  reset(hostId: string): void {
    this.#clients.get(hostId)?.close();
    this.#clients.delete(hostId);
  }

  /** Closes every channel. */
  close(): void {
    for (const c of this.#clients.values()) c.close();
    this.#clients.clear();
  }
}

/**
 * The configuration schema: every setting of both binaries, validated with zod. Defaults live
 * in `configuration/base.yaml` (the one documented source); the schema only says what is valid.
 */
import { z } from "zod";
import { LOG_LEVELS } from "../log/logger.ts";

const port = z.int().min(1).max(65535);
const positiveInt = z.int().min(1);

/** `host:port`, `[v6]:port` or `unix:/absolute/path`. */
export const ListenAddress = z.string().regex(
  /^(unix:\/.+|(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):\d{1,5})$/,
  "expected host:port or unix:/absolute/path",
);

const LogSection = z.strictObject({
  level: z.enum(LOG_LEVELS),
  format: z.enum(["auto", "json", "text"]),
});

const ApplicationSection = z.strictObject({
  /** Address the REST API listens on. */
  host: z.string().min(1),
  port,
  /** Where the embedded database and other local state live. */
  data_dir: z.string().min(1),
  /** Allow listening on a non-loopback address with auth disabled. */
  allow_insecure_listen: z.boolean(),
});

const DatabaseSection = z.strictObject({
  /** PostgreSQL URL; empty means the embedded database under `application.data_dir`. */
  url: z.string(),
  max_connections: positiveInt,
  connect_timeout_s: positiveInt,
});

/** An API token: its name (the audit actor) and the sha256 hex of its secret. */
export const ApiToken = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9_.@-]{1,64}$/, "expected 1-64 of A-Z a-z 0-9 _ . @ -"),
  sha256: z.string().regex(/^[0-9a-f]{64}$/, "expected 64 lowercase hex digits"),
});

const AuthSection = z.strictObject({
  enabled: z.boolean(),
  tokens: z.array(ApiToken),
});

const MetricsSection = z.strictObject({
  /** Serve `/metrics` without a bearer token even when auth is enabled. */
  public: z.boolean(),
});

const SchedulingSection = z.strictObject({
  memory_overcommit_ratio: z.number().positive(),
  cpu_overcommit_ratio: z.number().positive(),
  /** Among hosts that fit: `spread` prefers the least loaded, `pack` the most loaded. */
  strategy: z.enum(["spread", "pack"]),
});

const ms = z.int().min(1);

/** How the control plane talks to qarax-node agents (the agent's own settings: `node`). */
const NodesSection = z.strictObject({
  /** Bearer token sent on every node RPC (the agents' `node.auth_token`); empty: none. */
  auth_token: z.string(),
  /** Deadline of one node call. */
  call_timeout_ms: ms,
  /** How long a graceful stop waits for the guest before the node stops it hard. */
  stop_timeout_ms: ms,
  /** How long a start waits for the VM to be observed running. */
  start_timeout_ms: ms,
  /** Deadline of a SnapshotVM or RestoreVM call (the guest's memory is written or read). */
  snapshot_timeout_ms: ms,
  /** Health probe period, and consecutive failed probes before an `up` host goes `down`. */
  health_interval_ms: ms,
  health_failure_threshold: positiveInt,
  /** Deadline of one health probe (a slow answer is still an answer). */
  health_timeout_ms: ms,
  /** Period of the ListVms reconciliation (the backstop of the event streams). */
  reconcile_interval_ms: ms,
  /** Longest wait between reconnections of a broken event stream. */
  watch_backoff_max_ms: ms,
});

const JobsSection = z.strictObject({
  /** Jobs this process runs at once; 0: this process runs none (API only). */
  workers: z.int().min(0),
  /** How often idle workers look for work (new jobs also wake them at once). */
  poll_interval_ms: ms,
  /** A running job's lease; renewed while it runs, re-claimed by any process once expired. */
  lease_ms: ms,
  /** Attempts of a job before it fails (a retryable error or a lost worker costs one). */
  max_attempts: positiveInt,
  /** Delay before a retry (doubled each attempt). */
  retry_delay_ms: ms,
});

const EventsSection = z.strictObject({
  /** How long events are kept (for `Last-Event-ID` resumption). */
  retention_hours: positiveInt,
  /** SSE keep-alive comment period. */
  keepalive_ms: ms,
});

const ClusterSection = z.strictObject({
  /**
   * Lease of the leader row; the leader runs the monitors (health, event streams,
   * reconciliation, retention). Another process takes over within this time of a crash.
   */
  leader_lease_ms: ms,
});

/** What a VM gets when neither the request, its instance type nor its template says. */
const VmDefaultsSection = z.strictObject({
  hypervisor: z.enum(["cloud_hv"]),
  boot_mode: z.enum(["kernel", "firmware"]),
  /** `x86_64` or `aarch64`; empty means the control plane's own architecture. */
  architecture: z.enum(["", "x86_64", "aarch64"]),
  boot_vcpus: positiveInt,
  /** Bytes. */
  memory_size: positiveInt,
  /** Paths on the node used to boot a VM that has no boot source (kernel mode / firmware). */
  kernel: z.string(),
  initramfs: z.string(),
  cmdline: z.string(),
  firmware: z.string(),
});

const NodeSection = z.strictObject({
  /** TCP port of the gRPC service (the original's `--port`). */
  port,
  /** Overrides `port`: `host:port` or `unix:/path`. Empty means `0.0.0.0:<port>`. */
  listen: z.union([z.literal(""), ListenAddress]),
  runtime_dir: z.string().min(1),
  /** The agent's own durable state (attached pools and networks), kept across restarts. */
  state_dir: z.string().min(1),
  cloud_hypervisor_binary: z.string().min(1),
  /** Directory firmware files may be taken from, besides attached storage pools. */
  firmware_dir: z.string(),
  /** Bearer token every RPC must carry; empty disables auth. */
  auth_token: z.string(),
  /** Refuse to start without `auth_token` (set in production). */
  require_auth: z.boolean(),
  /** Allow listening on a non-loopback address with no auth token. */
  allow_insecure_listen: z.boolean(),
  /** Prometheus `/metrics` listener (`host:port` or `unix:/path`); empty disables it. */
  metrics_listen: z.union([z.literal(""), ListenAddress]),
  /** Bearer token of the metrics listener; empty: none (then loopback only, see above). */
  metrics_token: z.string(),
  /** How long StopVM waits for the guest to power off before a hard shutdown (request: 0). */
  stop_timeout_ms: positiveInt,
  /** How long ForceStopVM and DeleteVM wait for a VMM to answer before killing it. */
  force_stop_timeout_ms: positiveInt,
});

/** Everything a configuration file may contain. */
export const ConfigFileSchema = z.strictObject({
  application: ApplicationSection,
  database: DatabaseSection,
  log: LogSection,
  auth: AuthSection,
  metrics: MetricsSection,
  scheduling: SchedulingSection,
  vm_defaults: VmDefaultsSection,
  nodes: NodesSection,
  jobs: JobsSection,
  events: EventsSection,
  cluster: ClusterSection,
  node: NodeSection,
});

export type ConfigFile = z.infer<typeof ConfigFileSchema>;

/** The control plane's typed configuration. */
export type ControlConfig = Pick<
  ConfigFile,
  | "application"
  | "database"
  | "log"
  | "auth"
  | "metrics"
  | "scheduling"
  | "vm_defaults"
  | "nodes"
  | "jobs"
  | "events"
  | "cluster"
>;

/** The node agent's typed configuration. */
export type NodeConfig = Pick<ConfigFile, "node" | "log">;

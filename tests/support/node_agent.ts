/**
 * The node agent for cross-process tests: the emulator as its VMM binary, and the agent itself
 * started as a subprocess (`deno run -A node/main.ts`, optionally inside a network namespace)
 * with its own runtime, state and pool directories under one temp dir, listening on a unix
 * socket (its metrics on another), with nice-grpc clients to talk to it. Disposing it stops the agent, kills every VMM
 * it left (found by their command lines naming the temp dir) and removes the dir.
 */
import { type Client, createChannel, createClient } from "nice-grpc";
import {
  FileTransferServiceDefinition,
  node,
  VmServiceDefinition,
} from "../../shared/proto/mod.ts";
import { pidsWhere, spawn, type Spawned, waitFor } from "./process.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

/** The emulator's drop-in `cloud-hypervisor` wrapper. */
export const EMULATOR_BINARY = `${ROOT}node/emulator/cloud-hypervisor`;

/** Environment for the emulator wrapper: this Deno (no npx lookup) plus `extra` knobs. */
export function emulatorEnv(extra: Record<string, string> = {}): Record<string, string> {
  return { ...Deno.env.toObject(), QARAX_DENO: Deno.execPath(), ...extra };
}

export type VmClient = Client<typeof VmServiceDefinition>;
export type FileClient = Client<typeof FileTransferServiceDefinition>;

export interface AgentOptions {
  /** Run the agent inside this network namespace (`ip netns exec`). */
  netns?: string;
  /** Extra environment (QARAX_EMU_* knobs reach the VMMs, QARAX_NODE__* the agent). */
  env?: Record<string, string>;
}

/** Pids of live VMM processes whose command line mentions `dir`. */
export function vmmPidsUnder(dir: string): number[] {
  return pidsWhere((argv) =>
    argv.includes("--api-socket") && argv.some((a) => a.includes(`path=${dir}/`))
  );
}

/** A node agent subprocess and its directories. */
export class TestAgent implements AsyncDisposable {
  proc: Spawned | null = null;
  channel: ReturnType<typeof createChannel> | null = null;
  vms!: VmClient;
  files!: FileClient;
  readonly socket: string;
  /** The metrics listener's unix socket (`node.metrics_listen`). */
  readonly metricsSocket: string;
  readonly runtimeDir: string;
  readonly stateDir: string;
  /** A directory attached as pool `POOL_ID` by `attachPool()`. */
  readonly poolDir: string;

  private constructor(readonly dir: string, readonly options: AgentOptions) {
    this.socket = `${dir}/agent.sock`;
    this.metricsSocket = `${dir}/metrics.sock`;
    this.runtimeDir = `${dir}/rt`;
    this.stateDir = `${dir}/state`;
    this.poolDir = `${dir}/pool`;
  }

  /** Starts an agent in a fresh temp dir and waits until it answers. */
  static async start(options: AgentOptions = {}): Promise<TestAgent> {
    const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "qx-agent-" }));
    // dnsmasq (DHCP) reads its files as `nobody`: the runtime dir must be searchable.
    await Deno.chmod(dir, 0o755);
    const agent = new TestAgent(dir, options);
    try {
      await agent.launch();
    } catch (err) {
      await agent[Symbol.asyncDispose]();
      throw err;
    }
    return agent;
  }

  /** Starts (or restarts) the agent process on the same directories. */
  async launch(): Promise<void> {
    const args = [
      "run",
      "-A",
      "--quiet",
      `${ROOT}node/main.ts`,
      "--listen",
      `unix:${this.socket}`,
      "--runtime-dir",
      this.runtimeDir,
      "--cloud-hypervisor-binary",
      EMULATOR_BINARY,
    ];
    const env = emulatorEnv({
      NO_COLOR: "1",
      QARAX_NODE__STATE_DIR: this.stateDir,
      QARAX_NODE__FIRMWARE_DIR: `${this.dir}/firmware`,
      QARAX_NODE__METRICS_LISTEN: `unix:${this.metricsSocket}`,
      QARAX_LOG__FORMAT: "json",
      ...this.options.env,
    });
    this.proc = this.options.netns
      ? spawn("ip", ["netns", "exec", this.options.netns, Deno.execPath(), ...args], { env })
      : spawn(Deno.execPath(), args, { env });
    const proc = this.proc;
    let exited = false;
    proc.child.status.then(() => exited = true);
    // Connect only once the socket accepts connections: a channel whose first attempts failed
    // backs off for seconds before trying again.
    await waitFor(
      async () => {
        if (exited) throw new Error("the agent exited");
        const conn = await Deno.connect({ transport: "unix", path: this.socket });
        conn.close();
        return true;
      },
      30_000,
      "the agent's socket",
    ).catch((err) => {
      throw new Error(`${err.message}\n--- agent output ---\n${proc.output()}`);
    });
    this.channel = createChannel(`unix://${this.socket}`);
    this.vms = createClient(VmServiceDefinition, this.channel);
    this.files = createClient(FileTransferServiceDefinition, this.channel);
    await this.vms.getNodeInfo({});
  }

  /** GETs the agent's `/metrics`; returns the status and the body. */
  async scrape(headers: Record<string, string> = {}): Promise<{ status: number; text: string }> {
    const client = Deno.createHttpClient({
      proxy: { transport: "unix", path: this.metricsSocket },
    });
    try {
      const res = await fetch("http://localhost/metrics", { client, headers });
      return { status: res.status, text: await res.text() };
    } finally {
      client.close();
    }
  }

  /** Everything the agent printed so far. */
  output(): string {
    return this.proc?.output() ?? "";
  }

  /** SIGKILLs the agent (its VMMs keep running). */
  async kill9(): Promise<void> {
    this.channel?.close();
    this.channel = null;
    if (!this.proc) return;
    try {
      this.proc.child.kill("SIGKILL");
    } catch { /* already gone */ }
    await this.proc.child.status;
    await this.proc.stop();
    this.proc = null;
  }

  /** SIGTERM: a graceful stop (its VMMs keep running); resolves with the exit status. */
  async terminate(): Promise<Deno.CommandStatus | undefined> {
    this.channel?.close();
    this.channel = null;
    const status = await this.proc?.stop(10_000);
    this.proc = null;
    return status;
  }

  /** Attaches `poolDir` as a LOCAL storage pool. */
  async attachPool(): Promise<void> {
    await this.vms.attachStoragePool({
      poolId: POOL_ID,
      poolKind: node.StoragePoolKind.STORAGE_POOL_KIND_LOCAL,
      configJson: JSON.stringify({ path: this.poolDir }),
    });
  }

  /** Writes a fake kernel into the pool (the emulator only needs the file to exist). */
  async kernel(): Promise<string> {
    const path = `${this.poolDir}/vmlinux`;
    await Deno.writeTextFile(path, "not really a kernel\n");
    return path;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.terminate().catch(() => {});
    for (const pid of vmmPidsUnder(this.dir)) {
      try {
        Deno.kill(pid, "SIGKILL");
      } catch { /* gone */ }
    }
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }
}

export const POOL_ID = "7e0f6c1a-0d4b-4b8e-9a55-3c2f1e0d9b01";

/** Collects a WatchEvents stream in the background. */
export class EventLog {
  readonly events: node.VmEvent[] = [];
  readonly #ac = new AbortController();
  readonly #done: Promise<unknown>;
  error: unknown;

  constructor(client: VmClient, request: node.WatchEventsRequest.$Properties = {}) {
    this.#done = (async () => {
      for await (const e of client.watchEvents(request, { signal: this.#ac.signal })) {
        this.events.push(e);
      }
    })().catch((err) => {
      this.error = err;
    });
  }

  /** `source/event` of VMM events and `state:<status>` of state changes, for one VM. */
  names(vmId: string, options: { devices?: boolean } = {}): string[] {
    return this.events.filter((e) => e.vmId === vmId).filter((e) =>
      options.devices || e.source !== "virtio-device"
    ).map(eventLabel);
  }

  /** Waits until an event matches. */
  async waitFor(pred: (e: node.VmEvent) => boolean, what: string): Promise<node.VmEvent> {
    return await waitFor(() => this.events.find(pred), 10_000, what);
  }

  async close(): Promise<void> {
    this.#ac.abort();
    await this.#done;
  }
}

/** A short label of an event: `vm/booted`, `state:running`, `exit`. */
export function eventLabel(e: node.VmEvent): string {
  switch (e.kind) {
    case node.VmEventKind.VM_EVENT_KIND_VMM:
      return `${e.source}/${e.event}`;
    case node.VmEventKind.VM_EVENT_KIND_STATE_CHANGED:
      return `state:${e.event}`;
    case node.VmEventKind.VM_EVENT_KIND_PROCESS_EXIT:
      return "exit";
    default:
      return `?${e.event}`;
  }
}

/**
 * A qarax cluster of real processes for end-to-end tests: a hub namespace with a bridge, one
 * namespace per member (control planes share one, each node agent has its own) joined to the
 * hub by veth pairs with addresses 10.<r>.<s>.0/24, the control plane(s) on PostgreSQL
 * through its unix socket (the filesystem is shared across namespaces), node agents running
 * the CH emulator, and a unix-socket forwarder so the test (in the root namespace) can call
 * each control plane's API. Disposing it kills every process it started (VMMs included) and
 * removes the namespaces, directories and database.
 */
import { run } from "../../shared/cmd/run.ts";
import { createNetns, type Netns } from "./netns.ts";
import { dnsmasqPids } from "./net_manager.ts";
import { EMULATOR_BINARY, emulatorEnv } from "./node_agent.ts";
import { pidsWhere, spawn, type Spawned, waitFor } from "./process.ts";
import { createTestDatabase, type TestDatabase } from "./db.ts";
import type { ApiResponse } from "./api.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const PG_SOCKET_DIR = Deno.env.get("E2E_PG_SOCKET_DIR") ?? "/var/run/postgresql";

/** Timings that keep an end-to-end run short (all overridable per process). */
export const FAST_ENV: Record<string, string> = {
  QARAX_NODES__CALL_TIMEOUT_MS: "5000",
  QARAX_NODES__STOP_TIMEOUT_MS: "2000",
  QARAX_NODES__START_TIMEOUT_MS: "15000",
  QARAX_NODES__HEALTH_INTERVAL_MS: "300",
  QARAX_NODES__HEALTH_FAILURE_THRESHOLD: "2",
  QARAX_NODES__RECONCILE_INTERVAL_MS: "2000",
  QARAX_NODES__WATCH_BACKOFF_MAX_MS: "500",
  QARAX_JOBS__POLL_INTERVAL_MS: "300",
  QARAX_JOBS__LEASE_MS: "3000",
  QARAX_JOBS__RETRY_DELAY_MS: "300",
  QARAX_CLUSTER__LEADER_LEASE_MS: "1500",
};

async function attach(hub: Netns, member: Netns, address: string): Promise<void> {
  const port = `qh${crypto.randomUUID().replaceAll("-", "").slice(0, 8)}`;
  await run([
    "ip",
    "-n",
    hub.name,
    "link",
    "add",
    port,
    "type",
    "veth",
    "peer",
    "name",
    "eth0",
    "netns",
    member.name,
  ]);
  await run(["ip", "-n", hub.name, "link", "set", port, "master", "br0", "up"]);
  await run(["ip", "-n", member.name, "addr", "add", `${address}/24`, "dev", "eth0"]);
  await run(["ip", "-n", member.name, "link", "set", "eth0", "up"]);
}

/** Reads lines from a child's output until `pattern` shows (or it exits). */
async function waitOutput(p: Spawned, pattern: RegExp, what: string, ms = 60_000) {
  let exited = false;
  p.child.status.then(() => exited = true);
  await waitFor(
    () => {
      if (pattern.test(p.output())) return true;
      if (exited) throw new Error(`${what} exited:\n${p.output()}`);
      return false;
    },
    ms,
    what,
  ).catch((err) => {
    throw new Error(`${err.message}\n--- output ---\n${p.output().slice(-4000)}`);
  });
}

/** A node agent in its own namespace. */
export class E2eNode {
  proc: Spawned | null = null;
  /** The current process exited by itself. */
  exited = false;
  readonly runtimeDir: string;
  readonly poolDir: string;

  constructor(
    readonly name: string,
    readonly ns: Netns,
    readonly ip: string,
    readonly port: number,
    readonly dir: string,
    readonly token: string,
    readonly env: Record<string, string> = {},
  ) {
    this.runtimeDir = `${dir}/rt`;
    this.poolDir = `${dir}/pool`;
  }

  /** Starts (or restarts) the agent on the same directories; resolves once it listens. */
  async start(extraEnv: Record<string, string> = {}): Promise<void> {
    await Deno.mkdir(this.poolDir, { recursive: true });
    const args = [
      "netns",
      "exec",
      this.ns.name,
      Deno.execPath(),
      "run",
      "-A",
      "--quiet",
      `${ROOT}node/main.ts`,
      "--listen",
      `${this.ip}:${this.port}`,
      "--runtime-dir",
      this.runtimeDir,
      "--cloud-hypervisor-binary",
      EMULATOR_BINARY,
    ];
    this.proc = spawn("ip", args, {
      env: emulatorEnv({
        NO_COLOR: "1",
        QARAX_NODE__STATE_DIR: `${this.dir}/state`,
        QARAX_NODE__FIRMWARE_DIR: `${this.dir}/firmware`,
        QARAX_NODE__AUTH_TOKEN: this.token,
        QARAX_LOG__FORMAT: "json",
        ...this.env,
        ...extraEnv,
      }),
    });
    this.exited = false;
    const proc = this.proc;
    proc.child.status.then(() => {
      if (this.proc === proc) this.exited = true;
    });
    await waitOutput(this.proc, /node agent listening/, `node agent ${this.name}`);
  }

  /** SIGKILL (its VMMs keep running). */
  async kill9(): Promise<void> {
    const proc = this.proc;
    if (!proc) return;
    this.proc = null;
    try {
      proc.child.kill("SIGKILL");
    } catch { /* gone */ }
    await proc.stop();
  }

  /** Live VMM processes of this node (optionally of one VM). */
  vmmPids(vmId = ""): number[] {
    return pidsWhere((argv) =>
      argv.includes("--api-socket") &&
      argv.some((a) => a.includes(`${this.runtimeDir}/`) && a.includes(vmId))
    );
  }

  /** qarax taps in the node's namespace. */
  async taps(): Promise<string[]> {
    const out = await run(["ip", "-n", this.ns.name, "-o", "link", "show"]);
    return [...out.stdout.matchAll(/^\d+: (qt[0-9a-f]{8}n\d+)[@:]/gm)].map((m) => m[1]);
  }
}

/** A control-plane process (in the control namespace) and the forwarder to its API. */
export class E2eControlPlane {
  proc: Spawned | null = null;
  /** The current process exited by itself. */
  exited = false;
  proxy: Spawned | null = null;
  readonly socket: string;
  readonly client: Deno.HttpClient;

  constructor(
    readonly name: string,
    readonly ns: Netns,
    readonly port: number,
    readonly dir: string,
    readonly env: Record<string, string>,
  ) {
    this.socket = `${dir}/${name}.api.sock`;
    this.client = Deno.createHttpClient({ proxy: { transport: "unix", path: this.socket } });
  }

  /** Starts (or restarts) it; resolves once its API answers through the forwarder. */
  async start(): Promise<void> {
    this.proc = spawn("ip", [
      "netns",
      "exec",
      this.ns.name,
      Deno.execPath(),
      "run",
      "-A",
      "--quiet",
      `${ROOT}control/main.ts`,
      "serve",
      "--host",
      "127.0.0.1",
      "--port",
      String(this.port),
    ], { env: { ...Deno.env.toObject(), NO_COLOR: "1", ...this.env } });
    this.exited = false;
    const proc = this.proc;
    proc.child.status.then(() => {
      if (this.proc === proc) this.exited = true;
    });
    await waitOutput(this.proc, /qarax API:/, `control plane ${this.name}`);
    if (!this.proxy) {
      this.proxy = spawn("ip", [
        "netns",
        "exec",
        this.ns.name,
        Deno.execPath(),
        "run",
        "-A",
        "--quiet",
        `${ROOT}tests/support/unix_proxy.ts`,
        this.socket,
        "127.0.0.1",
        String(this.port),
      ]);
      await waitOutput(this.proxy, /READY/, "api forwarder");
    }
  }

  /** SIGKILL. */
  async kill9(): Promise<void> {
    const proc = this.proc;
    if (!proc) return;
    this.proc = null;
    try {
      proc.child.kill("SIGKILL");
    } catch { /* gone */ }
    await proc.stop();
  }

  /** Calls the API; JSON in and out. */
  async call(method: string, path: string, body?: unknown): Promise<ApiResponse> {
    const res = await fetch(`http://qarax${path}`, {
      method,
      client: this.client,
      headers: body === undefined ? {} : { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch { /* not JSON */ }
    return { status: res.status, body: parsed, headers: res.headers };
  }

  /** A raw request (for event streams). */
  request(path: string, init: RequestInit = {}): Promise<Response> {
    return fetch(`http://qarax${path}`, { ...init, client: this.client });
  }

  /** POST/DELETE that must answer 201/202; returns the body. */
  // deno-lint-ignore no-explicit-any
  async ok(method: string, path: string, body?: unknown): Promise<any> {
    const r = await this.call(method, path, body);
    if (r.status !== 201 && r.status !== 202 && r.status !== 200) {
      throw new Error(`${method} ${path} → ${r.status} ${JSON.stringify(r.body)}`);
    }
    return r.body;
  }

  /** Waits for a job to end; returns it. */
  // deno-lint-ignore no-explicit-any
  async job(id: string, seconds = 60): Promise<any> {
    const deadline = Date.now() + seconds * 1000;
    for (;;) {
      const left = Math.max(0, Math.min(30, Math.ceil((deadline - Date.now()) / 1000)));
      const r = await this.call("GET", `/v1/jobs/${id}?wait=${left}`);
      if (["succeeded", "failed", "cancelled"].includes(r.body?.status) || left === 0) {
        return r.body;
      }
    }
  }
}

/** The whole cluster. */
export class E2eCluster implements AsyncDisposable {
  readonly nodes: E2eNode[] = [];
  readonly planes: E2eControlPlane[] = [];

  private constructor(
    readonly dir: string,
    readonly db: TestDatabase,
    readonly hub: Netns,
    readonly controlNs: Netns,
    readonly prefix: string,
    readonly token: string,
    readonly namespaces: Netns[],
  ) {}

  /** Namespaces, database and `nodes` node agents (not started: `start()` them). */
  static async create(nodes: number): Promise<E2eCluster> {
    const namespaces: Netns[] = [];
    const cleanup = async () => {
      for (const ns of namespaces.reverse()) await ns.remove().catch(() => {});
    };
    const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "qx-e2e-" }));
    await Deno.chmod(dir, 0o755);
    const r = crypto.getRandomValues(new Uint8Array(2));
    const prefix = `10.${100 + (r[0] % 100)}.${r[1]}`;
    const token = crypto.randomUUID().replaceAll("-", "");
    let db: TestDatabase | undefined;
    const members: { ns: Netns; ip: string }[] = [];
    try {
      db = await createTestDatabase(2);
      const hub = await createNetns();
      namespaces.push(hub);
      await run(["ip", "-n", hub.name, "link", "add", "br0", "type", "bridge"]);
      await run(["ip", "-n", hub.name, "link", "set", "br0", "up"]);
      for (let i = 0; i <= nodes; i++) {
        const ns = await createNetns();
        namespaces.push(ns);
        const ip = `${prefix}.${i + 1}`;
        await attach(hub, ns, ip);
        members.push({ ns, ip });
      }
      const cluster = new E2eCluster(dir, db, hub, members[0].ns, prefix, token, namespaces);
      for (const [i, m] of members.slice(1).entries()) {
        const nodeDir = `${dir}/node${i}`;
        await Deno.mkdir(nodeDir, { recursive: true });
        cluster.nodes.push(
          new E2eNode(`node-${String.fromCharCode(97 + i)}`, m.ns, m.ip, 50051, nodeDir, token),
        );
      }
      return cluster;
    } catch (err) {
      await cleanup();
      await db?.drop().catch(() => {});
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      throw err;
    }
  }

  /** The database URL as a process inside a namespace reaches it (unix socket). */
  get databaseUrl(): string {
    return `postgres://postgres@localhost/${this.db.name}?host=${PG_SOCKET_DIR}`;
  }

  /** Adds (and starts) a control-plane process. */
  async addControlPlane(env: Record<string, string> = {}): Promise<E2eControlPlane> {
    const i = this.planes.length;
    const cp = new E2eControlPlane(`cp${i}`, this.controlNs, 8000 + i, this.dir, {
      DATABASE_URL: this.databaseUrl,
      QARAX_APPLICATION__DATA_DIR: `${this.dir}/cp${i}`,
      QARAX_NODES__AUTH_TOKEN: this.token,
      QARAX_LOG__FORMAT: "json",
      ...FAST_ENV,
      ...env,
    });
    this.planes.push(cp);
    await cp.start();
    return cp;
  }

  /** The last lines of every process that exited on its own (for failure messages). */
  deaths(): string {
    const out: string[] = [];
    for (const n of this.nodes) {
      if (n.proc && n.exited) out.push(`--- ${n.name} exited ---\n${n.proc.output().slice(-3000)}`);
    }
    for (const cp of this.planes) {
      if (cp.proc && cp.exited) {
        out.push(`--- ${cp.name} exited ---\n${cp.proc.output().slice(-3000)}`);
      }
    }
    return out.join("\n");
  }

  async [Symbol.asyncDispose](): Promise<void> {
    const deaths = this.deaths();
    if (deaths) console.error(deaths);
    for (const cp of this.planes) {
      await cp.kill9().catch(() => {});
      await cp.proxy?.stop().catch(() => {});
      cp.client.close();
    }
    for (const n of this.nodes) {
      await n.proc?.stop(3000).catch(() => {});
      // VMMs and DHCP servers outlive their agent (and their namespace).
      for (const pid of [...n.vmmPids(), ...dnsmasqPids(`${n.runtimeDir}/.dhcp`)]) {
        try {
          Deno.kill(pid, "SIGKILL");
        } catch { /* gone */ }
      }
    }
    for (const ns of [...this.namespaces].reverse()) await ns.remove().catch(() => {});
    await this.db.drop().catch(() => {});
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }
}

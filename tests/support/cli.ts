/**
 * The `qarax` CLI under test: a real control plane (`startServer` on a fresh database, on a
 * free port), a real node agent on TCP with the CH emulator, and the CLI run as a subprocess
 * (`deno run control/main.ts …`) with its own config directory and no QARAX_* variables from
 * the caller's environment.
 */
import { startServer } from "../../control/server.ts";
import type { ControlConfig } from "../../shared/config/schema.ts";
import { Logger } from "../../shared/log/logger.ts";
import { testConfig } from "./api.ts";
import { createTestDatabase, type TestDatabase } from "./db.ts";
import { EMULATOR_BINARY, emulatorEnv, vmmPidsUnder } from "./node_agent.ts";
import { freePort, spawn, waitFor } from "./process.ts";

const MAIN = new URL("../../control/main.ts", import.meta.url).pathname;

/** A running control plane for CLI tests. */
export interface ControlPlane {
  url: string;
  db: TestDatabase;
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Starts the control plane on a fresh database; `auth` turns token checks on, `jobs` changes
 * the job settings (e.g. `workers: 0` keeps jobs pending).
 */
export async function startControlPlane(
  patch: { auth?: ControlConfig["auth"]; jobs?: Partial<ControlConfig["jobs"]> } = {},
): Promise<ControlPlane> {
  const db = await createTestDatabase(1);
  try {
    const base = testConfig();
    const config: ControlConfig = {
      ...base,
      application: { ...base.application, host: "127.0.0.1", port: 0 },
      database: { ...base.database, url: db.url, max_connections: 4 },
      auth: patch.auth ?? base.auth,
      jobs: { ...base.jobs, ...patch.jobs },
    };
    const server = await startServer(config, {
      logger: new Logger({ level: "error", format: "json", sink: () => {} }),
    });
    return {
      url: server.url,
      db,
      async [Symbol.asyncDispose]() {
        await server.shutdown();
        await db.drop();
      },
    };
  } catch (err) {
    await db.drop();
    throw err;
  }
}

/** What one CLI run did. */
export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  // deno-lint-ignore no-explicit-any
  json(): any;
}

/** Options of one run: extra environment (undefined removes a variable) and stdin text. */
export interface CliOptions {
  env?: Record<string, string | undefined>;
  stdin?: string;
}

/** Runs `qarax args…` to completion. */
export async function runQarax(args: string[], options: CliOptions = {}): Promise<CliResult> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(Deno.env.toObject())) {
    if (!k.startsWith("QARAX_") && k !== "XDG_CONFIG_HOME") env[k] = v;
  }
  env.NO_COLOR = "1";
  for (const [k, v] of Object.entries(options.env ?? {})) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", MAIN, ...args],
    env,
    clearEnv: true,
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (options.stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(options.stdin));
    await w.close();
  }
  const out = await child.output();
  const dec = new TextDecoder();
  const result = { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
  return {
    ...result,
    json() {
      try {
        return JSON.parse(result.stdout);
      } catch {
        throw new Error(`not JSON (exit ${result.code}):\n${result.stdout}\n${result.stderr}`);
      }
    },
  };
}

/** A CLI bound to one server and config directory, for tests that run many commands. */
export function qaraxFor(url: string, configHome: string, base: CliOptions["env"] = {}) {
  return (args: string[], options: CliOptions = {}) =>
    runQarax(args, {
      ...options,
      env: { QARAX_URL: url, XDG_CONFIG_HOME: configHome, ...base, ...options.env },
    });
}

/** Fails with the CLI's output unless it exited with `code`. */
export function expectCode(r: CliResult, code: number, what: string): CliResult {
  if (r.code !== code) {
    throw new Error(
      `${what}: exit ${r.code}, expected ${code}\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}`,
    );
  }
  return r;
}

/** A qarax-node on 127.0.0.1 (TCP, as hosts are registered) with the CH emulator as its VMM. */
export interface TcpAgent {
  port: number;
  dir: string;
  /** A directory for a storage pool the control plane attaches. */
  poolDir: string;
  output(): string;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Starts a node agent listening on a free TCP port; disposing it also kills its VMMs. */
export async function startTcpAgent(): Promise<TcpAgent> {
  const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "qx-cli-agent-" }));
  await Deno.chmod(dir, 0o755);
  await Deno.mkdir(`${dir}/pool`);
  const port = freePort();
  const proc = spawn(Deno.execPath(), [
    "run",
    "-A",
    "--quiet",
    new URL("../../node/main.ts", import.meta.url).pathname,
    "--listen",
    `127.0.0.1:${port}`,
    "--runtime-dir",
    `${dir}/rt`,
    "--cloud-hypervisor-binary",
    EMULATOR_BINARY,
  ], {
    env: emulatorEnv({
      NO_COLOR: "1",
      QARAX_NODE__STATE_DIR: `${dir}/state`,
      QARAX_NODE__FIRMWARE_DIR: `${dir}/firmware`,
      // Agents of parallel tests would all want the default metrics port.
      QARAX_NODE__METRICS_LISTEN: "",
      QARAX_LOG__FORMAT: "json",
    }),
  });
  const dispose = async () => {
    await proc.stop();
    for (const pid of vmmPidsUnder(dir)) {
      try {
        Deno.kill(pid, "SIGKILL");
      } catch { /* gone */ }
    }
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  try {
    await waitFor(
      async () => {
        const conn = await Deno.connect({ hostname: "127.0.0.1", port });
        conn.close();
        return true;
      },
      30_000,
      `the node agent on port ${port}`,
    );
  } catch (err) {
    const output = proc.output();
    await dispose();
    throw new Error(`${(err as Error).message}\n--- agent output ---\n${output}`);
  }
  return { port, dir, poolDir: `${dir}/pool`, output: proc.output, [Symbol.asyncDispose]: dispose };
}

/**
 * Through the CLI `run` (which must succeed): registers `agent` as host hv1, attaches its pool
 * as `local`, and registers a stand-in kernel as boot source `linux`; with `rootDisk`, also a
 * 64 MiB raw disk `root` (`root.img`).
 */
export async function setUpHostWithLinux(
  run: (args: string[]) => Promise<CliResult>,
  agent: TcpAgent,
  options: { rootDisk?: boolean } = {},
): Promise<void> {
  await run(["host", "add", "hv1", "--address", "127.0.0.1", "--port", String(agent.port)]);
  await run(["host", "init", "hv1"]);
  await run(["pool", "create", "local", "--path", agent.poolDir]);
  await run(["pool", "attach", "local", "hv1"]);
  await Deno.writeTextFile(`${agent.poolDir}/vmlinux`, "not really a kernel\n");
  await run(["disk", "register", "vmlinux", "--pool", "local", "--type", "kernel", "--path"]
    .concat("vmlinux"));
  if (options.rootDisk) {
    await Deno.writeFile(`${agent.poolDir}/root.img`, new Uint8Array(0));
    await Deno.truncate(`${agent.poolDir}/root.img`, 64 * 1024 ** 2);
    await run(["disk", "register", "root", "--pool", "local", "--type", "disk", "--path"]
      .concat("root.img", "--size", "64MiB"));
  }
  await run(["boot-source", "create", "linux", "--kernel", "vmlinux"]);
}

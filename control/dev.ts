/**
 * `deno task start`: qarax on one machine in one command. Starts the control plane on the
 * embedded database (under `.data/`), a node agent on loopback as a subprocess (its runtime
 * and state under `.data/node/`), registers and initialises that host, attaches a local
 * storage pool, and prints the API URL, the docs URL and a three-line example that creates
 * and starts a VM. Without a `cloud-hypervisor` binary it runs the qarax emulator and says so.
 * Ctrl-C stops both; VMs are left running by design (their VMMs live in their own sessions)
 * and the next start adopts them.
 */
import { parseArgs } from "node:util";
import { ConfigError, loadControlConfig } from "../shared/config/load.ts";
import { Logger, setLogger } from "../shared/log/logger.ts";
import { startServer } from "./server.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const EMULATOR = `${ROOT}node/emulator/cloud-hypervisor`;

const { values: flags } = parseArgs({
  args: Deno.args,
  options: {
    port: { type: "string" },
    "node-port": { type: "string", default: "50051" },
    "data-dir": { type: "string", default: ".data" },
    "log-level": { type: "string", default: "warn" },
    help: { type: "boolean", short: "h" },
  },
});
if (flags.help) {
  console.log(`Usage: deno task start [--port 8000] [--node-port 50051] [--data-dir .data]
  Runs the control plane (embedded database) and a local node agent; prints how to use them.
  Without --port the API port is PORT or QARAX_APPLICATION__PORT when set, else 8000.`);
  Deno.exit(0);
}

function isExecutable(path: string): boolean {
  try {
    const st = Deno.statSync(path);
    return st.isFile && (st.mode ?? 0) & 0o111 ? true : false;
  } catch {
    return false;
  }
}

/** A real cloud-hypervisor: the configured path, else one on PATH; null when there is none. */
function findCloudHypervisor(configured: string): string | null {
  if (isExecutable(configured)) return configured;
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    if (dir && isExecutable(`${dir}/cloud-hypervisor`)) return `${dir}/cloud-hypervisor`;
  }
  return null;
}

function portFree(port: number): boolean {
  try {
    Deno.listen({ hostname: "127.0.0.1", port }).close();
    return true;
  } catch {
    return false;
  }
}

async function waitForPort(port: number, child: Deno.ChildProcess, logFile: string) {
  let exited = false;
  child.status.then(() => exited = true);
  for (let i = 0; i < 600; i++) {
    if (exited) throw new Error(`the node agent exited at start; see ${logFile}`);
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`the node agent did not listen on 127.0.0.1:${port}; see ${logFile}`);
}

async function api<T>(base: string, method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: body === undefined ? {} : { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return (text ? JSON.parse(text) : null) as T;
}

type Row = { id: string; [k: string]: unknown };
type List = { items: Row[] };

async function main() {
  const dataDir = await Deno.realPath(
    await Deno.mkdir(flags["data-dir"]!, { recursive: true })
      .then(() => flags["data-dir"]!),
  );
  const nodeDir = `${dataDir}/node`;
  const poolDir = `${dataDir}/pool`;
  await Deno.mkdir(nodeDir, { recursive: true });
  await Deno.mkdir(poolDir, { recursive: true });
  // --port wins; without it the configuration decides (PORT, QARAX_APPLICATION__PORT, 8000).
  const { config: base } = loadControlConfig({
    flags: [
      { path: "application.data_dir", value: dataDir, flag: "--data-dir" },
      ...(flags.port === undefined
        ? []
        : [{ path: "application.port", value: flags.port, flag: "--port" }]),
      { path: "log.level", value: flags["log-level"]!, flag: "--log-level" },
    ],
  });
  const apiPort = base.application.port;
  const nodePort = Number(flags["node-port"]);
  for (const [what, port] of [["API", apiPort], ["node agent", nodePort]] as const) {
    if (!portFree(port)) {
      console.error(
        `qarax: port ${port} (${what}) is in use; is qarax already running? ` +
          `Pick others with --port / --node-port.`,
      );
      Deno.exit(1);
    }
  }

  const realCh = findCloudHypervisor(
    Deno.env.get("CLOUD_HYPERVISOR") ?? "/usr/local/bin/cloud-hypervisor",
  );
  const vmm = realCh ?? EMULATOR;
  // One secret per data dir, shared by the two processes (the node listens on loopback only).
  const tokenFile = `${nodeDir}/token`;
  let token = await Deno.readTextFile(tokenFile).catch(() => "");
  if (!token) {
    token = crypto.randomUUID().replaceAll("-", "");
    await Deno.writeTextFile(tokenFile, token, { mode: 0o600 });
  }
  const demoKernel = `${poolDir}/vmlinux-demo`;
  const config = {
    ...base,
    nodes: { ...base.nodes, auth_token: token },
    // With the emulator any file boots: VMs without a boot source get the demo kernel.
    vm_defaults: realCh ? base.vm_defaults : { ...base.vm_defaults, kernel: demoKernel },
  };
  setLogger(new Logger({ level: config.log.level, format: config.log.format }));

  if (!realCh) {
    console.log(
      "No cloud-hypervisor binary found (looked at /usr/local/bin/cloud-hypervisor and PATH): " +
        "using the qarax Cloud Hypervisor EMULATOR (node/emulator/cloud-hypervisor).\n" +
        "VMs are emulated: their VMM processes, API, events and taps are real, but no guest " +
        "runs. Install cloud-hypervisor (or set CLOUD_HYPERVISOR=/path) for real VMs.\n",
    );
    await Deno.writeTextFile(demoKernel, "qarax emulator demo kernel (not a real kernel)\n");
  }

  const nodeLog = `${nodeDir}/agent.log`;
  const logFile = await Deno.open(nodeLog, { create: true, append: true });
  const agent = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--quiet",
      `${ROOT}node/main.ts`,
      "--listen",
      `127.0.0.1:${nodePort}`,
      "--runtime-dir",
      `${nodeDir}/vms`,
      "--cloud-hypervisor-binary",
      vmm,
    ],
    env: {
      QARAX_NODE__STATE_DIR: `${nodeDir}/state`,
      QARAX_NODE__AUTH_TOKEN: token,
      QARAX_NODE__FIRMWARE_DIR: `${nodeDir}/firmware`,
      QARAX_LOG__FORMAT: "json",
      QARAX_DENO: Deno.execPath(),
      NO_COLOR: "1",
    },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  // Both streams append to the log (O_APPEND: lines do not overwrite each other).
  const errLog = await Deno.open(nodeLog, { create: true, append: true });
  agent.stdout.pipeTo(logFile.writable).catch(() => {});
  agent.stderr.pipeTo(errLog.writable).catch(() => {});

  let server: Awaited<ReturnType<typeof startServer>> | undefined;
  let stopping = false;
  const stop = async (code: number) => {
    if (stopping) return;
    stopping = true;
    console.log("\nstopping qarax (VMs keep running; the next start adopts them)");
    await server?.shutdown({ exiting: true }).catch(() => {});
    try {
      agent.kill("SIGTERM");
    } catch { /* gone */ }
    const timer = setTimeout(() => {
      try {
        agent.kill("SIGKILL");
      } catch { /* gone */ }
    }, 5000);
    await agent.status;
    clearTimeout(timer);
    Deno.exit(code);
  };
  Deno.addSignalListener("SIGINT", () => stop(0));
  Deno.addSignalListener("SIGTERM", () => stop(0));

  try {
    await waitForPort(nodePort, agent, nodeLog);
    server = await startServer(config);
    const url = server.url;
    // The local host: registered once, its address kept current, initialised every start.
    const hosts = await api<List>(url, "GET", "/v1/hosts?name=local");
    let host = hosts.items[0];
    if (!host) {
      host = await api<Row>(url, "POST", "/v1/hosts", {
        name: "local",
        address: "127.0.0.1",
        port: nodePort,
        labels: { "qarax.dev/all-in-one": "true" },
      });
    } else if (host.port !== nodePort || host.address !== "127.0.0.1") {
      host = await api<Row>(url, "PATCH", `/v1/hosts/${host.id}`, {
        address: "127.0.0.1",
        port: nodePort,
      });
    }
    const pools = await api<List>(url, "GET", "/v1/storage-pools?name=local");
    const pool = pools.items[0] ??
      await api<Row>(url, "POST", "/v1/storage-pools", {
        name: "local",
        path: poolDir,
        description: "qarax all-in-one: files under the data directory",
      });
    const attached = await fetch(`${url}/v1/storage-pools/${pool.id}/hosts/${host.id}`);
    await attached.body?.cancel();
    if (attached.status === 404) {
      await api(url, "POST", `/v1/storage-pools/${pool.id}/hosts`, { host_id: host.id });
    }
    const init = await api<{ host: Row }>(url, "POST", `/v1/hosts/${host.id}/init`);
    const h = init.host;
    const vmmText = h.cloud_hypervisor_emulated
      ? "the Cloud Hypervisor EMULATOR (VMs are emulated, not real)"
      : `cloud-hypervisor ${h.cloud_hypervisor_version}`;
    console.log(`qarax is running: the control plane and one node agent on this machine.

  API:   ${url}/v1
  Docs:  ${url}/docs
  Host:  local (127.0.0.1:${nodePort}) is ${h.status}, ${h.total_cpus} CPUs, running ${vmmText}
  Data:  ${dataDir} (node agent log: ${nodeLog})

Create and start a VM (curl ≥ 7.84):
  VM=$(curl -s -o /dev/null -w '%header{location}' -H 'content-type: application/json' -d '{"name":"demo-1"}' ${url}/v1/vms)
  JOB=$(curl -s -o /dev/null -w '%header{location}' -X POST ${url}$VM/start)
  curl -s "${url}$JOB?wait=30"
${
      realCh
        ? "\n(With a real cloud-hypervisor, give the VM a boot source with a real kernel first.)\n"
        : ""
    }
Watch events: curl -N ${url}/v1/events    Ctrl-C stops qarax (VMs keep running).`);
  } catch (err) {
    console.error(`qarax: ${(err as Error).message}`);
    await stop(1);
  }
}

if (import.meta.main) {
  await main().catch((err) => {
    if (!(err instanceof ConfigError)) throw err;
    console.error(`qarax: ${err.message}`);
    Deno.exit(78);
  });
}

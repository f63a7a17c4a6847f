/**
 * `qarax-node`: the node agent binary. Serves the node gRPC services on `--port` (all
 * interfaces) or `--listen`, managing VMs under `--runtime-dir`, and Prometheus metrics on
 * `node.metrics_listen`.
 */
import { flagHelp, type FlagSpec, parseFlags } from "../shared/config/flags.ts";
import { ConfigError, loadNodeConfig } from "../shared/config/load.ts";
import { redactValue } from "../shared/config/redact.ts";
import { Logger, logger, setLogger } from "../shared/log/logger.ts";
import { FailedPreconditionError, QaraxError } from "../shared/errors/errors.ts";
import { assertSafeListen, parseListen } from "../shared/net/listen.ts";
import { versionLine } from "../shared/version.ts";
import { EventBus } from "./events/bus.ts";
import { IpAdapter } from "./net/ip.ts";
import { NetworkManager } from "./net/manager.ts";
import { startNodeServer } from "./rpc/server.ts";
import { NodeMetrics } from "./metrics/metrics.ts";
import { type MetricsServer, startMetricsServer } from "./metrics/server.ts";
import { StateStore } from "./state/store.ts";
import { PoolManager } from "./storage/pools.ts";
import { VmManager } from "./vms/manager.ts";

const FLAGS: FlagSpec[] = [
  { name: "config", short: "c", help: "configuration file layered over the defaults" },
  { name: "port", short: "p", path: "node.port", help: "gRPC port on all interfaces" },
  { name: "listen", path: "node.listen", help: "host:port or unix:/path (overrides --port)" },
  { name: "runtime-dir", path: "node.runtime_dir", help: "per-VM runtime directories" },
  {
    name: "cloud-hypervisor-binary",
    path: "node.cloud_hypervisor_binary",
    help: "path of the cloud-hypervisor (or emulator) binary",
  },
  { name: "log-level", path: "log.level", help: "debug | info | warn | error" },
  { name: "version", short: "V", type: "boolean", help: "print the version" },
  { name: "help", short: "h", type: "boolean", help: "show this help" },
];

const USAGE = `Usage: qarax-node [flags]

${flagHelp(FLAGS)}
`;

async function main(argv: string[]): Promise<void> {
  const flags = parseFlags(argv, FLAGS);
  if (flags.other.help) return console.log(USAGE);
  if (flags.other.version) return console.log(versionLine("qarax-node"));
  const { config, environment } = loadNodeConfig({
    flags: flags.config,
    configFile: flags.other.config as string | undefined,
  });
  setLogger(new Logger({ level: config.log.level, format: config.log.format }));
  const log = logger();
  log.debug("configuration", { environment, config: redactValue(config) });
  const n = config.node;
  if (n.require_auth && !n.auth_token) {
    throw new FailedPreconditionError(
      "node.require_auth is set but node.auth_token is empty (set QARAX_NODE__AUTH_TOKEN)",
    );
  }
  const listen = parseListen(n.listen || `0.0.0.0:${n.port}`);
  assertSafeListen(listen, !!n.auth_token, n.allow_insecure_listen, "node.allow_insecure_listen");
  // The metrics listener has its own token; without one it is loopback-only like gRPC.
  const metricsListen = n.metrics_listen ? parseListen(n.metrics_listen) : null;
  if (metricsListen) {
    assertSafeListen(
      metricsListen,
      !!n.metrics_token,
      n.allow_insecure_listen,
      "node.allow_insecure_listen",
    );
  }
  await Deno.mkdir(n.runtime_dir, { recursive: true });
  // Pools and networks attached before a restart (or a host reboot) are restored first.
  const state = await StateStore.open(n.state_dir);
  const pools = new PoolManager(state, { firmwareDir: n.firmware_dir });
  // DHCP files live beside the VM directories (a name no VM id can take).
  const networks = new NetworkManager(new IpAdapter(), state, {
    dhcpDir: `${n.runtime_dir}/.dhcp`,
  });
  log.info("storage pools checked", { ...await pools.reconcile() });
  log.info("networks restored", { ...await networks.reconcile() });
  const bus = new EventBus();
  const manager = new VmManager({
    runtimeDir: n.runtime_dir,
    vmmBinary: n.cloud_hypervisor_binary,
    pools,
    networks,
    bus,
    stopTimeoutMs: n.stop_timeout_ms,
    forceStopTimeoutMs: n.force_stop_timeout_ms,
  });
  pools.setUsageCheck((pool) => manager.poolUsers(pool));
  // VMs that ran before this agent started (their VMMs outlive it) are adopted first.
  log.info("VMs recovered", { ...await manager.recover() });
  const metrics = new NodeMetrics(manager);
  const server = await startNodeServer({
    listen,
    authToken: n.auth_token,
    runtimeDir: n.runtime_dir,
    vmmBinary: n.cloud_hypervisor_binary,
    pools,
    vms: { manager, networks, bus },
    metrics,
  });
  // A metrics port already taken must not keep the agent from managing VMs: the scrape
  // failing (target down) is what reports it.
  let metricsServer: MetricsServer | null = null;
  if (metricsListen) {
    try {
      metricsServer = await startMetricsServer({
        listen: metricsListen,
        token: n.metrics_token,
        metrics,
      });
      log.info("metrics listening", { address: metricsServer.address });
    } catch (err) {
      log.error("metrics listener failed; serving without metrics", {
        address: n.metrics_listen,
        err,
      });
    }
  }
  log.info("node agent listening", {
    address: server.address,
    runtime_dir: n.runtime_dir,
    incarnation: bus.incarnation,
  });
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    // VMs keep running: their VMMs live in their own sessions and are re-adopted next start.
    log.info("shutting down (VMs keep running)");
    // Event streams end first (they never finish by themselves), then calls in flight.
    bus.close();
    const cut = await server.drain(5_000);
    if (cut > 0) log.warn("calls still running at shutdown were cut", { calls: cut });
    await metricsServer?.shutdown();
    await manager.close();
    networks.close();
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
}

if (import.meta.main) {
  try {
    await main(Deno.args);
  } catch (err) {
    if (err instanceof ConfigError || err instanceof QaraxError) {
      console.error(`qarax-node: ${err.message}`);
      Deno.exit(err instanceof ConfigError ? 78 : 1);
    }
    throw err;
  }
}

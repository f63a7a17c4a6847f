/**
 * The orchestration runtime of one control-plane process: the event bus, the node clients,
 * the job workers (every process runs some) and the leader election that runs the monitors
 * on one process at a time. `startServer` starts it beside the HTTP listener; benchmarks and
 * tests start it alone.
 */
import type { Sql } from "postgres";
import type { ControlConfig } from "../shared/config/schema.ts";
import type { Logger } from "../shared/log/logger.ts";
import { Leadership } from "./cluster/leader.ts";
import { EventBus } from "./events/bus.ts";
import { PLANS } from "./jobs/plans.ts";
import { JobWorkers } from "./jobs/worker.ts";
import { NodePool } from "./nodes/client.ts";
import { Monitors } from "./nodes/monitor.ts";
import type { Services } from "./services.ts";
import { ControlMetrics } from "./metrics.ts";

/** A running runtime. */
export interface Runtime {
  svc: Services;
  /** This process's name in leases (host:pid:random). */
  instance: string;
  workers: JobWorkers;
  leadership: Leadership;
  monitors: Monitors;
  /**
   * Stops workers, leadership, monitors and events. `exiting`: the process ends next, so node
   * connections are left to the exit (closing a live HTTP/2 session sends GOAWAY, which can
   * crash the Deno node agent that receives it, denoland/deno#36788).
   */
  stop(options?: { exiting?: boolean }): Promise<void>;
}

export interface RuntimeOptions {
  sql: Sql;
  config: ControlConfig;
  logger: Logger;
  /** PostgreSQL (LISTEN/NOTIFY) or the embedded database (in-process fan-out only). */
  database: "postgres" | "embedded";
  /** Run workers and compete for leadership (default true); false: services only. */
  active?: boolean;
}

/** A name for this process, unique across restarts. */
export function instanceName(): string {
  return `${Deno.hostname()}:${Deno.pid}:${crypto.randomUUID().slice(0, 6)}`;
}

/** Creates the services and (unless `active: false`) starts workers and the leader election. */
export async function startRuntime(options: RuntimeOptions): Promise<Runtime> {
  const { sql, config, logger } = options;
  const events = new EventBus({ sql, listen: options.database === "postgres", logger });
  await events.start();
  const nodes = new NodePool({
    token: config.nodes.auth_token,
    callTimeoutMs: config.nodes.call_timeout_ms,
  });
  const metrics = new ControlMetrics(sql, logger);
  const svc: Services = { sql, config, logger, events, nodes, metrics };
  const instance = instanceName();
  const workers = new JobWorkers(svc, { owner: instance, plans: PLANS });
  const monitors = new Monitors(svc);
  const leadership = new Leadership({
    sql,
    owner: instance,
    leaseMs: config.cluster.leader_lease_ms,
    logger,
    onLead: () => monitors.start(),
    onFollow: () => monitors.stop(),
  });
  if (options.active !== false) {
    workers.start();
    leadership.start();
  }
  return {
    svc,
    instance,
    workers,
    leadership,
    monitors,
    async stop(options = {}) {
      await workers.stop();
      await leadership.stop();
      await monitors.stop();
      await events.stop();
      if (!options.exiting) nodes.close();
    },
  };
}

/**
 * What the orchestration layer runs on: the database, configuration, logger, the event bus
 * (and its event-recording transactions), the node clients and the metrics. The HTTP app's dependencies
 * extend this, and the job workers and monitors take it as is.
 */
import type { Sql } from "postgres";
import type { ControlConfig } from "../shared/config/schema.ts";
import type { Logger } from "../shared/log/logger.ts";
import type { EventBus } from "./events/bus.ts";
import type { NodePool } from "./nodes/client.ts";
import type { ControlMetrics } from "./metrics.ts";

/** Shared services of one control-plane process. */
export interface Services {
  sql: Sql;
  config: ControlConfig;
  logger: Logger;
  events: EventBus;
  nodes: NodePool;
  /** This process's Prometheus metrics. */
  metrics: ControlMetrics;
}

/**
 * The control plane's Prometheus metrics: what this process counts as it runs (HTTP requests
 * by route pattern, method and status with their latency; jobs it finished by type and
 * outcome, with how long they ran) and what the database says at scrape time (VMs and hosts by status, jobs by type
 * and status). Counters are per process; the database gauges are cluster-wide, so every
 * control-plane process reports the same values for them.
 */
import type { Sql } from "postgres";
import type { Logger } from "../shared/log/logger.ts";
import { Registry } from "../shared/metrics/registry.ts";
import { commit, VERSION } from "../shared/version.ts";
import { hostCountsByStatus, jobCountsByTypeAndStatus, vmCountsByStatus } from "./db/metrics.ts";
import { HOST_STATUSES } from "./db/hosts.ts";
import { JOB_STATUSES, JOB_TYPES } from "./db/jobs.ts";
import { VM_STATUSES } from "./domain/vm_status.ts";

const METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);

/** Job duration buckets in seconds: 100 ms to 1 h (a VM start is seconds, a download minutes). */
export const JOB_DURATION_BUCKETS: readonly number[] = [
  0.1,
  0.5,
  1,
  2.5,
  5,
  10,
  30,
  60,
  120,
  300,
  600,
  1800,
  3600,
];

/** What a finished job tells the metrics (its row after the finish). */
export interface FinishedJob {
  type: string;
  started_at: Date | null;
  finished_at: Date | null;
}

/** Route label of requests no route matched (keeps unknown paths out of the label values). */
export const UNMATCHED_ROUTE = "unmatched";

/** The metric families of one control-plane process. */
export class ControlMetrics {
  readonly registry: Registry;
  readonly httpRequests;
  readonly httpDuration;
  readonly jobsFinished;
  readonly jobDuration;
  readonly jobRetries;

  constructor(sql: Sql, log: Logger) {
    const r = this.registry = new Registry({
      onCollectError: (collector, err) => {
        collectErrors.inc({ collector });
        log.warn("metrics collection failed", { collector, err });
      },
    });
    r.gauge("qarax_build_info", "Version and commit of this control plane (always 1).", [
      "version",
      "commit",
    ]).set({ version: VERSION, commit: commit() }, 1);
    this.httpRequests = r.counter(
      "qarax_http_requests_total",
      "HTTP requests answered, by route pattern, method and status code.",
      ["route", "method", "status"],
    );
    this.httpDuration = r.histogram(
      "qarax_http_request_duration_seconds",
      "Time to answer an HTTP request (to the response headers for event streams).",
      ["route", "method"],
    );
    this.jobsFinished = r.counter(
      "qarax_jobs_finished_total",
      "Jobs this process finished, by type and outcome (succeeded | failed | cancelled).",
      ["type", "outcome"],
    );
    this.jobDuration = r.histogram(
      "qarax_job_duration_seconds",
      "Time from a job's first start to its end, by type and outcome (jobs this process " +
        "finished; jobs cancelled before they ever ran are not observed).",
      ["type", "outcome"],
      JOB_DURATION_BUCKETS,
    );
    this.jobRetries = r.counter(
      "qarax_job_retries_total",
      "Job attempts that failed retryably and were scheduled again, by type.",
      ["type"],
    );
    const collectErrors = r.counter(
      "qarax_metrics_collect_errors_total",
      "Scrapes in which reading a metric source (the database) failed.",
      ["collector"],
    );
    const vms = r.gauge("qarax_vms", "VMs by status (from the database).", ["status"]);
    const hosts = r.gauge("qarax_hosts", "Hosts by status (from the database).", ["status"]);
    const jobs = r.gauge("qarax_jobs", "Jobs by type and status (from the database).", [
      "type",
      "status",
    ]);
    r.collect("database", [vms, hosts, jobs], async () => {
      const [vmRows, hostRows, jobRows] = await Promise.all([
        vmCountsByStatus(sql),
        hostCountsByStatus(sql),
        jobCountsByTypeAndStatus(sql),
      ]);
      // Known values are always present (as 0) so dashboards and alerts see a series.
      for (const status of VM_STATUSES) vms.set({ status }, 0);
      for (const status of HOST_STATUSES) hosts.set({ status }, 0);
      for (const type of JOB_TYPES) {
        for (const status of JOB_STATUSES) jobs.set({ type, status }, 0);
      }
      for (const { status, n } of vmRows) vms.set({ status }, n);
      for (const { status, n } of hostRows) hosts.set({ status }, n);
      for (const { type, status, n } of jobRows) jobs.set({ type, status }, n);
    });
  }

  /** Counts one answered request; `route` is the matched pattern, never the raw path. */
  observeRequest(route: string, method: string, status: number, seconds: number): void {
    // Clients choose the method: anything unusual is folded into one value.
    const m = METHODS.has(method) ? method : "other";
    this.httpRequests.inc({ route, method: m, status: String(status) });
    this.httpDuration.observe({ route, method: m }, seconds);
  }

  /**
   * Counts a job this process ended as `outcome` and observes its duration, from its first
   * start to its end (database clock); a job that never started has no duration.
   */
  observeJobFinished(job: FinishedJob, outcome: "succeeded" | "failed" | "cancelled"): void {
    this.jobsFinished.inc({ type: job.type, outcome });
    if (job.started_at && job.finished_at) {
      const seconds = (job.finished_at.getTime() - job.started_at.getTime()) / 1000;
      this.jobDuration.observe({ type: job.type, outcome }, Math.max(0, seconds));
    }
  }

  /** The scrape answer body. */
  render(): Promise<string> {
    return this.registry.render();
  }
}

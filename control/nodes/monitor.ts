/**
 * The monitors the leader runs: the health probe (GetNodeInfo every
 * `nodes.health_interval_ms`; an `up` host goes `down` after
 * `nodes.health_failure_threshold` failures in a row, and a `down` host that answers again is
 * initialised and reconciled — it comes back by itself), one event stream per `up` or
 * `maintenance` host, the periodic reconciliation, and the event retention clean-up.
 */
import type { Logger } from "../../shared/log/logger.ts";
import { type HostRow, listHosts } from "../db/hosts.ts";
import { deleteEventsBefore } from "../events/store.ts";
import { type Cause, changeHostStatus } from "../events/status.ts";
import type { Services } from "../services.ts";
import { factsFromNodeInfo, hostUnreachable, initHost, nodeInfo } from "./hosts.ts";
import { reconcileHost, type ReconcileReport } from "./observe.ts";
import { HostWatcher } from "./watch.ts";

const CAUSE: Cause = { source: "monitor" };
const PROBED = new Set(["up", "down", "maintenance"]);
const WATCHED = new Set(["up", "maintenance"]);
const RETENTION_EVERY_MS = 10 * 60_000;

/** Every host (all pages). */
export async function allHosts(svc: Services): Promise<HostRow[]> {
  const out: HostRow[] = [];
  let cursor: string | undefined;
  do {
    const page = await listHosts(svc.sql, {}, { limit: 1000, cursor });
    out.push(...(page.items as HostRow[]));
    cursor = page.next_cursor ?? undefined;
  } while (cursor);
  return out;
}

/** The leader's monitors. */
export class Monitors {
  readonly #svc: Services;
  readonly #log: Logger;
  readonly #failures = new Map<string, number>();
  /** Per host, the VM ids its node runs without a record here, as last reported. */
  readonly #strays = new Map<string, string[]>();
  readonly #watchers = new Map<string, HostWatcher>();
  readonly #timers: ReturnType<typeof setTimeout>[] = [];
  readonly #ac = new AbortController();
  readonly #busy = new Set<Promise<unknown>>();
  #running = false;
  /** Duration of the last full reconciliation cycle (ms), for benchmarks and logs. */
  lastCycleMs = 0;

  constructor(svc: Services) {
    this.#svc = svc;
    this.#log = svc.logger.child({ component: "monitor" });
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    const n = this.#svc.config.nodes;
    this.#every(n.health_interval_ms, () => this.probeAll(), 0);
    this.#every(n.reconcile_interval_ms, () => this.reconcileAll(), n.reconcile_interval_ms);
    this.#every(RETENTION_EVERY_MS, () => this.pruneEvents(), 1000);
  }

  async stop(): Promise<void> {
    this.#running = false;
    this.#ac.abort();
    for (const t of this.#timers) clearTimeout(t);
    await Promise.all([...this.#watchers.values()].map((w) => w.stop()));
    this.#watchers.clear();
    await Promise.allSettled([...this.#busy]);
  }

  /** Runs `fn` every `ms` (never two at once), the first time after `firstMs`. */
  #every(ms: number, fn: () => Promise<unknown>, firstMs: number): void {
    const tick = () => {
      if (!this.#running) return;
      const p = fn().catch((err) => this.#log.warn("monitor round failed", { err }));
      this.#busy.add(p);
      p.finally(() => {
        this.#busy.delete(p);
        if (this.#running) this.#timers.push(setTimeout(tick, ms));
      });
    };
    this.#timers.push(setTimeout(tick, firstMs));
  }

  /** One health round over every initialised host, in parallel. */
  async probeAll(): Promise<void> {
    const hosts = (await allHosts(this.#svc)).filter((h) => PROBED.has(h.status));
    await Promise.all(hosts.map((h) => this.probe(h)));
    const current = await allHosts(this.#svc);
    this.#syncWatchers(current);
  }

  /** Probes one host and acts on the answer. */
  async probe(host: HostRow): Promise<void> {
    const n = this.#svc.config.nodes;
    const timeoutMs = n.health_timeout_ms;
    try {
      const info = await nodeInfo(this.#svc, host, timeoutMs);
      this.#failures.delete(host.id);
      if (host.status === "down") {
        this.#log.info("host answers again: bringing it up", { host: host.name });
        const { host: up } = await initHost(this.#svc, host.id, CAUSE);
        this.#syncWatcher(up);
        await reconcileHost(this.#svc, up, this.#ac.signal);
        return;
      }
      await this.#svc.events.transaction((tx, emit) =>
        changeHostStatus(tx, emit, host.id, undefined, undefined, CAUSE, {
          facts: factsFromNodeInfo(info, new Date()),
        })
      );
    } catch (err) {
      if (this.#ac.signal.aborted) return;
      const count = (this.#failures.get(host.id) ?? 0) + 1;
      this.#failures.set(host.id, count);
      // No reset here: the node client itself drops a connection that failed UNAVAILABLE.
      this.#log.debug("probe failed", { host: host.name, failures: count, err });
      if (host.status === "up" && count >= n.health_failure_threshold) {
        const reason = `${count} health probes failed: ${(err as Error).message}`;
        if (await hostUnreachable(this.#svc, host, reason, CAUSE)) {
          this.#log.warn("host is down", { host: host.name, reason });
          await this.#watchers.get(host.id)?.stop();
          this.#watchers.delete(host.id);
        }
      }
    }
  }

  #syncWatchers(hosts: HostRow[]): void {
    const live = new Set<string>();
    for (const h of hosts) {
      if (WATCHED.has(h.status)) live.add(h.id);
      this.#syncWatcher(h);
    }
    for (const [id, w] of this.#watchers) {
      if (!live.has(id)) {
        this.#watchers.delete(id);
        w.stop();
      }
    }
  }

  #syncWatcher(h: HostRow): void {
    if (!this.#running) return;
    const want = WATCHED.has(h.status);
    const have = this.#watchers.get(h.id);
    if (want && !have) this.#watchers.set(h.id, new HostWatcher(this.#svc, h).start());
    if (!want && have) {
      this.#watchers.delete(h.id);
      have.stop();
    }
  }

  /** Reconciles every watched host; returns the reports (slow or failed hosts are skipped). */
  async reconcileAll(): Promise<ReconcileReport[]> {
    const started = performance.now();
    const hosts = (await allHosts(this.#svc)).filter((h) => WATCHED.has(h.status));
    const reports = await Promise.all(
      hosts.map((h) =>
        reconcileHost(this.#svc, h, this.#ac.signal).catch((err) => {
          this.#log.debug("reconcile failed", { host: h.name, err });
          return null;
        })
      ),
    );
    this.lastCycleMs = performance.now() - started;
    const done = reports.filter((r): r is ReconcileReport => r !== null);
    const changed = done.reduce((n, r) => n + r.changed, 0);
    if (changed) this.#log.info("reconciliation changed vm statuses", { changed });
    for (const r of done) await this.#reportStrays(r);
    return done;
  }

  /**
   * Records `host.stray_vms` when the set of VMs a node runs without a record here changes
   * (an empty list: they are gone). qarax never deletes what it has no record of; the operator
   * decides (the VMs still use the host's CPU and memory).
   */
  async #reportStrays(r: ReconcileReport): Promise<void> {
    const now = [...r.strays].sort();
    const before = this.#strays.get(r.host_id) ?? [];
    if (now.join() === before.join()) return;
    this.#strays.set(r.host_id, now);
    await this.#svc.events.transaction((_tx, emit) =>
      emit({
        type: "host.stray_vms",
        resource_type: "host",
        resource_id: r.host_id,
        data: { host_id: r.host_id, vm_ids: now.slice(0, 100), count: now.length },
      })
    ).catch((err) => this.#log.warn("could not record host.stray_vms", { err }));
  }

  /** Deletes events past the retention window. */
  async pruneEvents(): Promise<number> {
    const hours = this.#svc.config.events.retention_hours;
    const n = await deleteEventsBefore(this.#svc.sql, new Date(Date.now() - hours * 3600_000));
    if (n) this.#log.info("old events deleted", { count: n, retention_hours: hours });
    return n;
  }
}

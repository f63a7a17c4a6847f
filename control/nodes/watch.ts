/**
 * One node's event stream: `WatchEvents` kept open, each event applied at once. A broken
 * stream (the node restarted, RESOURCE_EXHAUSTED because we were too slow, a network blip)
 * reconnects with exponential backoff up to `nodes.watch_backoff_max_ms`, resuming after the
 * last event seen (the agent's incarnation and sequence), and every (re)connection also
 * reconciles the host so nothing that happened in between is missed.
 */
import type { Logger } from "../../shared/log/logger.ts";
import { getHost, type HostRow } from "../db/hosts.ts";
import type { Services } from "../services.ts";
import { applyNodeEvent, reconcileHost } from "./observe.ts";

/** Keeps one host's event stream open until stopped. */
export class HostWatcher {
  readonly #svc: Services;
  readonly #hostId: string;
  readonly #log: Logger;
  readonly #ac = new AbortController();
  #done: Promise<void> | undefined;
  /** Events applied (for tests and metrics). */
  applied = 0;
  connections = 0;
  #incarnation = "";
  #sequence = 0;

  constructor(svc: Services, host: Pick<HostRow, "id" | "name">) {
    this.#svc = svc;
    this.#hostId = host.id;
    this.#log = svc.logger.child({ component: "watch", host_id: host.id, host: host.name });
  }

  start(): this {
    this.#done ??= this.#loop();
    return this;
  }

  async stop(): Promise<void> {
    this.#ac.abort();
    await this.#done;
  }

  async #loop(): Promise<void> {
    const signal = this.#ac.signal;
    const max = this.#svc.config.nodes.watch_backoff_max_ms;
    let backoff = Math.min(250, max);
    while (!signal.aborted) {
      const host = await getHost(this.#svc.sql, this.#hostId).catch(() => undefined);
      if (!host) return;
      const client = this.#svc.nodes.get(host);
      try {
        const resume = { incarnation: this.#incarnation, afterSequence: this.#sequence };
        const stream = client.stream("WatchEvents", (o, n) => n.vm.watchEvents(resume, o), {
          signal,
        });
        this.connections++;
        // Catch up with what happened while no stream was open (the stream is opened first).
        const catchUp = setTimeout(() => {
          reconcileHost(this.#svc, host, signal).catch((err) => {
            if (!signal.aborted) this.#log.debug("reconcile after connect failed", { err });
          });
        }, 50);
        try {
          for await (const event of stream) {
            backoff = Math.min(250, max);
            if (event.incarnation) {
              this.#incarnation = event.incarnation;
              this.#sequence = Number(event.sequence ?? 0);
            }
            try {
              if (await applyNodeEvent(this.#svc, host, event)) this.applied++;
            } catch (err) {
              this.#log.warn("applying a node event failed", { err, vm_id: event.vmId });
            }
          }
        } finally {
          clearTimeout(catchUp);
        }
        if (!signal.aborted) this.#log.info("event stream ended; reconnecting");
      } catch (err) {
        if (signal.aborted) return;
        this.#log.debug("event stream broke", { err, retry_ms: backoff });
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, backoff);
        signal.addEventListener("abort", () => {
          clearTimeout(t);
          resolve();
        }, { once: true });
      });
      backoff = Math.min(backoff * 2, max);
    }
  }
}

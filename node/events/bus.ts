/**
 * The node's in-process VM event bus: every VMM event-monitor event, VMM exit and status change
 * is published here, numbered (per agent process, the "incarnation"), kept in a bounded
 * history, and fanned out to subscribers (the WatchEvents streams). Publishing never waits: a
 * subscriber that falls `queueSize` events behind is cut off with ResourceExhausted (its client
 * reconnects, resuming from the last sequence it saw), so a slow reader can neither block the
 * node nor make it hold unbounded memory.
 */
import { ResourceExhaustedError } from "../../shared/errors/errors.ts";
import type { VmStatusName } from "../vms/status.ts";

export type VmEventKind = "vmm" | "process_exit" | "state_changed";

/** One published VM event. */
export interface VmEvent {
  vmId: string;
  time: Date;
  kind: VmEventKind;
  /** For `vmm` events: the event monitor's source and event; `node` and the status otherwise. */
  source: string;
  event: string;
  properties: Record<string, string>;
  /** The VM's status after this event. */
  status: VmStatusName;
  message: string;
  /** Position in this incarnation's stream, from 1. */
  sequence: number;
  incarnation: string;
}

export type NewVmEvent = Omit<VmEvent, "sequence" | "incarnation">;

export interface SubscribeOptions {
  /** Only this VM's events. */
  vmId?: string;
  /** Resume after the last event the caller saw (see `subscribe`). */
  resume?: { incarnation: string; afterSequence: number };
  signal?: AbortSignal;
}

interface Subscriber {
  vmId?: string;
  queue: VmEvent[];
  failed?: Error;
  closed: boolean;
  wake?: () => void;
}

/** The bus; one per node agent. */
export class EventBus {
  readonly incarnation = crypto.randomUUID();
  readonly #history: VmEvent[] = [];
  readonly #subs = new Set<Subscriber>();
  #sequence = 0;

  constructor(readonly options: { historySize?: number; queueSize?: number } = {}) {}

  /** Subscribers currently attached. */
  get subscriberCount(): number {
    return this.#subs.size;
  }

  /** The sequence of the last published event (0 before the first). */
  get lastSequence(): number {
    return this.#sequence;
  }

  /** Numbers, records and delivers an event; never blocks. */
  publish(e: NewVmEvent): VmEvent {
    const event: VmEvent = { ...e, sequence: ++this.#sequence, incarnation: this.incarnation };
    this.#history.push(event);
    if (this.#history.length > (this.options.historySize ?? 4096)) this.#history.shift();
    const max = this.options.queueSize ?? 1024;
    for (const sub of this.#subs) {
      if (sub.vmId && sub.vmId !== event.vmId) continue;
      if (sub.queue.length >= max) {
        sub.failed = new ResourceExhaustedError(
          `event subscriber fell more than ${max} events behind; reconnect and resume from sequence ${
            sub.queue[0].sequence - 1
          }`,
        );
        sub.queue = [];
        this.#subs.delete(sub);
      } else {
        sub.queue.push(event);
      }
      sub.wake?.();
    }
    return event;
  }

  /**
   * Streams events as they are published, until `signal` aborts. With `resume` from this
   * incarnation, buffered events after `afterSequence` come first; with `resume` from another
   * incarnation (the agent restarted), every buffered event does. Throws ResourceExhausted when
   * the subscriber falls too far behind.
   */
  async *subscribe(options: SubscribeOptions = {}): AsyncGenerator<VmEvent> {
    const sub: Subscriber = { vmId: options.vmId || undefined, queue: [], closed: false };
    if (options.resume) {
      const after = options.resume.incarnation === this.incarnation
        ? options.resume.afterSequence
        : 0;
      sub.queue = this.#history.filter((e) =>
        e.sequence > after && (!sub.vmId || e.vmId === sub.vmId)
      );
    }
    this.#subs.add(sub);
    const onAbort = () => {
      sub.closed = true;
      sub.wake?.();
    };
    options.signal?.addEventListener("abort", onAbort);
    if (options.signal?.aborted) sub.closed = true;
    try {
      for (;;) {
        if (sub.failed) throw sub.failed;
        if (sub.closed) return;
        const next = sub.queue.shift();
        if (next) {
          yield next;
          continue;
        }
        await new Promise<void>((resolve) => sub.wake = resolve);
        sub.wake = undefined;
      }
    } finally {
      this.#subs.delete(sub);
      options.signal?.removeEventListener("abort", onAbort);
    }
  }

  /** Ends every subscription (agent shutdown). */
  close(): void {
    for (const sub of this.#subs) {
      sub.closed = true;
      sub.wake?.();
    }
    this.#subs.clear();
  }
}

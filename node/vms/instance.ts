/**
 * One VM as the node tracks it: its spec (persisted in `spec.json`), the node's bookkeeping
 * (persisted in `state.json`: provisioned, ever booted, last status and why, the VMM's pid and
 * start time, whether the node ended the VMM on purpose), its VMM process and API clients, and
 * the pump that turns the VMM's event-monitor file into bus events and status changes. The
 * offset of the event file is saved after each batch, so a restarted agent resumes after the
 * last event it published (events are delivered at least once).
 */
import { z } from "zod";
import { SerialQueue } from "../../shared/async/serial.ts";
import { FailedPreconditionError, InternalError } from "../../shared/errors/errors.ts";
import type { Logger } from "../../shared/log/logger.ts";
import type { EventBus, VmEvent } from "../events/bus.ts";
import { writeFileAtomic } from "../state/atomic.ts";
import { VmmClient } from "../vmm/client.ts";
import { EventFileReader } from "../vmm/event_reader.ts";
import { eventTimeMs } from "../vmm/events.ts";
import type { VmmProcess } from "../vmm/process.ts";
import type { VmPaths } from "../vmm/runtime_dir.ts";
import type { VmSpec } from "../vmm/spec.ts";
import type { VmConfig as ChVmConfig } from "../vmm/types.ts";
import { statusAfterEvent, VM_STATUSES, type VmStatusName } from "./status.ts";

const FORMAT = 1;
const encoder = new TextEncoder();

/** The node's bookkeeping for a VM (`state.json`). */
export interface VmBook {
  /** CreateVM finished (a VM that is not was interrupted by a crash and is rolled back). */
  provisioned: boolean;
  /** The VM has run at least once (CH's `Created` then means stopped). */
  booted: boolean;
  status: VmStatusName;
  reason: string;
  /** The VMM's pid; 0 when none was started. */
  vmmPid: number;
  /** When the VMM was started (epoch ms), to date its events (CH counts from its start). */
  vmmStartedAt: number;
  /** The node ended the VMM on purpose (force stop, restore), so its absence is no crash. */
  vmmStopped: boolean;
}

const Book = z.object({
  provisioned: z.boolean(),
  booted: z.boolean(),
  status: z.enum(VM_STATUSES),
  reason: z.string(),
  vmmPid: z.number(),
  vmmStartedAt: z.number(),
  vmmStopped: z.boolean(),
});

/** `spec.json`: what CreateVM asked for, the spec as changed since (hotplug, resize), the CH config. */
export interface SpecFile {
  requested: VmSpec;
  spec: VmSpec;
  ch?: ChVmConfig;
  createdAt: string;
}

const SpecJson = z.object({
  format: z.literal(FORMAT),
  requested: z.record(z.string(), z.unknown()),
  spec: z.record(z.string(), z.unknown()),
  ch: z.record(z.string(), z.unknown()).optional(),
  createdAt: z.string(),
});

/** Reads a VM's `spec.json`. */
export async function readSpecFile(path: string): Promise<SpecFile> {
  const parsed = SpecJson.safeParse(JSON.parse(await Deno.readTextFile(path)));
  if (!parsed.success) throw new InternalError(`${path}: ${parsed.error.issues[0].message}`);
  return parsed.data as unknown as SpecFile;
}

/** Reads a VM's `state.json`; undefined when missing. */
export async function readBook(path: string): Promise<VmBook | undefined> {
  try {
    const parsed = Book.safeParse(JSON.parse(await Deno.readTextFile(path)));
    if (!parsed.success) throw new InternalError(`${path}: ${parsed.error.issues[0].message}`);
    return parsed.data;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw err;
  }
}

/** A VM known to the node. */
export class VmInstance {
  book: VmBook = {
    provisioned: false,
    booted: false,
    status: "unknown",
    reason: "",
    vmmPid: 0,
    vmmStartedAt: 0,
    vmmStopped: false,
  };
  process: VmmProcess | null = null;
  /** Client for operations (serialised by the manager's per-VM queue). */
  ops: VmmClient | null = null;
  /** Client for reads (GetVmInfo), so they never queue behind a slow operation. */
  reads: VmmClient | null = null;
  memoryActualSize: number | undefined;
  /** Set while DeleteVM runs: the VMM's exit is then no news. */
  deleting = false;
  /** Why the VM cannot be managed (e.g. an unreadable spec.json); only DeleteVM works then. */
  broken = "";
  /** Aborts the operation in progress (ForceStopVM and DeleteVM interrupt boots and stops). */
  current: AbortController | null = null;
  /** Bumped on every status change (so a stale read does not overwrite a newer status). */
  statusVersion = 0;
  readonly reader: EventFileReader;
  readonly #pumps = new SerialQueue();
  readonly #writes = new SerialQueue();
  readonly #waiters = new Set<() => void>();
  #pumpQueued = false;

  constructor(
    readonly id: string,
    readonly paths: VmPaths,
    public files: SpecFile,
    readonly bus: EventBus,
    readonly log: Logger,
    eventsOffset = 0,
  ) {
    this.reader = new EventFileReader(paths.events, eventsOffset);
  }

  get status(): VmStatusName {
    return this.book.status;
  }

  get spec(): VmSpec {
    return this.files.spec;
  }

  /** The VMM is running (as far as the node knows). */
  get vmmAlive(): boolean {
    return this.process?.alive ?? false;
  }

  /** The operations client of a live VMM; FailedPrecondition otherwise. */
  requireVmm(): VmmClient {
    if (this.broken) throw new FailedPreconditionError(`VM ${this.id} is broken: ${this.broken}`);
    if (!this.vmmAlive || !this.ops) {
      const why = this.status === "crashed" && this.book.reason ? ` (${this.book.reason})` : "";
      throw new FailedPreconditionError(`VM ${this.id} has no running VMM${why}`);
    }
    return this.ops;
  }

  /** Takes over a VMM process: opens its API clients. */
  attach(process: VmmProcess): void {
    this.closeClients();
    this.process = process;
    this.ops = new VmmClient({ socketPath: this.paths.apiSocket });
    this.reads = new VmmClient({
      socketPath: this.paths.apiSocket,
      timeoutsMs: { "vm.info": 2_000, "vm.counters": 5_000 },
    });
  }

  /** Forgets the VMM process (it is gone, or the agent stops). */
  detach(): void {
    this.closeClients();
    this.process = null;
  }

  closeClients(): void {
    this.ops?.close();
    this.reads?.close();
    this.ops = null;
    this.reads = null;
  }

  /** Persists `spec.json` (after create, hotplug and resize). */
  saveSpec(): Promise<void> {
    const text = JSON.stringify({ format: FORMAT, ...this.files }, null, 2) + "\n";
    return this.#writes.run(() => writeFileAtomic(this.paths.spec, encoder.encode(text)));
  }

  /** Persists `state.json`; writes run in order and each writes the latest bookkeeping. */
  saveBook(): Promise<void> {
    return this.#writes.run(() =>
      writeFileAtomic(this.paths.state, encoder.encode(JSON.stringify(this.book) + "\n"))
    );
  }

  /** Records `status` (and why); publishes a state change when it changed. */
  async setStatus(status: VmStatusName, reason = "", message = ""): Promise<void> {
    if (status === "running" || status === "paused") this.book.booted = true;
    const changed = status !== this.book.status || reason !== this.book.reason;
    if (!changed) return;
    const statusChanged = status !== this.book.status;
    this.book.status = status;
    this.book.reason = reason;
    this.statusVersion++;
    if (statusChanged) {
      this.publish({
        kind: "state_changed",
        source: "node",
        event: status,
        properties: {},
        message: message || reason,
      });
    }
    for (const wake of this.#waiters) wake();
    await this.saveBook();
  }

  /** Publishes an event of this VM with its current status. */
  publish(
    e: Pick<VmEvent, "kind" | "source" | "event" | "properties" | "message"> & {
      time?: Date;
      status?: VmStatusName;
    },
  ): VmEvent {
    return this.bus.publish({
      vmId: this.id,
      time: e.time ?? new Date(),
      kind: e.kind,
      source: e.source,
      event: e.event,
      properties: e.properties,
      status: e.status ?? this.book.status,
      message: e.message,
    });
  }

  /** Resolves on the next status change, after `ms`, or when `signal` aborts. */
  waitChange(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#waiters.delete(done);
        signal?.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#waiters.add(done);
      signal?.addEventListener("abort", done);
    });
  }

  /**
   * Reads the VMM's new events and publishes them (each with the status it implies), then
   * saves the offset. Pumps of one VM run one at a time.
   */
  pump(): Promise<void> {
    return this.#pumps.run(async () => {
      this.#pumpQueued = false;
      if (this.deleting) return;
      let events;
      try {
        events = await this.reader.read();
      } catch (err) {
        this.log.warn("unreadable VMM events skipped", { err });
        await this.#saveOffset();
        return;
      }
      if (events.length === 0) return;
      for (const e of events) {
        const next = statusAfterEvent(e);
        const changed = next !== undefined && next !== this.book.status;
        if (changed) {
          this.book.status = next;
          this.book.reason = "";
          if (next === "running" || next === "paused") this.book.booted = true;
          this.statusVersion++;
        }
        this.publish({
          kind: "vmm",
          source: e.source,
          event: e.event,
          properties: e.properties ?? {},
          message: "",
          time: this.book.vmmStartedAt
            ? new Date(this.book.vmmStartedAt + eventTimeMs(e))
            : undefined,
        });
        if (changed) {
          this.publish({
            kind: "state_changed",
            source: "node",
            event: next,
            properties: {},
            message: `${e.source}/${e.event}`,
          });
        }
      }
      await this.#saveOffset();
      await this.saveBook();
      for (const wake of this.#waiters) wake();
    });
  }

  /** Waits for pumps and file writes in flight (before the runtime dir is removed). */
  async settle(): Promise<void> {
    await this.#pumps.run(() => Promise.resolve());
    await this.#writes.run(() => Promise.resolve());
  }

  /** Queues a pump unless one is already waiting to run. */
  schedulePump(): void {
    if (this.#pumpQueued || this.deleting) return;
    this.#pumpQueued = true;
    this.pump().catch((err) => this.log.warn("event pump failed", { err }));
  }

  /** Forgets the old VMM's events before a new VMM starts (it recreates the file). */
  resetEvents(): Promise<void> {
    return this.#pumps.run(async () => {
      await Deno.remove(this.paths.events).catch(() => {});
      this.reader.reset();
      await this.#saveOffset();
    });
  }

  async #saveOffset(): Promise<void> {
    // Plain write: losing it (power cut) only means some events are published again.
    await Deno.writeTextFile(this.paths.eventsOffset, `${this.reader.offset}\n`).catch((err) =>
      this.log.warn("could not save the event offset", { err })
    );
  }
}

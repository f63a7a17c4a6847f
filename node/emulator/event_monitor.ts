/**
 * The `--event-monitor` writer: every event as serde_json's pretty form (2-space indent)
 * followed by a blank line, with a monotonic `{secs, nanos}` timestamp counted from VMM start.
 * Written synchronously, so an event is in the file before the API answer that caused it.
 */
import { writeFd } from "../sys/libc.ts";

/** Where events go: `path=<file>` (created/truncated) or `fd=<n>` (inherited). */
export type MonitorTarget = { path: string } | { fd: number };

const encoder = new TextEncoder();

/** Emits CH events; a monitor without a target drops them (CH only logs them then). */
export class EventMonitor {
  readonly #start: number;
  #file: Deno.FsFile | null = null;
  #fd: number | null = null;
  #last = 0;
  #broken = false;

  constructor(target: MonitorTarget | null, start = performance.now()) {
    this.#start = start;
    if (target && "path" in target) {
      this.#file = Deno.openSync(target.path, { write: true, create: true, truncate: true });
    } else if (target) {
      this.#fd = target.fd;
    }
  }

  /** Records one event (`properties`: string → string, or none). */
  emit(source: string, event: string, properties?: Record<string, string>): void {
    if (this.#broken || (!this.#file && this.#fd === null)) return;
    const elapsed = Math.max(this.#last, performance.now() - this.#start);
    this.#last = elapsed;
    const secs = Math.floor(elapsed / 1000);
    const nanos = Math.min(999_999_999, Math.round((elapsed - secs * 1000) * 1e6));
    const text = formatEvent({ secs, nanos }, source, event, properties ?? null);
    try {
      if (this.#file) this.#file.writeSync(encoder.encode(text));
      else writeFd(this.#fd!, encoder.encode(text));
    } catch {
      // CH's monitor thread gives up on a broken destination; the VMM carries on.
      this.#broken = true;
    }
  }

  /** Closes the destination file. */
  close(): void {
    this.#file?.close();
    this.#file = null;
  }
}

/** One event record exactly as CH writes it (pretty JSON + blank line). */
export function formatEvent(
  timestamp: { secs: number; nanos: number },
  source: string,
  event: string,
  properties: Record<string, string> | null,
): string {
  return JSON.stringify({ timestamp, source, event, properties }, null, 2) + "\n\n";
}

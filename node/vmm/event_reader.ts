/**
 * Reads a VMM's `--event-monitor` file on demand, remembering how many bytes it has consumed:
 * each `read()` returns the events completed since the last one, and `offset` (persisted by the
 * caller) lets a restarted agent resume exactly where the previous one stopped, so events
 * written while no agent was watching are still seen. An event still being written stays
 * unconsumed until it is complete. Unlike `tailEvents` (a free-running follower), the caller
 * decides when to read, so it can drain the file right after an API call and order what the
 * VMM reported before what it concludes from the answer.
 */
import { EventStreamParser } from "./events.ts";
import type { VmmEvent } from "./types.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A reader of one event-monitor file, starting at a byte offset. */
export class EventFileReader {
  #offset: number;

  constructor(readonly path: string, offset = 0) {
    this.#offset = offset;
  }

  /** Bytes consumed so far (complete events and the blank lines between them). */
  get offset(): number {
    return this.#offset;
  }

  /** Starts over at the beginning (a new VMM truncates the file). */
  reset(): void {
    this.#offset = 0;
  }

  /**
   * The events completed since the last read. A file shorter than the offset was truncated
   * (a new VMM): reading restarts at its beginning. Unparseable content is skipped whole.
   */
  async read(): Promise<VmmEvent[]> {
    let file: Deno.FsFile;
    try {
      file = await Deno.open(this.path, { read: true });
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return [];
      throw err;
    }
    let bytes: Uint8Array;
    try {
      const size = (await file.stat()).size;
      if (size < this.#offset) this.#offset = 0;
      if (size === this.#offset) return [];
      await file.seek(this.#offset, Deno.SeekMode.Start);
      bytes = new Uint8Array(size - this.#offset);
      let got = 0;
      while (got < bytes.length) {
        const n = await file.read(bytes.subarray(got));
        if (n === null) break;
        got += n;
      }
      bytes = bytes.subarray(0, got);
    } finally {
      file.close();
    }
    const parser = new EventStreamParser();
    let events: VmmEvent[];
    try {
      events = parser.push(decoder.decode(bytes));
    } catch (err) {
      this.#offset += bytes.length;
      throw err;
    }
    // What is still pending is an incomplete event at the end: read it again next time.
    this.#offset += bytes.length - encoder.encode(parser.pending).length;
    return events;
  }
}

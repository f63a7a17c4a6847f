/**
 * The `--event-monitor` stream: CH writes pretty-printed JSON objects separated by blank
 * lines, not one object per line, so the stream is parsed as concatenated JSON values,
 * incrementally (a read may end anywhere, even inside a multi-byte character).
 * `tailEvents` follows a monitor file as CH appends to it.
 */
import { InternalError } from "../../shared/errors/errors.ts";
import type { VmmEvent } from "./types.ts";

/** Splits a character stream into complete top-level JSON values, however it is chunked. */
export class JsonStreamParser {
  #buf = "";
  #scanned = 0;
  #depth = 0;
  #inString = false;
  #escaped = false;
  #start = -1;

  /** Text received but not yet part of a complete value. */
  get pending(): string {
    return this.#buf;
  }

  /** Feeds more text; returns every value completed by it, in order. */
  push(text: string): unknown[] {
    this.#buf += text;
    const out: unknown[] = [];
    let i = this.#scanned;
    for (; i < this.#buf.length; i++) {
      const c = this.#buf[i];
      if (this.#start < 0) {
        if (c === " " || c === "\n" || c === "\r" || c === "\t") continue;
        if (c !== "{" && c !== "[") {
          throw new InternalError(`event stream: unexpected ${JSON.stringify(c)} between values`);
        }
        this.#start = i;
      }
      if (this.#inString) {
        if (this.#escaped) this.#escaped = false;
        else if (c === "\\") this.#escaped = true;
        else if (c === '"') this.#inString = false;
        continue;
      }
      if (c === '"') this.#inString = true;
      else if (c === "{" || c === "[") this.#depth++;
      else if (c === "}" || c === "]") {
        this.#depth--;
        if (this.#depth === 0) {
          const text = this.#buf.slice(this.#start, i + 1);
          try {
            out.push(JSON.parse(text));
          } catch (err) {
            throw new InternalError(`event stream: invalid JSON value`, { cause: err });
          }
          this.#buf = this.#buf.slice(i + 1);
          i = -1;
          this.#start = -1;
        }
      }
    }
    this.#scanned = this.#buf.length;
    if (this.#start < 0) {
      this.#buf = this.#buf.trimStart();
      this.#scanned = 0;
    }
    return out;
  }
}

/** Parses CH event records out of a byte or text stream. */
export class EventStreamParser {
  readonly #json = new JsonStreamParser();
  readonly #decoder = new TextDecoder();

  /** Text received but not yet part of a complete event. */
  get pending(): string {
    return this.#json.pending;
  }

  /** Feeds a chunk; returns the events it completed. */
  push(chunk: Uint8Array | string): VmmEvent[] {
    const text = typeof chunk === "string" ? chunk : this.#decoder.decode(chunk, { stream: true });
    return this.#json.push(text).map(toEvent);
  }
}

/** Parses a whole monitor file's content. */
export function parseEvents(text: string): VmmEvent[] {
  return new EventStreamParser().push(text);
}

function toEvent(value: unknown): VmmEvent {
  const v = value as Partial<VmmEvent>;
  const ts = v?.timestamp as VmmEvent["timestamp"] | undefined;
  if (
    typeof v !== "object" || v === null || typeof v.source !== "string" ||
    typeof v.event !== "string" || typeof ts?.secs !== "number" || typeof ts?.nanos !== "number"
  ) {
    throw new InternalError(`event stream: not an event: ${JSON.stringify(value)}`);
  }
  return {
    timestamp: { secs: ts.secs, nanos: ts.nanos },
    source: v.source,
    event: v.event,
    properties: (v.properties ?? null) as Record<string, string> | null,
  };
}

/** An event's timestamp in milliseconds since the VMM started. */
export function eventTimeMs(e: VmmEvent): number {
  return e.timestamp.secs * 1000 + e.timestamp.nanos / 1e6;
}

/** `source/event`, the usual way to name an event. */
export function eventName(e: VmmEvent): string {
  return `${e.source}/${e.event}`;
}

export interface TailOptions {
  /** Stop when aborted (the iterator then ends normally). */
  signal?: AbortSignal;
  /** How often to look for new data, in milliseconds. */
  pollMs?: number;
}

/**
 * Follows a monitor file: yields events already in it, then new ones as they are appended,
 * until `signal` aborts. Waits for the file to appear; starts over if it is truncated.
 */
export async function* tailEvents(
  path: string,
  options: TailOptions = {},
): AsyncGenerator<VmmEvent> {
  const pollMs = options.pollMs ?? 25;
  const signal = options.signal;
  let parser = new EventStreamParser();
  let offset = 0;
  const buf = new Uint8Array(64 * 1024);
  while (!signal?.aborted) {
    let file: Deno.FsFile | null = null;
    try {
      file = await Deno.open(path, { read: true });
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
    if (file) {
      try {
        const size = (await file.stat()).size;
        if (size < offset) {
          parser = new EventStreamParser();
          offset = 0;
        }
        await file.seek(offset, Deno.SeekMode.Start);
        for (;;) {
          const n = await file.read(buf);
          if (n === null || n === 0) break;
          offset += n;
          yield* parser.push(buf.subarray(0, n));
        }
      } finally {
        file.close();
      }
    }
    await sleep(pollMs, signal);
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(t);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal?.addEventListener("abort", done);
  });
}

/**
 * Server-sent events for `qarax events`: an incremental parser of the `text/event-stream`
 * format, and a follower that reconnects after a dropped stream, sending `Last-Event-ID` so
 * nothing between the two connections is lost.
 */
import { type ApiClient, fromServer, type Query } from "./client.ts";

/** One event of the stream. */
export interface SseEvent {
  id?: string;
  event: string;
  data: string;
}

/** Incremental `text/event-stream` parser (WHATWG HTML, "event stream interpretation"). */
export class SseParser {
  #buffer = "";
  #data: string[] = [];
  #event = "";
  #id?: string;
  /** The last `retry:` value the server sent (ms). */
  retryMs?: number;
  /** The last id seen, kept across events as the spec says. */
  lastEventId?: string;

  /** Feeds text; returns the events it completed. */
  feed(text: string): SseEvent[] {
    this.#buffer += text;
    const out: SseEvent[] = [];
    const lines = this.#buffer.split(/\r\n|\r|\n/);
    // The last piece is incomplete unless the text ended with a newline.
    this.#buffer = lines.pop() ?? "";
    for (const line of lines) {
      if (line === "") {
        if (this.#data.length) {
          if (this.#id !== undefined) this.lastEventId = this.#id;
          out.push({
            ...(this.lastEventId !== undefined ? { id: this.lastEventId } : {}),
            event: this.#event || "message",
            data: this.#data.join("\n"),
          });
        }
        this.#data = [];
        this.#event = "";
        this.#id = undefined;
        continue;
      }
      if (line.startsWith(":")) continue; // comment / keep-alive
      const colon = line.indexOf(":");
      const field = colon === -1 ? line : line.slice(0, colon);
      let value = colon === -1 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "data") this.#data.push(value);
      else if (field === "event") this.#event = value;
      else if (field === "id" && !value.includes("\0")) this.#id = value;
      else if (field === "retry" && /^\d+$/.test(value)) this.retryMs = Number(value);
    }
    return out;
  }
}

export interface FollowOptions {
  query?: Query;
  /** Resume after this event id (sent as Last-Event-ID on the first connection too). */
  lastEventId?: string;
  signal: AbortSignal;
  /** Told about each reconnect (for a stderr note). */
  onReconnect?: (attempt: number, delayMs: number, reason: string) => void;
  /** Longest pause between reconnects. */
  maxDelayMs?: number;
}

/**
 * Follows `path` forever (until `signal` aborts or the consumer stops): yields events and
 * reconnects with Last-Event-ID when the stream ends or breaks. Errors the server answers
 * with (401, 404, 422) end the follow: retrying would not change them.
 */
export async function* followEvents(
  client: ApiClient,
  path: string,
  opts: FollowOptions,
): AsyncGenerator<SseEvent> {
  let lastId = opts.lastEventId;
  let attempt = 0;
  let retryMs = 1000;
  const maxDelay = opts.maxDelayMs ?? 10_000;
  while (!opts.signal.aborted) {
    const parser = new SseParser();
    let reason = "the stream ended";
    try {
      const res = await client.send("GET", path, {
        query: opts.query,
        headers: {
          accept: "text/event-stream",
          ...(lastId !== undefined ? { "last-event-id": lastId } : {}),
        },
        // The stream has no overall deadline; only connecting does.
        timeoutMs: 2 ** 31 - 1,
        signal: opts.signal,
      });
      if (!res.body) throw new Error("the response has no body");
      attempt = 0;
      const decoder = new TextDecoder();
      for await (const chunk of res.body) {
        for (const ev of parser.feed(decoder.decode(chunk, { stream: true }))) {
          if (ev.id !== undefined) lastId = ev.id;
          yield ev;
        }
      }
    } catch (err) {
      if (opts.signal.aborted) return;
      if (fromServer(err) && (err.cause.status ?? 500) < 500) throw err;
      reason = err instanceof Error ? err.message : String(err);
    }
    if (parser.retryMs !== undefined) retryMs = parser.retryMs;
    attempt++;
    const delay = Math.min(maxDelay, retryMs * 2 ** Math.min(attempt - 1, 4));
    opts.onReconnect?.(attempt, delay, reason);
    await new Promise<void>((resolve) => {
      const t = setTimeout(done, delay);
      function done() {
        clearTimeout(t);
        opts.signal.removeEventListener("abort", done);
        resolve();
      }
      opts.signal.addEventListener("abort", done, { once: true });
    });
  }
}

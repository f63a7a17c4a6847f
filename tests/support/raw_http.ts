/**
 * Raw HTTP over a unix socket, for testing the VMM's framing byte for byte: send exact bytes,
 * read back a given number of complete responses (Content-Length framed, none on 1xx/204),
 * or everything until the server closes.
 */

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** One response as received. */
export interface RawResponse {
  /** Exact status line, without CRLF (e.g. "HTTP/1.1 204 "). */
  statusLine: string;
  status: number;
  /** Header lines in order, exactly as sent. */
  headerLines: string[];
  body: string;
  /** The response's exact bytes as text. */
  raw: string;
}

/** A raw connection: write bytes, read framed responses. */
export class RawConnection implements Disposable {
  #buf = "";
  #closed = false;
  private constructor(readonly conn: Deno.UnixConn) {}

  static async open(path: string): Promise<RawConnection> {
    return new RawConnection(await Deno.connect({ transport: "unix", path }));
  }

  async write(data: string | Uint8Array): Promise<void> {
    const bytes = typeof data === "string" ? encoder.encode(data) : data;
    let off = 0;
    while (off < bytes.length) off += await this.conn.write(bytes.subarray(off));
  }

  /** Reads one response (throws if the server closes first or `timeoutMs` passes). */
  async response(timeoutMs = 5_000): Promise<RawResponse> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const parsed = takeResponse(this.#buf);
      if (parsed) {
        this.#buf = this.#buf.slice(parsed.raw.length);
        return parsed;
      }
      if (!await this.#fill(deadline)) {
        throw new Error(`connection closed; unparsed: ${JSON.stringify(this.#buf)}`);
      }
    }
  }

  /** Reads until the server closes the connection; returns the bytes as text. */
  async untilClose(timeoutMs = 5_000): Promise<string> {
    const deadline = performance.now() + timeoutMs;
    while (await this.#fill(deadline)) { /* keep reading */ }
    const all = this.#buf;
    this.#buf = "";
    return all;
  }

  async #fill(deadline: number): Promise<boolean> {
    const chunk = new Uint8Array(65536);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), Math.max(0, deadline - performance.now()));
    });
    const read = this.conn.read(chunk);
    read.catch(() => {}); // it may lose the race and then fail when the connection closes
    try {
      const n = await Promise.race([read, timeout]);
      if (n === "timeout") {
        // The read is still pending: the connection has to go, or it would leak an op.
        this.close();
        throw new Error(`no data within the deadline; have ${JSON.stringify(this.#buf)}`);
      }
      if (n === null) return false;
      this.#buf += decoder.decode(chunk.subarray(0, n));
      return true;
    } finally {
      clearTimeout(timer);
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.conn.close();
    } catch { /* already closed */ }
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/** Splits the first complete response off `text`, or returns null if it is incomplete. */
export function takeResponse(text: string): RawResponse | null {
  const headEnd = text.indexOf("\r\n\r\n");
  if (headEnd < 0) return null;
  const [statusLine, ...headerLines] = text.slice(0, headEnd).split("\r\n");
  const status = Number(statusLine.split(" ")[1]);
  const lengthLine = headerLines.find((l) => l.toLowerCase().startsWith("content-length:"));
  const length = lengthLine ? Number(lengthLine.split(":")[1].trim()) : 0;
  const bodyStart = headEnd + 4;
  // Bodies here are ASCII/JSON, so string length equals byte length.
  if (text.length < bodyStart + length) return null;
  const body = text.slice(bodyStart, bodyStart + length);
  return { statusLine, status, headerLines, body, raw: text.slice(0, bodyStart + length) };
}

/** Sends one request on a fresh connection and returns the first response. */
export async function rawRequest(path: string, request: string): Promise<RawResponse> {
  using conn = await RawConnection.open(path);
  await conn.write(request);
  return await conn.response();
}

/** A minimal request: `method path` with optional JSON body (Content-Length framed). */
export function req(method: string, path: string, body?: string, extraHeaders = ""): string {
  const head = `${method} ${path} HTTP/1.1\r\nHost: localhost\r\n${extraHeaders}`;
  if (body === undefined) return `${head}\r\n`;
  return `${head}Content-Type: application/json\r\nContent-Length: ${
    encoder.encode(body).length
  }\r\n\r\n${body}`;
}

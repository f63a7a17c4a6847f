/**
 * A VM's serial console on the node: reading the tail of the serial log (serial mode File,
 * the default) and piping bytes to and from the serial socket (serial mode Socket). The VMM
 * owns both ends on the guest side; this module only reads the file or connects as the one
 * client CH's socket serial serves.
 */
import { FailedPreconditionError } from "../../shared/errors/errors.ts";
import type { SerialConfig } from "../vmm/types.ts";

/** How much of the serial log ReadConsoleLog returns at most (the newest bytes). */
export const CONSOLE_LOG_MAX_BYTES = 64 * 1024;

/** The log tail, or `available: false` when the VM has no serial log file. */
export interface ConsoleLog {
  content: string;
  available: boolean;
}

const decoder = new TextDecoder();

/** The last `maxBytes` of the serial log of a VM whose serial is `target`. */
export async function readConsoleLog(
  target: SerialConfig,
  maxBytes = CONSOLE_LOG_MAX_BYTES,
): Promise<ConsoleLog> {
  if (target.mode !== "File" || !target.file) return { content: "", available: false };
  let file: Deno.FsFile;
  try {
    file = await Deno.open(target.file, { read: true });
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return { content: "", available: false };
    throw err;
  }
  try {
    const size = (await file.stat()).size;
    const start = Math.max(0, size - maxBytes);
    await file.seek(start, Deno.SeekMode.Start);
    const buf = new Uint8Array(size - start);
    let read = 0;
    while (read < buf.length) {
      const n = await file.read(buf.subarray(read));
      if (n === null) break;
      read += n;
    }
    let bytes = buf.subarray(0, read);
    // A cut in the middle of a UTF-8 sequence would show as a replacement character.
    if (start > 0) {
      let skip = 0;
      while (skip < Math.min(3, bytes.length) && (bytes[skip] & 0xc0) === 0x80) skip++;
      bytes = bytes.subarray(skip);
    }
    return { content: decoder.decode(bytes), available: true };
  } finally {
    file.close();
  }
}

/** The serial socket path of a VM whose serial is `target`, or FailedPrecondition. */
export function serialSocketOf(vmId: string, target: SerialConfig): string {
  if (target.mode !== "Socket" || !target.socket) {
    throw new FailedPreconditionError(
      `VM ${vmId} has no interactive console: its serial port is in ${target.mode} mode; ` +
        `create the VM with a socket serial (API field "console": "socket", ` +
        `CLI "vm create --console socket") to attach`,
    );
  }
  return target.socket;
}

async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  for (let off = 0; off < data.length;) off += await conn.write(data.subarray(off));
}

/**
 * Connects to the serial socket at `path` and pipes `input` to it while yielding what the
 * guest writes. Ends when either side ends: the socket closes, `input` ends or `signal` aborts.
 */
export async function* pipeSerialSocket(
  vmId: string,
  path: string,
  input: AsyncIterable<Uint8Array>,
  signal?: AbortSignal,
): AsyncGenerator<Uint8Array> {
  let conn: Deno.UnixConn;
  try {
    conn = await Deno.connect({ transport: "unix", path });
  } catch (err) {
    throw new FailedPreconditionError(
      `the serial socket of VM ${vmId} does not accept connections (is the VM created and ` +
        `its VMM running?)`,
      { cause: err },
    );
  }
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    try {
      conn.close();
    } catch { /* already closed */ }
  };
  signal?.addEventListener("abort", close);
  (async () => {
    try {
      for await (const data of input) {
        if (closed) break;
        if (data.length > 0) await writeAll(conn, data);
      }
    } catch { /* the input or the socket failed: the session ends */ }
    close();
  })();
  try {
    const buf = new Uint8Array(4096);
    while (!closed) {
      let n: number | null;
      try {
        n = await conn.read(buf);
      } catch {
        n = null;
      }
      if (n === null) break;
      yield buf.slice(0, n);
    }
  } finally {
    signal?.removeEventListener("abort", close);
    close();
  }
}

/**
 * `qarax vm attach`: a terminal session on a VM's serial console over the API's WebSocket.
 * With a terminal on stdin it goes raw (keys reach the guest as typed) and `Ctrl-]` detaches;
 * otherwise stdin is piped to the guest and, once it ends, the session closes after the guest
 * has been quiet for a moment (so the answer to the last line is still printed).
 */
import { UnavailableError } from "../../shared/errors/errors.ts";
import type { ApiClient } from "./client.ts";

/** The detach key: Ctrl-] (GS), as telnet and virsh console use. */
export const DETACH_BYTE = 0x1d;

/** How long piped mode waits for more output after stdin ended. */
const LINGER_MS = 1000;

/** What the session reads and writes; the process's stdio unless a test swaps them. */
export interface ConsoleIo {
  stdin: ReadableStream<Uint8Array>;
  stdinIsTty: boolean;
  setRaw(raw: boolean): void;
  write(bytes: Uint8Array): void;
  err(text: string): void;
}

/** The process's stdio. */
export function processConsoleIo(): ConsoleIo {
  return {
    stdin: Deno.stdin.readable,
    stdinIsTty: Deno.stdin.isTerminal(),
    setRaw: (raw) => Deno.stdin.setRaw(raw),
    write: (bytes) => {
      for (let off = 0; off < bytes.length;) off += Deno.stdout.writeSync(bytes.subarray(off));
    },
    err: (text) => console.error(text),
  };
}

/** How the session ended. */
export interface AttachResult {
  /** The user pressed Ctrl-]. */
  detached: boolean;
  /** The server's `Error: …` message, if any. */
  error?: string;
}

/** Runs one console session on `path` (the attach route) until it ends. */
export async function attachConsole(
  client: ApiClient,
  path: string,
  io: ConsoleIo,
  signal?: AbortSignal,
): Promise<AttachResult> {
  const ws = client.websocket(path);
  ws.binaryType = "arraybuffer";
  let error: string | undefined;
  let detached = false;
  let lastOutput = Date.now();

  const closed = new Promise<CloseEvent>((resolve) => ws.onclose = resolve);
  const open = new Promise<boolean>((resolve) => {
    ws.onopen = () => resolve(true);
    closed.then(() => resolve(false));
  });
  ws.onmessage = (e) => {
    lastOutput = Date.now();
    if (typeof e.data === "string") {
      if (e.data.startsWith("Error: ")) error = e.data.slice("Error: ".length);
      else io.write(new TextEncoder().encode(e.data));
    } else {
      io.write(new Uint8Array(e.data as ArrayBuffer));
    }
  };
  const close = () => {
    if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) {
      ws.close(1000, "detached");
    }
  };
  signal?.addEventListener("abort", close);

  if (!await open) {
    const ev = await closed;
    throw new UnavailableError(
      `cannot attach to the console at ${client.baseUrl}${path}` +
        (ev.reason ? `: ${ev.reason}` : ""),
    );
  }
  const tty = io.stdinIsTty;
  if (tty) {
    io.setRaw(true);
    io.err("Connected to the VM console; press Ctrl-] to detach.\r");
  }
  const reader = io.stdin.getReader();
  const pump = (async () => {
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        if (ws.readyState !== WebSocket.OPEN) return;
        if (tty) {
          const at = value.indexOf(DETACH_BYTE);
          if (at >= 0) {
            if (at > 0) ws.send(value.subarray(0, at));
            detached = true;
            close();
            return;
          }
        }
        ws.send(value);
      }
      // Piped input ended: let the guest answer, then close.
      lastOutput = Date.now();
      while (ws.readyState === WebSocket.OPEN && Date.now() - lastOutput < LINGER_MS) {
        await new Promise((r) => setTimeout(r, 100));
      }
      close();
    } catch { /* stdin failed: the session ends with the socket */ }
  })();
  try {
    const ev = await closed;
    if (!error && !detached && ev.code !== 1000 && ev.code !== 1005) {
      error = `the console closed (${ev.code}${ev.reason ? ` ${ev.reason}` : ""})`;
    }
  } finally {
    signal?.removeEventListener("abort", close);
    if (tty) {
      try {
        io.setRaw(false);
      } catch { /* not a terminal any more */ }
    }
    // Stop waiting on stdin so the process can exit.
    await reader.cancel().catch(() => {});
    await pump;
  }
  if (tty) io.err(detached ? "\nDetached from the VM console." : "\nThe VM console closed.");
  return { detached, error };
}

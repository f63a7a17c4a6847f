/**
 * The guest's serial port and virtio console as CH exposes them on the host: `Socket` binds a
 * unix listener at `vm.create` (failing if the path exists) and serves one client at a time,
 * `File` truncates the file at create and appends guest output, `Pty` allocates a real pty
 * (its path is written into the config), `Tty` is the VMM's stdout, `Null`/`Off` discard.
 * The emulated guest prints a short boot log and a login prompt and echoes what it is sent;
 * the words `poweroff`, `reboot` and `panic` typed at the prompt act on the guest.
 */
import type { ConsoleConfig, VmConfig } from "../vmm/types.ts";
import { ioErrorText } from "./api_error.ts";
import { closeFd, errno, libc, O_NOCTTY, O_RDWR, osErrorText } from "../sys/libc.ts";

/** Failure creating a console device: CH's causes below "Error creating console devices". */
export class ConsoleError extends Error {
  constructor(readonly causes: string[]) {
    super(causes.join(": "));
    this.name = "ConsoleError";
  }
}

/** What the guest-side emulation does with a line typed on a console. */
export type LineHandler = (line: string) => void;

/** The host end of one guest console. */
export interface HostConsole {
  /** Guest output. */
  write(text: string): void;
  close(): void;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const HISTORY_LIMIT = 64 * 1024;

/** The login prompt the emulated guest shows. */
export const LOGIN_PROMPT = "qarax-emulated login: ";

/**
 * Creates the host end for `cfg` (`role` names it in errors). Pty mode writes the allocated
 * path into `cfg.file`, as CH does.
 */
export function createHostConsole(
  role: "serial" | "console",
  cfg: ConsoleConfig,
  onLine: LineHandler,
): HostConsole {
  switch (cfg.mode) {
    case "File":
      return fileConsole(role, cfg.file!);
    case "Socket":
      return socketConsole(cfg.socket!, onLine);
    case "Pty":
      return ptyConsole(cfg, onLine);
    case "Tty":
      return {
        write: (text) => {
          try {
            Deno.stdout.writeSync(encoder.encode(text));
          } catch { /* stdout closed */ }
        },
        close() {},
      };
    default:
      return { write() {}, close() {} };
  }
}

function fileConsole(role: string, path: string): HostConsole {
  let file: Deno.FsFile;
  try {
    file = Deno.openSync(path, { write: true, create: true, truncate: true });
  } catch (err) {
    throw new ConsoleError([`Error creating ${role} output file`, ioErrorText(err)]);
  }
  return {
    write: (text) => {
      try {
        file.writeSync(encoder.encode(text));
      } catch { /* file went away */ }
    },
    close: () => {
      try {
        file.close();
      } catch { /* already closed */ }
    },
  };
}

/** Echoes typed characters like a terminal in canonical mode and collects lines. */
class LineEditor {
  #line = "";
  #lastWasCr = false;
  constructor(readonly echo: (text: string) => void, readonly onLine: LineHandler) {}

  input(text: string): void {
    for (const ch of text) {
      if (ch === "\r" || ch === "\n") {
        // CR LF is one line end, not two.
        if (ch === "\n" && this.#line === "" && this.#lastWasCr) {
          this.#lastWasCr = false;
          continue;
        }
        this.#lastWasCr = ch === "\r";
        this.echo("\r\n");
        const line = this.#line.trim();
        this.#line = "";
        this.onLine(line);
      } else if (ch === "\x7f" || ch === "\b") {
        if (this.#line.length > 0) {
          this.#line = this.#line.slice(0, -1);
          this.echo("\b \b");
        }
      } else {
        this.#lastWasCr = false;
        this.#line += ch;
        this.echo(ch);
      }
    }
  }
}

function socketConsole(path: string, onLine: LineHandler): HostConsole {
  let listener: Deno.Listener<Deno.UnixConn>;
  try {
    Deno.lstatSync(path);
    throw new ConsoleError([
      "Error creating serial socket",
      "Address in use (os error 98)",
    ]);
  } catch (err) {
    if (err instanceof ConsoleError) throw err;
  }
  try {
    listener = Deno.listen({ transport: "unix", path });
  } catch (err) {
    throw new ConsoleError(["Error creating serial socket", ioErrorText(err)]);
  }
  let history = "";
  let client: Deno.UnixConn | null = null;
  let closed = false;
  const send = (conn: Deno.UnixConn, text: string) => {
    conn.write(encoder.encode(text)).catch(() => {});
  };
  const editor = new LineEditor((text) => {
    if (client) send(client, text);
  }, onLine);
  (async () => {
    for (;;) {
      let conn: Deno.UnixConn;
      try {
        conn = await listener.accept();
      } catch {
        return;
      }
      if (closed) {
        conn.close();
        return;
      }
      // One client at a time: a new connection takes the console over.
      try {
        client?.close();
      } catch { /* gone */ }
      client = conn;
      if (history) send(conn, history);
      (async () => {
        const buf = new Uint8Array(4096);
        for (;;) {
          let n: number | null;
          try {
            n = await conn.read(buf);
          } catch {
            n = null;
          }
          if (n === null) {
            if (client === conn) client = null;
            try {
              conn.close();
            } catch { /* already closed */ }
            return;
          }
          if (client === conn) editor.input(decoder.decode(buf.subarray(0, n)));
        }
      })();
    }
  })();
  return {
    write: (text) => {
      history = (history + text).slice(-HISTORY_LIMIT);
      if (client) send(client, text);
    },
    close: () => {
      if (closed) return;
      closed = true;
      try {
        listener.close();
      } catch { /* already closed */ }
      try {
        client?.close();
      } catch { /* already closed */ }
      client = null;
      try {
        Deno.removeSync(path);
      } catch { /* already gone */ }
    },
  };
}

function ptyConsole(cfg: ConsoleConfig, onLine: LineHandler): HostConsole {
  const c = libc();
  const fd = c.posix_openpt(O_RDWR | O_NOCTTY);
  if (fd < 0) throw new ConsoleError(["Error creating pty", osErrorText(errno())]);
  const name = new Uint8Array(128);
  if (c.grantpt(fd) < 0 || c.unlockpt(fd) < 0 || c.ptsname_r(fd, name, 128n) !== 0) {
    const code = errno();
    closeFd(fd);
    throw new ConsoleError(["Error creating pty", osErrorText(code)]);
  }
  // CH puts its end in raw mode so the guest sees bytes exactly as typed.
  const termios = new Uint8Array(64);
  if (c.tcgetattr(fd, termios) === 0) {
    c.cfmakeraw(termios);
    c.tcsetattr(fd, 0, termios);
  }
  cfg.file = decoder.decode(name.subarray(0, name.indexOf(0)));
  let closed = false;
  const write = (text: string) => {
    if (closed) return;
    const bytes = encoder.encode(text);
    // Off the main thread: a pty nobody reads must not stall the VMM.
    c.write_async(fd, bytes, BigInt(bytes.length)).catch(() => {});
  };
  const editor = new LineEditor(write, onLine);
  (async () => {
    const buf = new Uint8Array(4096);
    while (!closed) {
      const n = Number(await c.read(fd, buf, BigInt(buf.length)));
      if (closed) return;
      if (n > 0) editor.input(decoder.decode(buf.subarray(0, n)));
      else await new Promise((r) => setTimeout(r, 100)); // no peer open yet (EIO)
    }
  })();
  return {
    write,
    close: () => {
      if (closed) return;
      closed = true;
      closeFd(fd);
    },
  };
}

/** A short, plausible Linux boot log for the config, ending at the login prompt. */
export function bootLog(c: VmConfig): string {
  const cpus = c.cpus?.boot_vcpus ?? 1;
  const memMiB = Math.round((c.memory?.size ?? 0) / (1024 * 1024));
  const lines: string[] = [];
  if (c.payload?.firmware) {
    lines.push("Cloud Hypervisor firmware (emulated) starting", "Booting from disk...");
  }
  const t = (s: number) => `[${s.toFixed(6).padStart(12)}]`;
  lines.push(
    `${t(0)} Linux version 6.12.0-qarax-emulated (qarax@emulator) #1 SMP PREEMPT_DYNAMIC`,
    `${t(0)} Command line: ${c.payload?.cmdline ?? ""}`,
    `${t(0)} Hypervisor detected: KVM`,
    `${t(0)} Memory: ${memMiB}MiB available`,
    `${t(0.021)} smpboot: Allowing ${cpus} CPUs, 0 hotplug CPUs`,
  );
  (c.disks ?? []).forEach((_d, i) => {
    lines.push(
      `${t(0.31 + i / 100)} virtio_blk virtio${i + 1}: [vd${String.fromCharCode(97 + i)}]`,
    );
  });
  (c.net ?? []).forEach((n, i) => {
    lines.push(`${t(0.35 + i / 100)} virtio_net virtio${i + 10}: eth${i}: ${n.mac ?? ""}`);
  });
  lines.push(`${t(0.9)} Run /sbin/init as init process`, "", "");
  return lines.join("\r\n") + LOGIN_PROMPT;
}

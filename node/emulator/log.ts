/**
 * The emulator's log, in CH's own line format (`cloud-hypervisor:   0.003419s: <vmm> INFO:...`),
 * to `--log-file` or stderr, filtered by `-v` count like CH (none: warn, -v: info, -vv: debug,
 * -vvv: trace). It imitates CH's log because operators and the node read it as a CH log; it is
 * not the qarax structured logger.
 */

export type ChLevel = "ERROR" | "WARN" | "INFO" | "DEBUG" | "TRACE";
const ORDER: ChLevel[] = ["ERROR", "WARN", "INFO", "DEBUG", "TRACE"];
const encoder = new TextEncoder();

/** A CH-style logger. */
export class ChLog {
  readonly #max: number;
  readonly #start = performance.now();
  #file: Deno.FsFile | null;

  /** `verbosity` is the number of `-v` flags; `file` null means stderr. */
  constructor(verbosity: number, file: string | null) {
    this.#max = Math.min(1 + verbosity, ORDER.length - 1);
    this.#file = file ? Deno.openSync(file, { write: true, create: true, truncate: true }) : null;
  }

  error(thread: string, msg: string): void {
    this.#write("ERROR", thread, msg);
  }
  warn(thread: string, msg: string): void {
    this.#write("WARN", thread, msg);
  }
  info(thread: string, msg: string): void {
    this.#write("INFO", thread, msg);
  }
  debug(thread: string, msg: string): void {
    this.#write("DEBUG", thread, msg);
  }

  close(): void {
    this.#file?.close();
    this.#file = null;
  }

  #write(level: ChLevel, thread: string, msg: string): void {
    if (ORDER.indexOf(level) > this.#max) return;
    const secs = ((performance.now() - this.#start) / 1000).toFixed(6).padStart(10);
    const line = `cloud-hypervisor: ${secs}s: <${thread}> ${level}:${thread} -- ${msg}\r\n`;
    try {
      if (this.#file) this.#file.writeSync(encoder.encode(line));
      else Deno.stderr.writeSync(encoder.encode(line));
    } catch {
      // logging must never take the VMM down
    }
  }
}

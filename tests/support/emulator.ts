/**
 * Spawning VMM processes for tests: the CH emulator by default (run directly with this Deno,
 * `deno run -A node/emulator/main.ts`, for speed), or a real `cloud-hypervisor` when
 * `CH_BINARY` is set. Each process gets its own temp dir (API socket, event monitor file, log);
 * disposing it kills the process if still alive, collects its output and removes the dir.
 */
import { VmmClient, waitForVmm } from "../../node/vmm/client.ts";
import { parseEvents } from "../../node/vmm/events.ts";
import type { VmConfig, VmmEvent } from "../../node/vmm/types.ts";

/** Path of a real cloud-hypervisor binary to test against instead of the emulator. */
export const CH_BINARY: string | null = Deno.env.get("CH_BINARY") || null;
/** A bootable kernel for a real CH (the emulator only needs the file to exist). */
export const CH_KERNEL: string | null = Deno.env.get("CH_KERNEL") || null;
/** True when the suite runs against a real CH. */
export const REAL_CH = CH_BINARY !== null;

const ROOT = new URL("../../", import.meta.url).pathname;
/** The emulator's entry point. */
export const EMULATOR_MAIN = `${ROOT}node/emulator/main.ts`;

/** argv that starts the emulator (or CH_BINARY) with `args`. */
export function vmmCommand(args: string[]): { command: string; args: string[] } {
  if (CH_BINARY) return { command: CH_BINARY, args };
  return {
    command: Deno.execPath(),
    args: ["run", "-A", "--quiet", "--config", `${ROOT}deno.json`, EMULATOR_MAIN, ...args],
  };
}

export interface StartOptions {
  /** Extra command-line arguments (after `--api-socket`, `--event-monitor`, `--log-file`). */
  args?: string[];
  /** Extra environment (fault-injection knobs). */
  env?: Record<string, string>;
  noShutdown?: boolean;
  /** Use this directory instead of a fresh temp dir (it is not removed then). */
  dir?: string;
  /** Pass `--api-socket` as a bare path instead of `path=`. */
  bareSocketArg?: boolean;
  /** Wait for `vmm.ping` to answer (default true). */
  waitReady?: boolean;
}

/** How a VMM process ended. */
export interface ExitInfo {
  code: number;
  signal: Deno.Signal | null;
  stdout: string;
  stderr: string;
}

const decoder = new TextDecoder();

/** A running VMM process and its files. */
export class VmmProcess implements AsyncDisposable {
  readonly #child: Deno.ChildProcess;
  readonly #exit: Promise<ExitInfo>;
  readonly #ownsDir: boolean;
  #exited = false;
  #clients: VmmClient[] = [];

  constructor(
    readonly dir: string,
    readonly socketPath: string,
    readonly eventsPath: string,
    readonly logPath: string,
    child: Deno.ChildProcess,
    ownsDir: boolean,
  ) {
    this.#child = child;
    this.#ownsDir = ownsDir;
    this.#exit = child.output().then((o) => {
      this.#exited = true;
      return {
        code: o.code,
        signal: o.signal,
        stdout: decoder.decode(o.stdout),
        stderr: decoder.decode(o.stderr),
      };
    });
  }

  get pid(): number {
    return this.#child.pid;
  }

  get exited(): boolean {
    return this.#exited;
  }

  /** A new client on the API socket (closed when the process is disposed). */
  client(): VmmClient {
    const c = new VmmClient({ socketPath: this.socketPath });
    this.#clients.push(c);
    return c;
  }

  /** Resolves when the process exits. */
  exit(): Promise<ExitInfo> {
    return this.#exit;
  }

  /** Waits for exit, failing after `timeoutMs`. */
  async waitExit(timeoutMs = 5_000): Promise<ExitInfo> {
    let t: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      t = setTimeout(() => reject(new Error(`VMM ${this.pid} did not exit`)), timeoutMs);
    });
    try {
      return await Promise.race([this.#exit, timeout]);
    } finally {
      clearTimeout(t);
    }
  }

  kill(signal: Deno.Signal = "SIGKILL"): void {
    if (!this.#exited) {
      try {
        this.#child.kill(signal);
      } catch { /* already gone */ }
    }
  }

  /** Every event in the monitor file so far. */
  async events(): Promise<VmmEvent[]> {
    try {
      return parseEvents(await Deno.readTextFile(this.eventsPath));
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return [];
      throw err;
    }
  }

  /** Names (`source/event`) of the events so far, without `virtio-device/*` noise. */
  async eventNames(options: { withDevices?: boolean } = {}): Promise<string[]> {
    return (await this.events())
      .filter((e) => options.withDevices || e.source !== "virtio-device")
      .map((e) => `${e.source}/${e.event}`);
  }

  /** Polls the monitor file until `predicate` holds for the event list. */
  async waitForEvents(
    predicate: (events: VmmEvent[]) => boolean,
    timeoutMs = 5_000,
  ): Promise<VmmEvent[]> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const events = await this.events();
      if (predicate(events)) return events;
      if (performance.now() > deadline) {
        throw new Error(`events not as expected: ${events.map((e) => `${e.source}/${e.event}`)}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    for (const c of this.#clients) c.close();
    this.#clients = [];
    this.kill("SIGKILL");
    await this.#exit;
    if (this.#ownsDir) await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }
}

/** Starts a VMM with an API socket, event monitor and log file in a fresh temp dir. */
export async function startVmm(options: StartOptions = {}): Promise<VmmProcess> {
  const dir = options.dir ?? await Deno.makeTempDir({ prefix: "qarax-vmm-" });
  const socketPath = `${dir}/api.sock`;
  const eventsPath = `${dir}/events.json`;
  const logPath = `${dir}/vmm.log`;
  const args = [
    "--api-socket",
    options.bareSocketArg ? socketPath : `path=${socketPath}`,
    "--event-monitor",
    `path=${eventsPath}`,
    "--log-file",
    logPath,
    "-v",
    ...(options.noShutdown ? ["--no-shutdown"] : []),
    ...(options.args ?? []),
  ];
  const { command, args: argv } = vmmCommand(args);
  const child = new Deno.Command(command, {
    args: argv,
    env: { NO_COLOR: "1", ...options.env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const vmm = new VmmProcess(
    dir,
    socketPath,
    eventsPath,
    logPath,
    child,
    options.dir === undefined,
  );
  if (options.waitReady ?? true) {
    const ready = waitForVmm(socketPath, { timeoutMs: 15_000 });
    const died = vmm.exit().then((e) => {
      throw new Error(`VMM exited early (code ${e.code}): ${e.stderr}`);
    });
    try {
      await Promise.race([ready, died]);
    } catch (err) {
      await vmm[Symbol.asyncDispose]();
      throw err;
    }
    died.catch(() => {});
  }
  return vmm;
}

/** Runs the VMM binary with `args` to completion (for `--version`, bad flags...). */
export async function runVmmCommand(
  args: string[],
  env: Record<string, string> = {},
): Promise<ExitInfo> {
  const { command, args: argv } = vmmCommand(args);
  const out = await new Deno.Command(command, {
    args: argv,
    env: { NO_COLOR: "1", ...env },
    stdin: "null",
  }).output();
  return {
    code: out.code,
    signal: out.signal,
    stdout: decoder.decode(out.stdout),
    stderr: decoder.decode(out.stderr),
  };
}

/** A kernel to boot: CH_KERNEL, or (for the emulator) a placeholder file in `dir`. */
export async function kernelPath(dir: string): Promise<string> {
  if (CH_KERNEL) return CH_KERNEL;
  const path = `${dir}/vmlinux`;
  await Deno.writeTextFile(path, "\x7fELF emulated kernel\n");
  return path;
}

/** Creates a sparse raw disk image of `size` bytes. */
export async function makeDisk(
  dir: string,
  name: string,
  size = 64 * 1024 * 1024,
): Promise<string> {
  const path = `${dir}/${name}`;
  await Deno.writeFile(path, new Uint8Array(0));
  await Deno.truncate(path, size);
  return path;
}

/** A small bootable config: kernel, 1 of 2 vCPUs, 128 MiB. */
export async function bootableConfig(
  dir: string,
  extra: Partial<VmConfig> = {},
): Promise<VmConfig> {
  return {
    payload: { kernel: await kernelPath(dir), cmdline: "console=ttyS0 panic=1" },
    cpus: { boot_vcpus: 1, max_vcpus: 2 },
    memory: { size: 128 * 1024 * 1024 },
    ...extra,
  };
}

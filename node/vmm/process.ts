/**
 * VMM processes: one Cloud Hypervisor (or emulator) process per VM, started bare (API socket,
 * event monitor, log file, `--no-shutdown`) in its own session so it outlives the agent, with
 * its output appended to a file (never a pipe: a dead agent would SIGPIPE it). After an agent
 * restart a VMM is adopted by pid, and its identity is checked against its command line so a
 * reused pid is never mistaken for it. Either way `exited` settles when the VMM is gone.
 */
import { InternalError } from "../../shared/errors/errors.ts";
import type { VmPaths } from "./runtime_dir.ts";

/** How a VMM process ended. */
export interface VmmExit {
  /** Exit code, when the agent is the VMM's parent and it exited normally. */
  code: number | null;
  /** Signal that ended it, when the agent is its parent. */
  signal: string | null;
  /** It was adopted after an agent restart, so its exit status is unknown. */
  adopted: boolean;
}

/** The shell step between setsid and the VMM: close inherited fds, redirect output, exec. */
const VMM_LAUNCHER = [
  "f=$1; shift",
  'for p in /proc/$$/fd/*; do n=${p##*/}; if [ "$n" -gt 2 ]; then eval "exec $n>&-"; fi; done',
  'exec "$@" >>"$f" 2>&1',
].join("\n");

/** The VMM command line (after the binary) for a VM's runtime files. */
export function vmmArgs(paths: VmPaths): string[] {
  return [
    "--api-socket",
    `path=${paths.apiSocket}`,
    "--event-monitor",
    `path=${paths.events}`,
    "--log-file",
    paths.chLog,
    "--no-shutdown",
    "-v",
  ];
}

/**
 * True when `pid` is a live (not zombie) process whose command line names `socketPath`,
 * i.e. really this VM's VMM and not a process that reused its pid.
 */
export function isVmmAlive(pid: number, socketPath: string): boolean {
  if (!Number.isInteger(pid) || pid <= 1) return false;
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // The state follows the parenthesised command name, which may itself contain spaces.
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    if (state === "Z" || state === "X") return false;
    const cmdline = Deno.readTextFileSync(`/proc/${pid}/cmdline`).split("\0");
    return cmdline.some((arg) => arg === socketPath || arg === `path=${socketPath}`);
  } catch {
    return false;
  }
}

/** A one-line description of how a VMM ended. */
export function describeExit(exit: VmmExit): string {
  if (exit.adopted) {
    return "the VMM process is gone (exit status unknown: adopted after an agent restart)";
  }
  if (exit.signal) return `the VMM was killed by ${exit.signal}`;
  return `the VMM exited with code ${exit.code}`;
}

export interface SpawnOptions {
  /** The cloud-hypervisor (or emulator) binary. */
  binary: string;
  paths: VmPaths;
  /** Environment of the VMM (default: the agent's). */
  env?: Record<string, string>;
}

/** One VMM process, started by this agent or adopted. */
export class VmmProcess {
  /** Set before the agent ends the VMM on purpose, so its exit is not taken for a crash. */
  expectedExit = false;
  readonly exited: Promise<VmmExit>;
  #gone = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #resolve: ((exit: VmmExit) => void) | undefined;
  #fastPolls = 0;

  private constructor(
    readonly pid: number,
    readonly socketPath: string,
    readonly adopted: boolean,
    child: Deno.ChildProcess | null,
    readonly pollMs: number,
  ) {
    if (child) {
      this.exited = child.status.then((s) => {
        this.#gone = true;
        return { code: s.signal ? null : s.code, signal: s.signal, adopted: false };
      });
    } else {
      this.exited = new Promise((resolve) => this.#resolve = resolve);
      this.#schedule(0);
    }
  }

  /**
   * Starts a VMM for `paths` in its own session:
   * `setsid bash -c '<close fds> exec "$@" >>vmm.stderr 2>&1' <binary> <args>`. setsid does
   * not fork (the child is not a process-group leader), so the pid is the VMM's own. Every
   * inherited descriptor above stderr is closed first: the agent's sockets are not all
   * close-on-exec, and a VMM holding the agent's listening socket would keep a dead agent's
   * socket accepting connections nobody serves.
   */
  static spawn(options: SpawnOptions): VmmProcess {
    const child = new Deno.Command("setsid", {
      args: [
        "bash",
        "-c",
        VMM_LAUNCHER,
        "qarax-vmm",
        options.paths.stderr,
        options.binary,
        ...vmmArgs(options.paths),
      ],
      env: options.env,
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    return new VmmProcess(child.pid, options.paths.apiSocket, false, child, 0);
  }

  /** Adopts the VMM `pid` serving `socketPath`; null when no such VMM is alive. */
  static adopt(pid: number, socketPath: string, pollMs = 500): VmmProcess | null {
    if (!isVmmAlive(pid, socketPath)) return null;
    return new VmmProcess(pid, socketPath, true, null, pollMs);
  }

  /** False once the process is known to be gone. */
  get alive(): boolean {
    if (this.#gone) return false;
    if (this.adopted && !isVmmAlive(this.pid, this.socketPath)) this.#markGone();
    return !this.#gone;
  }

  /** Sends `signal` if the VMM is still this VM's VMM (a reused pid is never signalled). */
  kill(signal: Deno.Signal = "SIGKILL"): void {
    if (!this.alive) return;
    try {
      Deno.kill(this.pid, signal);
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
  }

  /** Waits up to `timeoutMs` for the VMM to be gone; its exit, or null if still running. */
  async waitExit(timeoutMs: number): Promise<VmmExit | null> {
    if (this.adopted && !this.#gone) {
      this.#fastPolls++;
      this.#schedule(0);
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      return await Promise.race([
        this.exited,
        new Promise<null>((r) => timer = setTimeout(() => r(null), timeoutMs)),
      ]);
    } finally {
      clearTimeout(timer);
      if (this.adopted) this.#fastPolls = Math.max(0, this.#fastPolls - 1);
    }
  }

  /** Kills the VMM (SIGKILL) and waits for it to be gone; throws if it will not die. */
  async killAndWait(timeoutMs = 5_000): Promise<VmmExit> {
    this.expectedExit = true;
    this.kill("SIGKILL");
    const exit = await this.waitExit(timeoutMs);
    if (!exit) throw new InternalError(`VMM pid ${this.pid} did not die after SIGKILL`);
    return exit;
  }

  /** Stops watching an adopted VMM (agent shutdown); the VMM itself keeps running. */
  release(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #schedule(ms: number): void {
    clearTimeout(this.#timer);
    const timer = setTimeout(() => {
      if (this.alive) this.#schedule(this.#fastPolls > 0 ? 20 : this.pollMs);
    }, ms);
    Deno.unrefTimer(timer);
    this.#timer = timer;
  }

  #markGone(): void {
    if (this.#gone) return;
    this.#gone = true;
    clearTimeout(this.#timer);
    this.#resolve?.({ code: null, signal: null, adopted: true });
  }
}

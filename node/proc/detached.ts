/**
 * Long-lived helper processes the agent starts but does not own: VMMs and DHCP servers. Each
 * runs in its own session so it outlives the agent, inherits none of the agent's descriptors,
 * and writes its output to a file (never a pipe: a dead agent would SIGPIPE it). After an agent
 * restart such a process is adopted by pid, and its identity is checked against its command
 * line so a reused pid is never mistaken for it. Either way `exited` settles when it is gone.
 */
import { InternalError } from "../../shared/errors/errors.ts";

/** How a detached process ended. */
export interface ProcessExit {
  /** Exit code, when the agent is the process's parent and it exited normally. */
  code: number | null;
  /** Signal that ended it, when the agent is its parent. */
  signal: string | null;
  /** It was adopted after an agent restart, so its exit status is unknown. */
  adopted: boolean;
}

/** Says whether a command line (argv) is the process we are looking for. */
export type ProcessIdentity = (argv: string[]) => boolean;

/** The shell step between setsid and the program: close inherited fds, redirect output, exec. */
const LAUNCHER = [
  "f=$1; shift",
  'for p in /proc/$$/fd/*; do n=${p##*/}; if [ "$n" -gt 2 ]; then eval "exec $n>&-"; fi; done',
  'exec "$@" >>"$f" 2>&1',
].join("\n");

/**
 * True when `pid` is a live (not zombie) process whose command line satisfies `identity`,
 * i.e. really the process we started and not one that reused its pid.
 */
export function isProcessAlive(pid: number, identity: ProcessIdentity): boolean {
  if (!Number.isInteger(pid) || pid <= 1) return false;
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // The state follows the parenthesised command name, which may itself contain spaces.
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    if (state === "Z" || state === "X") return false;
    return identity(Deno.readTextFileSync(`/proc/${pid}/cmdline`).split("\0"));
  } catch {
    return false;
  }
}

/** A one-line description of how a detached process ended. */
export function describeExit(exit: ProcessExit, what = "the VMM"): string {
  if (exit.adopted) {
    return `${what} process is gone (exit status unknown: adopted after an agent restart)`;
  }
  if (exit.signal) return `${what} was killed by ${exit.signal}`;
  return `${what} exited with code ${exit.code}`;
}

/** How to start a detached process. */
export interface LaunchOptions {
  /** The program and its arguments. */
  argv: string[];
  /** Its stdout and stderr are appended here. */
  outputFile: string;
  /** Environment (default: the agent's). */
  env?: Record<string, string>;
  /** Runs before setsid, e.g. `ip netns exec <ns>` (must exec, not fork). */
  prefix?: string[];
}

/** One detached process, started by this agent or adopted. */
export class DetachedProcess {
  /** Set before the agent ends the process on purpose, so its exit is not taken for a crash. */
  expectedExit = false;
  readonly exited: Promise<ProcessExit>;
  #gone = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #resolve: ((exit: ProcessExit) => void) | undefined;
  #fastPolls = 0;

  protected constructor(
    readonly pid: number,
    readonly identity: ProcessIdentity,
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
   * Starts `argv` in its own session:
   * `[prefix] setsid bash -c '<close fds> exec "$@" >>output 2>&1' <argv>`. setsid does not
   * fork (the child is not a process-group leader), so the pid is the program's own. Every
   * inherited descriptor above stderr is closed first: the agent's sockets are not all
   * close-on-exec, and a child holding the agent's listening socket would keep a dead agent's
   * socket accepting connections nobody serves.
   */
  static launch(options: LaunchOptions): Deno.ChildProcess {
    const argv = [
      ...(options.prefix ?? []),
      "setsid",
      "bash",
      "-c",
      LAUNCHER,
      "qarax-detached",
      options.outputFile,
      ...options.argv,
    ];
    return new Deno.Command(argv[0], {
      args: argv.slice(1),
      env: options.env,
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
  }

  /** Starts a detached process and watches it. */
  static start(options: LaunchOptions & { identity: ProcessIdentity }): DetachedProcess {
    const child = DetachedProcess.launch(options);
    return new DetachedProcess(child.pid, options.identity, false, child, 0);
  }

  /** Adopts `pid` if it is alive and matches `identity`; null otherwise. */
  static find(pid: number, identity: ProcessIdentity, pollMs = 500): DetachedProcess | null {
    if (!isProcessAlive(pid, identity)) return null;
    return new DetachedProcess(pid, identity, true, null, pollMs);
  }

  /** False once the process is known to be gone. */
  get alive(): boolean {
    if (this.#gone) return false;
    if (this.adopted && !isProcessAlive(this.pid, this.identity)) this.#markGone();
    return !this.#gone;
  }

  /** Sends `signal` if the process is still ours (a reused pid is never signalled). */
  kill(signal: Deno.Signal = "SIGKILL"): void {
    if (!this.alive) return;
    try {
      Deno.kill(this.pid, signal);
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
  }

  /** Waits up to `timeoutMs` for the process to be gone; its exit, or null if still running. */
  async waitExit(timeoutMs: number): Promise<ProcessExit | null> {
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

  /** Kills the process (SIGKILL) and waits for it to be gone; throws if it will not die. */
  async killAndWait(timeoutMs = 5_000): Promise<ProcessExit> {
    this.expectedExit = true;
    this.kill("SIGKILL");
    const exit = await this.waitExit(timeoutMs);
    if (!exit) throw new InternalError(`process ${this.pid} did not die after SIGKILL`);
    return exit;
  }

  /** Stops watching an adopted process (agent shutdown); the process itself keeps running. */
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

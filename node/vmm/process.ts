/**
 * VMM processes: one Cloud Hypervisor (or emulator) process per VM, started bare (API socket,
 * event monitor, log file, `--no-shutdown`) as a detached process (`node/proc/detached.ts`:
 * own session, no inherited descriptors, output appended to a file) so it outlives the agent.
 * A VMM is recognised after an agent restart by its command line naming the VM's API socket.
 */
import {
  describeExit as describeProcessExit,
  DetachedProcess,
  isProcessAlive,
  type ProcessExit,
  type ProcessIdentity,
} from "../proc/detached.ts";
import type { VmPaths } from "./runtime_dir.ts";

/** How a VMM process ended. */
export type VmmExit = ProcessExit;

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

function vmmIdentity(socketPath: string): ProcessIdentity {
  return (argv) => argv.some((arg) => arg === socketPath || arg === `path=${socketPath}`);
}

/**
 * True when `pid` is a live (not zombie) process whose command line names `socketPath`,
 * i.e. really this VM's VMM and not a process that reused its pid.
 */
export function isVmmAlive(pid: number, socketPath: string): boolean {
  return isProcessAlive(pid, vmmIdentity(socketPath));
}

/** A one-line description of how a VMM ended. */
export function describeExit(exit: VmmExit): string {
  return describeProcessExit(exit, "the VMM");
}

export interface SpawnOptions {
  /** The cloud-hypervisor (or emulator) binary. */
  binary: string;
  paths: VmPaths;
  /** Environment of the VMM (default: the agent's). */
  env?: Record<string, string>;
}

/** One VMM process, started by this agent or adopted. */
export class VmmProcess extends DetachedProcess {
  private constructor(
    readonly socketPath: string,
    pid: number,
    adopted: boolean,
    child: Deno.ChildProcess | null,
    pollMs: number,
  ) {
    super(pid, vmmIdentity(socketPath), adopted, child, pollMs);
  }

  /** Starts a VMM for `paths` in its own session (see `DetachedProcess.launch`). */
  static spawn(options: SpawnOptions): VmmProcess {
    const child = DetachedProcess.launch({
      argv: [options.binary, ...vmmArgs(options.paths)],
      outputFile: options.paths.stderr,
      env: options.env,
    });
    return new VmmProcess(options.paths.apiSocket, child.pid, false, child, 0);
  }

  /** Adopts the VMM `pid` serving `socketPath`; null when no such VMM is alive. */
  static adopt(pid: number, socketPath: string, pollMs = 500): VmmProcess | null {
    if (!isVmmAlive(pid, socketPath)) return null;
    return new VmmProcess(socketPath, pid, true, null, pollMs);
  }
}

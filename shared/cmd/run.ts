/**
 * The one way qarax runs external commands (`ip`, `qemu-img`, `ssh`, ...): argv arrays only
 * (never a shell string), stdout and stderr captured, and a failure raised as a
 * CommandFailedError that names the command and carries its output.
 */
import $ from "dax";
import { DeadlineExceededError, InternalError, UnavailableError } from "../errors/errors.ts";
import { logger } from "../log/logger.ts";

/** What a finished command produced. */
export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Kill the command after this many milliseconds. */
  timeoutMs?: number;
  /** Text fed to stdin. */
  stdin?: string | Uint8Array;
  /** Extra environment variables. */
  env?: Record<string, string>;
  /** Working directory. */
  cwd?: string;
  /** Exit codes that are not failures (default: only 0). */
  okCodes?: number[];
}

/** A command exited with a failure code; `message` includes the command and its stderr. */
export class CommandFailedError extends InternalError {
  constructor(readonly argv: string[], readonly result: CommandResult) {
    const out = (result.stderr.trim() || result.stdout.trim()).split("\n").slice(-5).join(" | ");
    super(`command failed (exit ${result.code}): ${formatArgv(argv)}${out ? `: ${out}` : ""}`);
  }
}

/** Renders argv for messages, quoting only what needs it. */
export function formatArgv(argv: string[]): string {
  return argv.map((a) => /^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", `'\\''`)}'`)
    .join(" ");
}

/** Runs argv and returns its output; throws CommandFailedError on a non-accepted exit code. */
export async function run(argv: string[], options: RunOptions = {}): Promise<CommandResult> {
  const result = await tryRun(argv, options);
  if (!(options.okCodes ?? [0]).includes(result.code)) {
    throw new CommandFailedError(argv, result);
  }
  return result;
}

/** Runs argv and returns its output and exit code without judging it. */
export async function tryRun(argv: string[], options: RunOptions = {}): Promise<CommandResult> {
  if (argv.length === 0) throw new InternalError("run: empty argv");
  let cmd = $`${argv}`.noThrow().stdout("piped").stderr("piped").quiet();
  if (options.timeoutMs) cmd = cmd.timeout(options.timeoutMs);
  if (typeof options.stdin === "string") cmd = cmd.stdinText(options.stdin);
  else if (options.stdin) cmd = cmd.stdin(options.stdin);
  if (options.env) cmd = cmd.env(options.env);
  if (options.cwd) cmd = cmd.cwd(options.cwd);
  const started = performance.now();
  const out = await cmd;
  const result = { code: out.code, stdout: out.stdout, stderr: out.stderr };
  logger().debug("command", {
    cmd: formatArgv(argv),
    code: result.code,
    ms: Math.round(performance.now() - started),
  });
  if (result.code === 127 && /command not found/.test(result.stderr)) {
    throw new UnavailableError(`command not found: ${argv[0]}`);
  }
  if (result.code === 124 && options.timeoutMs) {
    throw new DeadlineExceededError(
      `command timed out after ${options.timeoutMs} ms: ${formatArgv(argv)}`,
    );
  }
  return result;
}

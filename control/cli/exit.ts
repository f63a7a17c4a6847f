/**
 * Exit codes of the CLI and how a failure is reported on stderr: the server's message, each
 * bad field (with the flag that set it, when known), and the request id to quote in a bug
 * report or look up in the server's log.
 */
import { asQaraxError, QaraxError } from "../../shared/errors/errors.ts";
import { fromServer, ServerAnswer } from "./client.ts";

/** Exit codes; documented in `qarax --help` and the README. */
export const EXIT = {
  ok: 0,
  /** The server refused the request, or the job failed. */
  failed: 1,
  /** Bad command line: unknown command or flag, bad value, ambiguous name. */
  usage: 2,
  /** The server could not be reached (connection refused, DNS, timeout). */
  unreachable: 3,
  /** Missing or wrong token, or not allowed. */
  auth: 4,
  /** `--wait` / `job wait` gave up while the job was still running. */
  timeout: 5,
  /** Interrupted (Ctrl-C); a job keeps running on the server. */
  interrupted: 130,
} as const;

/** The exit-code table as help text. */
export const EXIT_HELP = `Exit codes:
  0    success
  1    the server refused the request, or the job failed
  2    usage error (unknown command or flag, bad value, ambiguous name)
  3    the server cannot be reached
  4    authentication failed or not allowed (missing or wrong token)
  5    gave up waiting for a job that is still running (--timeout)
  130  interrupted (the job, if any, continues on the server)`;

/** The exit code for a failure. */
export function exitCodeFor(err: unknown): number {
  if (!(err instanceof QaraxError)) return EXIT.failed;
  if (err.code === "unauthenticated" || err.code === "permission_denied") return EXIT.auth;
  if (fromServer(err)) return EXIT.failed;
  switch (err.code) {
    case "invalid_argument":
    case "malformed_request":
      return EXIT.usage;
    case "unavailable":
      return EXIT.unreachable;
    case "deadline_exceeded":
      return EXIT.timeout;
    case "cancelled":
      return EXIT.interrupted;
    default:
      return EXIT.failed;
  }
}

/**
 * The lines printed for a failure. `flagOf` maps an API field (`memory_size`) to the flag
 * that set it (`--memory`), so a 422 points at what the user typed: a message about one field
 * (`desired_vcpus: must be …`) is told with its flag instead (`--vcpus: must be …`).
 */
export function errorReport(
  err: unknown,
  flagOf: (field: string) => string | undefined = () => undefined,
): string {
  const e = asQaraxError(err);
  if (!(err instanceof QaraxError)) {
    // A bug in the CLI: say so, with the cause, rather than a bare "internal error".
    return `qarax: unexpected error: ${
      err instanceof Error ? err.stack ?? err.message : String(err)
    }\n`;
  }
  const lines = [`qarax: ${e.message}`];
  for (const d of e.details) {
    const flag = d.field ? flagOf(d.field) : undefined;
    if (d.field && e.message === `${d.field}: ${d.message}`) {
      // The whole message is about this field: name it as the user typed it.
      if (flag?.startsWith("-")) lines[0] = `qarax: ${flag}: ${d.message}`;
      continue;
    }
    const field = d.field ? `${d.field}${flag ? ` (${flag})` : ""}: ` : "";
    lines.push(`  - ${field}${d.message}`);
  }
  const answer = e.cause instanceof ServerAnswer ? e.cause : undefined;
  if (answer && e.code === "not_found" && e.message.startsWith("no route ")) {
    lines.push("  hint: this server does not offer that endpoint (is it an older qarax version?)");
  }
  const facts = [
    e.code !== "internal" || answer ? `code: ${e.code}` : undefined,
    answer?.status ? `HTTP ${answer.status}` : undefined,
    answer?.jobId ? `job: ${answer.jobId}` : undefined,
    answer?.requestId ? `request id: ${answer.requestId}` : undefined,
  ].filter(Boolean);
  if (answer && facts.length) lines.push(`  (${facts.join(", ")})`);
  return lines.join("\n") + "\n";
}

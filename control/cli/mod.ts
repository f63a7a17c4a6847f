/**
 * The `qarax` client CLI: the command tree, the context commands run in (settings, client,
 * output), and `runCli`, which routes argv, runs one command and turns failures into a
 * report on stderr and a documented exit code. `control/main.ts` hands it every command
 * except the server's own (`serve`, `migrate`).
 */
import { CancelledError, InvalidArgumentError } from "../../shared/errors/errors.ts";
import { versionLine } from "../../shared/version.ts";
import { ApiClient } from "./client.ts";
import { type CliFile, configPath, readCliFile, resolveSettings, type Settings } from "./config.ts";
import { errorReport, EXIT, EXIT_HELP, exitCodeFor } from "./exit.ts";
import {
  commandHelp,
  type CommandSpec,
  type Context,
  groupHelp,
  type GroupSpec,
  type Io,
  isGlobalFlag,
  isGroup,
  parseInput,
  route,
} from "./framework.ts";
import { jsonText, OUTPUT_FORMATS, type OutputFormat } from "./output.ts";
import { hostGroup } from "./commands/hosts.ts";
import { vmGroup } from "./commands/vms.ts";
import { networkGroup } from "./commands/networks.ts";
import { diskGroup, poolGroup } from "./commands/storage.ts";
import { bootSourceGroup, instanceTypeGroup, templateGroup } from "./commands/catalog.ts";
import { auditGroup, jobGroup } from "./commands/jobs.ts";
import { eventsCommand, loginCommand, logoutCommand, versionCommand } from "./commands/session.ts";

/** Every client command, in help order. */
export const ROOT: GroupSpec = {
  name: "qarax",
  summary: "qarax: virtual machines on Cloud Hypervisor. Client commands talk to the REST API.",
  children: [
    hostGroup,
    vmGroup,
    networkGroup,
    poolGroup,
    diskGroup,
    bootSourceGroup,
    instanceTypeGroup,
    templateGroup,
    jobGroup,
    auditGroup,
    eventsCommand,
    loginCommand,
    logoutCommand,
    versionCommand,
  ],
};

const ROOT_EXTRA = `Server commands:
  serve     run the control plane (REST API); see \`qarax serve --help\`
  migrate   apply database migrations and exit`;

const ROOT_NOTES = `Server and token: --url / --token, else QARAX_URL / QARAX_TOKEN, else the file
\`qarax login\` writes ($XDG_CONFIG_HOME/qarax/cli.yaml or ~/.config/qarax/cli.yaml, mode
0600), else http://127.0.0.1:8000. Names or ids are accepted wherever an id is expected.
-o json prints the API's JSON for scripts. Sizes take bytes or units: 512MiB, 2GiB.

${EXIT_HELP}`;

/** The real terminal. */
export function realIo(): Io {
  const enc = new TextEncoder();
  const write = (f: typeof Deno.stdout | typeof Deno.stderr, s: string) => {
    const bytes = enc.encode(s);
    try {
      for (let off = 0; off < bytes.length;) off += f.writeSync(bytes.subarray(off));
    } catch (err) {
      // `qarax vm list | head -1`: the reader left; nothing more to say.
      if (!(err instanceof Deno.errors.BrokenPipe)) throw err;
    }
  };
  return {
    out: (s) => write(Deno.stdout, s),
    err: (s) => write(Deno.stderr, s),
    errIsTty: Deno.stderr.isTerminal(),
    stdinIsTty: Deno.stdin.isTerminal(),
    env: (name) => Deno.env.get(name),
    readStdin: () => new Response(Deno.stdin.readable).text(),
    readSecret: readSecret,
    now: () => new Date(),
  };
}

/** Reads a line from the terminal without echoing it. */
async function readSecret(prompt: string): Promise<string | undefined> {
  if (!Deno.stdin.isTerminal()) return undefined;
  Deno.stderr.writeSync(new TextEncoder().encode(prompt));
  Deno.stdin.setRaw(true);
  const chars: string[] = [];
  const buf = new Uint8Array(64);
  try {
    for (;;) {
      const n = await Deno.stdin.read(buf);
      if (n === null) break;
      for (const b of buf.subarray(0, n)) {
        if (b === 3) throw new CancelledError("interrupted");
        if (b === 13 || b === 10) return chars.join("");
        if (b === 127 || b === 8) chars.pop();
        else if (b >= 32) chars.push(String.fromCharCode(b));
      }
    }
    return chars.join("");
  } finally {
    Deno.stdin.setRaw(false);
    Deno.stderr.writeSync(new TextEncoder().encode("\n"));
  }
}

function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      d[i][j] = Math.min(
        d[i - 1][j] + 1,
        d[i][j - 1] + 1,
        d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
  }
  return d[a.length][b.length];
}

function suggest(group: GroupSpec, word: string): string {
  const close = group.children.map((c) => c.name).filter((n) =>
    n.startsWith(word) || distance(n, word) <= 2
  );
  return close.length ? `; did you mean ${close.map((c) => `"${c}"`).join(" or ")}?` : "";
}

/** `nics.0.network_id` → the flag of the longest known prefix. */
function flagFinder(command: CommandSpec): (field: string) => string | undefined {
  const map = command.fieldFlags ?? {};
  return (field) => {
    const parts = field.split(".");
    for (let n = parts.length; n > 0; n--) {
      const flag = map[parts.slice(0, n).join(".")];
      if (flag) return flag;
    }
    return undefined;
  };
}

/** Runs the CLI on `argv`; returns the exit code. */
export async function runCli(argv: string[], io: Io = realIo()): Promise<number> {
  if (argv.length === 1 && (argv[0] === "--version" || argv[0] === "-V")) {
    io.out(versionLine("qarax") + "\n");
    return EXIT.ok;
  }
  const helpWanted = argv[0] === "help";
  const r = route(ROOT, helpWanted ? argv.slice(1) : argv);
  const prefix = ["qarax", ...r.path].join(" ");
  const asksHelp = helpWanted || r.rest.includes("--help") || r.rest.includes("-h");
  if (isGroup(r.node)) {
    const help = groupHelp(r.node, prefix, r.path.length === 0 ? ROOT_EXTRA : "") +
      (r.path.length === 0 ? `\n${ROOT_NOTES}\n` : "");
    const leading = r.unknown === undefined ? r.rest : r.rest.slice(0, r.rest.indexOf(r.unknown));
    const flag = leading.find((t) => t.startsWith("-") && !isGlobalFlag(t));
    if (r.path.length === 0 && flag !== undefined && !asksHelp) {
      // `qarax --port 9000` used to mean `serve`: say where server flags go now.
      io.err(
        `qarax: missing a command before ${flag}; server flags go after \`qarax serve\`\n` +
          "Run `qarax --help` for the commands.\n",
      );
      return EXIT.usage;
    }
    if (r.unknown !== undefined) {
      io.err(
        `qarax: unknown command "${r.unknown}" for "${prefix}"${
          suggest(r.node, r.unknown)
        }\nRun \`${prefix} --help\` for the list.\n`,
      );
      return EXIT.usage;
    }
    if (asksHelp) {
      io.out(help);
      return EXIT.ok;
    }
    io.err(help);
    return EXIT.usage;
  }
  const command = r.node;
  const controller = new AbortController();
  let graceful = false;
  const onInterrupt = () => {
    // A command that follows something (a job, the event stream) gets to say what continues
    // on the server; anything else, or a second Ctrl-C, exits at once.
    if (!graceful || controller.signal.aborted) Deno.exit(EXIT.interrupted);
    controller.abort(new CancelledError("interrupted"));
  };
  let listening = false;
  if (helpWanted) {
    io.out(commandHelp(command, prefix));
    return EXIT.ok;
  }
  try {
    const input = parseInput(command, r.rest, prefix);
    if (input.global.help) {
      io.out(commandHelp(command, prefix));
      return EXIT.ok;
    }
    const output = (input.global.output ?? "table") as OutputFormat;
    if (!OUTPUT_FORMATS.includes(output)) {
      throw InvalidArgumentError.field("--output", `expected table or json, got "${output}"`);
    }
    let settings: Promise<Settings> | undefined;
    const path = () => configPath(io.env);
    const ctx: Context = {
      io,
      output,
      settings: () =>
        settings ??= (async () => {
          let file: CliFile | undefined;
          try {
            file = await readCliFile(path(), (m) => io.err(`warning: ${m}\n`));
          } catch (err) {
            // Flags or env that say everything need no file; otherwise the error matters.
            if (input.global.url === undefined || input.global.token === undefined) throw err;
          }
          return resolveSettings({
            flags: { url: input.global.url as string, token: input.global.token as string },
            env: io.env,
            file,
          });
        })(),
      client: async () => {
        const s = await ctx.settings();
        return new ApiClient(s.url, s.token);
      },
      print: (data, human) => io.out(output === "json" ? jsonText(data) : human()),
      configPath: path,
      get signal() {
        graceful = true;
        return controller.signal;
      },
    };
    try {
      Deno.addSignalListener("SIGINT", onInterrupt);
      listening = true;
    } catch { /* no signal support (e.g. a test runner without permission) */ }
    const code = await command.run(ctx, input);
    return controller.signal.aborted ? EXIT.interrupted : code ?? EXIT.ok;
  } catch (err) {
    io.err(errorReport(err, flagFinder(command)));
    return exitCodeFor(err);
  } finally {
    if (listening) Deno.removeSignalListener("SIGINT", onInterrupt);
  }
}

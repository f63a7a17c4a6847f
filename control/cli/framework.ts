/**
 * The CLI's small command framework: a tree of groups (`vm`, `vm disk`) and commands
 * (`vm create`), routing argv to a command, parsing its flags with `node:util` parseArgs
 * (global flags are accepted anywhere), and generating `--help` text from the same specs.
 */
import { parseArgs } from "node:util";
import { InvalidArgumentError } from "../../shared/errors/errors.ts";
import type { ApiClient } from "./client.ts";
import type { Settings } from "./config.ts";
import type { OutputFormat } from "./output.ts";

/** One flag of a command. */
export interface OptionSpec {
  type: "string" | "boolean";
  short?: string;
  /** May be given several times (values collect into an array). */
  multiple?: boolean;
  /** Placeholder shown in help (`SIZE`, `NAME`). */
  value?: string;
  help: string;
  /** A boolean that also accepts `--no-<name>`. */
  negatable?: boolean;
}

/** Parsed flag values by name. */
export type OptionValues = Record<string, string | boolean | string[] | undefined>;

/** What a command receives. */
export interface Input {
  /** Named positional arguments. */
  args: Record<string, string | undefined>;
  /** Positionals of a variadic last argument (`args: ["files..."]`). */
  rest: string[];
  opts: OptionValues;
}

/** Terminal I/O, injectable for tests. */
export interface Io {
  out(text: string): void;
  err(text: string): void;
  /** stderr is a terminal (progress lines may redraw). */
  errIsTty: boolean;
  stdinIsTty: boolean;
  env(name: string): string | undefined;
  readStdin(): Promise<string>;
  /** Reads a line without echo (token prompts); undefined when not possible. */
  readSecret?(prompt: string): Promise<string | undefined>;
  now(): Date;
}

/** What every command can use. */
export interface Context {
  io: Io;
  output: OutputFormat;
  /** The resolved server URL and token. */
  settings(): Promise<Settings>;
  client(): Promise<ApiClient>;
  /** Prints `data` as JSON, or `human()` in table mode. */
  print(data: unknown, human: () => string): void;
  /** Path of the CLI config file. */
  configPath(): string;
  /** Aborted on Ctrl-C. Commands that read it handle the interruption themselves (saying
   * what continues on the server); for the others Ctrl-C exits at once. */
  readonly signal: AbortSignal;
}

/** A runnable command. */
export interface CommandSpec {
  name: string;
  aliases?: string[];
  summary: string;
  /** Positional arguments: `vm`, `name?` (optional), `ids...` (variadic). */
  args?: string[];
  options?: Record<string, OptionSpec>;
  /** Help text after the flags (examples, notes). */
  notes?: string;
  /** API field → flag, so validation errors name what the user typed. */
  fieldFlags?: Record<string, string>;
  run(ctx: Context, input: Input): Promise<number | void>;
}

/** A group of commands. */
export interface GroupSpec {
  name: string;
  aliases?: string[];
  summary: string;
  children: (CommandSpec | GroupSpec)[];
  notes?: string;
}

export type Node = CommandSpec | GroupSpec;

/** True for a group. */
export function isGroup(node: Node): node is GroupSpec {
  return "children" in node;
}

/** Flags every command accepts, anywhere on the line. */
export const GLOBAL_OPTIONS: Record<string, OptionSpec> = {
  url: {
    type: "string",
    value: "URL",
    help: "server URL [env QARAX_URL; default http://127.0.0.1:8000]",
  },
  token: { type: "string", value: "TOKEN", help: "bearer token [env QARAX_TOKEN]" },
  output: { type: "string", short: "o", value: "FORMAT", help: "table (default) | json" },
  help: { type: "boolean", short: "h", help: "show help" },
};

/** The outcome of routing argv through the tree. */
export interface Route {
  node: Node;
  /** Names from the root to `node` (`["vm", "disk"]`). */
  path: string[];
  /** Everything that is not a command name: flags and positionals. */
  rest: string[];
  /** A word that named no command of the group we stopped at. */
  unknown?: string;
}

function find(group: GroupSpec, word: string): Node | undefined {
  return group.children.find((c) => c.name === word || c.aliases?.includes(word));
}

/** Walks command words; global flags may come before them (`qarax -o json vm list`). */
export function route(root: GroupSpec, argv: string[]): Route {
  let node: Node = root;
  const path: string[] = [];
  const rest: string[] = [];
  let unknown: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const tok = argv[i];
    if (!isGroup(node) || unknown !== undefined) {
      rest.push(tok);
      continue;
    }
    if (tok === "--") {
      rest.push(...argv.slice(i));
      break;
    }
    if (tok.startsWith("-") && tok !== "-") {
      rest.push(tok);
      const name = tok.startsWith("--") ? tok.slice(2) : shortName(tok.slice(1));
      const spec = name ? GLOBAL_OPTIONS[name] : undefined;
      if (spec?.type === "string" && !tok.includes("=") && i + 1 < argv.length) {
        rest.push(argv[++i]);
      }
      continue;
    }
    const child = find(node, tok);
    if (child) {
      node = child;
      path.push(child.name);
    } else {
      unknown = tok;
      rest.push(tok);
    }
  }
  return { node, path, rest, unknown };
}

/** True for a token that is one of the global flags (`--url x`, `-o`, `--output=json`). */
export function isGlobalFlag(tok: string): boolean {
  const name = tok.startsWith("--") ? tok.slice(2).split("=")[0] : shortName(tok.slice(1));
  return name !== undefined && name in GLOBAL_OPTIONS;
}

function shortName(s: string): string | undefined {
  return Object.entries(GLOBAL_OPTIONS).find(([, o]) => o.short === s)?.[0];
}

/** Parses a command's flags and positionals; usage mistakes are InvalidArgumentErrors. */
export function parseInput(command: CommandSpec, argv: string[], usage: string): Input & {
  global: OptionValues;
} {
  const options: Record<string, OptionSpec> = { ...GLOBAL_OPTIONS, ...command.options };
  const spec: Record<string, { type: "string" | "boolean"; short?: string; multiple?: boolean }> =
    {};
  for (const [name, o] of Object.entries(options)) {
    spec[name] = {
      type: o.type,
      ...(o.short ? { short: o.short } : {}),
      ...(o.multiple ? { multiple: true } : {}),
    };
  }
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: spec,
      allowPositionals: true,
      allowNegative: true,
      strict: true,
    });
  } catch (err) {
    const message = (err as Error).message.replace(/\. To specify a positional.*$/s, "")
      .replace(/^Unknown option/, "unknown flag")
      .replace(/^Option '(.*)' argument missing$/, "flag $1 needs a value");
    throw new InvalidArgumentError(`${message} (see \`${usage} --help\`)`);
  }
  const values = { ...parsed.values } as OptionValues;
  for (const [name, o] of Object.entries(options)) {
    if (o.type === "boolean" && values[name] === false && !o.negatable && name !== "help") {
      throw new InvalidArgumentError(`unknown flag --no-${name} (see \`${usage} --help\`)`);
    }
  }
  const global: OptionValues = {};
  const opts: OptionValues = {};
  for (const [k, v] of Object.entries(values)) {
    if (k in GLOBAL_OPTIONS) global[k] = v;
    else opts[k] = v;
  }
  if (global.help) return { args: {}, rest: [], opts, global };
  const args: Record<string, string | undefined> = {};
  const positionals = [...parsed.positionals];
  const rest: string[] = [];
  for (const a of command.args ?? []) {
    if (a.endsWith("...")) {
      rest.push(...positionals.splice(0));
      if (!rest.length) {
        throw new InvalidArgumentError(`missing <${a.slice(0, -3)}> (see \`${usage} --help\`)`);
      }
      continue;
    }
    const optional = a.endsWith("?");
    const name = optional ? a.slice(0, -1) : a;
    const v = positionals.shift();
    if (v === undefined && !optional) {
      throw new InvalidArgumentError(`missing <${name}> (usage: ${usageLine(command, usage)})`);
    }
    args[name] = v;
  }
  if (positionals.length) {
    throw new InvalidArgumentError(
      `unexpected argument "${positionals[0]}" (usage: ${usageLine(command, usage)})`,
    );
  }
  return { args, rest, opts, global };
}

function usageLine(command: CommandSpec, prefix: string): string {
  const args = (command.args ?? []).map((a) =>
    a.endsWith("...")
      ? `<${a.slice(0, -3)}>...`
      : a.endsWith("?")
      ? `[${a.slice(0, -1)}]`
      : `<${a}>`
  );
  return [prefix, ...args, Object.keys(command.options ?? {}).length ? "[flags]" : ""]
    .filter(Boolean).join(" ");
}

function optionRows(options: Record<string, OptionSpec>): string {
  const rows = Object.entries(options).map(([name, o]) => {
    const flag = o.type === "boolean" && o.negatable ? `--[no-]${name}` : `--${name}`;
    const left = `${o.short ? `-${o.short}, ` : "    "}${flag}${
      o.type === "string" ? ` ${o.value ?? "VALUE"}` : ""
    }`;
    return [left, o.help + (o.multiple ? " (repeatable)" : "")];
  });
  const w = Math.max(...rows.map(([l]) => l.length)) + 2;
  return rows.map(([l, r]) => `  ${l.padEnd(w)}${r}`).join("\n");
}

/** `--help` of a command. */
export function commandHelp(command: CommandSpec, prefix: string): string {
  const parts = [`Usage: ${usageLine(command, prefix)}`, "", command.summary];
  if (command.options && Object.keys(command.options).length) {
    parts.push("", "Flags:", optionRows(command.options));
  }
  parts.push("", "Global flags:", optionRows(GLOBAL_OPTIONS));
  if (command.notes) parts.push("", command.notes.trimEnd());
  return parts.join("\n") + "\n";
}

/** `--help` of a group: its commands and subgroups. */
export function groupHelp(group: GroupSpec, prefix: string, extra = ""): string {
  const rows = group.children.map((c) => [
    c.name + (isGroup(c) ? " …" : ""),
    c.summary + (c.aliases?.length ? ` (alias: ${c.aliases.join(", ")})` : ""),
  ]);
  const w = Math.max(...rows.map(([l]) => l.length)) + 2;
  const parts = [
    `Usage: ${prefix} <command> [flags]`,
    "",
    group.summary,
    "",
    "Commands:",
    rows.map(([l, r]) => `  ${l.padEnd(w)}${r}`).join("\n"),
  ];
  if (extra) parts.push("", extra.trimEnd());
  if (group.notes) parts.push("", group.notes.trimEnd());
  parts.push("", `Run \`${prefix} <command> --help\` for a command's flags.`);
  return parts.join("\n") + "\n";
}

/**
 * Command-line flags as configuration layers: each binary declares which flag sets which
 * config path, and `parseFlags` turns argv into the loader's flag values plus positionals.
 */
import { parseArgs } from "node:util";
import type { FlagValue } from "./load.ts";
import { InvalidArgumentError } from "../errors/errors.ts";

/** One flag: its name (without dashes), the config path it sets, and help text. */
export interface FlagSpec {
  name: string;
  path?: string;
  short?: string;
  type?: "string" | "boolean";
  help: string;
}

/** The outcome of parsing argv against flag specs. */
export interface ParsedFlags {
  /** Values for the config loader. */
  config: FlagValue[];
  /** Flags without a config path (e.g. `--help`, `--config`), by name. */
  other: Record<string, string | boolean | undefined>;
  positionals: string[];
}

/** Parses argv; unknown flags are an InvalidArgumentError naming the flag. */
export function parseFlags(argv: string[], specs: FlagSpec[]): ParsedFlags {
  const options: Record<string, { type: "string" | "boolean"; short?: string }> = {};
  for (const s of specs) {
    options[s.name] = s.short ? { type: s.type ?? "string", short: s.short } : {
      type: s.type ?? "string",
    };
  }
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message.replace(/\. To specify.*$/s, ""));
  }
  const values = { ...parsed.values } as Record<string, string | boolean | undefined>;
  const config: FlagValue[] = [];
  const other: ParsedFlags["other"] = {};
  for (const s of specs) {
    const v = values[s.name];
    if (v === undefined) continue;
    if (s.path) config.push({ path: s.path, value: v, flag: `--${s.name}` });
    else other[s.name] = v;
  }
  return { config, other, positionals: parsed.positionals };
}

/** Help text lines for a set of flags. */
export function flagHelp(specs: FlagSpec[]): string {
  const rows = specs.map((s) => {
    const left = `${s.short ? `-${s.short}, ` : "    "}--${s.name}${
      (s.type ?? "string") === "string" ? " <value>" : ""
    }`;
    return [left, s.help + (s.path ? ` [config: ${s.path}]` : "")];
  });
  const width = Math.max(...rows.map(([l]) => l.length)) + 2;
  return rows.map(([l, r]) => `  ${l.padEnd(width)}${r}`).join("\n");
}

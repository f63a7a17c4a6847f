/**
 * The one configuration loader. Layers, lowest first: `configuration/base.yaml`, then
 * `configuration/<APP_ENVIRONMENT>.yaml` (both embedded in the binary), then an optional
 * operator file (`--config` / `QARAX_CONFIG`), then environment variables
 * (`QARAX_<SECTION>__<KEY>`, `DATABASE_URL`, `PORT`), then command-line flags. Every leaf
 * remembers where its value came from, so a bad value is reported with its source.
 */
import { parse as parseYaml } from "yaml";
import type { z } from "zod";
import baseYaml from "../../configuration/base.yaml" with { type: "text" };
import localYaml from "../../configuration/local.yaml" with { type: "text" };
import productionYaml from "../../configuration/production.yaml" with { type: "text" };
import {
  type ConfigFile,
  ConfigFileSchema,
  type ControlConfig,
  type NodeConfig,
} from "./schema.ts";
import { redactValue } from "./redact.ts";

/** The environments that have a configuration file. */
export const ENVIRONMENTS = { local: localYaml, production: productionYaml } as const;
export type Environment = keyof typeof ENVIRONMENTS;

/** A bad configuration value; the message is one line naming key, source and expectation. */
export class ConfigError extends Error {
  constructor(
    readonly key: string,
    readonly source: string,
    readonly expected: string,
    readonly value?: unknown,
  ) {
    const shown = value === undefined ? "" : ` = ${JSON.stringify(redactValue(value, key))}`;
    super(`invalid configuration: ${key}${shown} (from ${source}): ${expected}`);
    this.name = "ConfigError";
  }
}

/** A value set on the command line, addressed by its config path (`node.port`). */
export interface FlagValue {
  path: string;
  value: unknown;
  /** The flag as the user typed it, e.g. `--port`. */
  flag: string;
}

export interface LoadOptions {
  /** Environment variables; defaults to the process environment. */
  env?: Record<string, string | undefined>;
  /** Values from command-line flags. */
  flags?: FlagValue[];
  /** Operator configuration file (overrides `QARAX_CONFIG`). */
  configFile?: string;
  /** Reads a file; injectable for tests. */
  readFile?: (path: string) => string;
}

/** A loaded configuration plus where each leaf came from. */
export interface Loaded<T> {
  config: T;
  environment: Environment;
  sources: Map<string, string>;
}

type Tree = Record<string, unknown>;

/** Loads and validates the whole file schema; binaries use the typed views below. */
export function loadConfig(options: LoadOptions = {}): Loaded<ConfigFile> {
  const env = options.env ?? Deno.env.toObject();
  const readFile = options.readFile ?? ((p: string) => Deno.readTextFileSync(p));
  const sources = new Map<string, string>();
  const tree: Tree = {};

  const environment = (env.APP_ENVIRONMENT ?? "local") as Environment;
  if (!Object.hasOwn(ENVIRONMENTS, environment)) {
    throw new ConfigError(
      "APP_ENVIRONMENT",
      "env APP_ENVIRONMENT",
      `expected one of ${Object.keys(ENVIRONMENTS).join(", ")}`,
      environment,
    );
  }

  mergeYaml(tree, sources, baseYaml, "configuration/base.yaml");
  mergeYaml(tree, sources, ENVIRONMENTS[environment], `configuration/${environment}.yaml`);

  const file = options.configFile ?? env.QARAX_CONFIG;
  if (file) {
    let text: string;
    try {
      text = readFile(file);
    } catch (err) {
      throw new ConfigError(
        "config file",
        options.configFile ? "flag --config" : "env QARAX_CONFIG",
        `a readable YAML file (${(err as Error).message})`,
        file,
      );
    }
    mergeYaml(tree, sources, text, file);
  }

  for (const [name, raw] of Object.entries(env).sort(([a], [b]) => a.localeCompare(b))) {
    if (raw === undefined) continue;
    const path = envPath(name);
    if (!path) continue;
    setLeaf(tree, sources, path, coerce(path, raw, `env ${name}`), `env ${name}`);
  }
  for (const f of options.flags ?? []) {
    setLeaf(tree, sources, f.path, coerce(f.path, f.value, `flag ${f.flag}`), `flag ${f.flag}`);
  }

  const parsed = ConfigFileSchema.safeParse(tree);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const path = issue.code === "unrecognized_keys" ? [...issue.path, issue.keys[0]] : issue.path;
    const key = path.join(".");
    throw new ConfigError(
      key,
      sourceOf(sources, key),
      describeIssue(issue),
      issue.code === "unrecognized_keys" ? undefined : valueAt(tree, key),
    );
  }
  return { config: parsed.data, environment, sources };
}

/** The control plane's view of the configuration. */
export function loadControlConfig(options: LoadOptions = {}): Loaded<ControlConfig> {
  const { config, ...rest } = loadConfig(options);
  const { node: _node, ...control } = config;
  return { config: control, ...rest };
}

/** The node agent's view of the configuration. */
export function loadNodeConfig(options: LoadOptions = {}): Loaded<NodeConfig> {
  const { config, ...rest } = loadConfig(options);
  return { config: { node: config.node, log: config.log }, ...rest };
}

/** Maps an environment variable name to a config path, or null if it is not a setting. */
export function envPath(name: string): string | null {
  if (name === "DATABASE_URL") return "database.url";
  if (name === "PORT") return "application.port";
  const m = /^QARAX_([A-Z0-9_]+?)__([A-Z0-9_]+(?:__[A-Z0-9_]+)*)$/.exec(name);
  if (!m) return null;
  return [m[1], ...m[2].split("__")].map((s) => s.toLowerCase()).join(".");
}

function mergeYaml(tree: Tree, sources: Map<string, string>, text: string, source: string) {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new ConfigError("(file)", source, `valid YAML: ${(err as Error).message.split("\n")[0]}`);
  }
  if (doc === null || doc === undefined) return;
  if (typeof doc !== "object" || Array.isArray(doc)) {
    throw new ConfigError("(root)", source, "a mapping of sections");
  }
  mergeInto(tree, doc as Tree, "", sources, source);
}

function mergeInto(dst: Tree, src: Tree, prefix: string, sources: Map<string, string>, s: string) {
  for (const [k, v] of Object.entries(src)) {
    const path = prefix ? `${prefix}.${k}` : k;
    if (v && typeof v === "object" && !Array.isArray(v) && isSection(path)) {
      if (!dst[k] || typeof dst[k] !== "object") dst[k] = {};
      mergeInto(dst[k] as Tree, v as Tree, path, sources, s);
    } else {
      dst[k] = v;
      sources.set(path, s);
    }
  }
}

/** Paths whose value is an object of settings (merged key by key, not replaced). */
function isSection(path: string): boolean {
  return schemaAt(path)?.def?.type === "object";
}

function setLeaf(tree: Tree, sources: Map<string, string>, path: string, v: unknown, s: string) {
  const parts = path.split(".");
  let node = tree;
  for (const p of parts.slice(0, -1)) {
    if (!node[p] || typeof node[p] !== "object") node[p] = {};
    node = node[p] as Tree;
  }
  node[parts[parts.length - 1]] = v;
  sources.set(path, s);
}

// deno-lint-ignore no-explicit-any
type AnySchema = z.ZodType & { def: any };

function unwrap(schema: AnySchema | undefined): AnySchema | undefined {
  let s = schema;
  while (s && ["optional", "nullable", "default", "pipe"].includes(s.def.type)) {
    s = (s.def.innerType ?? s.def.in) as AnySchema;
  }
  return s;
}

function schemaAt(path: string): AnySchema | undefined {
  let s: AnySchema | undefined = ConfigFileSchema as unknown as AnySchema;
  for (const part of path.split(".")) {
    s = unwrap(s);
    if (!s || s.def.type !== "object") return undefined;
    s = s.def.shape[part] as AnySchema | undefined;
  }
  return unwrap(s);
}

/** Turns a string from env or a flag into the type the schema wants at `path`. */
function coerce(path: string, raw: unknown, source: string): unknown {
  if (typeof raw !== "string") return raw;
  const schema = schemaAt(path);
  if (!schema) {
    throw new ConfigError(path, source, "a known setting (no such key)");
  }
  const type = schema.def.type as string;
  if (type === "number") {
    const n = Number(raw);
    return raw.trim() !== "" && Number.isFinite(n) ? n : raw;
  }
  if (type === "boolean") {
    if (/^(true|1|yes|on)$/i.test(raw)) return true;
    if (/^(false|0|no|off)$/i.test(raw)) return false;
    return raw;
  }
  if (type === "array" || type === "object" || type === "record") {
    try {
      return parseYaml(raw);
    } catch {
      return raw;
    }
  }
  return raw;
}

function sourceOf(sources: Map<string, string>, key: string): string {
  let k = key;
  while (k) {
    const s = sources.get(k);
    if (s) return s;
    // A child of a leaf path (e.g. auth.tokens.0.name) inherits the leaf's source.
    k = k.includes(".") ? k.slice(0, k.lastIndexOf(".")) : "";
  }
  return "defaults (no value given)";
}

function valueAt(tree: Tree, key: string): unknown {
  let v: unknown = tree;
  for (const p of key.split(".")) {
    if (v === null || typeof v !== "object") return undefined;
    v = (v as Tree)[p];
  }
  return v;
}

function describeIssue(issue: z.core.$ZodIssue): string {
  if (issue.code === "unrecognized_keys") {
    return "unknown key (not a setting)";
  }
  return issue.message.replace(/^Invalid input: /, "");
}

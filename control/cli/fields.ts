/**
 * Flags that set API fields, declared once per resource and used for create (POST body),
 * update (merge-patch body) and list filters (query): each field names its flag, its API
 * path, how its text is read (size, int, labels, a name to resolve, a file), and whether
 * create requires it. The same table maps API errors back to flags.
 */
import { InvalidArgumentError } from "../../shared/errors/errors.ts";
import type { ApiClient } from "./client.ts";
import type { OptionSpec, OptionValues } from "./framework.ts";
import { type KindName, resolveId } from "./resolve.ts";
import { parseSize } from "./units.ts";

/** How a flag's text becomes a JSON value. */
export type FieldType =
  | "string"
  | "int"
  | "size"
  | "bool"
  | "strings"
  | "labels"
  | "file"
  | "json"
  | { ref: KindName };

/** One flag → one API field. */
export interface Field {
  flag: string;
  /** Dotted API path (`memory_size`, `placement.reservation_class`). */
  path: string;
  type: FieldType;
  help: string;
  value?: string;
  short?: string;
  /** Create needs it. */
  required?: boolean;
  /** `""` sets null on update (clears the field). */
  nullable?: boolean;
  /** Where the field applies (default: create and update). */
  on?: ("create" | "update" | "filter")[];
}

export type FieldMode = "create" | "update" | "filter";

function applies(f: Field, mode: FieldMode): boolean {
  return (f.on ?? ["create", "update"]).includes(mode);
}

/** parseArgs options for the fields of a mode. */
export function fieldOptions(
  fields: readonly Field[],
  mode: FieldMode,
): Record<string, OptionSpec> {
  const out: Record<string, OptionSpec> = {};
  for (const f of fields) {
    if (!applies(f, mode)) continue;
    const multiple = f.type === "strings" || f.type === "labels";
    const bool = f.type === "bool";
    const placeholder = f.value ??
      (f.type === "size"
        ? "SIZE"
        : f.type === "int"
        ? "N"
        : f.type === "file"
        ? "FILE"
        : typeof f.type === "object"
        ? "NAME|ID"
        : f.type === "labels"
        ? "KEY=VALUE"
        : "TEXT");
    out[f.flag] = {
      type: bool ? "boolean" : "string",
      ...(f.short ? { short: f.short } : {}),
      ...(multiple ? { multiple: true } : {}),
      ...(bool ? { negatable: true } : { value: placeholder }),
      help: f.help + (f.required && mode === "create" ? " (required)" : "") +
        (f.type === "labels" && mode === "update" ? "; KEY- removes" : "") +
        (f.type === "strings" && mode === "update" ? "; replaces the list" : "") +
        (f.nullable && mode === "update" && !bool ? '; "" clears' : ""),
    };
  }
  return out;
}

/** Reads `key=value` pairs; in update mode `key-` means "remove" (null). */
export function parseLabels(
  items: string[],
  flag: string,
  allowRemove: boolean,
): Record<string, string | null> {
  const out: Record<string, string | null> = {};
  for (const item of items) {
    if (allowRemove && /^[^=]+-$/.test(item)) {
      out[item.slice(0, -1)] = null;
      continue;
    }
    const eq = item.indexOf("=");
    if (eq <= 0) {
      throw InvalidArgumentError.field(
        `--${flag}`,
        `expected KEY=VALUE${allowRemove ? " or KEY-" : ""}, got "${item}"`,
      );
    }
    out[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return out;
}

/** An integer flag value. */
export function parseInteger(text: string, flag: string): number {
  if (!/^-?\d+$/.test(text.trim())) {
    throw InvalidArgumentError.field(`--${flag}`, `expected a whole number, got "${text}"`);
  }
  return Number(text);
}

function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split(".");
  let node = target;
  for (const k of keys.slice(0, -1)) {
    node[k] ??= {};
    node = node[k] as Record<string, unknown>;
  }
  node[keys[keys.length - 1]] = value;
}

async function valueOf(
  f: Field,
  raw: string | boolean | string[],
  mode: FieldMode,
  client: () => Promise<ApiClient>,
): Promise<unknown> {
  const flag = `--${f.flag}`;
  if (f.type === "bool") return raw;
  if (f.type === "strings") return raw as string[];
  if (f.type === "labels") return parseLabels(raw as string[], f.flag, mode === "update");
  const text = raw as string;
  if (f.nullable && text === "" && mode === "update") return null;
  if (f.type === "string") return text;
  if (f.type === "int") return parseInteger(text, f.flag);
  if (f.type === "size") return parseSize(text, flag);
  if (f.type === "json") {
    try {
      return JSON.parse(text);
    } catch {
      throw InvalidArgumentError.field(flag, `expected JSON, got ${text}`);
    }
  }
  if (f.type === "file") {
    try {
      return text === "-"
        ? await new Response(Deno.stdin.readable).text()
        : await Deno.readTextFile(text);
    } catch (err) {
      throw InvalidArgumentError.field(flag, `cannot read ${text}: ${(err as Error).message}`);
    }
  }
  return await resolveId(await client(), f.type.ref, text);
}

/**
 * The body (or query) the flags of `mode` describe. Only flags that were given appear, so
 * an update sends exactly what the user changed.
 */
export async function bodyFromFlags(
  fields: readonly Field[],
  opts: OptionValues,
  mode: FieldMode,
  client: () => Promise<ApiClient>,
): Promise<Record<string, unknown>> {
  const body: Record<string, unknown> = {};
  for (const f of fields) {
    if (!applies(f, mode)) continue;
    const raw = opts[f.flag];
    if (raw === undefined || (Array.isArray(raw) && raw.length === 0)) {
      if (f.required && mode === "create") {
        throw InvalidArgumentError.field(`--${f.flag}`, "is required");
      }
      continue;
    }
    setPath(body, f.path, await valueOf(f, raw, mode, client));
  }
  return body;
}

/** API field path → flag, for error reports. */
export function flagsOf(fields: readonly Field[]): Record<string, string> {
  return Object.fromEntries(fields.map((f) => [f.path, `--${f.flag}`]));
}

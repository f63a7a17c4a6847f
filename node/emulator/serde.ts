/**
 * Schema-driven deserialization with serde's semantics and wording: defaults filled in,
 * unknown fields dropped, `Option` fields omitted when absent or null, fields emitted in
 * struct order, and errors such as "missing field `size`" or
 * "invalid type: string \"x\", expected u64" positioned like serde_json's.
 */
import { errorAt, JsonError, type JsonSource, parseJson, pointerSegment } from "./json.ts";

export type IntType = "u8" | "u16" | "u32" | "u64" | "i32" | "i64";

/** The shape of one Rust type, as far as JSON deserialization cares. */
export type Schema =
  | { t: IntType }
  | { t: "bool" }
  | { t: "string" }
  | { t: "path" }
  | { t: "struct"; name: string; fields: Record<string, Field> }
  | { t: "vec"; of: Schema }
  | { t: "map"; of: Schema }
  | { t: "enum"; name: string; variants: readonly string[] }
  | { t: "any" };

/** One struct field: required, defaulted, or `Option` (neither). */
export interface Field {
  s: Schema;
  /** No serde default: absent → "missing field". */
  required?: boolean;
  /** serde default, filled in when absent. */
  default?: unknown | (() => unknown);
}

const INT_RANGES: Record<IntType, [bigint, bigint]> = {
  u8: [0n, 255n],
  u16: [0n, 65535n],
  u32: [0n, 4294967295n],
  u64: [0n, 18446744073709551615n],
  i32: [-2147483648n, 2147483647n],
  i64: [-9223372036854775808n, 9223372036854775807n],
};

/** Deserializes a JSON body into `schema`'s normalized form, or throws JsonError. */
export function deserializeJson(text: string, schema: Schema): unknown {
  const { value, source } = parseJson(text);
  return deserializeValue(value, schema, source);
}

/** Deserializes an already parsed value (with its source for error positions). */
export function deserializeValue(value: unknown, schema: Schema, source: JsonSource): unknown {
  return new Deserializer(source).run(value, schema, "");
}

/** Deserializes a trusted in-memory value (no positions: errors are reported at 1:0). */
export function normalize(value: unknown, schema: Schema): unknown {
  const source: JsonSource = {
    text: "",
    ends: new Map(),
    numbers: new Map(),
    duplicates: new Map(),
  };
  return new Deserializer(source).run(value, schema, "");
}

class Deserializer {
  constructor(readonly source: JsonSource) {}

  fail(ptr: string, reason: string): never {
    const end = this.source.ends.get(ptr);
    if (end === undefined) throw new JsonError(reason, 1, 0);
    throw errorAt(this.source.text, end, reason);
  }

  run(v: unknown, s: Schema, ptr: string): unknown {
    switch (s.t) {
      case "any":
        return v;
      case "bool":
        if (typeof v !== "boolean") this.fail(ptr, this.invalidType(v, ptr, "a boolean"));
        return v;
      case "string":
        if (typeof v !== "string") this.fail(ptr, this.invalidType(v, ptr, "a string"));
        return v;
      case "path":
        if (typeof v !== "string") this.fail(ptr, this.invalidType(v, ptr, "path string"));
        return v;
      case "vec": {
        if (!Array.isArray(v)) this.fail(ptr, this.invalidType(v, ptr, "a sequence"));
        return v.map((item, i) => this.run(item, s.of, `${ptr}/${i}`));
      }
      case "map": {
        if (!isObject(v)) this.fail(ptr, this.invalidType(v, ptr, "a map"));
        const out: Record<string, unknown> = {};
        for (const [k, item] of Object.entries(v)) {
          out[k] = this.run(item, s.of, `${ptr}/${pointerSegment(k)}`);
        }
        return out;
      }
      case "enum": {
        if (typeof v !== "string") this.fail(ptr, this.invalidType(v, ptr, `enum ${s.name}`));
        if (!s.variants.includes(v)) {
          const expected = s.variants.map((x) => `\`${x}\``).join(", ");
          this.fail(ptr, `unknown variant \`${v}\`, expected one of ${expected}`);
        }
        return v;
      }
      case "struct":
        return this.struct(v, s, ptr);
      default:
        return this.int(v, s.t, ptr);
    }
  }

  int(v: unknown, t: IntType, ptr: string): number {
    if (typeof v !== "number") this.fail(ptr, this.invalidType(v, ptr, t));
    const raw = this.source.numbers.get(ptr) ?? String(v);
    if (!/^-?\d+$/.test(raw)) this.fail(ptr, this.invalidType(v, ptr, t));
    const n = BigInt(raw);
    const [min, max] = INT_RANGES[t];
    if (n < min || n > max) this.fail(ptr, `invalid value: integer \`${raw}\`, expected ${t}`);
    return Number(n);
  }

  struct(
    v: unknown,
    s: { t: "struct"; name: string; fields: Record<string, Field> },
    ptr: string,
  ): Record<string, unknown> {
    if (!isObject(v)) this.fail(ptr, this.invalidType(v, ptr, `struct ${s.name}`));
    const dup = this.source.duplicates.get(ptr);
    const seen: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(v)) {
      const field = s.fields[key];
      if (!field) continue; // serde ignores unknown fields (no deny_unknown_fields)
      if (dup && dup.key === key) {
        throw errorAt(this.source.text, dup.end, `duplicate field \`${key}\``);
      }
      const childPtr = `${ptr}/${pointerSegment(key)}`;
      // Option<T>: null means None.
      if (item === null && !field.required && field.default === undefined) continue;
      seen[key] = this.run(item, field.s, childPtr);
    }
    const out: Record<string, unknown> = {};
    for (const [key, field] of Object.entries(s.fields)) {
      if (Object.hasOwn(seen, key)) {
        out[key] = seen[key];
      } else if (field.required) {
        this.fail(ptr, `missing field \`${key}\``);
      } else if (field.default !== undefined) {
        out[key] = typeof field.default === "function" ? field.default() : structuredClone(
          field.default,
        );
      }
    }
    return out;
  }

  invalidType(v: unknown, ptr: string, expected: string): string {
    return `invalid type: ${this.unexpected(v, ptr)}, expected ${expected}`;
  }

  unexpected(v: unknown, ptr: string): string {
    if (v === null) return "null";
    if (typeof v === "boolean") return `boolean \`${v}\``;
    if (typeof v === "string") return `string ${JSON.stringify(v)}`;
    if (typeof v === "number") {
      const raw = this.source.numbers.get(ptr) ?? String(v);
      return /^-?\d+$/.test(raw) ? `integer \`${raw}\`` : `floating point \`${formatFloat(v)}\``;
    }
    if (Array.isArray(v)) return "sequence";
    return "map";
  }
}

function formatFloat(v: number): string {
  return Number.isInteger(v) ? `${v}.0` : String(v);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

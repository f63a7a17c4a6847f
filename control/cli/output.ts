/**
 * How the CLI prints: aligned tables for lists, `FIELD  value` blocks for single resources,
 * and the raw API JSON for `--output json`. Pure string building; the caller writes.
 */
import { formatBytes } from "./units.ts";

/** One column of a table. */
export interface Column<T> {
  header: string;
  value(row: T): string | number | null | undefined;
  /** Right-align (numbers). */
  right?: boolean;
}

/** Output formats of `--output`. */
export const OUTPUT_FORMATS = ["table", "json"] as const;
export type OutputFormat = typeof OUTPUT_FORMATS[number];

function cell(v: string | number | null | undefined): string {
  if (v === null || v === undefined || v === "") return "-";
  // One row per record: control characters from the server never break the layout.
  // deno-lint-ignore no-control-regex
  return String(v).replace(/[\x00-\x1f\x7f]+/g, " ");
}

/** Width in characters (code points; names are ASCII, descriptions are not in tables). */
function width(s: string): number {
  return [...s].length;
}

function pad(s: string, n: number, right = false): string {
  const fill = " ".repeat(Math.max(0, n - width(s)));
  return right ? fill + s : s + fill;
}

/** An aligned table with a header row; columns are separated by two spaces. */
export function table<T>(rows: readonly T[], columns: readonly Column<T>[]): string {
  const cells = rows.map((r) => columns.map((c) => cell(c.value(r))));
  const widths = columns.map((c, i) =>
    Math.max(width(c.header), ...cells.map((row) => width(row[i])))
  );
  const line = (values: string[]) =>
    values.map((v, i) =>
      i === values.length - 1 && !columns[i].right ? v : pad(v, widths[i], columns[i].right)
    )
      .join("  ").trimEnd();
  return [line(columns.map((c) => c.header)), ...cells.map(line)].join("\n") + "\n";
}

/** `KEY  value` lines for one resource, keys aligned. */
export function keyValues(pairs: readonly (readonly [string, string])[]): string {
  const w = Math.max(0, ...pairs.map(([k]) => width(k)));
  return pairs.map(([k, v]) => `${pad(k, w)}  ${v}`.trimEnd()).join("\n") + "\n";
}

const SIZE_KEY = /(_bytes|^memory_size|_size)$/;

/** A field of an API object as text: sizes humanised, objects as compact JSON, null as `-`. */
export function fieldText(key: string, value: unknown): string {
  if (value === null || value === undefined) return "-";
  if (typeof value === "number" && SIZE_KEY.test(key)) {
    return value >= 1024 ? `${formatBytes(value)} (${value})` : String(value);
  }
  if (Array.isArray(value)) {
    if (value.every((v) => typeof v !== "object" || v === null)) {
      return value.length ? value.join(", ") : "-";
    }
    return JSON.stringify(value);
  }
  if (typeof value === "object") {
    return Object.keys(value).length ? JSON.stringify(value) : "-";
  }
  const text = String(value);
  // Multi-line values (cloud-init user data) are shown as their first line and a count.
  if (text.includes("\n")) {
    const lines = text.split("\n");
    return `${lines[0]} … (${lines.length} lines)`;
  }
  return text;
}

/** Every top-level field of an object as `FIELD  value` lines, in the API's order. */
export function detail(obj: Record<string, unknown>): string {
  return keyValues(Object.entries(obj).map(([k, v]) => [k, fieldText(k, v)] as const));
}

/** `{"a":"b"}` → `a=b`; for label columns. */
export function labelsText(labels: Record<string, unknown> | null | undefined): string {
  if (!labels) return "";
  return Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(",");
}

/** Pretty JSON with a trailing newline. */
export function jsonText(value: unknown): string {
  return JSON.stringify(value, null, 2) + "\n";
}

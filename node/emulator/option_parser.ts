/**
 * CH's `key=value,key=value` option syntax (crate `option_parser`), as used by `--api-socket`,
 * `--event-monitor`, `--cpus`, `--disk`...: commas inside `[...]` or double quotes do not
 * split, a bare word is a value without key, toggles are on/off/true/false, sizes take
 * K/M/G suffixes.
 */

/** Splits and parses one option string; a bare word is stored under the key "". */
export function parseOptions(input: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of splitOptions(input)) {
    if (part === "") continue;
    const eq = part.indexOf("=");
    if (eq < 0) out.set("", part);
    else out.set(part.slice(0, eq), unquote(part.slice(eq + 1)));
  }
  return out;
}

function splitOptions(input: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let quoted = false;
  let cur = "";
  for (const c of input) {
    if (c === '"') quoted = !quoted;
    else if (c === "[" && !quoted) depth++;
    else if (c === "]" && !quoted) depth--;
    if (c === "," && depth === 0 && !quoted) {
      parts.push(cur);
      cur = "";
    } else {
      cur += c;
    }
  }
  parts.push(cur);
  return parts;
}

function unquote(v: string): string {
  return v.length >= 2 && v.startsWith('"') && v.endsWith('"') ? v.slice(1, -1) : v;
}

/** An option value that does not parse. */
export class OptionError extends Error {}

/** on/off/true/false → boolean. */
export function toggle(v: string): boolean {
  const l = v.toLowerCase();
  if (l === "on" || l === "true") return true;
  if (l === "off" || l === "false") return false;
  throw new OptionError(`Error parsing toggle value: ${v}`);
}

/** `512M`, `1G`, `4096` → bytes. */
export function byteSized(v: string): number {
  const m = /^(\d+)([KMG]?)$/.exec(v.trim());
  if (!m) throw new OptionError(`Error parsing byte size: ${v}`);
  const unit = { "": 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 }[m[2]]!;
  return Number(m[1]) * unit;
}

/** A non-negative integer option. */
export function integer(v: string): number {
  if (!/^\d+$/.test(v)) throw new OptionError(`Error parsing integer value: ${v}`);
  return Number(v);
}

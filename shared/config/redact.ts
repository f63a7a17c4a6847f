/**
 * Secret redaction for anything that is logged or printed: values under secret-looking keys
 * are replaced, and passwords embedded in URLs are masked wherever they appear.
 */

/** Keys whose values are never shown. */
export const SECRET_KEY =
  /pass(word)?|secret|token|credential|private_?key|api_?key|authorization/i;

/** The replacement text for a hidden value. */
export const REDACTED = "[redacted]";

const URL_PASSWORD = /([a-z][a-z0-9+.-]*:\/\/[^/\s:@]*:)([^@\s/]+)@/gi;

/** Masks the password in every `scheme://user:password@host` inside `text`. */
export function redactUrl(text: string): string {
  return text.replace(URL_PASSWORD, `$1${REDACTED}@`);
}

/** Deep copy of `value` with secrets replaced (keys by name, URL passwords by shape). */
export function redactValue(value: unknown, key = ""): unknown {
  if (key && SECRET_KEY.test(key) && value !== null && value !== undefined && value !== "") {
    return REDACTED;
  }
  if (typeof value === "string") return redactUrl(value);
  if (Array.isArray(value)) return value.map((v) => redactValue(v));
  if (value && typeof value === "object" && !(value instanceof Error) && !(value instanceof Date)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = redactValue(v, k);
    return out;
  }
  return value;
}

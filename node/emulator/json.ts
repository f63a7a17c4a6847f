/**
 * A JSON parser that fails the way serde_json does: same messages ("expected value",
 * "EOF while parsing an object", "trailing characters"...) and same `at line L column C`
 * positions, and that remembers where every value ended and how numbers were written, so
 * that type errors found later (in `serde.ts`) can be reported at serde's positions too.
 */

/** Where each value ends and what it looked like, keyed by JSON pointer ("" = root). */
export interface JsonSource {
  text: string;
  /** Index of the last character of each value. */
  ends: Map<string, number>;
  /** The literal text of every number, to tell `1` from `1.0` and keep u64 precision. */
  numbers: Map<string, string>;
  /** Pointers of objects that repeat a key, with the first repeated key. */
  duplicates: Map<string, { key: string; end: number }>;
}

/** A serde_json-style error; `message` ends with `at line L column C`. */
export class JsonError extends Error {
  constructor(readonly reason: string, readonly line: number, readonly column: number) {
    super(`${reason} at line ${line} column ${column}`);
    this.name = "JsonError";
  }
}

/** Line and column (serde_json's numbering) of the character at `index`. */
export function positionOf(text: string, index: number): { line: number; column: number } {
  let line = 1;
  let column = 0;
  for (let i = 0; i <= index && i < text.length; i++) {
    if (text[i] === "\n") {
      line++;
      column = 0;
    } else {
      column++;
    }
  }
  return { line, column };
}

/** Builds an error positioned at the character `index` (or at the end of text for EOF). */
export function errorAt(text: string, index: number, reason: string): JsonError {
  const { line, column } = positionOf(text, Math.min(index, text.length - 1));
  return new JsonError(reason, line, index >= text.length ? endColumn(text).column : column);
}

function endColumn(text: string): { line: number; column: number } {
  return positionOf(text, text.length - 1);
}

/** Escapes one JSON pointer segment (RFC 6901). */
export function pointerSegment(key: string | number): string {
  return String(key).replaceAll("~", "~0").replaceAll("/", "~1");
}

/** Parses `text` like serde_json::from_slice would, or throws JsonError. */
export function parseJson(text: string): { value: unknown; source: JsonSource } {
  const source: JsonSource = { text, ends: new Map(), numbers: new Map(), duplicates: new Map() };
  const p = new Parser(text, source);
  p.skipWs();
  const value = p.value("");
  p.skipWs();
  if (p.i < text.length) throw errorAt(text, p.i, "trailing characters");
  return { value, source };
}

class Parser {
  i = 0;
  constructor(readonly text: string, readonly source: JsonSource) {}

  skipWs(): void {
    while (this.i < this.text.length) {
      const c = this.text[this.i];
      if (c === " " || c === "\n" || c === "\r" || c === "\t") this.i++;
      else break;
    }
  }

  fail(reason: string, index = this.i): never {
    throw errorAt(this.text, index, reason);
  }

  value(ptr: string): unknown {
    if (this.i >= this.text.length) this.fail("EOF while parsing a value");
    const c = this.text[this.i];
    let v: unknown;
    if (c === "{") v = this.object(ptr);
    else if (c === "[") v = this.array(ptr);
    else if (c === '"') v = this.string();
    else if (c === "-" || (c >= "0" && c <= "9")) v = this.number(ptr);
    else if (c === "t") v = this.ident("true", true);
    else if (c === "f") v = this.ident("false", false);
    else if (c === "n") v = this.ident("null", null);
    else this.fail("expected value");
    this.source.ends.set(ptr, this.i - 1);
    return v;
  }

  ident(word: string, v: unknown): unknown {
    for (let k = 0; k < word.length; k++) {
      if (this.i >= this.text.length) this.fail("EOF while parsing a value");
      if (this.text[this.i] !== word[k]) this.fail("expected ident");
      this.i++;
    }
    return v;
  }

  number(ptr: string): number {
    const start = this.i;
    if (this.text[this.i] === "-") this.i++;
    const digits = () => {
      const s = this.i;
      while (this.i < this.text.length && this.text[this.i] >= "0" && this.text[this.i] <= "9") {
        this.i++;
      }
      return this.i - s;
    };
    if (this.i >= this.text.length) this.fail("EOF while parsing a value");
    if (this.text[this.i] === "0") {
      this.i++;
      if (this.text[this.i] >= "0" && this.text[this.i] <= "9") this.fail("invalid number");
    } else if (digits() === 0) {
      this.fail("invalid number");
    }
    if (this.text[this.i] === ".") {
      this.i++;
      if (digits() === 0) {
        this.fail(this.i >= this.text.length ? "EOF while parsing a value" : "invalid number");
      }
    }
    if (this.text[this.i] === "e" || this.text[this.i] === "E") {
      this.i++;
      if (this.text[this.i] === "+" || this.text[this.i] === "-") this.i++;
      if (digits() === 0) {
        this.fail(this.i >= this.text.length ? "EOF while parsing a value" : "invalid number");
      }
    }
    const raw = this.text.slice(start, this.i);
    this.source.numbers.set(ptr, raw);
    return Number(raw);
  }

  string(): string {
    this.i++; // opening quote
    let out = "";
    for (;;) {
      if (this.i >= this.text.length) this.fail("EOF while parsing a string");
      const c = this.text[this.i];
      if (c === '"') {
        this.i++;
        return out;
      }
      if (c === "\\") {
        this.i++;
        if (this.i >= this.text.length) this.fail("EOF while parsing a string");
        const e = this.text[this.i];
        const simple: Record<string, string> = {
          '"': '"',
          "\\": "\\",
          "/": "/",
          b: "\b",
          f: "\f",
          n: "\n",
          r: "\r",
          t: "\t",
        };
        if (e in simple) {
          out += simple[e];
          this.i++;
        } else if (e === "u") {
          const hex = this.text.slice(this.i + 1, this.i + 5);
          if (!/^[0-9a-fA-F]{4}$/.test(hex)) {
            this.fail(
              this.i + 5 > this.text.length ? "EOF while parsing a string" : "invalid escape",
            );
          }
          out += String.fromCharCode(parseInt(hex, 16));
          this.i += 5;
        } else {
          this.fail("invalid escape");
        }
        continue;
      }
      if (c < " ") this.fail("control character (\\u0000-\\u001F) found while parsing a string");
      out += c;
      this.i++;
    }
  }

  array(ptr: string): unknown[] {
    this.i++;
    const out: unknown[] = [];
    this.skipWs();
    if (this.i >= this.text.length) this.fail("EOF while parsing a list");
    if (this.text[this.i] === "]") {
      this.i++;
      return out;
    }
    for (;;) {
      this.skipWs();
      out.push(this.value(`${ptr}/${out.length}`));
      this.skipWs();
      if (this.i >= this.text.length) this.fail("EOF while parsing a list");
      const c = this.text[this.i];
      if (c === "]") {
        this.i++;
        return out;
      }
      if (c !== ",") this.fail("expected `,` or `]`");
      this.i++;
      this.skipWs();
      if (this.text[this.i] === "]") this.fail("trailing comma");
    }
  }

  object(ptr: string): Record<string, unknown> {
    this.i++;
    const out: Record<string, unknown> = {};
    this.skipWs();
    if (this.i >= this.text.length) this.fail("EOF while parsing an object");
    if (this.text[this.i] === "}") {
      this.i++;
      return out;
    }
    for (;;) {
      this.skipWs();
      if (this.i >= this.text.length) this.fail("EOF while parsing an object");
      if (this.text[this.i] !== '"') this.fail("key must be a string");
      const key = this.string();
      const keyEnd = this.i - 1;
      this.skipWs();
      if (this.i >= this.text.length) this.fail("EOF while parsing an object");
      if (this.text[this.i] !== ":") this.fail("expected `:`");
      this.i++;
      this.skipWs();
      const childPtr = `${ptr}/${pointerSegment(key)}`;
      const v = this.value(childPtr);
      if (Object.hasOwn(out, key) && !this.source.duplicates.has(ptr)) {
        // serde notices a repeated field right after reading its key.
        this.source.duplicates.set(ptr, { key, end: keyEnd });
      }
      out[key] = v;
      this.skipWs();
      if (this.i >= this.text.length) this.fail("EOF while parsing an object");
      const c = this.text[this.i];
      if (c === "}") {
        this.i++;
        return out;
      }
      if (c !== ",") this.fail("expected `,` or `}`");
      this.i++;
      this.skipWs();
      if (this.text[this.i] === "}") this.fail("trailing comma");
    }
  }
}

import assert from "node:assert/strict";
import { JsonError, parseJson, positionOf } from "./json.ts";

Deno.test("valid JSON parses like JSON.parse and records value ends and number literals", () => {
  const text = '{"a": [1, 2.50, -3e2], "b": {"c": "x\\u00e9\\n"}, "d": null, "e": true}';
  const { value, source } = parseJson(text);
  assert.deepEqual(value, JSON.parse(text));
  assert.equal(source.numbers.get("/a/1"), "2.50");
  assert.equal(text[source.ends.get("/b/c")!], '"');
  assert.equal(text[source.ends.get("")!], "}");
});

Deno.test("syntax errors use serde_json's messages and positions", () => {
  const cases: [string, string][] = [
    ["", "EOF while parsing a value at line 1 column 0"],
    ["x", "expected value at line 1 column 1"],
    ["{", "EOF while parsing an object at line 1 column 1"],
    ['{"a" 1}', "expected `:` at line 1 column 6"],
    ['{"a":1 "b":2}', "expected `,` or `}` at line 1 column 8"],
    ['{"a":1,}', "trailing comma at line 1 column 8"],
    ["[1,]", "trailing comma at line 1 column 4"],
    ["[1 2]", "expected `,` or `]` at line 1 column 4"],
    ["{1:2}", "key must be a string at line 1 column 2"],
    ["{}x", "trailing characters at line 1 column 3"],
    ["tru", "EOF while parsing a value at line 1 column 3"],
    ["nul!", "expected ident at line 1 column 4"],
    ['"abc', "EOF while parsing a string at line 1 column 4"],
    ['"\\q"', "invalid escape at line 1 column 3"],
    ["01", "invalid number at line 1 column 2"],
    ['{\n  "a": x\n}', "expected value at line 2 column 8"],
  ];
  for (const [text, message] of cases) {
    assert.throws(
      () => parseJson(text),
      (e) => e instanceof JsonError && e.message === message,
      text,
    );
  }
});

Deno.test("positions count lines and columns like serde_json", () => {
  assert.deepEqual(positionOf("ab\ncd", 4), { line: 2, column: 2 });
  assert.deepEqual(positionOf("ab\ncd", 0), { line: 1, column: 1 });
});

import assert from "node:assert/strict";
import { byteSized, integer, OptionError, parseOptions, toggle } from "./option_parser.ts";

Deno.test("key=value lists split on commas outside brackets and quotes", () => {
  assert.deepEqual([...parseOptions("path=/a/b,readonly=on")], [["path", "/a/b"], [
    "readonly",
    "on",
  ]]);
  assert.deepEqual([...parseOptions('fd=[3,4],mac="a,b"')], [["fd", "[3,4]"], ["mac", "a,b"]]);
  assert.deepEqual([...parseOptions("/bare/path")], [["", "/bare/path"]]);
});

Deno.test("toggles, sizes and integers", () => {
  assert.equal(toggle("on"), true);
  assert.equal(toggle("False"), false);
  assert.throws(() => toggle("maybe"), OptionError);
  assert.equal(byteSized("512M"), 512 * 1024 * 1024);
  assert.equal(byteSized("2G"), 2 * 1024 ** 3);
  assert.equal(byteSized("4096"), 4096);
  assert.throws(() => byteSized("1T"), OptionError);
  assert.equal(integer("12"), 12);
  assert.throws(() => integer("-1"), OptionError);
});

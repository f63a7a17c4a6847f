import assert from "node:assert/strict";
import { interfaceExists, prefixLength } from "./tap.ts";

Deno.test("netmasks become prefix lengths", () => {
  assert.equal(prefixLength("255.255.255.0"), 24);
  assert.equal(prefixLength("255.255.0.0"), 16);
  assert.equal(prefixLength("255.255.255.252"), 30);
  assert.equal(prefixLength("64"), 64);
});

Deno.test("interfaces are looked up in sysfs", () => {
  assert.equal(interfaceExists("lo"), true);
  assert.equal(interfaceExists("qarax-none0"), false);
});

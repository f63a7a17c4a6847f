import assert from "node:assert/strict";
import { aNoun } from "./resource.ts";

Deno.test("aNoun: help summaries read 'an instance type' and 'a VM'", () => {
  assert.equal(aNoun("instance type"), "an instance type");
  assert.equal(aNoun("vm template"), "a VM template");
  assert.equal(aNoun("boot source"), "a boot source");
});

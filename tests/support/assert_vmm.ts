/**
 * Assertions for VMM answers: a call failed with the expected domain error class, CH status
 * and root cause (the last message of CH's chain), and the domain message names the endpoint.
 */
import assert from "node:assert/strict";
import { vmmApiErrorOf } from "../../node/vmm/client.ts";
import type { VmmApiError } from "../../node/vmm/errors.ts";

// deno-lint-ignore no-explicit-any
type ErrorClass = new (...args: any[]) => Error;

/** Awaits `call`, asserting it fails with `cls`, CH `status` and a root cause matching `root`. */
export async function assertVmmError(
  call: Promise<unknown>,
  cls: ErrorClass,
  status: number,
  root?: string | RegExp,
): Promise<VmmApiError> {
  let caught: unknown;
  try {
    await call;
  } catch (err) {
    caught = err;
  }
  assert.ok(caught, `expected ${cls.name} (${status}), but the call succeeded`);
  assert.ok(caught instanceof cls, `expected ${cls.name}, got ${caught}`);
  const api = vmmApiErrorOf(caught);
  assert.ok(api, `no VmmApiError behind ${caught}`);
  assert.equal(api.status, status, `status of ${api.message}`);
  assert.ok((caught as Error).message.startsWith(`${api.endpoint}: `));
  if (root !== undefined) {
    if (typeof root === "string") assert.equal(api.rootCause, root);
    else assert.match(api.rootCause, root);
  }
  return api;
}

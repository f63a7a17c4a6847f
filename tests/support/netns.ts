/**
 * Private network namespaces for tests that build real bridges and taps: each test gets a
 * namespace with a random `qx-` name that is deleted afterwards (which also deletes every
 * interface inside it), so nothing ever touches the machine's own interfaces. Without root
 * (and outside CI) such tests are skipped with a message; with CI=true they always run.
 */
import { run } from "../../shared/cmd/run.ts";

/** A network namespace owned by one test. */
export interface Netns {
  name: string;
  /** Runs argv inside the namespace (`ip netns exec`). */
  exec(argv: string[]): Promise<string>;
  /** Deletes the namespace (idempotent). */
  remove(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Whether namespace tests can run here, and why not. */
export function netnsSupport(): { ok: boolean; reason: string } {
  if (Deno.env.get("CI") === "true") return { ok: true, reason: "CI" };
  if (Deno.uid() !== 0) return { ok: false, reason: "network namespace tests need root" };
  return { ok: true, reason: "root" };
}

/** Creates a namespace `qx-<random>` with its loopback up. */
export async function createNetns(): Promise<Netns> {
  const name = `qx-${crypto.randomUUID().slice(0, 8)}`;
  await run(["ip", "netns", "add", name]);
  let removed = false;
  const remove = async () => {
    if (removed) return;
    removed = true;
    await run(["ip", "netns", "del", name]);
  };
  try {
    await run(["ip", "-n", name, "link", "set", "lo", "up"]);
  } catch (err) {
    await remove();
    throw err;
  }
  return {
    name,
    exec: async (argv) => (await run(["ip", "netns", "exec", name, ...argv])).stdout,
    remove,
    [Symbol.asyncDispose]: remove,
  };
}

let warned = false;

/** `Deno.test` with a fresh namespace per test, skipped (with a message) where it cannot run. */
export function netnsTest(name: string, fn: (ns: Netns) => Promise<void>): void {
  const support = netnsSupport();
  if (!support.ok && !warned) {
    warned = true;
    console.warn(`skipping network namespace tests: ${support.reason} (CI=true forces them)`);
  }
  Deno.test({
    name,
    ignore: !support.ok,
    fn: async () => {
      await using ns = await createNetns();
      await fn(ns);
    },
  });
}

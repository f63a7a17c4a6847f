import assert from "node:assert/strict";
import {
  CONTROL_PERMISSIONS,
  NODE_PERMISSIONS,
  NODE_PROGRAMS,
  permissionFlags,
} from "./permissions.ts";

const ROOT = new URL("..", import.meta.url).pathname;

/** The .ts files under `dir` (recursively), tests and the CH emulator excluded. */
async function* sources(dir: string): AsyncGenerator<string> {
  for await (const e of Deno.readDir(dir)) {
    const path = `${dir}/${e.name}`;
    if (e.isDirectory && e.name !== "emulator") yield* sources(path);
    else if (e.isFile && e.name.endsWith(".ts") && !e.name.endsWith("_test.ts")) yield path;
  }
}

Deno.test("permissions: each flag once, with a reason, and nothing blanket", () => {
  for (const set of [CONTROL_PERMISSIONS, NODE_PERMISSIONS]) {
    const names = set.map((p) => p.flag.split("=")[0]);
    assert.equal(new Set(names).size, names.length, `duplicate flag in ${names}`);
    for (const p of set) {
      assert.match(p.flag, /^--allow-(net|env|read|write|sys|run|ffi)(=.+)?$/);
      assert.ok(p.why.length > 20, `${p.flag} says why`);
    }
  }
  // Scoped where the values are fixed: OS facts and programs.
  for (const binary of ["qarax", "qarax-node"] as const) {
    const flags = permissionFlags(binary);
    assert.ok(flags.some((f) => f.startsWith("--allow-sys=")), `${binary}: --allow-sys scoped`);
    assert.ok(flags.some((f) => f.startsWith("--allow-run=")), `${binary}: --allow-run scoped`);
    assert.ok(!flags.includes("--allow-sys") && !flags.includes("--allow-run"));
  }
});

Deno.test("permissions: the node may run every program its code starts", async () => {
  const listed = new Set(NODE_PROGRAMS.map((p) => p.name));
  // `run(["qemu-img", ...])`, `tryRun([...prefix, "nft", ...])`, `["setsid", "bash", ...]`.
  const call = /\b(?:run|tryRun)\(\[\s*(?:\.\.\.[\w.#]+,\s*)?"([^"]+)"/g;
  const found = new Set<string>();
  for await (const path of sources(`${ROOT}node`)) {
    const text = await Deno.readTextFile(path);
    for (const m of text.matchAll(call)) found.add(m[1]);
  }
  const detached = await Deno.readTextFile(`${ROOT}node/proc/detached.ts`);
  assert.match(detached, /"setsid",\s*"bash"/);
  for (const program of found) assert.ok(listed.has(program), `${program} is not listed`);
  assert.ok(found.size >= 6, `found only ${[...found]}`);
});

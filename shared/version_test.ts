import assert from "node:assert/strict";
import { buildInfoScript, commit, COMMIT_GLOBAL, VERSION, versionLine } from "./version.ts";

Deno.test("version: a build's recorded commit wins; the line names version, Deno and commit", () => {
  const g = globalThis as Record<string, unknown>;
  // What a bundle or a compiled binary's preload module runs before any other module.
  new Function(buildInfoScript("0123456789ab"))();
  try {
    assert.equal(g[COMMIT_GLOBAL], "0123456789ab");
    assert.equal(commit(), "0123456789ab");
    assert.equal(
      versionLine("qarax"),
      `qarax ${VERSION} (deno ${Deno.version.deno}, commit 0123456789ab)`,
    );
  } finally {
    delete g[COMMIT_GLOBAL];
  }
  assert.equal(buildInfoScript('a"b'), `globalThis.${COMMIT_GLOBAL} = "a\\"b";\n`);
});

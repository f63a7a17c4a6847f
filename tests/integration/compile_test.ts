/**
 * `deno task compile:*` without running the binaries (Deno cannot download its `denort`
 * runtime on our build machines): the module graph of each entry point holds every asset
 * the binary needs (what `deno compile` embeds), the commit reaches `--version` through the
 * preload module, and `deno compile` accepts the exact command line, failing at most at the
 * runtime download. Where the download works, the host's binary must print its version.
 */
import assert from "node:assert/strict";
import {
  compileArgs,
  ENTRY_POINTS,
  outputPath,
  writeBuildInfo,
} from "../../deployments/compile.ts";
import { permissionFlags } from "../../deployments/permissions.ts";
import { gitCommit, VERSION } from "../../shared/version.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const decoder = new TextDecoder();
const ENV = { NO_COLOR: "1", RUST_BACKTRACE: "0" };

async function deno(args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT,
    env: ENV,
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { ...out, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}

/** Local files and npm files in the module graph of `entry`. */
async function graph(entry: string): Promise<string[]> {
  const r = await deno(["info", "--json", entry]);
  assert.ok(r.success, r.stderr);
  const info = JSON.parse(r.stdout) as { modules: { specifier: string }[] };
  return info.modules.map((m) => m.specifier.replace(`file://${ROOT}`, ""));
}

Deno.test("compile: the module graphs hold every asset the binaries need", async () => {
  const sql = [...Deno.readDirSync(`${ROOT}migrations`)].map((e) => e.name)
    .filter((n) => n.endsWith(".sql"));
  const yaml = [...Deno.readDirSync(`${ROOT}configuration`)].map((e) => e.name)
    .filter((n) => n.endsWith(".yaml"));
  assert.ok(sql.length > 0 && yaml.length > 0);

  const control = await graph(ENTRY_POINTS.qarax);
  for (const f of sql) assert.ok(control.includes(`migrations/${f}`), `migrations/${f}`);
  for (const f of yaml) assert.ok(control.includes(`configuration/${f}`), `configuration/${f}`);
  assert.ok(control.includes("shared/proto/gen/node.js"), "the generated protocol");
  for (const f of ["swagger-ui-bundle.js", "swagger-ui.css"]) {
    assert.ok(control.some((s) => /^npm:\/swagger-ui-dist@[\d.]+\//.test(s) && s.endsWith(f)), f);
  }
  for (const f of ["pglite.wasm", "initdb.wasm", "pglite.data"]) {
    assert.ok(control.some((s) => s.startsWith("npm:/@electric-sql/pglite@") && s.endsWith(f)), f);
  }

  const node = await graph(ENTRY_POINTS["qarax-node"]);
  for (const f of yaml) assert.ok(node.includes(`configuration/${f}`), `configuration/${f}`);
  assert.ok(node.includes("shared/proto/gen/node.js"));
  assert.ok(!node.some((s) => s.includes("pglite")), "the node does not carry PGlite");
});

Deno.test("compile: the commit reaches --version through the preload module", async () => {
  const dir = await Deno.makeTempDir({ prefix: "qarax-build-info-" });
  try {
    const buildInfo = await writeBuildInfo(dir, "feedc0ffee12");
    // Exactly the binary's permissions, as compiled in.
    for (const [binary, entry] of Object.entries(ENTRY_POINTS)) {
      const flags = permissionFlags(binary as keyof typeof ENTRY_POINTS);
      const r = await deno([
        "run",
        "--no-prompt",
        ...flags,
        "--preload",
        buildInfo,
        entry,
        "--version",
      ]);
      assert.ok(r.success, r.stderr);
      assert.equal(
        r.stdout.trim(),
        `${binary} ${VERSION} (deno ${Deno.version.deno}, commit feedc0ffee12)`,
      );
      // Without a build's record and without permission to run git: "unknown", no prompt.
      const bare = await deno(["run", "--no-prompt", ...flags, entry, "--version"]);
      assert.match(bare.stdout, /, commit unknown\)$/m, bare.stderr);
    }
    // From a source checkout (deno task start runs with -A): the checkout's HEAD.
    const source = await deno(["run", "-A", ENTRY_POINTS.qarax, "--version"]);
    assert.match(source.stdout, new RegExp(`, commit ${gitCommit(ROOT)}\\)$`, "m"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("compile: deno compile accepts both command lines", async () => {
  const dir = await Deno.makeTempDir({ prefix: "qarax-compile-" });
  try {
    const buildInfo = await writeBuildInfo(dir, "feedc0ffee12");
    const host = Deno.build.arch;
    for (const binary of ["qarax", "qarax-node"] as const) {
      const args = compileArgs({ binary, arch: host, outDir: dir, buildInfo });
      const r = await deno(args);
      if (r.success) {
        // A machine that can download denort: the binary must run.
        const v = await new Deno.Command(outputPath(dir, binary, host), {
          args: ["--version"],
          stdout: "piped",
        }).output();
        assert.match(decoder.decode(v.stdout), new RegExp(`^${binary} .*commit feedc0ffee12\\)`));
      } else {
        // Everything before the download (flags, type check, module graph) passed.
        assert.match(r.stderr, /Setting up base binary|denort/, r.stderr);
        assert.match(r.stderr, new RegExp(`Compile .*${ENTRY_POINTS[binary]}`), r.stderr);
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

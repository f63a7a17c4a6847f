/**
 * `deno task bundle`: builds each binary's entry point into one self-contained JavaScript
 * file (`dist/qarax.js`, `dist/qarax-node.js`), with migrations, configuration defaults, the
 * protocol, the docs page assets and PGlite's files embedded and the git commit recorded.
 * Run a bundle with its program's permissions (`runArgs`, printed by the task):
 * `deno run <flags of deployments/permissions.ts> dist/qarax.js`. This is the stand-in for
 * `deno compile`, which cannot fetch its runtime on our build machines; both embed the same
 * assets because they are text and byte imports.
 */
import { parseArgs } from "node:util";
import { buildInfoScript, gitCommit } from "../shared/version.ts";
import { ENTRY_POINTS } from "./compile.ts";
import { type Binary, permissionFlags } from "./permissions.ts";

const root = new URL("..", import.meta.url).pathname;

/** The bundle file name of `binary`. */
export function bundleName(binary: Binary): string {
  return `${binary}.js`;
}

/** `deno` arguments that run `bundle` as `binary`, with exactly its permissions. */
export function runArgs(binary: Binary, bundle: string): string[] {
  return ["run", "--no-prompt", ...permissionFlags(binary), bundle];
}

/** Bundles every entry point into `outDir`; returns the written paths (qarax, qarax-node). */
export async function bundleAll(outDir: string): Promise<string[]> {
  await Deno.mkdir(outDir, { recursive: true });
  const commit = Deno.env.get("QARAX_COMMIT") ?? gitCommit(root) ?? "unknown";
  const written: string[] = [];
  for (const [binary, entry] of Object.entries(ENTRY_POINTS)) {
    const out = `${outDir}/${bundleName(binary as Binary)}`;
    const r = await new Deno.Command(Deno.execPath(), {
      args: ["bundle", "--quiet", "--platform=deno", "-o", out, `${root}${entry}`],
      cwd: root,
      stdout: "inherit",
      stderr: "inherit",
    }).output();
    if (!r.success) throw new Error(`deno bundle failed for ${entry}`);
    const js = await Deno.readTextFile(out);
    await Deno.writeTextFile(out, buildInfoScript(commit) + js);
    written.push(out);
  }
  return written;
}

if (import.meta.main) {
  const { values } = parseArgs({ args: Deno.args, options: { out: { type: "string" } } });
  const outDir = values.out ?? `${root}dist`;
  const paths = await bundleAll(outDir);
  for (const [i, binary] of Object.keys(ENTRY_POINTS).entries()) {
    const { size } = await Deno.stat(paths[i]);
    console.log(`${paths[i]} (${(size / 1024 / 1024).toFixed(1)} MiB); run it with:`);
    console.log(`  deno ${runArgs(binary as Binary, paths[i]).join(" ")}`);
  }
}

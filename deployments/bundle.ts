/**
 * `deno task bundle`: builds each binary's entry point into one self-contained JavaScript
 * file (`dist/qarax.js`, `dist/qarax-node.js`, `dist/cloud-hypervisor-emulator.js`), with
 * migrations, configuration defaults and the protocol embedded. Run a bundle with
 * `deno run -A dist/qarax.js`. This is the stand-in for `deno compile`, which cannot fetch its
 * runtime on our build machines; both embed the same assets because they are text imports.
 */
import { parseArgs } from "node:util";

const root = new URL("..", import.meta.url).pathname;

/** Output file name -> entry point. */
export const BUNDLES: Record<string, string> = {
  "qarax.js": "control/main.ts",
  "qarax-node.js": "node/main.ts",
};

async function gitCommit(): Promise<string> {
  try {
    const out = await new Deno.Command("git", {
      args: ["rev-parse", "--short=12", "HEAD"],
      cwd: root,
      stdout: "piped",
      stderr: "null",
    }).output();
    return out.success ? new TextDecoder().decode(out.stdout).trim() : "unknown";
  } catch {
    return "unknown";
  }
}

/** Bundles every entry point into `outDir`; returns the written paths. */
export async function bundleAll(outDir: string): Promise<string[]> {
  await Deno.mkdir(outDir, { recursive: true });
  const commit = await gitCommit();
  const written: string[] = [];
  for (const [file, entry] of Object.entries(BUNDLES)) {
    const out = `${outDir}/${file}`;
    const r = await new Deno.Command(Deno.execPath(), {
      args: ["bundle", "--quiet", "--platform=deno", "-o", out, `${root}${entry}`],
      cwd: root,
      stdout: "inherit",
      stderr: "inherit",
    }).output();
    if (!r.success) throw new Error(`deno bundle failed for ${entry}`);
    const js = await Deno.readTextFile(out);
    await Deno.writeTextFile(out, `globalThis.QARAX_COMMIT = ${JSON.stringify(commit)};\n${js}`);
    written.push(out);
  }
  return written;
}

if (import.meta.main) {
  const { values } = parseArgs({ args: Deno.args, options: { out: { type: "string" } } });
  const outDir = values.out ?? `${root}dist`;
  for (const path of await bundleAll(outDir)) {
    const { size } = await Deno.stat(path);
    console.log(`${path} (${(size / 1024 / 1024).toFixed(1)} MiB)`);
  }
}

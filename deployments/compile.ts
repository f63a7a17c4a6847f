/**
 * `deno task compile:control` / `deno task compile:node`: builds `qarax` or `qarax-node` as
 * single executables for x86_64 and aarch64 Linux (`dist/<binary>-<arch>`), with the
 * permissions of deployments/permissions.ts baked in.
 *
 * Nothing needs `--include`: migrations, configuration defaults, the generated protocol code,
 * the docs page assets (swagger-ui-dist) and PGlite's WASM and data files are all text or
 * byte imports, so they are part of the module graph that `deno compile` embeds (a test
 * checks the graph). The git commit is embedded as a `--preload` module (`deno compile` has
 * no `--define`) that sets the global shared/version.ts reads, the same statement
 * `deno task bundle` puts at the top of each bundle.
 *
 * Usage: deno run -A deployments/compile.ts <qarax|qarax-node> [--arch x86_64|aarch64]...
 *        [--out dir] [--commit sha]
 */
import { parseArgs } from "node:util";
import { buildInfoScript, gitCommit } from "../shared/version.ts";
import { type Binary, permissionFlags, PERMISSIONS } from "./permissions.ts";

const root = new URL("..", import.meta.url).pathname;

/** The entry point of each binary. */
export const ENTRY_POINTS: Record<Binary, string> = {
  qarax: "control/main.ts",
  "qarax-node": "node/main.ts",
};

/** Architecture name (as `uname -m` prints it) -> Deno compile target. */
export const TARGETS = {
  x86_64: "x86_64-unknown-linux-gnu",
  aarch64: "aarch64-unknown-linux-gnu",
} as const;

export type Arch = keyof typeof TARGETS;

export interface CompileOptions {
  binary: Binary;
  arch: Arch;
  /** Output directory. */
  outDir: string;
  /** The module that records the commit (written by `writeBuildInfo`). */
  buildInfo: string;
}

/** The output path of `binary` for `arch`. */
export function outputPath(outDir: string, binary: Binary, arch: Arch): string {
  return `${outDir}/${binary}-${arch}`;
}

/** The `deno` arguments that compile one binary for one architecture. */
export function compileArgs(o: CompileOptions): string[] {
  return [
    "compile",
    // The lockfile pins every npm package: drift fails the build instead of changing it.
    "--frozen",
    // PGlite's files are byte imports (also enabled in deno.json; explicit for the binary).
    "--unstable-raw-imports",
    // Only packages the entry point reaches: the node does not carry PGlite or Swagger UI.
    "--exclude-unused-npm",
    ...permissionFlags(o.binary),
    "--preload",
    o.buildInfo,
    "--target",
    TARGETS[o.arch],
    "--output",
    outputPath(o.outDir, o.binary, o.arch),
    `${root}${ENTRY_POINTS[o.binary]}`,
  ];
}

/** Writes the build-info module for `commit` into `outDir`; returns its path. */
export async function writeBuildInfo(outDir: string, commit: string): Promise<string> {
  await Deno.mkdir(outDir, { recursive: true });
  const path = `${outDir}/build_info.js`;
  await Deno.writeTextFile(path, buildInfoScript(commit));
  return path;
}

function isBinary(name: string): name is Binary {
  return Object.hasOwn(PERMISSIONS, name);
}

function isArch(name: string): name is Arch {
  return Object.hasOwn(TARGETS, name);
}

if (import.meta.main) {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    allowPositionals: true,
    options: {
      arch: { type: "string", multiple: true },
      out: { type: "string" },
      commit: { type: "string" },
    },
  });
  const [binary] = positionals;
  const arches = values.arch ?? Object.keys(TARGETS);
  if (!binary || !isBinary(binary) || !arches.every(isArch)) {
    console.error(
      `usage: compile.ts <${Object.keys(PERMISSIONS).join("|")}> ` +
        `[--arch ${Object.keys(TARGETS).join("|")}]... [--out dir] [--commit sha]`,
    );
    Deno.exit(2);
  }
  const outDir = values.out ?? `${root}dist`;
  // A container build has no .git: pass --commit (or QARAX_COMMIT) there.
  const commit = values.commit ?? Deno.env.get("QARAX_COMMIT") ?? gitCommit(root) ?? "unknown";
  const buildInfo = await writeBuildInfo(outDir, commit);
  for (const arch of arches as Arch[]) {
    const args = compileArgs({ binary, arch, outDir, buildInfo });
    console.log(`deno ${args.join(" ")}`);
    const r = await new Deno.Command(Deno.execPath(), {
      args,
      cwd: root,
      stdout: "inherit",
      stderr: "inherit",
    }).output();
    if (!r.success) Deno.exit(r.code || 1);
  }
}

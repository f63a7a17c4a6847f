/**
 * Version information reported by `--version`, node info and the API: the release version
 * (deno.json), the Deno version and the git commit the program was built from.
 */
import denoJson from "../deno.json" with { type: "json" };

/** The qarax release version (from deno.json). */
export const VERSION: string = denoJson.version;

/** The global that builds set before any module runs (see `buildInfoScript`). */
export const COMMIT_GLOBAL = "QARAX_COMMIT";

/**
 * The statement that records `commit` for `commit()`: `deno task bundle` puts it at the top of
 * each bundle, `deno task compile:*` embeds it as a `--preload` module (deployments/).
 */
export function buildInfoScript(commit: string): string {
  return `globalThis.${COMMIT_GLOBAL} = ${JSON.stringify(commit)};\n`;
}

/** `git rev-parse --short=12 HEAD` in `dir`, or null (no git, not a checkout, no permission). */
export function gitCommit(dir: string): string | null {
  try {
    // Ask first: a missing permission must not turn into an interactive prompt.
    if (Deno.permissions.querySync({ name: "run", command: "git" }).state !== "granted") {
      return null;
    }
    const out = new Deno.Command("git", {
      args: ["rev-parse", "--short=12", "HEAD"],
      cwd: dir,
      stdout: "piped",
      stderr: "null",
    }).outputSync();
    const text = new TextDecoder().decode(out.stdout).trim();
    return out.success && text ? text : null;
  } catch {
    return null;
  }
}

let cached: string | undefined;

/**
 * The git commit: the one a build recorded, else (running from a source checkout) the
 * checkout's HEAD, else "unknown".
 */
export function commit(): string {
  if (cached !== undefined) return cached;
  const built = (globalThis as Record<string, unknown>)[COMMIT_GLOBAL];
  if (typeof built === "string" && built) return cached = built;
  const here = new URL(".", import.meta.url);
  cached = (here.protocol === "file:" ? gitCommit(here.pathname) : null) ?? "unknown";
  return cached;
}

/** One line for `--version`: product, version, Deno version and commit. */
export function versionLine(binary: string): string {
  return `${binary} ${VERSION} (deno ${Deno.version.deno}, commit ${commit()})`;
}

/** Version information reported by `--version`, node info and the API. */
import denoJson from "../deno.json" with { type: "json" };

/** The qarax release version (from deno.json). */
export const VERSION: string = denoJson.version;

/** The git commit the build came from, when known (set by the bundle/compile tasks). */
export const COMMIT: string = (globalThis as { QARAX_COMMIT?: string }).QARAX_COMMIT ?? "unknown";

/** One line for `--version`: product, version, Deno version and commit. */
export function versionLine(binary: string): string {
  return `${binary} ${VERSION} (deno ${Deno.version.deno}, commit ${COMMIT})`;
}

/**
 * PGlite's runtime files (the PostgreSQL WASM module, initdb's WASM module and the data
 * bundle with share/ and lib/), as byte imports: `deno bundle` inlines them and
 * `deno compile` embeds them, so the embedded database needs neither its npm package on disk
 * nor read access to a Deno cache. Loaded on first use only: the CLI never pays for them.
 */
import type { PGliteOptions } from "@electric-sql/pglite";

let loading:
  | Promise<Pick<PGliteOptions, "pgliteWasmModule" | "initdbWasmModule" | "fsBundle">>
  | null = null;

/** PGlite options that hand it the embedded WASM modules and data bundle. */
export function pgliteAssets() {
  loading ??= (async () => {
    const [wasm, initdb, data] = await Promise.all([
      import("@electric-sql/pglite/pglite.wasm", { with: { type: "bytes" } }),
      import("@electric-sql/pglite/initdb.wasm", { with: { type: "bytes" } }),
      import("@electric-sql/pglite/pglite.data", { with: { type: "bytes" } }),
    ]);
    const [pgliteWasmModule, initdbWasmModule] = await Promise.all([
      WebAssembly.compile(wasm.default),
      WebAssembly.compile(initdb.default),
    ]);
    return { pgliteWasmModule, initdbWasmModule, fsBundle: new Blob([data.default]) };
  })();
  return loading;
}

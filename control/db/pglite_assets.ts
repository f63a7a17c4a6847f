/**
 * PGlite's runtime files (the PostgreSQL WASM module, initdb's WASM module and the data
 * bundle with share/ and lib/), handed to PGlite as options. They are byte imports
 * (`pglite_files.ts`): `deno bundle` inlines them and `deno compile` embeds them, so the
 * embedded database needs neither its npm package on disk nor read access to a Deno cache.
 * Imported on first use only, so CLI commands never decode them.
 */
import type { PGliteOptions } from "@electric-sql/pglite";

type Assets = Pick<PGliteOptions, "pgliteWasmModule" | "initdbWasmModule" | "fsBundle">;
let loading: Promise<Assets> | null = null;

/** PGlite options that hand it the embedded WASM modules and data bundle (loaded once). */
export function pgliteAssets(): Promise<Assets> {
  loading ??= (async () => {
    // The module itself, not each file, is imported lazily: a bundler wraps a lazily
    // imported binary file as CommonJS and copies every byte into a property.
    const files = await import("./pglite_files.ts");
    const [pgliteWasmModule, initdbWasmModule] = await Promise.all([
      WebAssembly.compile(files.pgliteWasm),
      WebAssembly.compile(files.initdbWasm),
    ]);
    return { pgliteWasmModule, initdbWasmModule, fsBundle: new Blob([files.pgliteData]) };
  })();
  return loading;
}

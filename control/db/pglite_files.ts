/**
 * PGlite's runtime files as byte imports (kept apart from `pglite_assets.ts` so they are
 * imported, and decoded from a bundle, only when the embedded database starts).
 */
import pgliteWasm from "@electric-sql/pglite/pglite.wasm" with { type: "bytes" };
import initdbWasm from "@electric-sql/pglite/initdb.wasm" with { type: "bytes" };
import pgliteData from "@electric-sql/pglite/pglite.data" with { type: "bytes" };

export { initdbWasm, pgliteData, pgliteWasm };

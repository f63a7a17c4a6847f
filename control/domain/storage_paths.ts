/**
 * Paths of storage objects, pure: an object's path is stored relative to its pool and must be
 * a clean path inside it (validated with `shared/net/names.ts`), given either relative or as
 * an absolute path under the pool's directory.
 */
import { InvalidArgumentError } from "../../shared/errors/errors.ts";
import { absolutePath } from "../../shared/net/names.ts";

/** Normalises `input` to a clean path relative to the pool at `poolPath`, or throws (422). */
export function objectPathInPool(poolPath: string, input: string, field = "path"): string {
  const pool = poolPath.replace(/\/+$/, "");
  let rel = input;
  if (input.startsWith("/")) {
    if (!input.startsWith(`${pool}/`)) {
      throw InvalidArgumentError.field(
        field,
        `${input} is not inside the pool's directory ${pool}`,
      );
    }
    rel = input.slice(pool.length + 1);
  }
  if (rel === "" || rel.endsWith("/")) {
    throw InvalidArgumentError.field(field, `"${input}" does not name a file`);
  }
  absolutePath(`/${rel}`, field);
  return rel;
}

/** The default file name of a disk created by the control plane. */
export function defaultDiskPath(id: string, format: "raw" | "qcow2"): string {
  return `${id}.${format === "qcow2" ? "qcow2" : "img"}`;
}

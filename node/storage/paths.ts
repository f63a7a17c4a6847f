/**
 * Path confinement: every disk, kernel, initramfs and firmware path the node touches must
 * resolve inside an allowed directory (an attached pool, or the firmware dir for firmware).
 * A path is checked as text first (clean, absolute, no `..`), then resolved on disk: the file's
 * realpath, or the realpath of its nearest existing parent plus the rest, so symlinks that lead
 * out of the pool are caught whether the file exists yet or not.
 */
import { basename, dirname, join } from "node:path";
import {
  FailedPreconditionError,
  InvalidArgumentError,
  PermissionDeniedError,
} from "../../shared/errors/errors.ts";
import { absolutePath } from "../../shared/net/names.ts";

/** An allowed directory: its name (for messages) and its path as configured. */
export interface Root {
  name: string;
  path: string;
}

/** True when `path` is `root` itself or below it (both normalised, absolute). */
export function isWithin(path: string, root: string): boolean {
  const r = root.endsWith("/") ? root.slice(0, -1) : root;
  return path === r || path.startsWith(`${r}/`);
}

/**
 * The real location `path` refers to: its own realpath when it exists, else the realpath of
 * its nearest existing ancestor joined with the missing rest. A dangling symlink is refused
 * (writing through it would create its target, wherever that is).
 */
export async function resolveReal(path: string, field = "path"): Promise<string> {
  const missing: string[] = [];
  let current = path;
  for (;;) {
    let exists = true;
    try {
      await Deno.lstat(current);
    } catch (err) {
      if (err instanceof Deno.errors.NotADirectory) {
        throw InvalidArgumentError.field(field, `a parent of ${path} is not a directory`);
      }
      if (!(err instanceof Deno.errors.NotFound)) throw err;
      exists = false;
    }
    if (exists) {
      let real: string;
      try {
        real = await Deno.realPath(current);
      } catch (err) {
        if (err instanceof Deno.errors.NotFound) {
          throw InvalidArgumentError.field(field, `${current} is a dangling symbolic link`);
        }
        if (err instanceof Deno.errors.NotADirectory) {
          throw InvalidArgumentError.field(field, `a parent of ${path} is not a directory`);
        }
        throw err;
      }
      return missing.length ? join(real, ...missing.reverse()) : real;
    }
    missing.push(basename(current));
    current = dirname(current);
  }
}

/**
 * Checks that `path` lies inside one of `roots` (strictly below it) and returns its real
 * location. Malformed paths are InvalidArgument, symlinks that escape are PermissionDenied,
 * paths outside every root are FailedPrecondition (attach the pool first). With `noFollow`
 * a symlink as the last component is not followed.
 */
export async function confinePath(
  path: string,
  roots: Root[],
  field = "path",
  options: { noFollow?: boolean } = {},
): Promise<string> {
  absolutePath(path, field);
  if (path === "/" || path.endsWith("/")) {
    throw InvalidArgumentError.field(field, `${path} names a directory, not a file`);
  }
  // noFollow: the entry itself (e.g. a symlink to delete), not what it points to.
  const real = options.noFollow
    ? join(await resolveReal(dirname(path), field), basename(path))
    : await resolveReal(path, field);
  let lexicallyInside = false;
  for (const root of roots) {
    let rootReal: string;
    try {
      rootReal = await Deno.realPath(root.path);
    } catch {
      continue; // a pool whose directory is gone holds nothing
    }
    if (isWithin(path, root.path) || isWithin(path, rootReal)) lexicallyInside = true;
    if (real === rootReal) {
      throw InvalidArgumentError.field(
        field,
        `${path} is the directory of ${root.name}, not a file`,
      );
    }
    if (isWithin(real, rootReal)) return real;
  }
  if (lexicallyInside) {
    throw new PermissionDeniedError(
      `${field}: ${path} resolves to ${real}, outside its storage pool (symbolic link escape)`,
      { details: [{ field, message: "resolves outside its storage pool" }] },
    );
  }
  const names = roots.map((r) => `${r.name} (${r.path})`).join(", ") || "none";
  throw new FailedPreconditionError(
    `${field}: ${path} is not inside an attached storage pool (attached: ${names})`,
    { details: [{ field, message: "not inside an attached storage pool" }] },
  );
}

/**
 * Crash-safe file publication, shared by the state store and the disk operations: a file is
 * written (or built) under a temporary name in the same directory, made durable, then moved
 * into place with one rename (or a no-clobber link), and the directory entry is fsynced. A
 * crash leaves the old file or the new one, plus at most a temp file, never a torn file.
 */
import { basename, dirname, join } from "node:path";
import { AlreadyExistsError } from "../../shared/errors/errors.ts";

/** Marks temp files of `writeFileAtomic` (`<file>.tmp-<random>`). */
export const TEMP_MARK = ".tmp-";

/** Test hook points of `writeFileAtomic` (fault injection only). */
export interface AtomicWriteHooks {
  /** Runs after the temp file is durable and before it replaces the target. */
  beforeRename?: (tempPath: string) => void | Promise<void>;
}

/** Writes `data` to `path` so readers see the old or the new content, even across a crash. */
export async function writeFileAtomic(
  path: string,
  data: Uint8Array,
  options: { mode?: number; hooks?: AtomicWriteHooks } = {},
): Promise<void> {
  const temp = `${path}${TEMP_MARK}${crypto.randomUUID().slice(0, 8)}`;
  try {
    const file = await Deno.open(temp, {
      write: true,
      createNew: true,
      mode: options.mode ?? 0o600,
    });
    try {
      let written = 0;
      while (written < data.length) written += await file.write(data.subarray(written));
      await file.sync();
    } finally {
      file.close();
    }
    await options.hooks?.beforeRename?.(temp);
    await Deno.rename(temp, path);
  } catch (err) {
    await Deno.remove(temp).catch(() => {});
    throw err;
  }
  await syncDir(dirname(path));
}

/** fsyncs a directory so a rename inside it survives a power loss. */
export async function syncDir(dir: string): Promise<void> {
  const handle = await Deno.open(dir, { read: true });
  try {
    await handle.sync();
  } finally {
    handle.close();
  }
}

/** A fresh temp path beside `path` (hidden, so listings of a pool do not show half-made files). */
export function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.qarax-tmp-${crypto.randomUUID().slice(0, 8)}`);
}

/** True for names made by `tempPathFor` (left behind only by a crash). */
export function isTempName(name: string): boolean {
  return /^\..+\.qarax-tmp-[0-9a-f]{8}$/.test(name);
}

/**
 * Moves the finished `temp` to `path`. Without `overwrite` an existing `path` is never
 * replaced (AlreadyExistsError, `temp` removed): a hard link publishes only if the name is free.
 */
export async function publishFile(
  temp: string,
  path: string,
  options: { overwrite?: boolean } = {},
): Promise<void> {
  if (options.overwrite) {
    await Deno.rename(temp, path);
  } else {
    let linked = true;
    try {
      await Deno.link(temp, path);
    } catch (err) {
      if (err instanceof Deno.errors.AlreadyExists) {
        await Deno.remove(temp).catch(() => {});
        throw new AlreadyExistsError(`${path} already exists`);
      }
      linked = false; // a filesystem without hard links: check, then rename
    }
    if (linked) {
      await Deno.remove(temp);
    } else {
      if (await Deno.lstat(path).then(() => true, () => false)) {
        await Deno.remove(temp).catch(() => {});
        throw new AlreadyExistsError(`${path} already exists`);
      }
      await Deno.rename(temp, path);
    }
  }
  await syncDir(dirname(path));
}

/**
 * VM snapshot directories on the node: what Cloud Hypervisor writes for `file://<dir>`
 * (`config.json`, `state.json`, `memory-ranges`) and removing such a directory. The path is a
 * real path already confined (strictly) to a pool by the caller (`PoolManager.resolve` with
 * `noFollow`); removal refuses anything that is not a plain directory holding only those
 * files, so a wrong path can never take a pool's other files with it.
 */
import { FailedPreconditionError, InvalidArgumentError } from "../../shared/errors/errors.ts";

/** The files of a CH snapshot directory. */
export const SNAPSHOT_FILES: readonly string[] = ["config.json", "state.json", "memory-ranges"];

/**
 * Deletes a snapshot directory and its files; a missing directory is success. Returns whether
 * there was one. Everything is checked before anything is removed.
 */
export async function deleteSnapshotDir(path: string, field = "path"): Promise<boolean> {
  let st: Deno.FileInfo;
  try {
    st = await Deno.lstat(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
  if (!st.isDirectory) {
    throw InvalidArgumentError.field(field, `${path} is not a directory`);
  }
  const files: string[] = [];
  for await (const entry of Deno.readDir(path)) {
    if (!entry.isFile || !SNAPSHOT_FILES.includes(entry.name)) {
      throw new FailedPreconditionError(
        `${field}: ${path} is not a snapshot directory: it holds ${entry.name}`,
        { details: [{ field, message: "holds files that are not a snapshot's" }] },
      );
    }
    files.push(entry.name);
  }
  for (const name of files) {
    await Deno.remove(`${path}/${name}`).catch((err) => {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    });
  }
  // Non-recursive: a file that appeared meanwhile makes this fail rather than vanish.
  await Deno.remove(path);
  return true;
}

/**
 * Writes a NoCloud seed image: a small VFAT filesystem labelled CIDATA holding `user-data`,
 * `meta-data` and `network-config`, made with `mkfs.vfat` and `mcopy` (dosfstools, mtools)
 * without mounting anything. Built under a temp name and moved into place, readable by the
 * owner only (user-data may carry secrets).
 */
import { join } from "node:path";
import { run } from "../../shared/cmd/run.ts";
import { publishFile, tempPathFor } from "../state/atomic.ts";
import type { SeedFiles } from "./config.ts";

/** The volume label cloud-init's NoCloud datasource looks for. */
export const SEED_LABEL = "CIDATA";
/** mtools refuses some valid images without this. */
const MTOOLS_ENV = { MTOOLS_SKIP_CHECK: "1" };

/** Size in KiB: the files plus room for FAT structures, at least 1 MiB. */
export function seedSizeKiB(files: SeedFiles): number {
  const bytes = Object.values(files).reduce(
    (n, text) => n + new TextEncoder().encode(text ?? "").length,
    0,
  );
  return Math.max(1024, Math.ceil((bytes * 1.1 + 256 * 1024) / 1024));
}

/** Writes (or replaces) the seed image at `path`. */
export async function writeSeedImage(path: string, files: SeedFiles): Promise<void> {
  const staging = await Deno.makeTempDir({ prefix: "qarax-seed-" });
  const image = tempPathFor(path);
  try {
    await run(["mkfs.vfat", "-n", SEED_LABEL, "-C", image, String(seedSizeKiB(files))]);
    await Deno.chmod(image, 0o600);
    for (const [name, text] of Object.entries(files)) {
      if (text === undefined) continue;
      const local = join(staging, name);
      await Deno.writeTextFile(local, text, { mode: 0o600 });
      await run(["mcopy", "-o", "-i", image, local, `::${name}`], { env: MTOOLS_ENV });
    }
    await publishFile(image, path, { overwrite: true });
  } catch (err) {
    await Deno.remove(image).catch(() => {});
    throw err;
  } finally {
    await Deno.remove(staging, { recursive: true });
  }
}

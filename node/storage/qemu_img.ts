/**
 * The adapter around `qemu-img`: image creation, JSON info and resize, run through the one
 * command runner. The format is always passed explicitly (`-f`), never probed, so a raw image
 * whose content looks like a qcow2 header cannot trick the node into following a backing file.
 */
import { z } from "zod";
import { run } from "../../shared/cmd/run.ts";
import { InternalError } from "../../shared/errors/errors.ts";

export const DISK_FORMATS = ["raw", "qcow2"] as const;
export type DiskFormat = typeof DISK_FORMATS[number];

/** What `qemu-img info` says about an image. */
export interface ImageInfo {
  format: string;
  virtualSize: number;
  actualSize: number;
  backingFile?: string;
  backingFormat?: string;
}

const InfoJson = z.object({
  format: z.string(),
  "virtual-size": z.number(),
  "actual-size": z.number().optional(),
  "full-backing-filename": z.string().optional(),
  "backing-filename": z.string().optional(),
  "backing-filename-format": z.string().optional(),
});

const TIMEOUT_MS = 10 * 60_000;

/** `qemu-img info` of an image of a known format; `-U` so images in use by a VM can be read. */
export async function imageInfo(path: string, format: DiskFormat): Promise<ImageInfo> {
  const out = await run(["qemu-img", "info", "--output=json", "-U", "-f", format, path], {
    timeoutMs: 60_000,
  });
  let parsed;
  try {
    parsed = InfoJson.parse(JSON.parse(out.stdout));
  } catch (err) {
    throw new InternalError(`unexpected output of qemu-img info for ${path}`, { cause: err });
  }
  return {
    format: parsed.format,
    virtualSize: parsed["virtual-size"],
    actualSize: parsed["actual-size"] ?? 0,
    backingFile: parsed["full-backing-filename"] ?? parsed["backing-filename"],
    backingFormat: parsed["backing-filename-format"],
  };
}

/** `qemu-img create`: a new image at `path` (which must not exist yet). */
export async function createImage(
  path: string,
  options: {
    format: DiskFormat;
    sizeBytes?: number;
    backing?: { path: string; format: DiskFormat };
    preallocation?: "falloc" | "full";
  },
): Promise<void> {
  const argv = ["qemu-img", "create", "-q", "-f", options.format];
  if (options.backing) argv.push("-b", options.backing.path, "-F", options.backing.format);
  if (options.preallocation) argv.push("-o", `preallocation=${options.preallocation}`);
  argv.push(path);
  if (options.sizeBytes !== undefined) argv.push(String(options.sizeBytes));
  await run(argv, { timeoutMs: TIMEOUT_MS });
}

/** `qemu-img resize` of a qcow2 image to `sizeBytes` (growing only). */
export async function resizeImage(path: string, sizeBytes: number): Promise<void> {
  await run(["qemu-img", "resize", "-q", "-f", "qcow2", path, String(sizeBytes)], {
    timeoutMs: TIMEOUT_MS,
  });
}

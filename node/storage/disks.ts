/**
 * Disk images on the node: blank raw (sparse, or preallocated) and qcow2 images, qcow2
 * overlays on a base image (linked clones), delete, grow, format detection and info. Paths are
 * real paths already confined to a pool by the caller (`PoolManager.resolve`). New images are
 * built under a temp name beside the target and published atomically, so a crash or failure
 * never leaves a half-made disk under the requested name, and an existing file is never
 * replaced unless the caller asks for it.
 */
import { dirname } from "node:path";
import {
  AlreadyExistsError,
  InvalidArgumentError,
  NotFoundError,
} from "../../shared/errors/errors.ts";
import { publishFile, tempPathFor } from "../state/atomic.ts";
import {
  createImage,
  DISK_FORMATS,
  type DiskFormat,
  type ImageInfo,
  imageInfo,
  resizeImage,
} from "./qemu_img.ts";

export { DISK_FORMATS, type DiskFormat, type ImageInfo };

/** Progress of a long disk operation. */
export interface Progress {
  bytesWritten: number;
  /** 0 when unknown. */
  totalBytes: number;
}
export type ProgressFn = (progress: Progress) => void;

/** Options every disk-creating operation takes. */
export interface CreateOptions {
  /** Replace an existing file at the target (default: refuse with AlreadyExistsError). */
  overwrite?: boolean;
  onProgress?: ProgressFn;
}

/** Largest disk the node creates (64 TiB), far above anything sane, below float precision. */
export const MAX_DISK_BYTES = 64 * 2 ** 40;
const SECTOR = 512;
const QCOW2_MAGIC = [0x51, 0x46, 0x49, 0xfb]; // "QFI\xfb"
const FILE_MODE = 0o600;

/** Validates a disk size in bytes (positive, at most MAX_DISK_BYTES). */
export function diskSize(size: number, field = "size_bytes"): number {
  if (!Number.isSafeInteger(size) || size <= 0 || size > MAX_DISK_BYTES) {
    throw InvalidArgumentError.field(field, `must be 1 to ${MAX_DISK_BYTES} bytes, got ${size}`);
  }
  return size;
}

/** Rounds up to whole 512-byte sectors (as qemu-img does for qcow2). */
export function roundToSector(size: number): number {
  return Math.ceil(size / SECTOR) * SECTOR;
}

/** Throws AlreadyExistsError when `path` exists and may not be replaced. */
export async function assertFree(path: string, overwrite = false): Promise<void> {
  if (overwrite) return;
  try {
    await Deno.lstat(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return;
    throw err;
  }
  throw new AlreadyExistsError(`${path} already exists`);
}

/**
 * Builds a file at a temp path beside `path` with `build`, then publishes it; the temp file
 * is removed on any failure.
 */
export async function buildAtomically<T>(
  path: string,
  overwrite: boolean | undefined,
  build: (temp: string) => Promise<T>,
): Promise<T> {
  await assertFree(path, overwrite);
  await Deno.mkdir(dirname(path), { recursive: true, mode: 0o750 });
  const temp = tempPathFor(path);
  try {
    const result = await build(temp);
    await Deno.chmod(temp, FILE_MODE);
    await publishFile(temp, path, { overwrite });
    return result;
  } catch (err) {
    await Deno.remove(temp).catch(() => {});
    throw err;
  }
}

/** A blank raw disk: sparse by default, fully allocated with `preallocate`. */
export async function createRawDisk(
  path: string,
  sizeBytes: number,
  options: CreateOptions & { preallocate?: boolean } = {},
): Promise<void> {
  const size = roundToSector(diskSize(sizeBytes));
  await buildAtomically(path, options.overwrite, async (temp) => {
    if (options.preallocate) {
      // falloc reserves the blocks at once; filesystems without fallocate get zeros written.
      await createImage(temp, { format: "raw", sizeBytes: size, preallocation: "falloc" })
        .catch(async () => {
          await Deno.remove(temp).catch(() => {});
          await createImage(temp, { format: "raw", sizeBytes: size, preallocation: "full" });
        });
    } else {
      const file = await Deno.open(temp, { write: true, createNew: true, mode: FILE_MODE });
      try {
        await file.truncate(size);
        await file.sync();
      } finally {
        file.close();
      }
    }
  });
  options.onProgress?.({ bytesWritten: size, totalBytes: size });
}

/** A blank qcow2 image of `sizeBytes` virtual size. */
export async function createQcow2Disk(
  path: string,
  sizeBytes: number,
  options: CreateOptions = {},
): Promise<void> {
  const size = diskSize(sizeBytes);
  await buildAtomically(
    path,
    options.overwrite,
    (temp) => createImage(temp, { format: "qcow2", sizeBytes: size }),
  );
  options.onProgress?.({ bytesWritten: size, totalBytes: size });
}

/**
 * A qcow2 overlay on `basePath` (a linked clone). `sizeBytes` 0/undefined means the base's
 * size; a smaller size is refused (the guest would lose the end of its disk). The base format
 * is detected from its header when not given.
 */
export async function createOverlayDisk(
  path: string,
  basePath: string,
  options: CreateOptions & { baseFormat?: DiskFormat; sizeBytes?: number } = {},
): Promise<void> {
  if (path === basePath) {
    throw InvalidArgumentError.field("base_path", "the overlay cannot be its own base");
  }
  const baseFormat = options.baseFormat ?? await detectFormat(basePath, "base_path");
  const base = await imageInfo(basePath, baseFormat);
  let size = base.virtualSize;
  if (options.sizeBytes) {
    size = diskSize(options.sizeBytes);
    if (size < base.virtualSize) {
      throw InvalidArgumentError.field(
        "size_bytes",
        `${size} is smaller than the base image (${base.virtualSize} bytes)`,
      );
    }
  }
  await buildAtomically(path, options.overwrite, (temp) =>
    createImage(temp, {
      format: "qcow2",
      sizeBytes: size,
      backing: { path: basePath, format: baseFormat },
    }));
  options.onProgress?.({ bytesWritten: size, totalBytes: size });
}

/** Deletes a disk; a missing file is success. Returns whether there was one. */
export async function deleteDisk(path: string): Promise<boolean> {
  try {
    const st = await Deno.lstat(path);
    if (st.isDirectory) throw InvalidArgumentError.field("path", `${path} is a directory`);
    await Deno.remove(path);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}

/** The image format from the file's header: qcow2 by its magic, raw otherwise. */
export async function detectFormat(path: string, field = "path"): Promise<DiskFormat> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true });
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new NotFoundError(`${field}: ${path} does not exist`);
    }
    throw err;
  }
  try {
    const head = new Uint8Array(4);
    let got = 0;
    while (got < 4) {
      const n = await file.read(head.subarray(got));
      if (n === null) break;
      got += n;
    }
    return got === 4 && QCOW2_MAGIC.every((b, i) => head[i] === b) ? "qcow2" : "raw";
  } finally {
    file.close();
  }
}

/** Format, virtual size, allocation and backing file of a disk. */
export async function diskInfo(path: string, format?: DiskFormat): Promise<ImageInfo> {
  return imageInfo(path, format ?? await detectFormat(path));
}

/** Grows a disk to `newSizeBytes` (raw: truncate; qcow2: qemu-img resize). Never shrinks. */
export async function resizeDisk(
  path: string,
  newSizeBytes: number,
  field = "new_size",
): Promise<void> {
  const format = await detectFormat(path);
  const wanted = diskSize(newSizeBytes, field);
  const current = (await imageInfo(path, format)).virtualSize;
  const target = format === "raw" ? roundToSector(wanted) : wanted;
  if (target < current) {
    throw InvalidArgumentError.field(
      field,
      `${wanted} is smaller than the disk (${current} bytes); shrinking is not supported`,
    );
  }
  if (target === current) return;
  if (format === "raw") await Deno.truncate(path, target);
  else await resizeImage(path, target);
}

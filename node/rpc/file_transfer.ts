/**
 * The FileTransferService: `CreateDisk` (blank raw, blank qcow2, qcow2 overlay, URL download;
 * streamed progress then one final message), `DeleteDisk`, `DeleteSnapshot` (a VM snapshot's
 * directory), `DownloadFile` and `CopyFile`.
 * Thin: every path is confined to an attached pool by the pool manager, the target is held
 * for the duration, and the work is done by `node/storage`. Failures are thrown as domain
 * errors; the server's middleware turns them into gRPC statuses.
 */
import type { CallContext, ServiceImplementation } from "nice-grpc";
import { InvalidArgumentError } from "../../shared/errors/errors.ts";
import { type FileTransferServiceDefinition, node } from "../../shared/proto/mod.ts";
import {
  createOverlayDisk,
  createQcow2Disk,
  createRawDisk,
  deleteDisk,
  DISK_FORMATS,
  type DiskFormat,
  type Progress,
  type ProgressFn,
} from "../storage/disks.ts";
import type { PoolManager } from "../storage/pools.ts";
import { deleteSnapshotDir } from "../storage/snapshots.ts";
import { copyFile, downloadFile } from "../storage/transfer.ts";

/** Longest gap between progress messages is the work itself; shortest is this. */
const PROGRESS_INTERVAL_MS = 250;

type TransferResponse = node.TransferResponse.$Properties;

/**
 * Runs `op` and yields its progress while it runs: only the latest report, at most one per
 * `intervalMs` (the first at once). Returns what `op` returns, or throws what it throws.
 */
export async function* progressOf<R>(
  op: (report: ProgressFn) => Promise<R>,
  intervalMs = PROGRESS_INTERVAL_MS,
): AsyncGenerator<Progress, R> {
  let latest: Progress | undefined;
  let finished = false;
  let onReport: (() => void) | undefined;
  let onFinish: (() => void) | undefined;
  const done = op((p) => {
    latest = p;
    onReport?.();
  }).finally(() => {
    finished = true;
    onReport?.();
    onFinish?.();
  });
  done.catch(() => {}); // awaited below; this only marks it handled while we wait
  let last = -Infinity;
  while (!finished) {
    if (!latest) await new Promise<void>((r) => onReport = r);
    onReport = undefined;
    const wait = last + intervalMs - Date.now();
    if (!finished && wait > 0) {
      // Reports during the pause only replace `latest`; the end of the work cuts it short.
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((r) => {
        onFinish = r;
        timer = setTimeout(r, wait);
      });
      clearTimeout(timer);
      onFinish = undefined;
    }
    if (finished || !latest) continue;
    const p = latest;
    latest = undefined;
    last = Date.now();
    yield p;
  }
  return await done;
}

function baseFormat(text: string | undefined): DiskFormat | undefined {
  if (!text) return undefined;
  if (!(DISK_FORMATS as readonly string[]).includes(text)) {
    throw InvalidArgumentError.field("overlay.base_format", `must be raw or qcow2, got ${text}`);
  }
  return text as DiskFormat;
}

/** The FileTransferService over the node's pools. */
export function fileTransferService(
  deps: { pools: PoolManager },
): ServiceImplementation<FileTransferServiceDefinition> {
  const { pools } = deps;

  return {
    async *createDisk(req: node.CreateDiskRequest, ctx: CallContext) {
      const transferId = req.transferId ?? "";
      const size = Number(req.sizeBytes ?? 0);
      const path = await pools.resolve(req.path ?? "", "path");
      let op: (report: ProgressFn) => Promise<unknown>;
      if (req.blank) {
        op = (onProgress) =>
          createRawDisk(path, size, { preallocate: !!req.blank?.preallocate, onProgress });
      } else if (req.qcow2) {
        op = (onProgress) => createQcow2Disk(path, size, { onProgress });
      } else if (req.overlay) {
        const base = await pools.resolve(req.overlay.basePath ?? "", "overlay.base_path");
        const format = baseFormat(req.overlay.baseFormat);
        op = (onProgress) =>
          createOverlayDisk(path, base, {
            baseFormat: format,
            sizeBytes: size || undefined,
            onProgress,
          });
      } else if (req.url) {
        const source = req.url;
        op = (onProgress) =>
          downloadFile(source.url ?? "", path, {
            sha256: source.sha256 || undefined,
            growTo: size || undefined,
            signal: ctx.signal,
            onProgress,
          });
      } else {
        throw InvalidArgumentError.field(
          "source",
          "one of blank, qcow2, overlay or url is required",
        );
      }
      using _hold = await pools.hold([path]);
      // The final message carries the last report, which throttling may not have sent.
      let last: Progress = { bytesWritten: 0, totalBytes: size };
      const progress = progressOf((report) =>
        op((p) => {
          last = p;
          report(p);
        })
      );
      try {
        for (;;) {
          const step = await progress.next();
          if (step.done) break;
          yield message(transferId, step.value, false);
        }
      } finally {
        // A call cancelled mid-way still waits for the work to stop before releasing the path.
        await drain(progress);
      }
      yield message(transferId, last, true);
    },

    async deleteDisk(req: node.DeleteDiskRequest) {
      const path = await pools.resolve(req.path ?? "", "path", { noFollow: true });
      await pools.withPaths([path], () => deleteDisk(path));
      return {};
    },

    async deleteSnapshot(req: node.DeleteSnapshotRequest) {
      // Strictly below a pool (never the pool itself), the directory itself (not a link's target).
      const path = await pools.resolve(req.path ?? "", "path", { noFollow: true });
      await pools.withPaths([path], () => deleteSnapshotDir(path));
      return {};
    },

    async downloadFile(req: node.DownloadFileRequest, ctx: CallContext) {
      const path = await pools.resolve(req.destinationPath ?? "", "destination_path");
      const result = await pools.withPaths(
        [path],
        () => downloadFile(req.sourceUrl ?? "", path, { signal: ctx.signal }),
      );
      return final(req.transferId ?? "", result.bytesWritten);
    },

    async copyFile(req: node.CopyFileRequest) {
      const source = await pools.resolve(req.sourcePath ?? "", "source_path");
      const path = await pools.resolve(req.destinationPath ?? "", "destination_path");
      if (source === path) {
        throw InvalidArgumentError.field("destination_path", "is the same file as source_path");
      }
      const result = await pools.withPaths([path], () => copyFile(source, path));
      return final(req.transferId ?? "", result.bytesWritten);
    },
  };
}

async function drain(progress: AsyncGenerator<Progress, unknown>): Promise<void> {
  try {
    while (!(await progress.next()).done) { /* discard */ }
  } catch { /* the caller already saw (or no longer cares about) the error */ }
}

function final(id: string, bytes: number): TransferResponse {
  return { transferId: id, success: true, bytesWritten: bytes, totalBytes: bytes, isFinal: true };
}

function message(id: string, p: Progress, isFinal: boolean): TransferResponse {
  return {
    transferId: id,
    success: isFinal,
    bytesWritten: p.bytesWritten,
    totalBytes: p.totalBytes,
    isFinal,
  };
}

/**
 * Filling a disk from elsewhere: a URL download streamed to a temp file beside the target
 * (progress reported, optional sha256 verified, idle timeout, published only when complete),
 * and a sparse-aware local copy. On any failure the temp file is removed and the target is
 * untouched.
 */
import { createHash } from "node:crypto";
import {
  CancelledError,
  DeadlineExceededError,
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
  UnavailableError,
} from "../../shared/errors/errors.ts";
import { run } from "../../shared/cmd/run.ts";
import {
  buildAtomically,
  type CreateOptions,
  detectFormat,
  diskInfo,
  resizeDisk,
} from "./disks.ts";

/** Options of `downloadFile`. */
export interface DownloadOptions extends CreateOptions {
  /** Lowercase hex sha256 the content must have. */
  sha256?: string;
  /** Give up when no bytes arrive for this long (default 60 s). */
  idleTimeoutMs?: number;
  /** Cancels the transfer (e.g. the RPC's client went away). */
  signal?: AbortSignal;
  /** Grow the downloaded image to this virtual size before publishing it (never shrinks). */
  growTo?: number;
}

/** What a finished transfer wrote. */
export interface TransferResult {
  bytesWritten: number;
  sha256?: string;
}

/** Validates a download URL: http(s) only. */
export function downloadUrl(text: string, field = "url"): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw InvalidArgumentError.field(field, `"${text}" is not a URL`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw InvalidArgumentError.field(field, `only http and https URLs are supported`);
  }
  return url;
}

/** Validates a sha256 given as 64 hex digits; returns it lowercase. */
export function sha256Hex(text: string, field = "sha256"): string {
  if (!/^[0-9a-fA-F]{64}$/.test(text)) {
    throw InvalidArgumentError.field(field, "must be 64 hex digits");
  }
  return text.toLowerCase();
}

/** The URL without credentials, for messages and logs. */
export function displayUrl(url: URL): string {
  const shown = new URL(url);
  shown.username = "";
  shown.password = "";
  return shown.toString();
}

/** Downloads `url` to `path`; see the module comment for the guarantees. */
export async function downloadFile(
  url: string | URL,
  path: string,
  options: DownloadOptions = {},
): Promise<TransferResult> {
  const source = typeof url === "string" ? downloadUrl(url) : url;
  const expected = options.sha256 ? sha256Hex(options.sha256) : undefined;
  const shown = displayUrl(source);
  const idleMs = options.idleTimeoutMs ?? 60_000;
  return await buildAtomically(path, options.overwrite, async (temp) => {
    const abort = new AbortController();
    let idle = false;
    let timer = setTimeout(() => {
      idle = true;
      abort.abort();
    }, idleMs);
    const kick = () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        idle = true;
        abort.abort();
      }, idleMs);
    };
    const onCancel = () => abort.abort();
    options.signal?.addEventListener("abort", onCancel);
    const failure = (err: unknown) => {
      if (options.signal?.aborted) return new CancelledError(`download of ${shown} cancelled`);
      if (idle) {
        return new DeadlineExceededError(`download of ${shown} stalled for ${idleMs} ms`);
      }
      return new UnavailableError(
        `download of ${shown} failed: ${(err as Error)?.message ?? err}`,
        { cause: err },
      );
    };
    const file = await Deno.open(temp, { write: true, createNew: true, mode: 0o600 });
    try {
      let response: Response;
      try {
        response = await fetch(source, { signal: abort.signal, redirect: "follow" });
      } catch (err) {
        throw failure(err);
      }
      if (!response.ok) {
        await response.body?.cancel();
        const msg = `${shown} answered HTTP ${response.status}`;
        if (response.status === 404 || response.status === 410) throw new NotFoundError(msg);
        if (response.status >= 500) throw new UnavailableError(msg);
        throw new FailedPreconditionError(msg);
      }
      const total = Number(response.headers.get("content-length") ?? 0) || 0;
      const hash = createHash("sha256");
      let written = 0;
      options.onProgress?.({ bytesWritten: 0, totalBytes: total });
      try {
        for await (const chunk of response.body ?? []) {
          kick();
          hash.update(chunk);
          for (let off = 0; off < chunk.length;) off += await file.write(chunk.subarray(off));
          written += chunk.length;
          options.onProgress?.({ bytesWritten: written, totalBytes: total });
        }
      } catch (err) {
        throw failure(err);
      }
      if (total && written !== total) {
        throw new UnavailableError(`download of ${shown} ended after ${written} of ${total} bytes`);
      }
      const actual = hash.digest("hex");
      if (expected && actual !== expected) {
        throw new FailedPreconditionError(
          `download of ${shown}: sha256 mismatch (expected ${expected}, got ${actual})`,
        );
      }
      await file.sync();
      await refuseBackingFile(temp, shown);
      if (options.growTo) await resizeDisk(temp, options.growTo, "size_bytes");
      return { bytesWritten: written, sha256: actual };
    } finally {
      clearTimeout(timer);
      options.signal?.removeEventListener("abort", onCancel);
      file.close();
    }
  });
}

/**
 * A downloaded qcow2 that names a backing file would make the VM read whatever host file it
 * names: such images are refused.
 */
async function refuseBackingFile(path: string, shown: string): Promise<void> {
  if (await detectFormat(path) !== "qcow2") return;
  const info = await diskInfo(path, "qcow2");
  if (info.backingFile) {
    throw new FailedPreconditionError(
      `${shown} is a qcow2 image with a backing file (${info.backingFile}); refusing it`,
    );
  }
}

/** Copies `source` to `path` keeping holes (and reflinking where the filesystem can). */
export async function copyFile(
  source: string,
  path: string,
  options: CreateOptions = {},
): Promise<TransferResult> {
  let total: number;
  try {
    const st = await Deno.stat(source);
    if (!st.isFile) throw InvalidArgumentError.field("source_path", `${source} is not a file`);
    total = st.size;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new NotFoundError(`source_path: ${source} does not exist`);
    }
    throw err;
  }
  return await buildAtomically(path, options.overwrite, async (temp) => {
    options.onProgress?.({ bytesWritten: 0, totalBytes: total });
    // cp writes the temp file; its size shows how far it got.
    let polling = Promise.resolve();
    const poll = setInterval(() => {
      polling = Deno.stat(temp).then(
        (st) => options.onProgress?.({ bytesWritten: st.size, totalBytes: total }),
        () => {},
      );
    }, 500);
    try {
      // The absolute path: a bare `cp` would be dax's built-in, which lacks these flags.
      await run(["/bin/cp", "--sparse=always", "--reflink=auto", "--", source, temp], {
        timeoutMs: 6 * 3600_000,
      });
    } finally {
      clearInterval(poll);
      await polling;
    }
    options.onProgress?.({ bytesWritten: total, totalBytes: total });
    return { bytesWritten: total };
  });
}

/** Downloads from a local HTTP server, and local copies. */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  AlreadyExistsError,
  CancelledError,
  DeadlineExceededError,
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
  UnavailableError,
} from "../../shared/errors/errors.ts";
import {
  createOverlayDisk,
  createQcow2Disk,
  createRawDisk,
  diskInfo,
  type Progress,
} from "./disks.ts";
import { copyFile, displayUrl, downloadFile } from "./transfer.ts";

const PAYLOAD = crypto.getRandomValues(new Uint8Array(64 * 1024));
const BIG = new Uint8Array(3 * 1024 * 1024).map((_, i) => i % 251);
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

type Handler = (req: Request) => Response | Promise<Response>;

/** A Deno.serve server on a random port plus a temp dir; both removed afterwards. */
async function withServer(handler: Handler, fn: (base: string, dir: string) => Promise<void>) {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, handler);
  const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "qarax-dl-" }));
  try {
    await fn(`http://127.0.0.1:${server.addr.port}`, dir);
  } finally {
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
}

function names(dir: string): string[] {
  return [...Deno.readDirSync(dir)].map((e) => e.name).sort();
}

const serveFiles: Handler = (req) => {
  const path = new URL(req.url).pathname;
  if (path === "/small.img") return new Response(PAYLOAD);
  if (path === "/big.img") return new Response(BIG);
  return new Response("no", { status: 404 });
};

Deno.test("a download streams to the target, reports progress and verifies sha256", async () => {
  await withServer(serveFiles, async (base, dir) => {
    const seen: Progress[] = [];
    const result = await downloadFile(`${base}/big.img`, `${dir}/disk.raw`, {
      sha256: sha(BIG).toUpperCase(),
      onProgress: (p) => seen.push(p),
    });
    assert.equal(result.bytesWritten, BIG.length);
    assert.equal(result.sha256, sha(BIG));
    assert.deepEqual(await Deno.readFile(`${dir}/disk.raw`), BIG);
    assert.ok(seen.length > 2, "several progress reports");
    assert.deepEqual(seen[0], { bytesWritten: 0, totalBytes: BIG.length });
    assert.deepEqual(seen.at(-1), { bytesWritten: BIG.length, totalBytes: BIG.length });
    assert.ok(seen.every((p, i) => i === 0 || p.bytesWritten >= seen[i - 1].bytesWritten));
    assert.deepEqual(names(dir), ["disk.raw"]);
  });
});

Deno.test("a sha256 mismatch leaves no file behind", async () => {
  await withServer(serveFiles, async (base, dir) => {
    await assert.rejects(
      () => downloadFile(`${base}/small.img`, `${dir}/disk.raw`, { sha256: "0".repeat(64) }),
      (e: unknown) => e instanceof FailedPreconditionError && /sha256 mismatch/.test(e.message),
    );
    assert.deepEqual(names(dir), []);
  });
});

Deno.test("a server dying mid-transfer leaves no file behind", async () => {
  // Announces 1 MiB, sends 128 KiB, then the connection breaks.
  const dying: Handler = () => {
    let sent = false;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (!sent) {
          sent = true;
          controller.enqueue(new Uint8Array(128 * 1024));
        } else controller.error(new Error("server died"));
      },
    });
    return new Response(body, { headers: { "content-length": String(1024 * 1024) } });
  };
  await withServer(dying, async (base, dir) => {
    const seen: Progress[] = [];
    await assert.rejects(
      () => downloadFile(`${base}/x`, `${dir}/disk.raw`, { onProgress: (p) => seen.push(p) }),
      UnavailableError,
    );
    assert.deepEqual(names(dir), []);
    assert.equal(seen[0].totalBytes, 1024 * 1024);
  });
});

Deno.test("a stalled server hits the idle timeout; a cancelled download stops", async () => {
  const stalled: Handler = () =>
    new Response(
      new ReadableStream({
        start(c) {
          c.enqueue(new Uint8Array(10));
        },
      }),
      { headers: { "content-length": "100" } },
    );
  await withServer(stalled, async (base, dir) => {
    await assert.rejects(
      () => downloadFile(`${base}/x`, `${dir}/a.raw`, { idleTimeoutMs: 200 }),
      DeadlineExceededError,
    );
    const abort = new AbortController();
    const pending = downloadFile(`${base}/x`, `${dir}/b.raw`, {
      signal: abort.signal,
      onProgress: (p) => p.bytesWritten > 0 && abort.abort(),
    });
    await assert.rejects(() => pending, CancelledError);
    assert.deepEqual(names(dir), []);
  });
});

Deno.test("HTTP errors, bad URLs and existing targets are refused", async () => {
  await withServer(serveFiles, async (base, dir) => {
    await assert.rejects(() => downloadFile(`${base}/nope`, `${dir}/a.raw`), NotFoundError);
    await assert.rejects(
      () => downloadFile("file:///etc/passwd", `${dir}/a.raw`),
      InvalidArgumentError,
    );
    await assert.rejects(() => downloadFile("not a url", `${dir}/a.raw`), InvalidArgumentError);
    await assert.rejects(
      () => downloadFile(`${base}/small.img`, `${dir}/a.raw`, { sha256: "abc" }),
      InvalidArgumentError,
    );
    await Deno.writeTextFile(`${dir}/keep.raw`, "mine");
    await assert.rejects(
      () => downloadFile(`${base}/small.img`, `${dir}/keep.raw`),
      AlreadyExistsError,
    );
    assert.equal(await Deno.readTextFile(`${dir}/keep.raw`), "mine");
    await downloadFile(`${base}/small.img`, `${dir}/keep.raw`, { overwrite: true });
    assert.deepEqual(await Deno.readFile(`${dir}/keep.raw`), PAYLOAD);
    assert.deepEqual(names(dir), ["keep.raw"]);
    const closed = `http://127.0.0.1:1/x`;
    await assert.rejects(() => downloadFile(closed, `${dir}/b.raw`), UnavailableError);
  });
});

Deno.test("a downloaded qcow2 with a backing file is refused", async () => {
  const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "qarax-dl-src-" }));
  try {
    await createRawDisk(`${dir}/base.raw`, 1024 * 1024);
    await createOverlayDisk(`${dir}/evil.qcow2`, `${dir}/base.raw`);
    await createQcow2Disk(`${dir}/fine.qcow2`, 1024 * 1024);
    const files: Handler = async (req) =>
      new Response(await Deno.readFile(`${dir}${new URL(req.url).pathname}`));
    await withServer(files, async (base, out) => {
      await assert.rejects(
        () => downloadFile(`${base}/evil.qcow2`, `${out}/a.qcow2`),
        /backing file/,
      );
      await downloadFile(`${base}/fine.qcow2`, `${out}/b.qcow2`);
      assert.equal((await diskInfo(`${out}/b.qcow2`)).format, "qcow2");
      assert.deepEqual(names(out), ["b.qcow2"]);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("credentials never show in messages", () => {
  assert.equal(displayUrl(new URL("https://u:secret@h/x?y=1")), "https://h/x?y=1");
});

Deno.test("copy keeps content and holes, and never replaces an existing file", async () => {
  const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "qarax-copy-" }));
  try {
    await createRawDisk(`${dir}/src.raw`, 64 * 1024 * 1024);
    const f = await Deno.open(`${dir}/src.raw`, { write: true });
    await f.write(new TextEncoder().encode("bootsector"));
    f.close();
    const seen: Progress[] = [];
    const r = await copyFile(`${dir}/src.raw`, `${dir}/dst.raw`, {
      onProgress: (p) => seen.push(p),
    });
    assert.equal(r.bytesWritten, 64 * 1024 * 1024);
    assert.equal((await Deno.stat(`${dir}/dst.raw`)).size, 64 * 1024 * 1024);
    assert.ok(
      ((await Deno.stat(`${dir}/dst.raw`)).blocks ?? 0) * 512 < 1024 * 1024,
      "still sparse",
    );
    const head = new Uint8Array(10);
    const g = await Deno.open(`${dir}/dst.raw`);
    await g.read(head);
    g.close();
    assert.equal(new TextDecoder().decode(head), "bootsector");
    assert.deepEqual(seen.at(-1), { bytesWritten: 64 * 1024 * 1024, totalBytes: 64 * 1024 * 1024 });
    await assert.rejects(() => copyFile(`${dir}/src.raw`, `${dir}/dst.raw`), AlreadyExistsError);
    await assert.rejects(() => copyFile(`${dir}/none.raw`, `${dir}/x.raw`), NotFoundError);
    assert.deepEqual(names(dir), ["dst.raw", "src.raw"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

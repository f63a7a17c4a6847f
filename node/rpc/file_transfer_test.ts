/**
 * The FileTransferService through a real nice-grpc client against startNodeServer, which runs
 * in its own process (tests/support/node_server.ts; see deno#36788 there).
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { type Client, createChannel, createClient } from "nice-grpc";
import { FileTransferServiceDefinition, node } from "../../shared/proto/mod.ts";
import { startNodeServerProcess } from "../../tests/support/node_server.ts";
import { diskInfo, type Progress } from "../storage/disks.ts";
import { progressOf } from "./file_transfer.ts";

const MiB = 1024 * 1024;
type FileClient = Client<typeof FileTransferServiceDefinition>;

interface Ctx {
  client: FileClient;
  pool: string;
  outside: string;
  http: string;
}

const IMAGE = new Uint8Array(2 * MiB).map((_, i) => (i * 7) % 256);
const IMAGE_SHA = createHash("sha256").update(IMAGE).digest("hex");

/** Serves IMAGE slowly (in 4 chunks 100 ms apart) so progress has time to show. */
function slowImage(): Response {
  let i = 0;
  const part = IMAGE.length / 4;
  const body = new ReadableStream<Uint8Array>({
    async pull(c) {
      if (i === 4) return c.close();
      if (i > 0) await new Promise((r) => setTimeout(r, 100));
      c.enqueue(IMAGE.slice(i * part, (i + 1) * part));
      i++;
    },
  });
  return new Response(body, { headers: { "content-length": String(IMAGE.length) } });
}

async function withNode(fn: (ctx: Ctx) => Promise<void>) {
  const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "qarax-ft-" }));
  await Deno.mkdir(`${dir}/pool`);
  await Deno.mkdir(`${dir}/outside`);
  const http = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (req) =>
      new URL(req.url).pathname === "/image.raw" ? slowImage() : new Response("", { status: 404 }),
  );
  const srv = await startNodeServerProcess({ dir, pools: [{ id: "p1", path: `${dir}/pool` }] });
  const channel = createChannel(srv.address);
  try {
    await fn({
      client: createClient(FileTransferServiceDefinition, channel),
      pool: `${dir}/pool`,
      outside: `${dir}/outside`,
      http: `http://127.0.0.1:${http.addr.port}`,
    });
  } finally {
    await srv[Symbol.asyncDispose]();
    channel.close();
    await http.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
}

async function collect(stream: AsyncIterable<node.TransferResponse>) {
  const out: node.TransferResponse[] = [];
  for await (const m of stream) out.push(m);
  return out;
}

function names(dir: string): string[] {
  return [...Deno.readDirSync(dir)].map((e) => e.name).sort();
}

Deno.test("CreateDisk makes blank raw, blank qcow2 and overlay disks, ending with one final message", async () => {
  await withNode(async ({ client, pool }) => {
    const raw = await collect(client.createDisk({
      transferId: "t1",
      path: `${pool}/vm1/root.raw`,
      sizeBytes: 8 * MiB,
      blank: { preallocate: false },
    }));
    assert.equal(raw.filter((m) => m.isFinal).length, 1);
    const fin = raw.at(-1)!;
    assert.deepEqual(
      [fin.transferId, fin.success, fin.isFinal, fin.bytesWritten, fin.totalBytes],
      ["t1", true, true, 8 * MiB, 8 * MiB],
    );
    assert.ok(raw.slice(0, -1).every((m) => !m.isFinal));
    assert.equal((await diskInfo(`${pool}/vm1/root.raw`)).virtualSize, 8 * MiB);

    await collect(
      client.createDisk({ path: `${pool}/base.qcow2`, sizeBytes: 16 * MiB, qcow2: {} }),
    );
    assert.equal((await diskInfo(`${pool}/base.qcow2`)).format, "qcow2");

    const clone = await collect(client.createDisk({
      path: `${pool}/clone.qcow2`,
      overlay: { basePath: `${pool}/base.qcow2` },
    }));
    assert.equal(clone.at(-1)?.success, true);
    const info = await diskInfo(`${pool}/clone.qcow2`);
    assert.equal(info.backingFile, `${pool}/base.qcow2`);
    assert.equal(info.backingFormat, "qcow2");
    assert.equal(info.virtualSize, 16 * MiB);
  });
});

Deno.test("CreateDisk from a URL streams progress, verifies sha256 and grows to size_bytes", async () => {
  await withNode(async ({ client, pool, http }) => {
    const msgs = await collect(client.createDisk({
      transferId: "dl",
      path: `${pool}/cloud.raw`,
      sizeBytes: 4 * MiB,
      url: { url: `${http}/image.raw`, sha256: IMAGE_SHA },
    }));
    const progress = msgs.filter((m) => !m.isFinal);
    assert.ok(progress.length >= 2, `progress messages: ${progress.length}`);
    assert.ok(progress.every((m) => m.totalBytes === IMAGE.length && m.transferId === "dl"));
    assert.ok(progress.some((m) => m.bytesWritten > 0 && m.bytesWritten < IMAGE.length));
    assert.deepEqual(
      [msgs.at(-1)?.isFinal, msgs.at(-1)?.success, msgs.at(-1)?.bytesWritten],
      [true, true, IMAGE.length],
    );
    const head = (await Deno.readFile(`${pool}/cloud.raw`)).slice(0, IMAGE.length);
    assert.deepEqual(head, IMAGE);
    assert.equal((await Deno.stat(`${pool}/cloud.raw`)).size, 4 * MiB);

    await assert.rejects(
      () =>
        collect(client.createDisk({
          path: `${pool}/bad.raw`,
          url: { url: `${http}/image.raw`, sha256: "f".repeat(64) },
        })),
      /FAILED_PRECONDITION.*sha256 mismatch/,
    );
    await assert.rejects(
      () => collect(client.createDisk({ path: `${pool}/gone.raw`, url: { url: `${http}/nope` } })),
      /NOT_FOUND/,
    );
    assert.deepEqual(names(pool), ["cloud.raw"]);
  });
});

Deno.test("every path is confined to an attached pool; bad requests are INVALID_ARGUMENT", async () => {
  await withNode(async ({ client, pool, outside }) => {
    await Deno.writeTextFile(`${outside}/secret`, "x");
    await Deno.symlink(outside, `${pool}/escape`);
    const attempts: [string, () => Promise<unknown>][] = [
      [
        "FAILED_PRECONDITION",
        () => collect(client.createDisk({ path: `${outside}/a.raw`, sizeBytes: MiB, blank: {} })),
      ],
      [
        "INVALID_ARGUMENT",
        () =>
          collect(
            client.createDisk({ path: `${pool}/../outside/a.raw`, sizeBytes: MiB, blank: {} }),
          ),
      ],
      [
        "PERMISSION_DENIED",
        () =>
          collect(client.createDisk({ path: `${pool}/escape/a.raw`, sizeBytes: MiB, blank: {} })),
      ],
      [
        "PERMISSION_DENIED",
        () =>
          collect(
            client.createDisk({
              path: `${pool}/c.qcow2`,
              overlay: { basePath: `${pool}/escape/secret` },
            }),
          ),
      ],
      ["PERMISSION_DENIED", () => client.deleteDisk({ path: `${pool}/escape/secret` })],
      [
        "FAILED_PRECONDITION",
        () => client.copyFile({ sourcePath: `${outside}/secret`, destinationPath: `${pool}/s` }),
      ],
      [
        "INVALID_ARGUMENT",
        () => collect(client.createDisk({ path: `${pool}/x.raw`, sizeBytes: MiB })),
      ],
      ["INVALID_ARGUMENT", () => collect(client.createDisk({ path: `${pool}/x.raw`, blank: {} }))],
      [
        "INVALID_ARGUMENT",
        () =>
          collect(client.createDisk({ path: `${pool}/x.raw`, url: { url: "file:///etc/passwd" } })),
      ],
    ];
    for (const [code, attempt] of attempts) {
      await assert.rejects(attempt, new RegExp(code), code);
    }
    assert.equal(await Deno.readTextFile(`${outside}/secret`), "x");
    assert.deepEqual(names(pool), ["escape"]);
  });
});

Deno.test("existing disks are not overwritten; DeleteDisk, CopyFile and DownloadFile", async () => {
  await withNode(async ({ client, pool, http }) => {
    await collect(client.createDisk({ path: `${pool}/a.raw`, sizeBytes: MiB, blank: {} }));
    await assert.rejects(
      () => collect(client.createDisk({ path: `${pool}/a.raw`, sizeBytes: 2 * MiB, blank: {} })),
      /ALREADY_EXISTS/,
    );
    const copied = await client.copyFile({
      transferId: "c",
      sourcePath: `${pool}/a.raw`,
      destinationPath: `${pool}/b.raw`,
    });
    assert.deepEqual([copied.transferId, copied.success, copied.bytesWritten], ["c", true, MiB]);
    const got = await client.downloadFile({
      transferId: "d",
      sourceUrl: `${http}/image.raw`,
      destinationPath: `${pool}/kernels/vmlinux`,
    });
    assert.deepEqual([got.success, got.isFinal, got.bytesWritten], [true, true, IMAGE.length]);
    assert.deepEqual(await Deno.readFile(`${pool}/kernels/vmlinux`), IMAGE);

    await client.deleteDisk({ path: `${pool}/a.raw` });
    await client.deleteDisk({ path: `${pool}/a.raw` }); // already gone: still fine
    // Deleting a symlink deletes the link, not the disk it points to.
    await Deno.symlink(`${pool}/b.raw`, `${pool}/link.raw`);
    await client.deleteDisk({ path: `${pool}/link.raw` });
    assert.deepEqual(names(pool), ["b.raw", "kernels"]);
  });
});

Deno.test("DeleteSnapshot removes a snapshot directory inside a pool, and nothing else", async () => {
  await withNode(async ({ client, pool, outside }) => {
    const snap = `${pool}/snapshots/vm1/s1`;
    await Deno.mkdir(snap, { recursive: true });
    for (const f of ["config.json", "state.json", "memory-ranges"]) {
      await Deno.writeTextFile(`${snap}/${f}`, "{}");
    }
    await Deno.writeTextFile(`${pool}/disk.raw`, "x");
    await Deno.mkdir(`${pool}/snapshots/vm1/other`);
    await Deno.writeTextFile(`${pool}/snapshots/vm1/other/disk.raw`, "x");
    await Deno.mkdir(`${outside}/snap`);
    await Deno.symlink(`${outside}/snap`, `${pool}/snapshots/vm1/link`);
    const attempts: [string, string][] = [
      ["INVALID_ARGUMENT", pool], // the pool itself
      ["INVALID_ARGUMENT", `${pool}/`],
      ["INVALID_ARGUMENT", `${pool}/disk.raw`], // a file
      ["INVALID_ARGUMENT", `${pool}/snapshots/vm1/link`], // a link, not followed
      ["INVALID_ARGUMENT", `${pool}/snapshots/../disk.raw`],
      ["FAILED_PRECONDITION", `${pool}/snapshots/vm1`], // holds a directory
      ["FAILED_PRECONDITION", `${pool}/snapshots/vm1/other`], // holds a disk
      ["FAILED_PRECONDITION", `${outside}/snap`], // outside every pool
    ];
    for (const [code, path] of attempts) {
      await assert.rejects(() => client.deleteSnapshot({ path }), new RegExp(code), path);
    }
    assert.deepEqual(names(`${pool}/snapshots/vm1`), ["link", "other", "s1"]);
    assert.deepEqual(names(`${outside}`), ["snap"]);

    await client.deleteSnapshot({ path: snap });
    await client.deleteSnapshot({ path: snap }); // already gone: still fine
    assert.deepEqual(names(`${pool}/snapshots/vm1`), ["link", "other"]);
    assert.deepEqual(names(pool), ["disk.raw", "snapshots"]);
  });
});

Deno.test("progressOf coalesces reports and returns the operation's result", async () => {
  const seen: Progress[] = [];
  const started = Date.now();
  const gen = progressOf(async (report) => {
    // 50 reports spread over about 150 ms, throttled to one message per 40 ms.
    for (let i = 1; i <= 50; i++) {
      report({ bytesWritten: i, totalBytes: 50 });
      await new Promise((r) => setTimeout(r, 3));
    }
    return "done";
  }, 40);
  let step = await gen.next();
  while (!step.done) {
    seen.push(step.value);
    step = await gen.next();
  }
  const elapsed = Date.now() - started;
  assert.equal(step.value, "done");
  assert.equal(seen[0].bytesWritten, 1, "the first report goes out at once");
  assert.ok(seen.length >= 2, `several messages: ${seen.length}`);
  assert.ok(seen.length <= Math.ceil(elapsed / 40) + 1, `${seen.length} in ${elapsed} ms`);
  assert.ok(seen.every((p, i) => i === 0 || p.bytesWritten > seen[i - 1].bytesWritten));

  const failing = progressOf(() => Promise.reject(new Error("boom")));
  await assert.rejects(() => failing.next(), /boom/);
});

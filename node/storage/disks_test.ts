/** Disk images made with the real qemu-img (installed by tests/prepare.ts / .ci/run). */
import assert from "node:assert/strict";
import {
  AlreadyExistsError,
  InvalidArgumentError,
  NotFoundError,
} from "../../shared/errors/errors.ts";
import {
  createOverlayDisk,
  createQcow2Disk,
  createRawDisk,
  deleteDisk,
  detectFormat,
  diskInfo,
  type Progress,
  resizeDisk,
} from "./disks.ts";

const MiB = 1024 * 1024;

async function withDir(fn: (dir: string) => Promise<void>) {
  const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "qarax-disks-" }));
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Bytes actually allocated on disk. */
async function allocated(path: string): Promise<number> {
  return ((await Deno.stat(path)).blocks ?? 0) * 512;
}

function names(dir: string): string[] {
  return [...Deno.readDirSync(dir)].map((e) => e.name).sort();
}

Deno.test("a blank raw disk is sparse; a preallocated one is allocated", async () => {
  await withDir(async (dir) => {
    const seen: Progress[] = [];
    await createRawDisk(`${dir}/sparse.raw`, 64 * MiB, { onProgress: (p) => seen.push(p) });
    let info = await diskInfo(`${dir}/sparse.raw`);
    assert.equal(info.format, "raw");
    assert.equal(info.virtualSize, 64 * MiB);
    assert.ok(await allocated(`${dir}/sparse.raw`) < MiB, "sparse");
    assert.deepEqual(seen.at(-1), { bytesWritten: 64 * MiB, totalBytes: 64 * MiB });
    assert.equal((await Deno.stat(`${dir}/sparse.raw`)).mode! & 0o777, 0o600);

    await createRawDisk(`${dir}/full.raw`, 16 * MiB, { preallocate: true });
    info = await diskInfo(`${dir}/full.raw`);
    assert.equal(info.virtualSize, 16 * MiB);
    assert.ok(await allocated(`${dir}/full.raw`) >= 16 * MiB, "preallocated");

    // Sizes are whole sectors.
    await createRawDisk(`${dir}/odd.raw`, 1000);
    assert.equal((await Deno.stat(`${dir}/odd.raw`)).size, 1024);
    assert.deepEqual(names(dir), ["full.raw", "odd.raw", "sparse.raw"], "no temp files left");
  });
});

Deno.test("a blank qcow2 disk and a qcow2 overlay on a base (linked clone)", async () => {
  await withDir(async (dir) => {
    await createQcow2Disk(`${dir}/blank.qcow2`, 1024 * MiB);
    let info = await diskInfo(`${dir}/blank.qcow2`);
    assert.equal(info.format, "qcow2");
    assert.equal(info.virtualSize, 1024 * MiB);
    assert.equal(info.backingFile, undefined);
    assert.equal(await detectFormat(`${dir}/blank.qcow2`), "qcow2");

    await createRawDisk(`${dir}/base.raw`, 32 * MiB);
    await createOverlayDisk(`${dir}/clone.qcow2`, `${dir}/base.raw`);
    info = await diskInfo(`${dir}/clone.qcow2`);
    assert.equal(info.format, "qcow2");
    assert.equal(info.virtualSize, 32 * MiB, "defaults to the base's size");
    assert.equal(info.backingFile, `${dir}/base.raw`);
    assert.equal(info.backingFormat, "raw", "detected from the base's header");

    // On a qcow2 base, bigger than the base.
    await createOverlayDisk(`${dir}/clone2.qcow2`, `${dir}/blank.qcow2`, { sizeBytes: 2048 * MiB });
    info = await diskInfo(`${dir}/clone2.qcow2`);
    assert.equal(info.virtualSize, 2048 * MiB);
    assert.equal(info.backingFormat, "qcow2");

    await assert.rejects(
      () => createOverlayDisk(`${dir}/small.qcow2`, `${dir}/base.raw`, { sizeBytes: MiB }),
      (e: unknown) => e instanceof InvalidArgumentError && e.details[0].field === "size_bytes",
    );
    await assert.rejects(
      () => createOverlayDisk(`${dir}/x.qcow2`, `${dir}/missing.raw`),
      NotFoundError,
    );
    assert.deepEqual(names(dir), ["base.raw", "blank.qcow2", "clone.qcow2", "clone2.qcow2"]);
  });
});

Deno.test("an existing file is never replaced unless asked", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/keep.raw`, "user data");
    await assert.rejects(() => createRawDisk(`${dir}/keep.raw`, MiB), AlreadyExistsError);
    await assert.rejects(() => createQcow2Disk(`${dir}/keep.raw`, MiB), AlreadyExistsError);
    assert.equal(await Deno.readTextFile(`${dir}/keep.raw`), "user data");
    await createQcow2Disk(`${dir}/keep.raw`, MiB, { overwrite: true });
    assert.equal(await detectFormat(`${dir}/keep.raw`), "qcow2");
    assert.deepEqual(names(dir), ["keep.raw"]);
  });
});

Deno.test("bad sizes are refused before anything is written", async () => {
  await withDir(async (dir) => {
    for (const bad of [0, -1, 1.5, 2 ** 60]) {
      await assert.rejects(() => createRawDisk(`${dir}/x.raw`, bad), InvalidArgumentError);
    }
    assert.deepEqual(names(dir), []);
  });
});

Deno.test("resize grows raw and qcow2 disks and refuses to shrink", async () => {
  await withDir(async (dir) => {
    await createRawDisk(`${dir}/a.raw`, 8 * MiB);
    await createQcow2Disk(`${dir}/b.qcow2`, 8 * MiB);
    await resizeDisk(`${dir}/a.raw`, 16 * MiB);
    await resizeDisk(`${dir}/b.qcow2`, 16 * MiB);
    assert.equal((await diskInfo(`${dir}/a.raw`)).virtualSize, 16 * MiB);
    assert.equal((await diskInfo(`${dir}/b.qcow2`)).virtualSize, 16 * MiB);
    await resizeDisk(`${dir}/b.qcow2`, 16 * MiB); // same size: nothing to do
    for (const p of ["a.raw", "b.qcow2"]) {
      await assert.rejects(() => resizeDisk(`${dir}/${p}`, 4 * MiB), /shrinking is not supported/);
    }
    await assert.rejects(() => resizeDisk(`${dir}/none.raw`, 4 * MiB), NotFoundError);
  });
});

Deno.test("delete removes a disk; a missing one is success; a directory is refused", async () => {
  await withDir(async (dir) => {
    await createRawDisk(`${dir}/a.raw`, MiB);
    assert.equal(await deleteDisk(`${dir}/a.raw`), true);
    assert.equal(await deleteDisk(`${dir}/a.raw`), false);
    await Deno.mkdir(`${dir}/sub`);
    await assert.rejects(() => deleteDisk(`${dir}/sub`), InvalidArgumentError);
  });
});

Deno.test("format detection reads the qcow2 magic, anything else is raw", async () => {
  await withDir(async (dir) => {
    await Deno.writeFile(`${dir}/fake`, new Uint8Array([0x51, 0x46, 0x49, 0xfb, 0, 0]));
    assert.equal(await detectFormat(`${dir}/fake`), "qcow2");
    await Deno.writeFile(`${dir}/tiny`, new Uint8Array([0x51, 0x46]));
    assert.equal(await detectFormat(`${dir}/tiny`), "raw");
    await Deno.writeFile(`${dir}/empty`, new Uint8Array());
    assert.equal(await detectFormat(`${dir}/empty`), "raw");
  });
});

/** deleteSnapshotDir: only a plain directory of CH snapshot files goes, all checked first. */
import assert from "node:assert/strict";
import { deleteSnapshotDir, SNAPSHOT_FILES } from "./snapshots.ts";

async function withDir(fn: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "qarax-snapdir-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("deleteSnapshotDir removes a snapshot directory; missing is fine", async () => {
  await withDir(async (dir) => {
    const snap = `${dir}/s1`;
    await Deno.mkdir(snap);
    for (const f of SNAPSHOT_FILES) await Deno.writeTextFile(`${snap}/${f}`, "x");
    assert.equal(await deleteSnapshotDir(snap), true);
    assert.equal(await deleteSnapshotDir(snap), false);
    await Deno.mkdir(`${dir}/empty`); // a snapshot that failed before CH wrote anything
    assert.equal(await deleteSnapshotDir(`${dir}/empty`), true);
    assert.deepEqual([...Deno.readDirSync(dir)], []);
  });
});

Deno.test("deleteSnapshotDir refuses files, links and foreign contents, removing nothing", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/disk.raw`, "x");
    await assert.rejects(() => deleteSnapshotDir(`${dir}/disk.raw`), /not a directory/);
    await Deno.mkdir(`${dir}/real`);
    await Deno.symlink(`${dir}/real`, `${dir}/link`);
    await assert.rejects(() => deleteSnapshotDir(`${dir}/link`), /not a directory/);
    const snap = `${dir}/s1`;
    await Deno.mkdir(`${snap}/nested`, { recursive: true });
    await Deno.writeTextFile(`${snap}/config.json`, "{}");
    await assert.rejects(() => deleteSnapshotDir(snap), /holds nested/);
    await Deno.remove(`${snap}/nested`);
    await Deno.symlink(`${dir}/disk.raw`, `${snap}/state.json`);
    await assert.rejects(() => deleteSnapshotDir(snap), /holds state.json/);
    assert.deepEqual([...Deno.readDirSync(snap)].map((e) => e.name).sort(), [
      "config.json",
      "state.json",
    ]);
    assert.equal(await Deno.readTextFile(`${dir}/disk.raw`), "x");
  });
});

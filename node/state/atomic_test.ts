import assert from "node:assert/strict";
import { AlreadyExistsError } from "../../shared/errors/errors.ts";
import { isTempName, publishFile, tempPathFor, writeFileAtomic } from "./atomic.ts";

async function withDir(fn: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "qarax-atomic-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("writeFileAtomic replaces a file and leaves no temp file behind", async () => {
  await withDir(async (dir) => {
    await writeFileAtomic(`${dir}/f`, new TextEncoder().encode("one"));
    await writeFileAtomic(`${dir}/f`, new TextEncoder().encode("two"));
    assert.equal(await Deno.readTextFile(`${dir}/f`), "two");
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["f"]);
  });
});

Deno.test("publishFile never clobbers unless asked, and never leaves the temp file", async () => {
  await withDir(async (dir) => {
    const temp = tempPathFor(`${dir}/disk.img`);
    assert.ok(isTempName(temp.slice(dir.length + 1)));
    await Deno.writeTextFile(temp, "new");
    await publishFile(temp, `${dir}/disk.img`);
    assert.equal(await Deno.readTextFile(`${dir}/disk.img`), "new");

    const again = tempPathFor(`${dir}/disk.img`);
    await Deno.writeTextFile(again, "newer");
    await assert.rejects(() => publishFile(again, `${dir}/disk.img`), AlreadyExistsError);
    assert.equal(await Deno.readTextFile(`${dir}/disk.img`), "new");
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["disk.img"]);

    const third = tempPathFor(`${dir}/disk.img`);
    await Deno.writeTextFile(third, "newest");
    await publishFile(third, `${dir}/disk.img`, { overwrite: true });
    assert.equal(await Deno.readTextFile(`${dir}/disk.img`), "newest");
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["disk.img"]);
  });
});

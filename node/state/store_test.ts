import assert from "node:assert/strict";
import { z } from "zod";
import { InternalError } from "../../shared/errors/errors.ts";
import { StateStore } from "./store.ts";

const Pools = z.array(z.object({ id: z.string(), path: z.string() }));

async function withDir(fn: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "qarax-state-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("a document starts at its initial value and keeps what was written", async () => {
  await withDir(async (dir) => {
    const store = await StateStore.open(`${dir}/state`);
    const doc = store.document("pools", Pools, []);
    assert.deepEqual(await doc.read(), []);
    await doc.update((p) => [...p, { id: "p1", path: "/srv/p1" }]);
    // A new store on the same directory (an agent restart) sees the same content.
    const again = (await StateStore.open(`${dir}/state`)).document("pools", Pools, []);
    assert.deepEqual(await again.read(), [{ id: "p1", path: "/srv/p1" }]);
    assert.equal((await Deno.stat(`${dir}/state`)).mode! & 0o777, 0o700);
    assert.equal((await Deno.stat(doc.path)).mode! & 0o777, 0o600);
  });
});

Deno.test("concurrent updates are serialized, none is lost", async () => {
  await withDir(async (dir) => {
    const doc = (await StateStore.open(dir)).document("counter", z.number(), 0);
    await Promise.all(Array.from({ length: 20 }, () => doc.update((n) => n + 1)));
    assert.equal(await doc.read(), 20);
  });
});

Deno.test("a crash between writing the temp file and the rename leaves the old state", async () => {
  await withDir(async (dir) => {
    const store = await StateStore.open(dir);
    await store.document("pools", Pools, []).update(() => [{ id: "old", path: "/a" }]);
    let temp = "";
    const crashing = store.document("pools", Pools, [], {
      beforeRename: (t) => {
        temp = t;
        throw new Error("simulated crash");
      },
    });
    await assert.rejects(
      () => crashing.update(() => [{ id: "new", path: "/b" }]),
      /simulated crash/,
    );
    assert.deepEqual(await store.document("pools", Pools, []).read(), [{ id: "old", path: "/a" }]);
    assert.ok(temp.startsWith(`${dir}/pools.json.tmp-`));
    await assert.rejects(() => Deno.stat(temp), Deno.errors.NotFound);
  });
});

Deno.test("temp files left by a killed agent are ignored and removed on open", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/pools.json`, JSON.stringify({ format: 1, data: [] }));
    // What a SIGKILL after the temp write but before the rename leaves behind.
    await Deno.writeTextFile(`${dir}/pools.json.tmp-deadbeef`, "{ half a docu");
    const store = await StateStore.open(dir);
    assert.deepEqual(await store.document("pools", Pools, []).read(), []);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["pools.json"]);
  });
});

Deno.test("a corrupt or foreign state file is an error, never silently reset", async () => {
  await withDir(async (dir) => {
    const store = await StateStore.open(dir);
    await Deno.writeTextFile(`${dir}/pools.json`, "not json");
    await assert.rejects(() => store.document("pools", Pools, []).read(), InternalError);
    await Deno.writeTextFile(`${dir}/pools.json`, JSON.stringify({ format: 1, data: [{}] }));
    await assert.rejects(
      () => store.document("pools", Pools, []).read(),
      /invalid content at 0\.id/,
    );
    await assert.rejects(
      () => store.document("pools", Pools, []).update(() => [{ id: "x", path: "/x" }]),
      InternalError,
    );
    assert.equal(
      await Deno.readTextFile(`${dir}/pools.json`),
      JSON.stringify({
        format: 1,
        data: [{}],
      }),
    );
  });
});

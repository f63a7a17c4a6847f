import assert from "node:assert/strict";
import { tryLock } from "./locks.ts";

Deno.test("OFD locks: exclusive excludes everyone, shared excludes writers, release frees", async () => {
  const dir = await Deno.makeTempDir({ prefix: "qarax-locks-" });
  try {
    const path = `${dir}/disk.raw`;
    await Deno.writeFile(path, new Uint8Array(4096));
    // OFD locks conflict between open file descriptions even inside one process.
    const a = tryLock(path, { length: 4096 });
    assert.notEqual(a, "busy");
    assert.equal(tryLock(path, { length: 4096 }), "busy");
    assert.equal(tryLock(path, { shared: true }), "busy");
    if (a !== "busy") a.release();
    const r1 = tryLock(path, { shared: true });
    const r2 = tryLock(path, { shared: true });
    assert.notEqual(r1, "busy");
    assert.notEqual(r2, "busy");
    assert.equal(tryLock(path), "busy");
    for (const r of [r1, r2]) if (r !== "busy") r.release();
    const lockFile = tryLock(`${dir}/api.sock.lock`, { create: true });
    assert.notEqual(lockFile, "busy");
    assert.equal(tryLock(`${dir}/api.sock.lock`, { create: true }), "busy");
    if (lockFile !== "busy") lockFile.release();
    assert.throws(() => tryLock(`${dir}/missing`), /No such file/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

import assert from "node:assert/strict";
import {
  ConflictError,
  FailedPreconditionError,
  InvalidArgumentError,
  UnimplementedError,
} from "../../shared/errors/errors.ts";
import { node } from "../../shared/proto/mod.ts";
import { StateStore } from "../state/store.ts";
import { PoolManager, poolSpecFromRequest } from "./pools.ts";

async function withPools(fn: (dir: string, pools: PoolManager) => Promise<void>) {
  const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "qarax-pools-" }));
  try {
    await fn(
      dir,
      new PoolManager(await StateStore.open(`${dir}/state`), { firmwareDir: `${dir}/fw` }),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function local(id: string, path: string) {
  return poolSpecFromRequest({
    poolId: id,
    poolKind: node.StoragePoolKind.STORAGE_POOL_KIND_LOCAL,
    configJson: JSON.stringify({ path }),
  });
}

Deno.test("attach request validation: LOCAL only, with a clean non-system path", () => {
  assert.deepEqual(local("p1", "/srv/pools/p1/"), {
    id: "p1",
    kind: "local",
    path: "/srv/pools/p1",
  });
  for (const kind of [1, 2, 3]) {
    assert.throws(
      () => poolSpecFromRequest({ poolId: "p", poolKind: kind, configJson: '{"url":"x"}' }),
      UnimplementedError,
    );
  }
  const field = (fn: () => unknown) => {
    try {
      fn();
    } catch (e) {
      assert.ok(e instanceof InvalidArgumentError, String(e));
      return e.details[0].field;
    }
  };
  assert.equal(
    field(() => poolSpecFromRequest({ poolId: "", configJson: '{"path":"/srv"}' })),
    "pool_id",
  );
  assert.equal(field(() => poolSpecFromRequest({ poolId: "p", configJson: "{" })), "config_json");
  assert.equal(field(() => poolSpecFromRequest({ poolId: "p", configJson: "{}" })), "config_json");
  for (const bad of ["/", "/etc", "/etc/qarax", "/usr/lib/x", "relative", "/srv/../etc"]) {
    assert.equal(field(() => local("p", bad)), "config_json.path", bad);
  }
});

Deno.test("a LOCAL pool is a directory, created on attach and remembered across restarts", async () => {
  await withPools(async (dir, pools) => {
    await pools.attach(local("p1", `${dir}/pools/p1`));
    assert.ok((await Deno.stat(`${dir}/pools/p1`)).isDirectory);
    await pools.attach(local("p1", `${dir}/pools/p1`)); // idempotent
    const restarted = new PoolManager(await StateStore.open(`${dir}/state`));
    assert.deepEqual((await restarted.list()).map((p) => [p.id, p.path]), [[
      "p1",
      `${dir}/pools/p1`,
    ]]);
    assert.deepEqual(await restarted.reconcile(), { available: ["p1"], missing: [] });
    assert.equal(await restarted.resolve(`${dir}/pools/p1/a.raw`), `${dir}/pools/p1/a.raw`);
  });
});

Deno.test("reconcile reports a missing pool directory and does not recreate it", async () => {
  await withPools(async (dir, pools) => {
    await pools.attach(local("p1", `${dir}/mnt/p1`));
    await Deno.remove(`${dir}/mnt/p1`);
    assert.deepEqual(await pools.reconcile(), {
      available: [],
      missing: [{ id: "p1", path: `${dir}/mnt/p1` }],
    });
    await assert.rejects(() => Deno.stat(`${dir}/mnt/p1`), Deno.errors.NotFound);
  });
});

Deno.test("paths resolve only inside attached pools; firmware also from the firmware dir", async () => {
  await withPools(async (dir, pools) => {
    await Deno.mkdir(`${dir}/fw`);
    await assert.rejects(() => pools.resolve(`${dir}/pools/p1/a.raw`), FailedPreconditionError);
    await pools.attach(local("p1", `${dir}/pools/p1`));
    assert.equal(await pools.resolve(`${dir}/pools/p1/a.raw`), `${dir}/pools/p1/a.raw`);
    assert.equal(await pools.resolveFirmware(`${dir}/fw/CLOUDHV.fd`), `${dir}/fw/CLOUDHV.fd`);
    assert.equal(await pools.resolveFirmware(`${dir}/pools/p1/fw.bin`), `${dir}/pools/p1/fw.bin`);
    await assert.rejects(() => pools.resolve(`${dir}/fw/CLOUDHV.fd`, "kernel"), /kernel: /);
    await pools.detach("p1");
    await assert.rejects(() => pools.resolve(`${dir}/pools/p1/a.raw`), FailedPreconditionError);
  });
});

Deno.test("detach keeps the data and is refused while the pool is in use", async () => {
  await withPools(async (dir, pools) => {
    await pools.attach(local("p1", `${dir}/pools/p1`));
    await Deno.writeTextFile(`${dir}/pools/p1/disk.raw`, "data");
    const path = await pools.resolve(`${dir}/pools/p1/disk.raw`);

    let release!: () => void;
    const running = pools.withPaths([path], () => new Promise<void>((r) => release = r));
    await new Promise((r) => setTimeout(r, 10));
    await assert.rejects(() => pools.withPaths([path], async () => {}), ConflictError);
    await assert.rejects(() => pools.detach("p1"), /disk operations running/);
    release();
    await running;

    pools.setUsageCheck((pool) => pool.id === "p1" ? ["vm-a"] : []);
    await assert.rejects(() => pools.detach("p1"), (e: unknown) => {
      assert.ok(e instanceof FailedPreconditionError);
      assert.match(e.message, /used by VMs: vm-a/);
      return true;
    });
    pools.setUsageCheck(() => []);
    assert.equal(await pools.detach("p1"), true);
    assert.equal(await Deno.readTextFile(`${dir}/pools/p1/disk.raw`), "data");
    assert.equal(await pools.detach("p1"), false, "detaching again succeeds");
  });
});

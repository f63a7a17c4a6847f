import assert from "node:assert/strict";
import { FailedPreconditionError } from "../../shared/errors/errors.ts";
import { run } from "../../shared/cmd/run.ts";
import { StateStore } from "../state/store.ts";
import { PoolManager } from "../storage/pools.ts";
import { bindDisk, checkBackingChain } from "./resources.ts";

async function withPool(fn: (dir: string, pools: PoolManager) => Promise<void>) {
  const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "qarax-res-" }));
  try {
    const pools = new PoolManager(await StateStore.open(`${dir}/state`));
    await pools.attach({ id: "p1", kind: "local", path: `${dir}/pool` });
    await Deno.mkdir(`${dir}/outside`);
    await fn(dir, pools);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const qemuImg = (...args: string[]) => run(["qemu-img", "create", "-q", ...args]);

Deno.test("a backing chain inside the pool is followed (relative names too)", async () => {
  await withPool(async (dir, pools) => {
    const p = `${dir}/pool`;
    await qemuImg("-f", "raw", `${p}/base.raw`, "4M");
    await qemuImg("-f", "qcow2", "-b", `${p}/base.raw`, "-F", "raw", `${p}/mid.qcow2`);
    // A relative backing name is relative to the overlay's directory.
    await Deno.mkdir(`${p}/vms`);
    await qemuImg("-f", "qcow2", "-b", "../mid.qcow2", "-F", "qcow2", `${p}/vms/top.qcow2`);
    assert.equal(await checkBackingChain(pools, `${p}/vms/top.qcow2`, "f"), 2);
    assert.deepEqual(await bindDisk(pools, { id: "d", path: `${p}/vms/top.qcow2` }, "disks.0"), {
      path: `${p}/vms/top.qcow2`,
      imageType: "Qcow2",
      backingFiles: true,
    });
    assert.deepEqual(await bindDisk(pools, { id: "d", path: `${p}/base.raw` }, "disks.0"), {
      path: `${p}/base.raw`,
      imageType: "Raw",
    });
    // An explicit type wins over the file's header.
    assert.deepEqual(
      await bindDisk(pools, { id: "d", path: `${p}/mid.qcow2`, imageType: "raw" }, "disks.0"),
      { path: `${p}/mid.qcow2`, imageType: "Raw" },
    );
  });
});

Deno.test("a backing file outside the pools (at any depth) is refused", async () => {
  await withPool(async (dir, pools) => {
    const p = `${dir}/pool`;
    await qemuImg("-f", "qcow2", `${dir}/outside/secret.qcow2`, "4M");
    await qemuImg(
      "-f",
      "qcow2",
      "-b",
      `${dir}/outside/secret.qcow2`,
      "-F",
      "qcow2",
      `${p}/a.qcow2`,
    );
    await qemuImg("-f", "qcow2", "-b", `${p}/a.qcow2`, "-F", "qcow2", `${p}/b.qcow2`);
    // Through a symbolic link inside the pool that leads out of it.
    await Deno.symlink(`${dir}/outside`, `${p}/lnk`);
    await qemuImg("-f", "qcow2", "-b", "lnk/secret.qcow2", "-F", "qcow2", `${p}/c.qcow2`);
    await assert.rejects(
      checkBackingChain(pools, `${p}/c.qcow2`, "disks.0.path"),
      FailedPreconditionError,
    );
    await assert.rejects(
      bindDisk(pools, { id: "d", path: `${p}/b.qcow2` }, "disks.3"),
      (err) =>
        err instanceof FailedPreconditionError && /disks\.3\.path: backing file/.test(err.message),
    );
  });
});

/**
 * Local-pool files belong to one host, end to end: disks created through the API record the
 * host their job made them on, VMs using them start there, clones follow their base, and a VM
 * whose files are on two hosts fails placement saying so. Workers run; nodes are fakes.
 */
import assert from "node:assert/strict";
import { createTestApi, fastConfig, type TestApi } from "../../tests/support/api.ts";
import { addFakeHost, bootSource } from "../../tests/support/orchestration.ts";

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

/** Two hosts (node-a, node-b) sharing a local pool's name and path, and a kernel on both. */
async function twoHosts(api: TestApi) {
  const a = await addFakeHost(api, "node-a");
  const b = await addFakeHost(api, "node-b");
  const pool = await api.create("/v1/storage-pools", { name: "local", path: "/srv/pool" });
  for (const h of [a, b]) {
    await api.create(`/v1/storage-pools/${pool.id}/hosts`, { host_id: h.host.id });
  }
  const boot = await bootSource(api, pool.id);
  return {
    a,
    b,
    pool,
    boot,
    async [Symbol.asyncDispose]() {
      await a.fake.kill();
      await b.fake.kill();
    },
  };
}

/** Creates a disk through the API and waits for its job; returns the object. */
async function disk(api: TestApi, poolId: string, body: Record<string, unknown>) {
  const job = await api.awaitJob(await api.post(`/v1/storage-pools/${poolId}/disks`, body));
  assert.equal(job.status, "succeeded", JSON.stringify(job.error));
  const obj = (await api.get(`/v1/storage-objects/${job.resource_id}`)).body;
  assert.equal(obj.status, "ready");
  return { job, obj };
}

Deno.test("local pools: disks record their host; VMs, clones and placement follow it", async (t) => {
  await using api = await createTestApi(fastConfig(), { active: true });
  await using c = await twoHosts(api);
  const path = (obj: { path: string }) => `/srv/pool/${obj.path}`;
  const newVm = (name: string, disks: string[]) =>
    api.create("/v1/vms", {
      name,
      boot_vcpus: 1,
      memory_size: GiB,
      boot_source_id: c.boot,
      disks: disks.map((id) => ({ storage_object_id: id })),
    });

  await t.step(
    "a disk created on a two-host local pool records the host that made it",
    async () => {
      const { job, obj } = await disk(api, c.pool.id, { name: "auto", size_bytes: MiB });
      assert.equal(obj.host_id, job.result.host_id);
      const [made, other] = obj.host_id === c.a.host.id ? [c.a, c.b] : [c.b, c.a];
      assert.ok((await made.fake.state()).disks[path(obj)], "the file is on the chosen host");
      assert.equal((await other.fake.state()).disks[path(obj)], undefined);
      // Asked for node-b: made there, recorded there.
      const pinned = await disk(api, c.pool.id, {
        name: "pinned",
        size_bytes: MiB,
        host_id: c.b.host.id,
      });
      assert.equal(pinned.obj.host_id, c.b.host.id);
      assert.equal(pinned.job.result.host_id, c.b.host.id);
      assert.ok((await c.b.fake.state()).disks[path(pinned.obj)]);
    },
  );

  await t.step(
    "VMs whose disks are on node-b all start on node-b (spread would alternate)",
    async () => {
      const vms = [];
      for (let i = 0; i < 4; i++) {
        const { obj } = await disk(api, c.pool.id, {
          name: `b-root-${i}`,
          size_bytes: MiB,
          host_id: c.b.host.id,
        });
        vms.push(await newVm(`on-b-${i}`, [obj.id]));
      }
      const jobs = await Promise.all(vms.map((v) => api.post(`/v1/vms/${v.id}/start`)));
      for (const j of jobs) {
        const done = await api.awaitJob(j);
        assert.equal(done.status, "succeeded", JSON.stringify(done.error));
        assert.equal(done.result.host_id, c.b.host.id);
      }
      const running = (await c.b.fake.state()).vms;
      for (const v of vms) assert.ok(running[v.id], `${v.name} runs on node-b`);
      // And a disk of node-a's starts on node-a, though node-b is the busy one.
      const { obj } = await disk(api, c.pool.id, {
        name: "a-root",
        size_bytes: MiB,
        host_id: c.a.host.id,
      });
      const onA = await newVm("on-a", [obj.id]);
      const done = await api.awaitJob(await api.post(`/v1/vms/${onA.id}/start`));
      assert.equal(done.result.host_id, c.a.host.id);
    },
  );

  await t.step("a linked clone is made on its base's host", async () => {
    const { obj: base } = await disk(api, c.pool.id, {
      name: "golden",
      size_bytes: MiB,
      format: "qcow2",
      host_id: c.b.host.id,
    });
    const { job, obj } = await disk(api, c.pool.id, { name: "clone", base_object_id: base.id });
    assert.equal(job.result.host_id, c.b.host.id);
    assert.equal(obj.host_id, c.b.host.id);
    assert.equal(obj.parent_id, base.id);
    const overlays = (await c.b.fake.callsOf("createDisk"))
      .map((x) => x.request as { overlay?: { basePath?: string } }).filter((r) => r.overlay);
    assert.deepEqual(overlays.map((r) => r.overlay!.basePath), [path(base)]);
    assert.equal((await c.a.fake.state()).disks[path(obj)], undefined);
  });

  await t.step("a VM with disks on two hosts fails placement, naming them", async () => {
    const { obj: rootA } = await disk(api, c.pool.id, {
      name: "split-root",
      size_bytes: MiB,
      host_id: c.a.host.id,
    });
    const { obj: dataB } = await disk(api, c.pool.id, {
      name: "split-data",
      size_bytes: MiB,
      host_id: c.b.host.id,
    });
    const split = await newVm("split", [rootA.id, dataB.id]);
    const job = await api.awaitJob(await api.post(`/v1/vms/${split.id}/start`));
    assert.equal(job.status, "failed");
    assert.match(
      job.error.message,
      /local_objects: its files in local pools are on different hosts \(split-root on node-a; split-data on node-b\), so no single host can run it/,
    );
    const vm = (await api.get(`/v1/vms/${split.id}`)).body;
    assert.equal(vm.host_id, null);
    assert.notEqual(vm.status, "running");
  });

  await t.step("attaching a disk of another host to a placed VM is refused", async () => {
    const owner = (await api.get("/v1/vms?name=on-b-0")).body.items[0];
    const stop = await api.awaitJob(await api.post(`/v1/vms/${owner.id}/stop`));
    assert.equal(stop.status, "succeeded", JSON.stringify(stop.error));
    const { obj } = await disk(api, c.pool.id, {
      name: "extra-a",
      size_bytes: MiB,
      host_id: c.a.host.id,
    });
    const r = await api.post(`/v1/vms/${owner.id}/disks`, { storage_object_id: obj.id });
    assert.equal(r.status, 409, JSON.stringify(r.body));
    assert.match(
      r.body.message,
      /extra-a lives on host node-a \(local pool\), but vm on-b-0 is placed on host node-b/,
    );
  });

  await t.step("a clone whose base's host is down fails clearly", async () => {
    const base = (await api.get("/v1/storage-objects?name=golden")).body.items[0];
    await c.b.fake.kill();
    await api.db.sql`update hosts set status = 'down' where id = ${c.b.host.id}`;
    const job = await api.awaitJob(
      await api.post(`/v1/storage-pools/${c.pool.id}/disks`, {
        name: "clone-2",
        base_object_id: base.id,
      }),
    );
    assert.equal(job.status, "failed");
    assert.match(
      job.error.message,
      /the disk must be created on host node-b \(its base golden lives there\), which is down/,
    );
    const obj = (await api.get(`/v1/storage-objects/${job.resource_id}`)).body;
    assert.equal(obj.status, "failed");
    assert.equal(obj.host_id, c.b.host.id);
  });
});

/**
 * `/v1/vms/{id}/snapshots` and `/v1/vms/{id}/restore` with the workers against a fake node:
 * a running VM is paused, snapshotted and resumed (in that order) and the snapshot is ready
 * on its host; a stopped VM, a duplicate name, a restore of a running VM and of a snapshot of
 * another VM are refused; a restore brings the stopped VM back running; a failed snapshot
 * resumes the VM and marks the snapshot failed; list, get and delete (the node removes the
 * files; `force` drops the records when it cannot); deleting the VM deletes its snapshots.
 */
import assert from "node:assert/strict";
import { createTestApi, fastConfig, type TestApi } from "../../tests/support/api.ts";
import { addFakeHost, bootSource, type FakeHost } from "../../tests/support/orchestration.ts";

const GiB = 1024 ** 3;

/** A host with a local pool, a VM with a disk there, started. */
async function runningVm(api: TestApi, h: FakeHost, name: string) {
  const pool = await api.create("/v1/storage-pools", { name: `p-${name}`, path: `/srv/${name}` });
  await api.create(`/v1/storage-pools/${pool.id}/hosts`, { host_id: h.host.id });
  const boot = await bootSource(api, pool.id);
  const disk = await api.create("/v1/storage-objects", {
    name: `root-${name}`,
    storage_pool_id: pool.id,
    type: "disk",
    format: "raw",
    path: `root-${name}.img`,
    host_id: h.host.id,
  });
  const vm = await api.create("/v1/vms", {
    name,
    boot_vcpus: 1,
    memory_size: GiB,
    boot_source_id: boot,
    disks: [{ storage_object_id: disk.id }],
  });
  const job = await api.awaitJob(await api.post(`/v1/vms/${vm.id}/start`));
  assert.equal(job.status, "succeeded", JSON.stringify(job));
  return { pool, vm };
}

/** The order of the VM calls the fake received (queries left out). */
async function vmCalls(h: FakeHost): Promise<string[]> {
  return (await h.fake.state()).calls.map((c) => c.method)
    .filter((m) => ["pauseVM", "snapshotVM", "resumeVM", "restoreVM", "createVM"].includes(m));
}

Deno.test("VM snapshots and restore through the API (fake node)", async (t) => {
  await using api = await createTestApi(fastConfig(), { active: true, logLevel: "info" });
  const h = await addFakeHost(api, "node-a");
  try {
    const { pool, vm } = await runningVm(api, h, "web-1");
    let snapshotId = "";

    await t.step("a running VM: pause → snapshot → resume, the snapshot is ready", async () => {
      const before = (await vmCalls(h)).length;
      const res = await api.post(`/v1/vms/${vm.id}/snapshots`, { name: "before-upgrade" });
      assert.equal(res.status, 202, JSON.stringify(res.body));
      assert.equal(res.body.type, "vm_snapshot");
      assert.match(res.headers.get("location") ?? "", /^\/v1\/jobs\//);
      const job = await api.awaitJob(res);
      assert.equal(job.status, "succeeded", JSON.stringify(job));
      snapshotId = job.result.snapshot_id;
      assert.equal(job.result.host_id, h.host.id);
      assert.equal(job.result.path, `/srv/web-1/snapshots/${vm.id}/${snapshotId}`);
      assert.deepEqual((await vmCalls(h)).slice(before), ["pauseVM", "snapshotVM", "resumeVM"]);
      const [call] = await h.fake.callsOf("snapshotVM");
      assert.deepEqual(call.request, {
        vmId: vm.id,
        snapshotUrl: `file:///srv/web-1/snapshots/${vm.id}/${snapshotId}`,
      });
      assert.equal((await api.get(`/v1/vms/${vm.id}`)).body.status, "running");

      const snap = await api.get(`/v1/vms/${vm.id}/snapshots/${snapshotId}`);
      assert.equal(snap.status, 200);
      assert.equal(snap.body.name, "before-upgrade");
      assert.equal(snap.body.status, "ready");
      assert.equal(snap.body.host_id, h.host.id);
      assert.ok(snap.headers.get("etag"));
      const obj = (await api.get(`/v1/storage-objects/${snap.body.storage_object_id}`)).body;
      assert.equal(obj.type, "snapshot");
      assert.equal(obj.status, "ready");
      assert.equal(obj.storage_pool_id, pool.id);
      assert.equal(obj.host_id, h.host.id);
    });

    await t.step("a duplicate name is a 409; a default name is given", async () => {
      const dup = await api.post(`/v1/vms/${vm.id}/snapshots`, { name: "before-upgrade" });
      assert.equal(dup.status, 409, JSON.stringify(dup.body));
      assert.equal(dup.body.details[0].field, "name");
      const res = await api.post(`/v1/vms/${vm.id}/snapshots`, {});
      assert.equal(res.status, 202, JSON.stringify(res.body));
      assert.equal((await api.awaitJob(res)).status, "succeeded");
      const list = await api.get(`/v1/vms/${vm.id}/snapshots`);
      assert.equal(list.status, 200);
      assert.equal(list.body.items.length, 2);
      assert.match(list.body.items[1].name, /^snapshot-[0-9a-f]{8}$/);
      const named = await api.get(`/v1/vms/${vm.id}/snapshots?name=before-upgrade`);
      assert.deepEqual(named.body.items.map((s: { id: string }) => s.id), [snapshotId]);
    });

    await t.step(
      "storage_pool_id: another pool, attached and active on the VM's host",
      async () => {
        const other = await api.create("/v1/storage-pools", { name: "snaps", path: "/srv/snaps" });
        const into = (poolId: string) =>
          api.post(`/v1/vms/${vm.id}/snapshots`, { name: "elsewhere", storage_pool_id: poolId });
        const unknown = await into(crypto.randomUUID());
        assert.equal(unknown.status, 422, JSON.stringify(unknown.body));
        assert.equal(unknown.body.details[0].field, "storage_pool_id");
        const away = await into(other.id);
        assert.equal(away.status, 409, JSON.stringify(away.body));
        assert.match(
          away.body.message,
          /storage pool snaps is not attached to the VM's host: it cannot hold a snapshot of vm web-1/,
        );
        await api.create(`/v1/storage-pools/${other.id}/hosts`, { host_id: h.host.id });
        assert.equal(
          (await api.patch(`/v1/storage-pools/${other.id}`, { status: "inactive" })).status,
          200,
        );
        const inactive = await into(other.id);
        assert.equal(inactive.status, 409, JSON.stringify(inactive.body));
        assert.match(inactive.body.message, /storage pool snaps is inactive/);
        await api.patch(`/v1/storage-pools/${other.id}`, { status: "active" });

        const job = await api.awaitJob(await into(other.id));
        assert.equal(job.status, "succeeded", JSON.stringify(job));
        const id = job.result.snapshot_id;
        assert.equal(job.result.path, `/srv/snaps/snapshots/${vm.id}/${id}`);
        const snap = (await api.get(`/v1/vms/${vm.id}/snapshots/${id}`)).body;
        const obj = (await api.get(`/v1/storage-objects/${snap.storage_object_id}`)).body;
        assert.equal(obj.storage_pool_id, other.id);
        assert.equal(obj.host_id, h.host.id); // a local pool: the VM's host holds the files
        assert.equal((await api.get(`/v1/vms/${vm.id}`)).body.status, "running");
      },
    );

    await t.step("restore of a running VM is a 409 naming its status", async () => {
      const res = await api.post(`/v1/vms/${vm.id}/restore`, { snapshot_id: snapshotId });
      assert.equal(res.status, 409, JSON.stringify(res.body));
      assert.match(res.body.message, /it is running/);
    });

    await t.step("a failed snapshot resumes the VM and is marked failed", async () => {
      await h.fake.fail("snapshotVM", "internal", "disk full");
      const res = await api.post(`/v1/vms/${vm.id}/snapshots`, { name: "doomed" });
      assert.equal(res.status, 202, JSON.stringify(res.body));
      const job = await api.awaitJob(res, 20);
      assert.equal(job.status, "failed", JSON.stringify(job));
      const snap = (await api.get(`/v1/vms/${vm.id}/snapshots?name=doomed`)).body.items[0];
      assert.equal(snap.status, "failed");
      assert.match(snap.status_reason, /snapshot failed: .*disk full/);
      assert.equal((await api.get(`/v1/vms/${vm.id}`)).body.status, "running");
      assert.equal((await h.fake.state()).vms[vm.id].status, 2 /* RUNNING */);
      assert.equal((await vmCalls(h)).at(-1), "resumeVM");

      const restore = await api.post(`/v1/vms/${vm.id}/restore`, { snapshot_id: snap.id });
      assert.equal(restore.status, 409); // running; and the snapshot is not ready either
    });

    await t.step("a stopped VM cannot be snapshotted (409)", async () => {
      const stop = await api.awaitJob(await api.post(`/v1/vms/${vm.id}/stop`));
      assert.equal(stop.status, "succeeded", JSON.stringify(stop));
      const res = await api.post(`/v1/vms/${vm.id}/snapshots`, { name: "cold" });
      assert.equal(res.status, 409, JSON.stringify(res.body));
      assert.match(res.body.message, /it is shutdown/);
    });

    await t.step("restore refusals: failed snapshot 409, other VM's snapshot 404", async () => {
      const failed = (await api.get(`/v1/vms/${vm.id}/snapshots?status=failed`)).body.items[0];
      const res = await api.post(`/v1/vms/${vm.id}/restore`, { snapshot_id: failed.id });
      assert.equal(res.status, 409, JSON.stringify(res.body));
      assert.match(res.body.message, /is failed, not ready/);
      const other = await api.create("/v1/vms", { name: "other", boot_vcpus: 1, memory_size: GiB });
      const res2 = await api.post(`/v1/vms/${other.id}/restore`, { snapshot_id: snapshotId });
      assert.equal(res2.status, 404, JSON.stringify(res2.body));
      const get = await api.get(`/v1/vms/${other.id}/snapshots/${snapshotId}`);
      assert.equal(get.status, 404);
    });

    await t.step("restore brings the stopped VM back running on the snapshot's host", async () => {
      const res = await api.post(`/v1/vms/${vm.id}/restore`, { snapshot_id: snapshotId });
      assert.equal(res.status, 202, JSON.stringify(res.body));
      assert.equal(res.body.type, "vm_restore");
      const job = await api.awaitJob(res);
      assert.equal(job.status, "succeeded", JSON.stringify(job));
      const [call] = await h.fake.callsOf("restoreVM");
      assert.deepEqual(call.request, {
        vmId: vm.id,
        sourceUrl: `file:///srv/web-1/snapshots/${vm.id}/${snapshotId}`,
      }); // hypervisor: CLOUD_HV, the default (0), is not on the wire

      const after = (await api.get(`/v1/vms/${vm.id}`)).body;
      assert.equal(after.status, "running");
      assert.equal(after.host_id, h.host.id);
    });

    await t.step(
      "delete: 202 + job, the node removes the directory, then the records",
      async () => {
        const snap = (await api.get(`/v1/vms/${vm.id}/snapshots/${snapshotId}`)).body;
        const res = await api.del(`/v1/vms/${vm.id}/snapshots/${snapshotId}`);
        assert.equal(res.status, 202, JSON.stringify(res.body));
        assert.equal(res.body.type, "vm_snapshot_delete");
        const job = await api.awaitJob(res);
        assert.equal(job.status, "succeeded", JSON.stringify(job));
        const dir = `/srv/web-1/snapshots/${vm.id}/${snapshotId}`;
        assert.deepEqual(job.result, { snapshot_id: snapshotId, host_id: h.host.id, path: dir });
        const calls = await h.fake.callsOf("deleteSnapshot");
        assert.deepEqual(calls.map((c) => c.request), [{ path: dir }]);
        assert.equal((await api.get(`/v1/vms/${vm.id}/snapshots/${snapshotId}`)).status, 404);
        assert.equal((await api.get(`/v1/storage-objects/${snap.storage_object_id}`)).status, 404);
        assert.equal((await api.del(`/v1/vms/${vm.id}/snapshots/${snapshotId}`)).status, 404);
      },
    );

    await t.step(
      "a node that cannot remove the files keeps the snapshot; force=true does not",
      async () => {
        const made = await api.awaitJob(
          await api.post(`/v1/vms/${vm.id}/snapshots`, { name: "s2" }),
        );
        const id = made.result.snapshot_id;
        await h.fake.fail("deleteSnapshot", "failed_precondition", "it holds disk.raw");
        const failed = await api.awaitJob(await api.del(`/v1/vms/${vm.id}/snapshots/${id}`));
        assert.equal(failed.status, "failed", JSON.stringify(failed));
        assert.match(failed.error.message, /it holds disk.raw/);
        assert.equal((await api.get(`/v1/vms/${vm.id}/snapshots/${id}`)).status, 200);

        await h.fake.fail("deleteSnapshot", "failed_precondition", "it holds disk.raw");
        const forced = await api.awaitJob(
          await api.del(`/v1/vms/${vm.id}/snapshots/${id}?force=true`),
        );
        assert.equal(forced.status, "succeeded", JSON.stringify(forced));
        assert.match(forced.result.node_error, /it holds disk.raw/);
        assert.equal((await api.get(`/v1/vms/${vm.id}/snapshots/${id}`)).status, 404);
      },
    );

    await t.step("deleting the VM removes its snapshots (files and objects)", async () => {
      const objects = [];
      for (const name of ["s3", "s4"]) {
        const job = await api.awaitJob(await api.post(`/v1/vms/${vm.id}/snapshots`, { name }));
        assert.equal(job.status, "succeeded", JSON.stringify(job));
        const snap = (await api.get(`/v1/vms/${vm.id}/snapshots/${job.result.snapshot_id}`)).body;
        objects.push(snap.storage_object_id);
      }
      const all = (await api.get(`/v1/vms/${vm.id}/snapshots`)).body.items;
      assert.deepEqual(all.slice(-2).map((x: { name: string }) => x.name), ["s3", "s4"]);
      const before = (await h.fake.callsOf("deleteSnapshot")).length;
      // The node cannot remove the first one's files: noted, its records go all the same.
      await h.fake.fail("deleteSnapshot", "failed_precondition", "it holds disk.raw");
      const job = await api.awaitJob(await api.del(`/v1/vms/${vm.id}`));
      assert.equal(job.status, "succeeded", JSON.stringify(job));
      assert.equal(job.result.snapshots_deleted, all.length);
      assert.equal(job.result.snapshot_errors.length, 1);
      assert.match(job.result.snapshot_errors[0], /it holds disk.raw/);
      assert.ok(job.result.snapshot_errors[0].startsWith(`snapshot ${all[0].name}: `));
      assert.equal((await h.fake.callsOf("deleteSnapshot")).length, before + all.length);
      for (const o of objects) {
        assert.equal((await api.get(`/v1/storage-objects/${o}`)).status, 404);
      }
      const left = await api.get(`/v1/storage-objects?storage_pool_id=${pool.id}&type=snapshot`);
      assert.deepEqual(left.body.items, []);
    });
  } finally {
    await h.fake.kill();
  }
});

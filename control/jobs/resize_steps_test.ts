/** The resize steps on their own, against a fake node and a real database. */
import assert from "node:assert/strict";
import { FailedPreconditionError } from "../../shared/errors/errors.ts";
import { createTestApi, fastConfig } from "../../tests/support/api.ts";
import { addFakeHost, bootSource, claimedRun } from "../../tests/support/orchestration.ts";
import { vms } from "../db/vms.ts";
import { PLANS } from "./plans.ts";
import {
  diskRecordSizeStep,
  diskResizeCheckStep,
  diskResizeOnNodeStep,
  diskResizePoolStep,
  recordSizingStep,
  resizeCheckStep,
  resizeOnNodeStep,
  undoResize,
} from "./resize_steps.ts";

const GiB = 1024 ** 3;

Deno.test("resize steps: each is idempotent; a VM that stopped is refused", async (t) => {
  await using api = await createTestApi(fastConfig());
  const a = await addFakeHost(api, "node-a");
  // The steps run outside a worker: their job is ended by hand.
  const done = (id: string) => api.db.sql`update jobs set status = 'succeeded' where id = ${id}`;
  try {
    const pool = await api.create("/v1/storage-pools", { name: "local", path: "/srv/pool" });
    await api.create(`/v1/storage-pools/${pool.id}/hosts`, { host_id: a.host.id });
    const obj = await api.create("/v1/storage-objects", {
      name: "root",
      storage_pool_id: pool.id,
      type: "disk",
      path: "root.img",
      size_bytes: GiB,
    });
    const vm = await api.create("/v1/vms", {
      name: "web-1",
      boot_vcpus: 1,
      max_vcpus: 2,
      memory_size: GiB,
      boot_source_id: await bootSource(api, pool.id),
      disks: [{ storage_object_id: obj.id }],
    });
    const start = await claimedRun(api, "vm_start", vm.id);
    await start.run(PLANS.vm_start);
    await done(start.job.id);

    await t.step("vm_resize: check, node, record; running them again changes nothing", async () => {
      const run = await claimedRun(api, "vm_resize", vm.id, { desired_vcpus: 2 });
      for (const step of [resizeCheckStep, resizeOnNodeStep, recordSizingStep]) {
        await step.run(run);
        await step.run(run);
      }
      assert.equal((await vms.get(api.db.sql, vm.id))?.boot_vcpus, 2);
      assert.equal((await a.fake.callsOf("resizeVm")).length, 2);
      assert.equal((await a.fake.state()).vms[vm.id].config.cpus?.bootVcpus, 2);
      await done(run.job.id);
    });

    await t.step(
      "vm_resize: the check reserves the larger sizes; the undo gives them back",
      async () => {
        const boot = async () => (await vms.get(api.db.sql, vm.id))?.boot_vcpus;
        const shrink = await claimedRun(api, "vm_resize", vm.id, { desired_vcpus: 1 });
        await resizeCheckStep.run(shrink);
        assert.equal(await boot(), 2, "vCPUs given back are held until the node unplugged them");
        await resizeOnNodeStep.run(shrink);
        await recordSizingStep.run(shrink);
        assert.equal(await boot(), 1);
        await done(shrink.job.id);

        const grow = await claimedRun(api, "vm_resize", vm.id, { desired_vcpus: 2 });
        await resizeCheckStep.run(grow);
        assert.equal(await boot(), 2, "reserved before the node is asked");
        assert.deepEqual(grow.data.previous, {
          boot_vcpus: 1,
          memory_size: GiB,
          memory_hotplug_size: null,
        });
        // A crash after the reservation committed, before the checkpoint: the retry sees it.
        grow.data.sizing = undefined;
        await resizeCheckStep.run(grow);
        assert.equal(
          grow.data.sizing && (grow.data.sizing as { boot_vcpus: number }).boot_vcpus,
          2,
        );
        const err = new FailedPreconditionError("node said no");
        await undoResize(grow, err);
        assert.equal(await boot(), 1, "the old size is back");
        await undoResize(grow, err);
        assert.equal(await boot(), 1);
        await done(grow.job.id);
      },
    );

    await t.step("disk_resize: the VMM path while running; the size is recorded", async () => {
      const run = await claimedRun(api, "disk_resize", vm.id, {
        device_id: "disk0",
        storage_object_id: obj.id,
        size_bytes: 2 * GiB,
      });
      const steps = [diskResizeCheckStep, diskResizePoolStep, diskResizeOnNodeStep];
      for (const step of [...steps, diskRecordSizeStep]) await step.run(run);
      assert.equal(run.data.mode, "vmm");
      // A retry after the size was recorded still passes the check (same size).
      run.data.mode = undefined;
      await diskResizeCheckStep.run(run);
      assert.equal((await api.get(`/v1/storage-objects/${obj.id}`)).body.size_bytes, 2 * GiB);
      await done(run.job.id);
    });

    await t.step("vm_resize check: a VM no longer running fails the job", async () => {
      await api.runtime.svc.sql`update vms set status = 'shutdown' where id = ${vm.id}`;
      const run = await claimedRun(api, "vm_resize", vm.id, { desired_vcpus: 1 });
      await assert.rejects(resizeCheckStep.run(run), FailedPreconditionError);
    });
  } finally {
    await a.fake.kill();
  }
});

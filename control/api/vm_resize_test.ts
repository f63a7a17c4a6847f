/** Resizing VMs and growing disks through the API, with jobs run against fake nodes. */
import assert from "node:assert/strict";
import { createTestApi, fastConfig, fieldsOf, type TestApi } from "../../tests/support/api.ts";
import { addFakeHost, bootSource } from "../../tests/support/orchestration.ts";

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;

/** One fake host (4 CPUs × 4 overcommit = 16 vCPUs, 4 GiB), a pool, a boot source. */
async function oneHost(api: TestApi) {
  const a = await addFakeHost(api, "node-a", { totalCpus: 4, totalMemoryBytes: 4 * GiB });
  const pool = await api.create("/v1/storage-pools", { name: "local", path: "/srv/pool" });
  await api.create(`/v1/storage-pools/${pool.id}/hosts`, { host_id: a.host.id });
  const boot = await bootSource(api, pool.id);
  return {
    a,
    pool,
    boot,
    async [Symbol.asyncDispose]() {
      await a.fake.kill();
    },
  };
}

async function newVm(api: TestApi, name: string, boot: string, extra = {}) {
  return await api.create("/v1/vms", {
    name,
    boot_vcpus: 1,
    max_vcpus: 4,
    memory_size: GiB,
    memory_hotplug_size: GiB,
    boot_source_id: boot,
    ...extra,
  });
}

async function started(api: TestApi, id: string) {
  const job = await api.awaitJob(await api.post(`/v1/vms/${id}/start`));
  assert.equal(job.status, "succeeded", JSON.stringify(job.error));
}

Deno.test("vm resize through the API", async (t) => {
  await using api = await createTestApi(fastConfig(), { active: true, logLevel: "info" });
  await using c = await oneHost(api);
  const vm = await newVm(api, "web-1", c.boot);
  await started(api, vm.id);

  await t.step("running: 202 + vm_resize job; node hotplugs; the record follows", async () => {
    const res = await api.post(`/v1/vms/${vm.id}/resize`, {
      desired_vcpus: 3,
      desired_ram: GiB + 512 * MiB,
    });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    assert.equal(res.body.type, "vm_resize");
    const job = await api.awaitJob(res);
    assert.equal(job.status, "succeeded", JSON.stringify(job.error));
    const row = (await api.get(`/v1/vms/${vm.id}`)).body;
    assert.equal(row.boot_vcpus, 3);
    assert.equal(row.memory_size, GiB + 512 * MiB);
    assert.equal(row.memory_hotplug_size, 512 * MiB, "the ceiling is kept");
    const calls = await c.a.fake.callsOf("resizeVm");
    assert.equal(calls.length, 1);
    // deno-lint-ignore no-explicit-any
    const req = calls[0].request as any;
    assert.equal(req.vmId, vm.id);
    assert.equal(req.desiredVcpus, 3);
    assert.equal(Number(req.desiredRam), GiB + 512 * MiB);
  });

  await t.step("PUT (upstream) works too; Idempotency-Key returns the first job", async () => {
    const h = { "idempotency-key": "shrink-cpus" };
    const first = await api.request("PUT", `/v1/vms/${vm.id}/resize`, { desired_vcpus: 2 }, h);
    assert.equal(first.status, 202, JSON.stringify(first.body));
    assert.equal((await api.awaitJob(first)).status, "succeeded");
    const retry = await api.request("PUT", `/v1/vms/${vm.id}/resize`, { desired_vcpus: 2 }, h);
    assert.equal(retry.body.id, first.body.id);
    assert.equal((await api.get(`/v1/vms/${vm.id}`)).body.boot_vcpus, 2);
  });

  await t.step("bounds: 422 naming the field", async () => {
    const cases: [Record<string, unknown>, string, RegExp][] = [
      [{}, "desired_vcpus", /desired_vcpus or desired_ram/],
      [{ desired_vcpus: 5 }, "desired_vcpus", /from 1 to max_vcpus \(4\)/],
      [{ desired_vcpus: 0 }, "desired_vcpus", /./],
      [{ desired_ram: GiB + 600 * MiB }, "desired_ram", /multiple of 128 MiB/],
      [{ desired_ram: 3 * GiB }, "desired_ram", /at most memory_size \+ memory_hotplug_size/],
      [{ desired_ram: GiB }, "desired_ram", /cannot shrink/],
      [{ desired_ram: 64 * MiB }, "desired_ram", /at least 128 MiB/],
      [{ desired_cpus: 2 }, "desired_cpus", /./],
    ];
    for (const [body, field, message] of cases) {
      const res = await api.post(`/v1/vms/${vm.id}/resize`, body);
      assert.equal(res.status, 422, `${JSON.stringify(body)}: ${JSON.stringify(res.body)}`);
      assert.ok(fieldsOf(res).includes(field), `${JSON.stringify(body)}: ${fieldsOf(res)}`);
      assert.match(JSON.stringify(res.body), message);
    }
    assert.equal(
      (await api.post(`/v1/vms/${crypto.randomUUID()}/resize`, { desired_vcpus: 1 }))
        .status,
      404,
    );
  });

  await t.step("capacity: the job fails with a placement-style message", async () => {
    // 16 vCPUs on the host: a second VM takes 14, leaving 2 for web-1, which asks for 4.
    const big = await newVm(api, "big", c.boot, { boot_vcpus: 14, max_vcpus: 14 });
    await started(api, big.id);
    const res = await api.post(`/v1/vms/${vm.id}/resize`, { desired_vcpus: 4 });
    const job = await api.awaitJob(res);
    assert.equal(job.status, "failed");
    assert.match(
      job.error.message,
      /host node-a cannot fit vm web-1 resized to 4 vCPU, .*: vcpus: node-a has 2 of 16 vCPUs free, the vm needs 4/,
    );
    assert.equal((await api.get(`/v1/vms/${vm.id}`)).body.boot_vcpus, 2, "unchanged");
    assert.equal((await c.a.fake.callsOf("resizeVm")).length, 2, "no node call");
  });

  await t.step("wrong state: 409 naming the status", async () => {
    assert.equal(
      (await api.awaitJob(await api.post(`/v1/vms/${vm.id}/pause`))).status,
      "succeeded",
    );
    const res = await api.post(`/v1/vms/${vm.id}/resize`, { desired_vcpus: 1 });
    assert.equal(res.status, 409);
    assert.match(res.body.message, /cannot resize vm .*: it is paused/);
  });

  await t.step("stopped: 200 with the new boot sizes, no job", async () => {
    const stopped = await newVm(api, "cold", c.boot);
    const before = (await api.get(`/v1/jobs?type=vm_resize`)).body.items.length;
    const res = await api.post(`/v1/vms/${stopped.id}/resize`, {
      desired_vcpus: 4,
      desired_ram: 3 * GiB,
    });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.boot_vcpus, 4);
    assert.equal(res.body.memory_size, 3 * GiB);
    assert.equal(res.body.memory_hotplug_size, GiB, "a stopped VM keeps its hotplug room");
    assert.ok(res.headers.get("etag"));
    assert.equal((await api.get(`/v1/jobs?type=vm_resize`)).body.items.length, before);
    const bad = await api.post(`/v1/vms/${stopped.id}/resize`, { desired_vcpus: 9 });
    assert.equal(bad.status, 422);
    assert.deepEqual(fieldsOf(bad), ["desired_vcpus"]);
  });
});

Deno.test("disk resize through the API", async (t) => {
  await using api = await createTestApi(fastConfig(), { active: true, logLevel: "info" });
  await using c = await oneHost(api);
  const disk = async (name: string) =>
    await api.create("/v1/storage-objects", {
      name,
      storage_pool_id: c.pool.id,
      type: "disk",
      path: `${name}.img`,
      format: "raw",
      size_bytes: GiB,
    });
  const root = await disk("root");
  const data = await disk("data");
  const vm = await newVm(api, "db-1", c.boot, { disks: [{ storage_object_id: root.id }] });
  const cold = await newVm(api, "db-2", c.boot, { disks: [{ storage_object_id: data.id }] });
  await started(api, vm.id);

  await t.step("running: the VMM grows it; the object records the size", async () => {
    const res = await api.post(`/v1/vms/${vm.id}/disks/disk0/resize`, { size_bytes: 2 * GiB });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    assert.equal(res.body.type, "disk_resize");
    const job = await api.awaitJob(res);
    assert.equal(job.status, "succeeded", JSON.stringify(job.error));
    assert.equal((await api.get(`/v1/storage-objects/${root.id}`)).body.size_bytes, 2 * GiB);
    const [call] = await c.a.fake.callsOf("resizeDisk");
    // deno-lint-ignore no-explicit-any
    const req = call.request as any;
    assert.equal(req.vmId, vm.id);
    assert.equal(req.diskId, "disk0");
    assert.equal(Number(req.newSize), 2 * GiB);
  });

  await t.step("stopped: the node grows the file in its pool", async () => {
    const res = await api.post(`/v1/vms/${cold.id}/disks/disk0/resize`, { size_bytes: 3 * GiB });
    const job = await api.awaitJob(res);
    assert.equal(job.status, "succeeded", JSON.stringify(job.error));
    assert.equal(job.result.host_id, c.a.host.id);
    const calls = await c.a.fake.callsOf("resizeDisk");
    // deno-lint-ignore no-explicit-any
    const req = calls[calls.length - 1].request as any;
    assert.ok(!req.vmId, "no VM: the file itself");
    assert.equal(req.path, "/srv/pool/data.img");
    assert.equal((await api.get(`/v1/storage-objects/${data.id}`)).body.size_bytes, 3 * GiB);
  });

  await t.step("shrinking, same size or a partial MiB: 422", async () => {
    for (const size of [GiB, 2 * GiB, 2 * GiB + 4096]) {
      const res = await api.post(`/v1/vms/${vm.id}/disks/disk0/resize`, { size_bytes: size });
      assert.equal(res.status, 422, JSON.stringify(res.body));
      assert.deepEqual(fieldsOf(res), ["size_bytes"]);
    }
    const none = await api.post(`/v1/vms/${vm.id}/disks/disk9/resize`, { size_bytes: 4 * GiB });
    assert.equal(none.status, 404);
  });
});

Deno.test("vm resize: concurrent resizes and a start never overcommit the host", async (t) => {
  await using api = await createTestApi(fastConfig(), { active: true, logLevel: "info" });
  await using c = await oneHost(api);
  const small = {
    boot_vcpus: 1,
    max_vcpus: 8,
    memory_size: 256 * MiB,
    memory_hotplug_size: 256 * MiB,
  };
  const running: { id: string }[] = [];
  for (const name of ["r1", "r2", "r3"]) {
    const vm = await newVm(api, name, c.boot, small);
    await started(api, vm.id);
    running.push(vm);
  }
  const late = await newVm(api, "late", c.boot, { ...small, boot_vcpus: 4 });
  const ledger = async () => (await api.get(`/v1/hosts/${c.a.host.id}/resources`)).body;
  const vcpusOf = async (id: string) => (await api.get(`/v1/vms/${id}`)).body.boot_vcpus;

  await t.step("3 of 16 vCPUs used; four operations of +4 each: exactly three fit", async () => {
    assert.equal((await ledger()).allocated_vcpus, 3);
    // The node is slow, so every job has checked before any has finished.
    await c.a.fake.delay("resizeVm", 400);
    await c.a.fake.delay("createVM", 400);
    let peak = 0;
    let watching = true;
    const watch = (async () => {
      while (watching) {
        peak = Math.max(peak, (await ledger()).allocated_vcpus);
        await new Promise((r) => setTimeout(r, 25));
      }
    })();
    const accepted = await Promise.all([
      ...running.map((vm) => api.post(`/v1/vms/${vm.id}/resize`, { desired_vcpus: 5 })),
      api.post(`/v1/vms/${late.id}/start`),
    ]);
    const jobs = await Promise.all(accepted.map((res) => api.awaitJob(res)));
    watching = false;
    await watch;
    await c.a.fake.delay("resizeVm", 0);
    await c.a.fake.delay("createVM", 0);

    const failed = jobs.filter((j) => j.status === "failed");
    assert.equal(failed.length, 1, JSON.stringify(jobs.map((j) => [j.type, j.status])));
    assert.equal(jobs.filter((j) => j.status === "succeeded").length, 3);
    const [lost] = failed;
    assert.match(
      lost.error.message,
      lost.type === "vm_resize"
        ? /host node-a cannot fit vm r\d resized to 5 vCPU, .*: vcpus: node-a has 2 of 16 vCPUs free, the vm needs 5/
        : /no host can run vm late \(4 vCPU, 256 MiB\): vcpus: node-a has 1 of 16 vCPUs free, the vm needs 4/,
    );
    const after = await ledger();
    assert.equal(after.allocated_vcpus, 15);
    assert.ok(peak <= after.vcpu_capacity, `peak ${peak} of ${after.vcpu_capacity}`);
    const rows = await Promise.all([...running, late].map((vm) => api.get(`/v1/vms/${vm.id}`)));
    const held = rows.filter((r) => r.body.status === "running").map((r) => r.body.boot_vcpus);
    assert.equal(held.reduce((a, b) => a + b, 0), 15, `running sizes ${held}`);
  });

  await t.step("the node fails the hotplug: the VM's record gets its old sizes back", async () => {
    const vm = (await Promise.all(running.map((v) => api.get(`/v1/vms/${v.id}`))))
      .map((r) => r.body).find((v) => v.boot_vcpus === 5)!;
    const before = await ledger();
    await c.a.fake.fail("resizeVm", "failed_precondition", "hotplug refused by the VMM");
    await c.a.fake.delay("resizeVm", 300);
    const res = await api.post(`/v1/vms/${vm.id}/resize`, { desired_vcpus: 6 });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    // While the node works, the record holds the new size (the ledger counts it).
    const deadline = Date.now() + 5000;
    while ((await vcpusOf(vm.id)) !== 6 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal((await ledger()).allocated_vcpus, before.allocated_vcpus + 1);
    const job = await api.awaitJob(res);
    await c.a.fake.delay("resizeVm", 0);
    assert.equal(job.status, "failed");
    assert.match(job.error.message, /hotplug refused by the VMM/);
    const row = (await api.get(`/v1/vms/${vm.id}`)).body;
    assert.equal(row.boot_vcpus, 5, "the old size is back");
    assert.equal(row.memory_size, 256 * MiB);
    assert.equal(row.memory_hotplug_size, 256 * MiB);
    assert.equal((await ledger()).allocated_vcpus, before.allocated_vcpus);
  });
});

/** Jobs run by the workers end to end: through the API, against fake nodes. */
import assert from "node:assert/strict";
import { node } from "../../shared/proto/mod.ts";
import { createTestApi, fastConfig, type TestApi } from "../../tests/support/api.ts";
import { addFakeHost, bootSource, claimedRun } from "../../tests/support/orchestration.ts";
import { eventsAfter } from "../events/store.ts";
import { startRuntime } from "../runtime.ts";
import {
  createOnNodeStep,
  ensureNetworksStep,
  ensurePoolsStep,
  placeStep,
  startCheck,
} from "./vm_steps.ts";

const S = node.VmStatus;
const GiB = 1024 ** 3;

async function twoHosts(api: TestApi) {
  const a = await addFakeHost(api, "node-a");
  const b = await addFakeHost(api, "node-b");
  const pool = await api.create("/v1/storage-pools", { name: "local", path: "/srv/pool" });
  for (const h of [a, b]) {
    await api.create(`/v1/storage-pools/${pool.id}/hosts`, { host_id: h.host.id });
  }
  const boot = await bootSource(api, pool.id);
  const fakeOf = (hostId: string) => hostId === a.host.id ? a.fake : b.fake;
  return {
    a,
    b,
    pool,
    boot,
    fakeOf,
    async [Symbol.asyncDispose]() {
      await a.fake.kill();
      await b.fake.kill();
    },
  };
}

async function newVm(
  api: TestApi,
  name: string,
  boot: string,
  extra: Record<string, unknown> = {},
) {
  return await api.create("/v1/vms", {
    name,
    boot_vcpus: 1,
    memory_size: GiB,
    boot_source_id: boot,
    ...extra,
  });
}

Deno.test("lifecycle through the API: 202 + job, statuses, placement spread", async (t) => {
  await using api = await createTestApi(fastConfig(), { active: true, logLevel: "info" });
  await using c = await twoHosts(api);
  const vms = await Promise.all([1, 2, 3, 4].map((i) => newVm(api, `web-${i}`, c.boot)));

  await t.step("start: 202 + Location; the job runs and the VM is running", async () => {
    const res = await api.post(`/v1/vms/${vms[0].id}/start`);
    assert.equal(res.status, 202);
    assert.equal(res.headers.get("location"), `/v1/jobs/${res.body.id}`);
    assert.equal(res.body.type, "vm_start");
    assert.equal(res.body.status, "pending");
    const job = await api.awaitJob(res);
    assert.equal(job.status, "succeeded", JSON.stringify(job.error));
    assert.equal(job.progress, 100);
    const vm = (await api.get(`/v1/vms/${vms[0].id}`)).body;
    assert.equal(vm.status, "running");
    assert.equal(job.result.host_id, vm.host_id);
    assert.equal((await c.fakeOf(vm.host_id).state()).vms[vm.id].status, S.VM_STATUS_RUNNING);
  });

  await t.step("placement spreads concurrent starts over equal hosts", async () => {
    const jobs = await Promise.all(vms.slice(1).map((v) => api.post(`/v1/vms/${v.id}/start`)));
    for (const j of jobs) assert.equal((await api.awaitJob(j)).status, "succeeded");
    const hosts = await Promise.all(
      vms.map(async (v) => (await api.get(`/v1/vms/${v.id}`)).body.host_id),
    );
    assert.equal(hosts.filter((h) => h === c.a.host.id).length, 2);
    assert.equal(hosts.filter((h) => h === c.b.host.id).length, 2);
  });

  await t.step("invalid transitions are refused up front, naming the status", async () => {
    const res = await api.post(`/v1/vms/${vms[0].id}/start`);
    assert.equal(res.status, 409);
    assert.match(
      res.body.message,
      /cannot start vm .*: it is running \(allowed when created, shutdown\)/,
    );
    assert.equal((await api.post(`/v1/vms/${vms[0].id}/resume`)).status, 409);
    assert.equal((await api.post(`/v1/vms/00000000-0000-4000-8000-000000000000/stop`)).status, 404);
  });

  await t.step("a second action while one is active is a 409 naming the job", async () => {
    const pausing = await api.post(`/v1/vms/${vms[1].id}/pause`);
    assert.equal(pausing.status, 202);
    const again = await api.post(`/v1/vms/${vms[1].id}/reboot`);
    assert.equal(again.status, 409);
    assert.match(again.body.message, new RegExp(`has an active job ${pausing.body.id}`));
    assert.equal((await api.awaitJob(pausing)).status, "succeeded");
    assert.equal((await api.get(`/v1/vms/${vms[1].id}`)).body.status, "paused");
  });

  await t.step("Idempotency-Key: the same key returns the same job", async () => {
    const h = { "idempotency-key": "resume-web-2" };
    const first = await api.post(`/v1/vms/${vms[1].id}/resume`, undefined, h);
    assert.equal(first.status, 202);
    assert.equal((await api.awaitJob(first)).status, "succeeded");
    // The VM is running now, yet the retried request gets its job, not a 409.
    const retry = await api.post(`/v1/vms/${vms[1].id}/resume`, undefined, h);
    assert.equal(retry.status, 202);
    assert.equal(retry.body.id, first.body.id);
    const other = await api.post(`/v1/vms/${vms[2].id}/reboot`, undefined, h);
    assert.equal(other.status, 409);
    assert.match(other.body.message, /Idempotency-Key resume-web-2 was already used/);
  });

  await t.step("stop (with ?timeout), reboot, force-stop, delete", async () => {
    const stop = await api.post(`/v1/vms/${vms[2].id}/stop?timeout=7`);
    assert.equal(stop.body.params.timeout_ms, 7000);
    assert.equal((await api.awaitJob(stop)).status, "succeeded");
    assert.equal((await api.get(`/v1/vms/${vms[2].id}`)).body.status, "shutdown");
    const reboot = await api.awaitJob(await api.post(`/v1/vms/${vms[3].id}/reboot`));
    assert.equal(reboot.status, "succeeded");
    const force = await api.awaitJob(await api.post(`/v1/vms/${vms[3].id}/force-stop`));
    assert.equal(force.status, "succeeded");
    const host = (await api.get(`/v1/vms/${vms[3].id}`)).body.host_id;
    const del = await api.awaitJob(await api.del(`/v1/vms/${vms[3].id}`));
    assert.equal(del.status, "succeeded");
    assert.equal((await api.get(`/v1/vms/${vms[3].id}`)).status, 404);
    assert.equal((await c.fakeOf(host).state()).vms[vms[3].id], undefined);
  });

  await t.step("a stopped VM starts again on its host", async () => {
    const host = (await api.get(`/v1/vms/${vms[2].id}`)).body.host_id;
    const job = await api.awaitJob(await api.post(`/v1/vms/${vms[2].id}/start`));
    assert.equal(job.status, "succeeded");
    assert.equal(job.result.host_id, host);
  });
});

Deno.test("jobs retry passing failures and fail with the node's reason otherwise", async (t) => {
  await using api = await createTestApi(fastConfig(), { active: true, logLevel: "info" });
  await using c = await twoHosts(api);

  await t.step("an unavailable node is retried; the job still succeeds", async () => {
    const vm = await newVm(api, "r1", c.boot, { placement: { required_host_labels: {} } });
    await c.a.fake.fail("startVM", "unavailable", "vmm busy", 1);
    await c.b.fake.fail("startVM", "unavailable", "vmm busy", 1);
    const job = await api.awaitJob(await api.post(`/v1/vms/${vm.id}/start`));
    assert.equal(job.status, "succeeded", JSON.stringify(job.error));
    assert.equal(job.attempts, 2);
    const types = (await eventsAfter(api.db.sql, 0, { resource_ids: [job.id], types: ["job"] }))
      .map((e) => e.type).filter((t) => t !== "job.progress");
    assert.deepEqual(types, [
      "job.created",
      "job.started",
      "job.retrying",
      "job.started",
      "job.succeeded",
    ]);
  });

  await t.step("a refusal fails the job, says why, and puts the VM back", async () => {
    const vm = await newVm(api, "r2", c.boot);
    await c.a.fake.fail("createVM", "invalid_argument", "networks.0.mtu: must be 1280-65535", 1);
    await c.b.fake.fail("createVM", "invalid_argument", "networks.0.mtu: must be 1280-65535", 1);
    const job = await api.awaitJob(await api.post(`/v1/vms/${vm.id}/start`));
    assert.equal(job.status, "failed");
    assert.equal(job.attempts, 1);
    assert.equal(job.error.code, "invalid_argument");
    assert.match(
      job.error.message,
      /^node node-[ab] \(127\.0\.0\.1:\d+\): CreateVM: networks\.0\.mtu: must be 1280-65535$/,
    );
    const after = (await api.get(`/v1/vms/${vm.id}`)).body;
    assert.equal(after.status, "created");
    assert.equal(after.host_id, null);
    assert.match(after.status_reason, /^start failed: node node-/);
  });

  await t.step("nothing fits: the job fails naming the filters", async () => {
    const vm = await newVm(api, "huge", c.boot, { memory_size: 64 * GiB });
    const job = await api.awaitJob(await api.post(`/v1/vms/${vm.id}/start`));
    assert.equal(job.status, "failed");
    assert.equal(job.error.code, "failed_precondition");
    assert.match(
      job.error.message,
      /^no host can run vm huge \(1 vCPU, 64 GiB\): memory: node-a has/,
    );
    assert.equal(job.error.details.length, 2);
    assert.equal((await api.get(`/v1/vms/${vm.id}`)).body.status, "created");
  });
});

Deno.test("a job whose worker died resumes from its checkpoint on another worker", async () => {
  await using api = await createTestApi(
    fastConfig({ jobs: { ...fastConfig().jobs!, lease_ms: 400 } }),
  );
  await using c = await twoHosts(api);
  const vm = await newVm(api, "resume-me", c.boot);
  // A worker ran the first steps (checkpointing each) and then died.
  const dead = await claimedRun(api, "vm_start", vm.id);
  await api.db.sql`update jobs set lease_expires_at = now() + interval '300 milliseconds'`;
  for (
    const step of [startCheck, placeStep, ensureNetworksStep, ensurePoolsStep, createOnNodeStep]
  ) {
    await step.run(dead);
    dead.done.push(step.name);
    await dead.save();
  }
  const host = dead.data.host_id as string;
  // Another process's workers take it over once the lease expires.
  const other = await startRuntime({
    sql: api.db.sql,
    config: api.deps.config,
    logger: api.deps.logger,
    database: "postgres",
  });
  try {
    const job = await api.awaitJob(dead.job.id);
    assert.equal(job.status, "succeeded", JSON.stringify(job.error));
    assert.equal(job.attempts, 2);
    assert.notEqual(job.lease_owner, dead.claimed.token);
    const fake = c.fakeOf(host);
    assert.equal((await fake.callsOf("createVM")).length, 1, "create_on_node was not run again");
    assert.equal((await fake.callsOf("startVM")).length, 1);
    assert.equal((await api.get(`/v1/vms/${vm.id}`)).body.status, "running");
  } finally {
    await other.stop();
  }
});

Deno.test("two processes' workers run 100 jobs, each exactly once", async () => {
  // A long lease: a loaded test machine must not make a healthy worker lose its job.
  await using api = await createTestApi(
    fastConfig({ jobs: { ...fastConfig().jobs!, lease_ms: 15_000 } }),
  );
  await using a = await addFakeHost(api, "node-a").then((h) => ({
    ...h,
    [Symbol.asyncDispose]: () => h.fake.kill(),
  }));
  const pool = await api.create("/v1/storage-pools", { name: "p", path: "/srv/p" });
  await api.create(`/v1/storage-pools/${pool.id}/hosts`, { host_id: a.host.id });
  const runtimes = await Promise.all(
    [1, 2].map(() =>
      startRuntime({
        sql: api.db.sql,
        config: api.deps.config,
        logger: api.deps.logger,
        database: "postgres",
      })
    ),
  );
  try {
    const jobs = await Promise.all(
      Array.from(
        { length: 100 },
        (_, i) =>
          api.post(`/v1/storage-pools/${pool.id}/disks`, {
            name: `d${i}`,
            size_bytes: 1024 * 1024,
          }),
      ),
    );
    for (const j of jobs) assert.equal(j.status, 202, JSON.stringify(j.body));
    const done = await Promise.all(jobs.map((j) => api.awaitJob(j, 60)));
    assert.deepEqual([...new Set(done.map((j) => j.status))], ["succeeded"]);
    const events = await eventsAfter(api.db.sql, 0, { types: ["job"] }, 100_000);
    const started = new Map<string, number>();
    const steps = new Map<string, number>();
    const owners = new Set<string>();
    for (const e of events) {
      if (e.type === "job.started") {
        started.set(e.resource_id!, (started.get(e.resource_id!) ?? 0) + 1);
        owners.add(String(e.data.owner).split("#")[0]);
      }
      if (e.type === "job.progress" && e.data.step) {
        const k = `${e.resource_id}/${e.data.step}`;
        steps.set(k, (steps.get(k) ?? 0) + 1);
      }
    }
    assert.equal(started.size, 100);
    assert.deepEqual([...new Set(started.values())], [1], "every job claimed once");
    assert.equal(steps.size, 400);
    assert.deepEqual([...new Set(steps.values())], [1], "every step run once");
    assert.equal(owners.size, 2, "both processes did work");
    assert.equal((await a.fake.callsOf("createDisk")).length, 100);
  } finally {
    await Promise.all(runtimes.map((r) => r.stop()));
  }
});

Deno.test("GET /v1/jobs/{id}?wait= answers when the job ends", async () => {
  await using api = await createTestApi(fastConfig(), { active: true, logLevel: "info" });
  await using c = await twoHosts(api);
  const vm = await newVm(api, "slow", c.boot);
  await c.a.fake.delay("startVM", 600);
  await c.b.fake.delay("startVM", 600);
  const res = await api.post(`/v1/vms/${vm.id}/start`);
  const quick = await api.get(`/v1/jobs/${res.body.id}?wait=0`);
  assert.notEqual(quick.body.status, "succeeded");
  const t0 = Date.now();
  const waited = await api.get(`/v1/jobs/${res.body.id}?wait=20`);
  assert.equal(waited.body.status, "succeeded");
  assert.ok(Date.now() - t0 < 10_000);
  const bad = await api.get(`/v1/jobs/${res.body.id}?wait=61`);
  assert.equal(bad.status, 422);
});

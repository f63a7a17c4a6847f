/**
 * `POST /v1/jobs/{id}/cancel`: a pending job cancelled at once (what queueing took given
 * back), a running job asked to stop, finished and unknown jobs, idempotency, events, audit
 * and metrics; and a VM start cancelled mid-plan by the workers against a fake node.
 */
import assert from "node:assert/strict";
import { node } from "../../shared/proto/mod.ts";
import { createTestApi, fastConfig, type TestApi } from "../../tests/support/api.ts";
import { addFakeHost, bootSource } from "../../tests/support/orchestration.ts";
import { waitFor } from "../../tests/support/process.ts";
import { eventsAfter } from "../events/store.ts";
import { JobCancelledError, JobRun } from "../jobs/plan.ts";
import { PLANS } from "../jobs/plans.ts";
import { claimJob, finishJob, retryJob, saveProgress } from "../jobs/queue.ts";
import { jobError } from "../jobs/worker.ts";

const GiB = 1024 ** 3;
const MISSING = "00000000-0000-4000-8000-000000000000";

/** A pool with a boot source, and a VM `name` that may start from it. */
async function vmWithBoot(api: TestApi, name: string) {
  const pool = await api.create("/v1/storage-pools", { name: `p-${name}`, path: `/srv/${name}` });
  const boot = await bootSource(api, pool.id);
  const vm = await api.create("/v1/vms", {
    name,
    boot_vcpus: 1,
    memory_size: GiB,
    boot_source_id: boot,
  });
  return { pool, boot, vm };
}

/** Reads the event stream (replayed from the start) until an event of `type` arrives. */
async function sseHas(api: TestApi, filter: string, type: string): Promise<string> {
  const res = await api.app.request(`/v1/events?${filter}&last_event_id=0`);
  assert.equal(res.status, 200);
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  try {
    const deadline = Date.now() + 5000;
    while (!text.includes(`event: ${type}\n`) && Date.now() < deadline) {
      const r = await reader.read();
      if (r.done) break;
      text += r.value;
    }
  } finally {
    await reader.cancel();
  }
  return text;
}

Deno.test("POST /v1/jobs/{id}/cancel without workers: pending, running, finished", async (t) => {
  await using api = await createTestApi(fastConfig());
  const { vm, pool } = await vmWithBoot(api, "web-1");
  const svc = api.runtime.svc;

  await t.step("a pending job is cancelled at once: 200, event, audit", async () => {
    const start = await api.post(`/v1/vms/${vm.id}/start`);
    assert.equal(start.status, 202);
    assert.equal(start.body.cancel_requested_at, null);
    const res = await api.post(`/v1/jobs/${start.body.id}/cancel`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.status, "cancelled");
    assert.deepEqual(res.body.error, { code: "cancelled", message: "cancelled by anonymous" });
    assert.ok(res.body.cancel_requested_at);
    assert.equal(res.body.cancel_requested_by, "anonymous");
    assert.ok(res.body.finished_at);
    assert.equal((await api.get(`/v1/vms/${vm.id}`)).body.status, "created");

    const events = await eventsAfter(svc.sql, 0, { types: ["job.cancelled"] });
    assert.equal(events.length, 1);
    assert.equal(events[0].resource_id, start.body.id);
    assert.equal(events[0].data.status, "cancelled");
    assert.match(await sseHas(api, "type=job", "job.cancelled"), new RegExp(start.body.id));

    const audit = await api.get(`/v1/audit-logs?action=cancel&resource_id=${start.body.id}`);
    assert.equal(audit.body.items.length, 1);
    assert.equal(audit.body.items[0].summary.type, "vm_start");

    const metrics = await svc.metrics.render();
    assert.match(
      metrics,
      /qarax_jobs_finished_total\{type="vm_start",outcome="cancelled"\} 1/,
    );
  });

  await t.step("cancelling twice is fine; ?wait answers at once", async () => {
    const [job] = (await api.get(`/v1/jobs?status=cancelled`)).body.items;
    const again = await api.post(`/v1/jobs/${job.id}/cancel`);
    assert.equal(again.status, 200);
    assert.equal(again.body.status, "cancelled");
    assert.equal(again.body.finished_at, job.finished_at);
    const t0 = Date.now();
    assert.equal((await api.get(`/v1/jobs/${job.id}?wait=10`)).body.status, "cancelled");
    assert.ok(Date.now() - t0 < 2000);
  });

  await t.step("the VM's one-job guard is released: a new start is accepted", async () => {
    const start = await api.post(`/v1/vms/${vm.id}/start`);
    assert.equal(start.status, 202, JSON.stringify(start.body));
    assert.equal((await api.post(`/v1/jobs/${start.body.id}/cancel`)).status, 200);
  });

  await t.step("a pending disk creation: its object is failed, not left creating", async () => {
    const res = await api.post(`/v1/storage-pools/${pool.id}/disks`, {
      name: "data",
      size_bytes: GiB,
    });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    assert.equal((await api.post(`/v1/jobs/${res.body.id}/cancel`)).status, 200);
    const obj = (await api.get(`/v1/storage-objects/${res.body.resource_id}`)).body;
    assert.equal(obj.status, "failed");
    assert.equal(obj.status_reason, "disk creation cancelled by anonymous");
  });

  await t.step("a running job is asked to stop: 202, twice; a finished one is 409", async () => {
    const start = await api.post(`/v1/vms/${vm.id}/start`);
    const claimed = (await claimJob(svc.events, "test", 60_000))!;
    assert.equal(claimed.job.id, start.body.id);
    const res = await api.post(`/v1/jobs/${start.body.id}/cancel`);
    assert.equal(res.status, 202);
    assert.equal(res.body.status, "running");
    assert.ok(res.body.cancel_requested_at);
    const again = await api.post(`/v1/jobs/${start.body.id}/cancel`);
    assert.equal(again.status, 202);
    assert.equal(again.body.cancel_requested_at, res.body.cancel_requested_at);

    await svc.events.transaction((tx, emit) =>
      finishJob(tx, emit, claimed, { status: "succeeded", result: {} })
    );
    const late = await api.post(`/v1/jobs/${start.body.id}/cancel`);
    assert.equal(late.status, 409);
    assert.equal(late.body.code, "failed_precondition");
    assert.match(late.body.message, /cannot cancel job .* \(vm_start\): it succeeded/);
  });

  await t.step("a pending retry that did some steps is asked to stop, not ended", async () => {
    const start = await api.post(`/v1/vms/${vm.id}/start`);
    const claimed = (await claimJob(svc.events, "test", 60_000))!;
    await svc.events.transaction(async (tx, emit) => {
      await saveProgress(tx, emit, claimed, {
        checkpoint: { done: ["check"], data: { from: "created" } },
      });
      await retryJob(tx, emit, claimed, { code: "unavailable", message: "node away" }, 60_000);
    });
    const res = await api.post(`/v1/jobs/${start.body.id}/cancel`);
    assert.equal(res.status, 202);
    assert.equal(res.body.status, "pending");
    assert.ok(res.body.cancel_requested_at);
    // Runnable now, so a worker undoes it at once; this one ends it before any step.
    const again = (await claimJob(svc.events, "test", 60_000))!;
    assert.equal(again.job.id, start.body.id);
    const run = new JobRun(svc, again, new AbortController().signal);
    await assert.rejects(() => run.run(PLANS.vm_start), JobCancelledError);
    await svc.events.transaction((tx, emit) =>
      finishJob(tx, emit, again, { status: "cancelled", error: jobError(run.cancelRequest!) })
    );
    const job = (await api.get(`/v1/jobs/${start.body.id}`)).body;
    assert.equal(job.status, "cancelled");
    assert.equal(job.error.message, "cancelled by anonymous");
  });

  await t.step("unknown job: 404", async () => {
    const res = await api.post(`/v1/jobs/${MISSING}/cancel`);
    assert.equal(res.status, 404);
    assert.match(res.body.message, /job/);
  });
});

Deno.test("cancelling a VM start mid-plan: the step finishes, the undo runs, no boot", async () => {
  await using api = await createTestApi(fastConfig(), { active: true, logLevel: "info" });
  const h = await addFakeHost(api, "node-a");
  try {
    const pool = await api.create("/v1/storage-pools", { name: "local", path: "/srv/pool" });
    await api.create(`/v1/storage-pools/${pool.id}/hosts`, { host_id: h.host.id });
    const boot = await bootSource(api, pool.id);
    const vm = await api.create("/v1/vms", {
      name: "web-1",
      boot_vcpus: 1,
      memory_size: GiB,
      boot_source_id: boot,
    });
    await h.fake.delay("createVM", 1500);
    const start = await api.post(`/v1/vms/${vm.id}/start`);
    assert.equal(start.status, 202);
    await waitFor(
      async () => (await h.fake.callsOf("createVM")).length > 0,
      10_000,
      "CreateVM called",
    );

    const res = await api.post(`/v1/jobs/${start.body.id}/cancel`);
    assert.equal(res.status, 202, JSON.stringify(res.body));
    assert.equal(res.body.status, "running");
    const job = await api.awaitJob(start.body.id);
    assert.equal(job.status, "cancelled", JSON.stringify(job));
    assert.deepEqual(job.error, { code: "cancelled", message: "cancelled by anonymous" });

    // The undo: the VM is back to created, off the host it was given, gone from the node.
    const after = (await api.get(`/v1/vms/${vm.id}`)).body;
    assert.equal(after.status, "created");
    assert.equal(after.host_id, null);
    assert.equal(after.status_reason, "start cancelled by anonymous");
    assert.equal((await h.fake.callsOf("startVM")).length, 0, "never booted");
    assert.equal((await h.fake.callsOf("deleteVM")).length, 1, "removed again");
    assert.equal((await h.fake.state()).vms[vm.id], undefined);

    const events = await eventsAfter(api.runtime.svc.sql, 0, { resource_ids: [start.body.id] });
    const types = events.map((e) => e.type);
    assert.equal(types.at(-1), "job.cancelled");
    assert.ok(!types.includes("job.failed") && !types.includes("job.retrying"));
    assert.match(
      await api.runtime.svc.metrics.render(),
      /qarax_jobs_finished_total\{type="vm_start",outcome="cancelled"\} 1/,
    );

    // The guard is released and nothing of the cancelled run is in the way.
    await h.fake.delay("createVM", 0);
    const again = await api.post(`/v1/vms/${vm.id}/start`);
    assert.equal(again.status, 202, JSON.stringify(again.body));
    const done = await api.awaitJob(again);
    assert.equal(done.status, "succeeded", JSON.stringify(done.error));
    assert.equal((await h.fake.state()).vms[vm.id].status, node.VmStatus.VM_STATUS_RUNNING);
  } finally {
    await h.fake.kill();
  }
});

import assert from "node:assert/strict";
import { DeadlineExceededError } from "../../shared/errors/errors.ts";
import { createTestApi, fastConfig } from "../../tests/support/api.ts";
import { addFakeHost, claimedRun } from "../../tests/support/orchestration.ts";
import { eventsAfter } from "../events/store.ts";
import {
  chooseNodeStep,
  createDiskRequest,
  createDiskStep,
  type DiskParams,
  ensurePoolStep,
  markReadyStep,
  undoDisk,
} from "./disk_steps.ts";

const base: DiskParams = {
  kind: "blank",
  storage_pool_id: "p",
  pool_path: "/srv/p",
  path: "a.img",
  format: "raw",
  size_bytes: 1024,
  base_path: null,
  base_format: null,
  source_url: null,
  sha256: null,
};

Deno.test("disk requests: blank raw, qcow2, linked clone, download", () => {
  assert.deepEqual(createDiskRequest(base, "j"), {
    path: "/srv/p/a.img",
    sizeBytes: 1024,
    transferId: "j",
    blank: { preallocate: false },
  });
  assert.deepEqual(createDiskRequest({ ...base, format: "qcow2" }, "j").qcow2, {});
  assert.deepEqual(
    createDiskRequest(
      { ...base, kind: "clone", base_path: "img/b.qcow2", base_format: "qcow2" },
      "j",
    )
      .overlay,
    { basePath: "/srv/p/img/b.qcow2", baseFormat: "qcow2" },
  );
  const dl = createDiskRequest(
    { ...base, kind: "download", size_bytes: null, source_url: "http://x/y", sha256: "ab" },
    "j",
  );
  assert.deepEqual(dl.url, { url: "http://x/y", sha256: "ab" });
  assert.equal(dl.sizeBytes, 0);
});

Deno.test("disk_create steps: a node with the pool, progress into the job, object ready", async (t) => {
  await using api = await createTestApi(fastConfig());
  const h = await addFakeHost(api, "n1");
  await using _fake = h.fake;
  const pool = await api.create("/v1/storage-pools", { name: "p", path: "/srv/p" });
  const queued = await api.post(`/v1/storage-pools/${pool.id}/disks`, {
    name: "d1",
    size_bytes: 4 * 1024 * 1024,
  });
  assert.equal(queued.status, 202);
  const objectId = queued.body.resource_id;
  await api.db.sql`update jobs set status = 'failed'`;
  const run = await claimedRun(api, "disk_create", objectId, queued.body.params);

  await t.step("choose_node: none has the pool → a clear refusal", async () => {
    await assert.rejects(() => chooseNodeStep.run(run), /no up host has storage pool .* attached/);
    await api.create(`/v1/storage-pools/${pool.id}/hosts`, { host_id: h.host.id });
    await chooseNodeStep.run(run);
    assert.equal(run.data.host_id, h.host.id);
  });

  await t.step("ensure_pool + create_disk: streamed progress becomes the job's", async () => {
    await ensurePoolStep.run(run);
    await createDiskStep.run(run);
    const state = await h.fake.state();
    const path = `/srv/p/${objectId}.img`;
    assert.equal(Number(state.disks[path].sizeBytes), 4 * 1024 * 1024);
    const messages = (await eventsAfter(api.db.sql, 0, { resource_ids: [run.job.id] }))
      .filter((e) => e.type === "job.progress").map((e) => String(e.data.progress_message));
    assert.ok(messages.some((m) => /^\d+ of 4194304 bytes$/.test(m)), messages.join("; "));
    // A retry of the step deletes the partial file first.
    await createDiskStep.run(run);
    assert.equal((await h.fake.callsOf("deleteDisk")).length, 1);
  });

  await t.step("mark_ready: the object is ready", async () => {
    await markReadyStep.run(run);
    const obj = (await api.get(`/v1/storage-objects/${objectId}`)).body;
    assert.equal(obj.status, "ready");
  });

  await t.step("undo: a failed creation marks the object failed with the reason", async () => {
    await undoDisk(run, new Error("disk full"));
    const obj = (await api.get(`/v1/storage-objects/${objectId}`)).body;
    assert.equal(obj.status, "failed");
    assert.equal(obj.status_reason, "disk full");
  });
});

Deno.test("disk_create: a node that stops reporting progress is given up on (retryable)", async () => {
  const cfg = fastConfig();
  await using api = await createTestApi({ ...cfg, nodes: { ...cfg.nodes!, call_timeout_ms: 100 } });
  const h = await addFakeHost(api, "n1");
  await using _fake = h.fake;
  const pool = await api.create("/v1/storage-pools", { name: "p", path: "/srv/p" });
  await api.create(`/v1/storage-pools/${pool.id}/hosts`, { host_id: h.host.id });
  const queued = await api.post(`/v1/storage-pools/${pool.id}/disks`, {
    name: "stuck",
    size_bytes: 1024 * 1024,
  });
  await api.db.sql`update jobs set status = 'failed'`;
  const run = await claimedRun(api, "disk_create", queued.body.resource_id, queued.body.params);
  await chooseNodeStep.run(run);
  await h.fake.delay("createDisk", 3000);
  const t0 = Date.now();
  await assert.rejects(() => createDiskStep.run(run), (e) => {
    assert.ok(e instanceof DeadlineExceededError);
    assert.match(e.message, /reported no progress creating the disk for 0\.6 s/);
    return true;
  });
  assert.ok(Date.now() - t0 < 2500);
});

/** The leader's monitors against fake nodes: health, event streams, reconciliation. */
import assert from "node:assert/strict";
import { node } from "../../shared/proto/mod.ts";
import { createTestApi, fastConfig, type TestApi } from "../../tests/support/api.ts";
import { addFakeHost, bootSource } from "../../tests/support/orchestration.ts";
import { waitFor } from "../../tests/support/process.ts";
import { eventsAfter } from "../events/store.ts";

const S = node.VmStatus;

async function runningVm(api: TestApi, name: string) {
  const h = await addFakeHost(api, name);
  const pool = await api.create("/v1/storage-pools", { name: `p-${name}`, path: `/srv/${name}` });
  await api.create(`/v1/storage-pools/${pool.id}/hosts`, { host_id: h.host.id });
  const net = await api.create("/v1/networks", { name: `n-${name}`, subnet: "10.70.0.0/24" });
  await api.create(`/v1/networks/${net.id}/hosts`, { host_id: h.host.id, bridge_name: "qxbr7" });
  const vm = await api.create("/v1/vms", {
    name: `vm-${name}`,
    boot_source_id: await bootSource(api, pool.id),
    nics: [{ network_id: net.id }],
  });
  const job = await api.awaitJob(await api.post(`/v1/vms/${vm.id}/start`));
  assert.equal(job.status, "succeeded", JSON.stringify(job.error));
  return { ...h, vm, net, [Symbol.asyncDispose]: () => h.fake.kill() };
}

const vmStatus = async (api: TestApi, id: string) => (await api.get(`/v1/vms/${id}`)).body;
const hostStatus = async (api: TestApi, id: string) => (await api.get(`/v1/hosts/${id}`)).body;

Deno.test("health: an unreachable host goes down, its VMs unknown; it comes back by itself", async () => {
  await using api = await createTestApi(fastConfig(), { active: true, logLevel: "info" });
  await using h = await runningVm(api, "node-a");
  await waitFor(() => api.runtime.leadership.isLeader, 5000, "leadership");

  await h.fake.stop();
  const down = await waitFor(
    async () => {
      const host = await hostStatus(api, h.host.id);
      return host.status === "down" && host;
    },
    10_000,
    "host down",
  );
  assert.match(down.status_reason, /^2 health probes failed: /);
  const vm = await vmStatus(api, h.vm.id);
  assert.equal(vm.status, "unknown");
  assert.match(vm.status_reason, /^host node-a is down: /);

  const attachCalls = (await h.fake.callsOf("attachNetwork")).length;
  await h.fake.restart();
  await waitFor(async () => (await hostStatus(api, h.host.id)).status === "up", 10_000, "host up");
  await waitFor(async () => (await vmStatus(api, h.vm.id)).status === "running", 10_000, "vm back");
  assert.equal((await vmStatus(api, h.vm.id)).status_reason, null);
  assert.ok((await h.fake.callsOf("attachNetwork")).length > attachCalls, "attachments re-applied");

  const hostEvents = await eventsAfter(api.db.sql, 0, { types: ["host.status_changed"] });
  assert.deepEqual(hostEvents.map((e) => [e.data.previous_status, e.data.status, e.data.source]), [
    ["unknown", "up", "api"],
    ["up", "down", "monitor"],
    ["down", "up", "monitor"],
  ]);
});

Deno.test("event streams: a guest poweroff and a VMM crash show within a second", async () => {
  await using api = await createTestApi(fastConfig(), { active: true, logLevel: "info" });
  await using h = await runningVm(api, "node-b");
  await waitFor(() => api.runtime.leadership.isLeader, 5000, "leadership");
  // The stream is open once the monitor connected (a no-op event would not show; wait a bit).
  await new Promise((r) => setTimeout(r, 500));

  const t0 = performance.now();
  await h.fake.poweroff(h.vm.id);
  await waitFor(async () => (await vmStatus(api, h.vm.id)).status === "shutdown", 5000, "shutdown");
  assert.ok(performance.now() - t0 < 1000, `took ${performance.now() - t0} ms`);
  const [e] = (await eventsAfter(api.db.sql, 0, { types: ["vm.status_changed"] }))
    .filter((e) => e.data.status === "shutdown");
  assert.equal(e.data.source, "node");
  assert.equal(e.data.reason, "guest powered off");

  const start = await api.awaitJob(await api.post(`/v1/vms/${h.vm.id}/start`));
  assert.equal(start.status, "succeeded");
  const t1 = performance.now();
  await h.fake.crash(h.vm.id, "killed by signal 9");
  const vm = await waitFor(
    async () => {
      const v = await vmStatus(api, h.vm.id);
      return v.status === "unknown" && v;
    },
    5000,
    "unknown",
  );
  assert.ok(performance.now() - t1 < 1000);
  assert.equal(vm.status_reason, "VMM crashed: killed by signal 9");
});

Deno.test("reconciliation: changes made behind the monitor's back are found", async () => {
  await using api = await createTestApi(fastConfig(), { active: true, logLevel: "info" });
  await using h = await runningVm(api, "node-c");
  await waitFor(() => api.runtime.leadership.isLeader, 5000, "leadership");
  await h.fake.setSilently(h.vm.id, S.VM_STATUS_PAUSED);
  await waitFor(async () => (await vmStatus(api, h.vm.id)).status === "paused", 5000, "paused");
  await h.fake.forget(h.vm.id);
  const vm = await waitFor(
    async () => {
      const v = await vmStatus(api, h.vm.id);
      return v.status === "unknown" && v;
    },
    5000,
    "unknown",
  );
  assert.equal(vm.status_reason, "its node node-c does not know it");
  const reports = await api.runtime.monitors.reconcileAll();
  assert.deepEqual(reports.map((r) => [r.checked, r.changed]), [[1, 0]]);
});

Deno.test("reconciliation: VMs a node runs without a record are reported once, and when gone", async () => {
  await using api = await createTestApi(fastConfig(), { active: true });
  await using h = await runningVm(api, "node-s");
  await waitFor(() => api.runtime.leadership.isLeader, 5000, "leadership");
  const since = (await api.db.sql`select coalesce(max(id), 0)::int8 as id from events`)[0].id;
  const strays = async () =>
    (await eventsAfter(api.db.sql, since, { types: ["host.stray_vms"] })).map((e) => e.data);
  // The record goes (as after a forced delete while the node was away); the VM keeps running.
  await api.db.sql`delete from vm_disks where vm_id = ${h.vm.id}`;
  await api.db.sql`delete from network_interfaces where vm_id = ${h.vm.id}`;
  await api.db.sql`delete from vms where id = ${h.vm.id}`;
  await api.runtime.monitors.reconcileAll();
  await api.runtime.monitors.reconcileAll();
  assert.deepEqual(await strays(), [{ host_id: h.host.id, vm_ids: [h.vm.id], count: 1 }]);
  assert.ok((await h.fake.state()).vms[h.vm.id], "qarax does not delete what it has no record of");
  await h.fake.forget(h.vm.id);
  await api.runtime.monitors.reconcileAll();
  assert.deepEqual((await strays()).at(-1), { host_id: h.host.id, vm_ids: [], count: 0 });
});

Deno.test("maintenance: probed and kept, never chosen, and not taken down", async () => {
  await using api = await createTestApi(fastConfig(), { active: true, logLevel: "info" });
  await using h = await runningVm(api, "node-d");
  const patched = await api.patch(`/v1/hosts/${h.host.id}`, { status: "maintenance" });
  assert.equal(patched.body.status, "maintenance");
  const [e] = await eventsAfter(api.db.sql, 0, { types: ["host.status_changed"] }).then((es) =>
    es.filter((e) => e.data.status === "maintenance")
  );
  assert.equal(e.data.source, "api");
  const other = await api.create("/v1/vms", { name: "later" });
  const job = await api.awaitJob(await api.post(`/v1/vms/${other.id}/start`));
  assert.equal(job.status, "failed");
  assert.match(job.error.message, /status: node-d is in maintenance/);
  await h.fake.stop();
  await new Promise((r) => setTimeout(r, 800));
  assert.equal((await hostStatus(api, h.host.id)).status, "maintenance");
});

/** Each VM step on its own, against a fake node and a real database. */
import assert from "node:assert/strict";
import {
  DeadlineExceededError,
  FailedPreconditionError,
  UnavailableError,
} from "../../shared/errors/errors.ts";
import { node } from "../../shared/proto/mod.ts";
import { createTestApi, fastConfig, type TestApi } from "../../tests/support/api.ts";
import { addFakeHost, bootSource, claimedRun } from "../../tests/support/orchestration.ts";
import { eventsAfter } from "../events/store.ts";
import {
  bootStep,
  confirmRunningStep,
  confirmStoppedStep,
  createOnNodeStep,
  deleteCheck,
  deleteOnNodeStep,
  ensureNetworksStep,
  ensurePoolsStep,
  nodeActionSteps,
  placeStep,
  releaseReservationsStep,
  removeRecordStep,
  startCheck,
  stopCheck,
  stopOnNodeStep,
  undoStart,
} from "./vm_steps.ts";

const S = node.VmStatus;
const GiB = 1024 ** 3;

/** Two fake hosts with a network and a pool attached to both, and a VM using them. */
async function cluster(api: TestApi) {
  const a = await addFakeHost(api, "node-a");
  const b = await addFakeHost(api, "node-b");
  const net = await api.create("/v1/networks", {
    name: "lan",
    subnet: "10.60.0.0/24",
    gateway: "10.60.0.1",
    dns: ["10.60.0.1"],
  });
  const pool = await api.create("/v1/storage-pools", { name: "local", path: "/srv/pool" });
  for (const h of [a, b]) {
    await api.create(`/v1/networks/${net.id}/hosts`, { host_id: h.host.id, bridge_name: "qxbr0" });
    await api.create(`/v1/storage-pools/${pool.id}/hosts`, { host_id: h.host.id });
  }
  const boot = await bootSource(api, pool.id);
  const disk = await api.create("/v1/storage-objects", {
    name: "root",
    storage_pool_id: pool.id,
    type: "disk",
    path: "root.img",
    format: "raw",
    host_id: null, // copied to every host: placement is free to choose
  });
  const vm = await api.create("/v1/vms", {
    name: "web-1",
    boot_vcpus: 2,
    memory_size: GiB,
    boot_source_id: boot,
    nics: [{ network_id: net.id }],
    disks: [{ storage_object_id: disk.id }],
  });
  return {
    a,
    b,
    net,
    pool,
    disk,
    vm,
    async [Symbol.asyncDispose]() {
      await a.fake.kill();
      await b.fake.kill();
    },
  };
}

async function vmRow(api: TestApi, id: string) {
  return (await api.get(`/v1/vms/${id}`)).body;
}

Deno.test("start steps, one at a time", async (t) => {
  await using api = await createTestApi(fastConfig());
  await using c = await cluster(api);
  const run = await claimedRun(api, "vm_start", c.vm.id);

  await t.step("check: records where the VM starts from", async () => {
    await startCheck.run(run);
    assert.equal(run.data.from, "created");
    assert.equal(run.data.had_host, false);
  });

  await t.step("place: the least loaded host that has its network and pool; pending", async () => {
    // node-a already runs something big: spread picks node-b.
    await api.db.sql`update hosts set total_cpus = 4 where name = 'node-a'`;
    await placeStep.run(run);
    const vm = await vmRow(api, c.vm.id);
    assert.equal(vm.status, "pending");
    assert.equal(vm.host_id, c.b.host.id);
    assert.equal(run.data.host_id, c.b.host.id);
    // Running it again (a resumed job) changes nothing.
    await placeStep.run(run);
    assert.equal((await vmRow(api, c.vm.id)).host_id, c.b.host.id);
  });

  await t.step("ensure_networks and ensure_pools: applied on the VM's node", async () => {
    const before = (await c.b.fake.callsOf("attachNetwork")).length;
    await ensureNetworksStep.run(run);
    await ensurePoolsStep.run(run);
    const state = await c.b.fake.state();
    assert.equal((await c.b.fake.callsOf("attachNetwork")).length, before + 1);
    const attach = state.networks["qxbr0"];
    assert.equal(attach.networkId, c.net.id);
    assert.equal(attach.subnet, "10.60.0.0/24");
    assert.equal(attach.gateway, "10.60.0.1");
    assert.deepEqual(JSON.parse(state.pools[c.pool.id].configJson!), { path: "/srv/pool" });
    // node-a got the attachments only when they were created (it is not the VM's host).
    assert.equal((await c.a.fake.callsOf("attachNetwork")).length, 1);
  });

  await t.step("create_on_node: the full spec; the same spec again is a no-op", async () => {
    await createOnNodeStep.run(run);
    const vm = (await c.b.fake.state()).vms[c.vm.id];
    assert.equal(vm.status, S.VM_STATUS_CREATED);
    const spec = vm.config;
    assert.equal(spec.name, "web-1");
    assert.deepEqual(spec.cpus, { bootVcpus: 2, maxVcpus: 2 });
    assert.equal(Number(spec.memory!.size), GiB);
    assert.deepEqual(spec.payload, {
      kernel: "/srv/pool/vmlinux",
      cmdline: "console=ttyS0 reboot=k panic=1",
    });
    assert.deepEqual(spec.disks, [{ id: "disk0", path: "/srv/pool/root.img", imageType: "raw" }]);
    const nic = spec.networks![0];
    assert.equal(nic.bridge, "qxbr0");
    assert.match(nic.tap!, /^qt[0-9a-f]{8}n0$/);
    assert.equal(nic.guestIp, "10.60.0.2/24");
    assert.equal(nic.guestGateway, "10.60.0.1");
    assert.ok(spec.cloudInit, "a static address needs a cloud-init seed");
    await createOnNodeStep.run(run);
    assert.equal((await c.b.fake.callsOf("createVM")).length, 2);
    assert.equal((await c.b.fake.callsOf("deleteVM")).length, 0);
    assert.equal(run.data.created_on_node, true);
  });

  await t.step("create_on_node: a changed spec of a stopped VM replaces the old one", async () => {
    await api.db.sql`update vms set memory_size = ${2 * GiB} where id = ${c.vm.id}`;
    await createOnNodeStep.run(run);
    assert.equal((await c.b.fake.callsOf("deleteVM")).length, 1);
    assert.equal(Number((await c.b.fake.state()).vms[c.vm.id].config.memory!.size), 2 * GiB);
  });

  await t.step("boot: starts it; a running VM is left alone", async () => {
    await bootStep.run(run);
    assert.equal((await c.b.fake.state()).vms[c.vm.id].status, S.VM_STATUS_RUNNING);
    await bootStep.run(run);
    assert.equal((await c.b.fake.callsOf("startVM")).length, 1);
  });

  await t.step("confirm_running: running on the node → running, with the event", async () => {
    const before = api.runtime.svc.events.lastId;
    await confirmRunningStep.run(run);
    assert.equal((await vmRow(api, c.vm.id)).status, "running");
    const events = await eventsAfter(api.db.sql, 0, { types: ["vm.status_changed"] });
    assert.deepEqual(events.map((e) => [e.data.previous_status, e.data.status]), [
      ["created", "pending"],
      ["pending", "running"],
    ]);
    assert.equal(events.at(-1)!.data.job_id, run.job.id);
    assert.ok(before >= 0);
  });
});

Deno.test("start steps: failures say why and undo what the job did", async (t) => {
  await using api = await createTestApi(fastConfig());
  await using c = await cluster(api);

  await t.step("check refuses a running VM and a disk that is not ready", async () => {
    await api.db.sql`update vms set status = 'running' where id = ${c.vm.id}`;
    const run = await claimedRun(api, "vm_start", c.vm.id);
    await assert.rejects(() => startCheck.run(run), /cannot start vm .*: it is running/);
    await api.db.sql`update vms set status = 'created' where id = ${c.vm.id}`;
    await api.db.sql`update storage_objects set status = 'creating' where id = ${c.disk.id}`;
    await assert.rejects(() => startCheck.run(run), /disk disk0 \(root\) is creating/);
    await api.db.sql`update storage_objects set status = 'ready' where id = ${c.disk.id}`;
    await api.db.sql`update jobs set status = 'failed'`;
  });

  await t.step("place: nothing fits → a message naming each filter and host", async () => {
    await api.db.sql`update hosts set status = 'maintenance' where name = 'node-a'`;
    await api.db.sql`update hosts set total_memory_bytes = ${GiB / 2} where name = 'node-b'`;
    const run = await claimedRun(api, "vm_start", c.vm.id);
    await startCheck.run(run);
    await assert.rejects(() => placeStep.run(run), (e) => {
      assert.ok(e instanceof FailedPreconditionError);
      assert.match(
        e.message,
        /^no host can run vm web-1 \(2 vCPU, 1 GiB\): status: node-a is in maintenance; memory: node-b has 512 MiB of 512 MiB free, the vm needs 1 GiB$/,
      );
      return true;
    });
    await api.db.sql`update hosts set status = 'up', total_memory_bytes = ${16 * GiB}`;
    await api.db.sql`update jobs set status = 'failed'`;
  });

  await t.step("confirm: a VM that dies right after booting fails the start", async () => {
    const run = await claimedRun(api, "vm_start", c.vm.id);
    for (const s of [startCheck, placeStep, createOnNodeStep, bootStep]) await s.run(run);
    const fake = run.data.host_id === c.a.host.id ? c.a.fake : c.b.fake;
    await fake.setSilently(c.vm.id, S.VM_STATUS_CRASHED, "exited with status 1");
    await assert.rejects(
      () => confirmRunningStep.run(run),
      /vm web-1 stopped right after booting: exited with status 1/,
    );
    // Undo: a never-provisioned VM is removed from the node and loses its host.
    await undoStart(run, new Error("boom"));
    const vm = await vmRow(api, c.vm.id);
    assert.equal(vm.status, "created");
    assert.equal(vm.host_id, null);
    assert.equal(vm.status_reason, "start failed: boom");
    assert.equal((await fake.state()).vms[c.vm.id], undefined);
    await api.db.sql`update jobs set status = 'failed'`;
  });

  await t.step("an unreachable node is a retryable error", async () => {
    const run = await claimedRun(api, "vm_start", c.vm.id);
    await startCheck.run(run);
    await placeStep.run(run);
    const host = run.data.host_id === c.a.host.id ? c.a : c.b;
    await host.fake.stop();
    await assert.rejects(() => ensureNetworksStep.run(run), (e) => {
      assert.ok(e instanceof UnavailableError || e instanceof DeadlineExceededError, String(e));
      return true;
    });
    await host.fake.restart();
    const att = await api.get(`/v1/networks/${c.net.id}/hosts/${host.host.id}`);
    assert.equal(att.body.status, "failed");
    await ensureNetworksStep.run(run);
    assert.equal(
      (await api.get(`/v1/networks/${c.net.id}/hosts/${host.host.id}`)).body.status,
      "ready",
    );
  });
});

Deno.test("stop, pause, resume, reboot and delete steps", async (t) => {
  await using api = await createTestApi(fastConfig());
  await using c = await cluster(api);
  const start = await claimedRun(api, "vm_start", c.vm.id);
  for (const s of [startCheck, placeStep, createOnNodeStep, bootStep, confirmRunningStep]) {
    await s.run(start);
  }
  await api.db.sql`update jobs set status = 'succeeded'`;
  const fake = start.data.host_id === c.a.host.id ? c.a.fake : c.b.fake;

  for (
    const [action, status, call] of [
      ["pause", "paused", "pauseVM"],
      ["resume", "running", "resumeVM"],
      ["reboot", "running", "rebootVM"],
    ] as const
  ) {
    await t.step(`${action}: node call, confirmed, status ${status}`, async () => {
      const run = await claimedRun(api, `vm_${action}`, c.vm.id);
      const steps = nodeActionSteps(action);
      for (const s of steps) await s.run(run);
      assert.equal((await vmRow(api, c.vm.id)).status, status);
      assert.equal((await fake.callsOf(call)).length, 1);
      // Pause and resume once done are not repeated by a retry.
      if (action !== "reboot") {
        await steps[1].run(run);
        assert.equal((await fake.callsOf(call)).length, 1);
      }
      await api.db.sql`update jobs set status = 'succeeded'`;
    });
  }

  await t.step("pause refused when not running", async () => {
    await api.db.sql`update vms set status = 'shutdown' where id = ${c.vm.id}`;
    const run = await claimedRun(api, "vm_pause", c.vm.id);
    await assert.rejects(() => nodeActionSteps("pause")[0].run(run), /it is shutdown/);
    await api.db.sql`update vms set status = 'running' where id = ${c.vm.id}`;
    await api.db.sql`update jobs set status = 'failed'`;
  });

  await t.step("stop: graceful with the job's timeout, confirmed → shutdown", async () => {
    const run = await claimedRun(api, "vm_stop", c.vm.id, { timeout_ms: 1234 });
    await stopCheck("stop").run(run);
    await stopOnNodeStep(false).run(run);
    const [stop] = await fake.callsOf("stopVM");
    assert.equal((stop.request as { timeoutMs: number }).timeoutMs, 1234);
    await confirmStoppedStep.run(run);
    assert.equal((await vmRow(api, c.vm.id)).status, "shutdown");
    // Stopping again does not call the node.
    await stopOnNodeStep(false).run(run);
    assert.equal((await fake.callsOf("stopVM")).length, 1);
    await api.db.sql`update jobs set status = 'succeeded'`;
  });

  await t.step("delete: removed on the node, then the record and its addresses", async () => {
    const run = await claimedRun(api, "vm_delete", c.vm.id);
    await deleteCheck.run(run);
    await deleteOnNodeStep.run(run);
    assert.equal((await fake.state()).vms[c.vm.id], undefined);
    await removeRecordStep.run(run);
    assert.equal((await api.get(`/v1/vms/${c.vm.id}`)).status, 404);
    assert.deepEqual((await api.get(`/v1/networks/${c.net.id}/ips`)).body.items, []);
    const [gone] = await eventsAfter(api.db.sql, 0, { types: ["vm.deleted"] });
    assert.equal(gone.resource_id, c.vm.id);
    // Every delete step is a no-op once done.
    await api.db.sql`update jobs set status = 'succeeded'`;
    const again = await claimedRun(api, "vm_delete", c.vm.id);
    for (const s of [deleteCheck, deleteOnNodeStep, removeRecordStep]) await s.run(again);
    assert.equal(again.data.gone, true);
  });
});

Deno.test("delete with force goes ahead without the node", async () => {
  await using api = await createTestApi(fastConfig());
  await using c = await cluster(api);
  await api.db.sql`update vms set status = 'shutdown', host_id = ${c.a.host.id}`;
  await c.a.fake.stop();
  const plain = await claimedRun(api, "vm_delete", c.vm.id);
  await deleteCheck.run(plain);
  await assert.rejects(() => deleteOnNodeStep.run(plain), /DELETE with force=true removes it/);
  await api.db.sql`update jobs set status = 'failed'`;
  const forced = await claimedRun(api, "vm_delete", c.vm.id, { force: true });
  for (const s of [deleteCheck, deleteOnNodeStep, removeRecordStep]) await s.run(forced);
  assert.match(String(forced.data.node_error), /node-a/);
  assert.equal((await api.get(`/v1/vms/${c.vm.id}`)).status, 404);
});

Deno.test("DHCP networks: a starting VM's address is reserved, a deleted VM's released", async () => {
  await using api = await createTestApi(fastConfig());
  const h = await addFakeHost(api, "node-d");
  await using _fake = h.fake;
  const net = await api.create("/v1/networks", {
    name: "dhcp",
    mode: "dhcp",
    subnet: "10.61.0.0/24",
    gateway: "10.61.0.1",
  });
  await api.create(`/v1/networks/${net.id}/hosts`, { host_id: h.host.id, bridge_name: "qxdh0" });
  const vm = await api.create("/v1/vms", { name: "leased", nics: [{ network_id: net.id }] });
  const nic = (await api.get(`/v1/vms/${vm.id}/nics/net0`)).body;
  const run = await claimedRun(api, "vm_start", vm.id);
  for (const s of [startCheck, placeStep, ensureNetworksStep]) await s.run(run);
  const attach = (await h.fake.state()).networks["qxdh0"];
  assert.equal(attach.dhcp, true);
  assert.deepEqual(attach.reservations, [
    { mac: nic.mac_address, ip: nic.ip_address, hostname: "leased" },
  ]);
  await api.db.sql`update jobs set status = 'failed'`;
  await api.db.sql`update vms set status = 'shutdown' where id = ${vm.id}`;
  const del = await claimedRun(api, "vm_delete", vm.id);
  for (const s of [deleteCheck, deleteOnNodeStep, removeRecordStep, releaseReservationsStep]) {
    await s.run(del);
  }
  assert.deepEqual((await h.fake.state()).networks["qxdh0"].reservations ?? [], []);
});

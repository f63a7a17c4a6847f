/** Host init and attachments that reach the node, against fake nodes. */
import assert from "node:assert/strict";
import { createTestApi, fastConfig } from "../../tests/support/api.ts";
import { startFakeNode } from "../../tests/support/fake_node.ts";
import { addFakeHost } from "../../tests/support/orchestration.ts";
import { freePort } from "../../tests/support/process.ts";

Deno.test("POST /v1/hosts/{id}/init stores the node's facts and sets the host up", async (t) => {
  await using api = await createTestApi(fastConfig());
  await using fake = await startFakeNode({ hostname: "n1", totalCpus: 12 });
  const host = await api.create("/v1/hosts", { name: "n1", address: "127.0.0.1", port: fake.port });

  await t.step("init → 200 with capacity, versions, emulation, attachments", async () => {
    const net = await api.create("/v1/networks", { name: "lan", subnet: "10.9.0.0/24" });
    await api.create(`/v1/networks/${net.id}/hosts`, { host_id: host.id, bridge_name: "qxbr9" });
    const res = await api.post(`/v1/hosts/${host.id}/init`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const h = res.body.host;
    assert.equal(h.status, "up");
    assert.equal(h.total_cpus, 12);
    assert.equal(h.architecture, "x86_64");
    assert.equal(h.cloud_hypervisor_version, "v53.0-emulated");
    assert.equal(h.cloud_hypervisor_emulated, true);
    assert.ok(h.last_seen_at);
    assert.deepEqual(res.body.attachments, { networks: 1, storage_pools: 0, failed: [] });
    // The pending attachment was applied on the node.
    assert.equal((await fake.state()).networks["qxbr9"].networkId, net.id);
    const att = await api.get(`/v1/networks/${net.id}/hosts/${host.id}`);
    assert.equal(att.body.status, "ready");
    const audit = await api.get(`/v1/audit-logs?resource_id=${host.id}`);
    assert.equal(audit.body.items[0].action, "init");
  });

  await t.step("a registered architecture the node contradicts is refused", async () => {
    await api.db.sql`update hosts set architecture = 'aarch64' where id = ${host.id}`;
    const res = await api.post(`/v1/hosts/${host.id}/init`);
    assert.equal(res.status, 409);
    assert.match(res.body.message, /registered as aarch64 but its node reports x86_64/);
    await api.db.sql`update hosts set architecture = null where id = ${host.id}`;
  });

  await t.step("an unreachable node: 503, and the host is down", async () => {
    const gone = await api.create("/v1/hosts", {
      name: "gone",
      address: "127.0.0.1",
      port: freePort(),
    });
    const res = await api.post(`/v1/hosts/${gone.id}/init`);
    assert.equal(res.status, 503);
    assert.match(res.body.message, /node gone \(127\.0\.0\.1:\d+\): GetNodeInfo/);
    const after = (await api.get(`/v1/hosts/${gone.id}`)).body;
    assert.equal(after.status, "down");
    assert.match(after.status_reason, /^node unreachable: /);
    assert.equal(
      (await api.post(`/v1/hosts/00000000-0000-4000-8000-000000000000/init`)).status,
      404,
    );
  });
});

Deno.test("attachments on an up host reach its node; a refusal records nothing", async (t) => {
  await using api = await createTestApi(fastConfig());
  const h = await addFakeHost(api, "n2");
  await using _fake = h.fake;
  const net = await api.create("/v1/networks", { name: "lan", subnet: "10.8.0.0/24" });
  const pool = await api.create("/v1/storage-pools", { name: "p", path: "/srv/p" });

  await t.step("network: attached on the node at once (ready)", async () => {
    const res = await api.post(`/v1/networks/${net.id}/hosts`, {
      host_id: h.host.id,
      bridge_name: "qxbr8",
    });
    assert.equal(res.status, 201);
    assert.equal(res.body.status, "ready");
    assert.equal((await h.fake.state()).networks["qxbr8"].subnet, "10.8.0.0/24");
  });

  await t.step("pool: the node refuses → its error, and no attachment", async () => {
    await h.fake.fail("attachStoragePool", "invalid_argument", "path: /srv/p is not a directory");
    const res = await api.post(`/v1/storage-pools/${pool.id}/hosts`, { host_id: h.host.id });
    assert.equal(res.status, 422);
    assert.match(
      res.body.message,
      /AttachStoragePool p \(\/srv\/p\): path: \/srv\/p is not a directory/,
    );
    assert.equal((await api.get(`/v1/storage-pools/${pool.id}/hosts/${h.host.id}`)).status, 404);
    const ok = await api.post(`/v1/storage-pools/${pool.id}/hosts`, { host_id: h.host.id });
    assert.equal(ok.body.status, "ready");
  });

  await t.step("detach: the node first; a down host only with force", async () => {
    assert.equal((await api.del(`/v1/networks/${net.id}/hosts/${h.host.id}`)).status, 204);
    assert.equal((await h.fake.state()).networks["qxbr8"], undefined);
    await api.db.sql`update hosts set status = 'down' where id = ${h.host.id}`;
    const refused = await api.del(`/v1/storage-pools/${pool.id}/hosts/${h.host.id}`);
    assert.equal(refused.status, 409);
    assert.match(refused.body.message, /host n2 is down: .*force=true/);
    const forced = await api.del(`/v1/storage-pools/${pool.id}/hosts/${h.host.id}?force=true`);
    assert.equal(forced.status, 204);
    assert.ok((await h.fake.state()).pools[pool.id], "the node was not asked");
  });
});

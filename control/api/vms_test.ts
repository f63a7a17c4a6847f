import assert from "node:assert/strict";
import { createTestApi, fastConfig, fieldsOf } from "../../tests/support/api.ts";

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

Deno.test("VMs API", async (t) => {
  await using api = await createTestApi(fastConfig(), { active: true });
  const pool = await api.create("/v1/storage-pools", { name: "local", path: "/pools/local" });
  const obj = (name: string, type: string, extra: Record<string, unknown> = {}) =>
    api.create("/v1/storage-objects", {
      name,
      type,
      storage_pool_id: pool.id,
      path: `${name}.img`,
      ...extra,
    });
  const kernel = await obj("vmlinux", "kernel");
  const firmware = await obj("fw", "firmware");
  const kboot = await api.create("/v1/boot-sources", { name: "k", kernel_image_id: kernel.id });
  const fwboot = await api.create("/v1/boot-sources", {
    name: "f",
    firmware_image_id: firmware.id,
  });
  const net = await api.create("/v1/networks", {
    name: "lan",
    subnet: "10.60.0.0/24",
    gateway: "10.60.0.1",
  });
  const it = await api.create("/v1/instance-types", {
    name: "medium",
    boot_vcpus: 2,
    max_vcpus: 4,
    memory_size: 2 * GiB,
  });
  const tpl = await api.create("/v1/vm-templates", {
    name: "web",
    boot_vcpus: 1,
    memory_size: GiB,
    memory_shared: true,
    boot_source_id: kboot.id,
    cloud_init_user_data: "#cloud-config\n",
    tags: ["web"],
    placement: { anti_affinity_tags: ["web"] },
    config: { a: 1, b: 2 },
    nics: [{ network_id: net.id }],
  });
  let vm: { id: string; name: string };

  await t.step("create with defaults: 201, created, Location, ETag", async () => {
    const res = await api.post("/v1/vms", { name: "plain" });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.equal(res.headers.get("location"), `/v1/vms/${res.body.id}`);
    assert.equal(res.headers.get("etag"), '"1"');
    assert.equal(res.body.status, "created");
    assert.equal(res.body.boot_vcpus, 1);
    assert.equal(res.body.max_vcpus, 1);
    assert.equal(res.body.memory_size, 512 * MiB);
    assert.equal(res.body.hypervisor, "cloud_hv");
    assert.equal(res.body.boot_mode, "kernel");
    assert.equal(res.body.architecture, Deno.build.arch);
    assert.deepEqual(res.body.placement, {
      reservation_class: null,
      required_host_labels: {},
      preferred_host_labels: {},
      affinity_tags: [],
      anti_affinity_tags: [],
      spread_tags: [],
    });
  });

  await t.step("precedence: request > instance type > template > defaults", async () => {
    const res = await api.post("/v1/vms", {
      name: "web-1",
      instance_type_id: it.id,
      vm_template_id: tpl.id,
      boot_vcpus: 3,
      config: { b: 20, c: 30 },
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    const v = res.body;
    assert.equal(v.boot_vcpus, 3); // request
    assert.equal(v.max_vcpus, 4); // instance type
    assert.equal(v.memory_size, 2 * GiB); // instance type over template
    assert.equal(v.memory_shared, true); // template
    assert.equal(v.boot_source_id, kboot.id); // template
    assert.equal(v.cloud_init_user_data, "#cloud-config\n");
    assert.deepEqual(v.tags, ["web"]);
    assert.deepEqual(v.placement.anti_affinity_tags, ["web"]);
    assert.deepEqual(v.config, { a: 1, b: 20, c: 30 });
    assert.equal(v.instance_type_id, it.id);
    assert.equal(v.vm_template_id, tpl.id);
    const nics = await api.get(`/v1/vms/${v.id}/nics`);
    assert.equal(nics.body.items.length, 1, "the template's NIC");
    assert.equal(nics.body.items[0].ip_address, "10.60.0.2");
    vm = v;
  });

  await t.step("create with inline disks and NICs in one transaction", async () => {
    const disk = await obj("d1", "disk");
    const iso = await obj("cd", "iso");
    const res = await api.post("/v1/vms", {
      name: "full",
      boot_mode: "firmware",
      boot_source_id: fwboot.id,
      disks: [{ storage_object_id: disk.id, boot_order: 0 }, { storage_object_id: iso.id }],
      nics: [{ network_id: net.id, ip_address: "10.60.0.50" }, { network_id: net.id, mtu: 9000 }],
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    const disks = (await api.get(`/v1/vms/${res.body.id}/disks`)).body.items;
    assert.deepEqual(disks.map((d: { device_id: string }) => d.device_id), ["disk0", "disk1"]);
    assert.equal(disks[1].read_only, true, "isos are read-only");
    const nics = (await api.get(`/v1/vms/${res.body.id}/nics`)).body.items;
    assert.deepEqual(nics.map((n: { device_id: string }) => n.device_id), ["net0", "net1"]);
    assert.equal(nics[0].ip_address, "10.60.0.50");
    // A failing inline NIC rolls the whole VM back.
    const bad = await api.post("/v1/vms", {
      name: "rolled-back",
      nics: [{ network_id: net.id }, { network_id: net.id, ip_address: "10.60.0.50" }],
    });
    assert.equal(bad.status, 409);
    assert.deepEqual(fieldsOf(bad), ["nics.1.ip_address"]);
    assert.equal((await api.get("/v1/vms?name=rolled-back")).body.items.length, 0);
    const audit = (await api.get("/v1/audit-logs?resource_type=vm&action=create")).body.items;
    assert.ok(!audit.some((a: { summary: { name: string } }) => a.summary.name === "rolled-back"));
    const ips = (await api.get(`/v1/networks/${net.id}/ips`)).body.items;
    assert.equal(ips.length, 3, "nothing of the failed VM was kept");
  });

  await t.step("every validation rule names its field", async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ name: "bad name" }, "name"],
      [{}, "name"],
      [{ name: "v", boot_vcpus: 0 }, "boot_vcpus"],
      [{ name: "v", boot_vcpus: 600 }, "boot_vcpus"],
      [{ name: "v", boot_vcpus: 4, max_vcpus: 2 }, "max_vcpus"],
      [{ name: "v", memory_size: 1000 }, "memory_size"],
      [{ name: "v", memory_size: "1G" }, "memory_size"],
      [{ name: "v", memory_hotplug_size: 7 }, "memory_hotplug_size"],
      [{ name: "v", hypervisor: "qemu" }, "hypervisor"],
      [{ name: "v", boot_mode: "bios" }, "boot_mode"],
      [{ name: "v", architecture: "riscv64" }, "architecture"],
      [{ name: "v", tags: ["ok", "not ok"] }, "tags.1"],
      [{ name: "v", placement: { spread_tags: [""] } }, "placement.spread_tags.0"],
      [
        { name: "v", placement: { required_host_labels: { "a b": "x" } } },
        "placement.required_host_labels.a b",
      ],
      [{ name: "v", placement: { colour: "red" } }, "placement.colour"],
      [{ name: "v", config: [1] }, "config"],
      [{ name: "v", cloud_init_user_data: "x".repeat(300 * 1024) }, "cloud_init_user_data"],
      [{ name: "v", instance_type_id: "00000000-0000-4000-8000-000000000000" }, "instance_type_id"],
      [{ name: "v", vm_template_id: "00000000-0000-4000-8000-000000000000" }, "vm_template_id"],
      [{ name: "v", instance_type_id: "nope" }, "instance_type_id"],
      [{ name: "v", boot_source_id: "00000000-0000-4000-8000-000000000000" }, "boot_source_id"],
      [{ name: "v", boot_source_id: fwboot.id }, "boot_source_id"],
      [
        { name: "v", nics: [{ network_id: "00000000-0000-4000-8000-000000000000" }] },
        "nics.0.network_id",
      ],
      [{ name: "v", nics: [{ network_id: net.id, mac_address: "zz" }] }, "nics.0.mac_address"],
      [{ name: "v", nics: [{ network_id: net.id, device_id: "-x" }] }, "nics.0.device_id"],
      [{ name: "v", disks: [{ storage_object_id: kernel.id }] }, "disks.0.storage_object_id"],
      [{ name: "v", disks: [{}] }, "disks.0.storage_object_id"],
    ];
    for (const [input, field] of cases) {
      const r = await api.post("/v1/vms", input);
      assert.equal(r.status, 422, JSON.stringify([input, r.body]).slice(0, 300));
      assert.deepEqual(fieldsOf(r), [field], JSON.stringify(input).slice(0, 200));
    }
    assert.equal((await api.post("/v1/vms", { name: "plain" })).status, 409);
  });

  await t.step("get, list with exact filters and tags", async () => {
    const got = await api.get(`/v1/vms/${vm.id}`);
    assert.equal(got.body.name, "web-1");
    assert.equal(got.headers.get("etag"), '"1"');
    assert.equal((await api.get("/v1/vms/00000000-0000-4000-8000-000000000000")).status, 404);
    const byTag = await api.get("/v1/vms?tag=web");
    assert.deepEqual(byTag.body.items.map((v: { name: string }) => v.name), ["web-1"]);
    assert.equal((await api.get("/v1/vms?tag=web&tag=other")).body.items.length, 0);
    assert.equal((await api.get("/v1/vms?status=created")).body.items.length, 3);
    assert.equal((await api.get("/v1/vms?status=running")).body.items.length, 0);
    assert.deepEqual(fieldsOf(await api.get("/v1/vms?status=flying")), ["status"]);
  });

  await t.step("PATCH: merge semantics, If-Match, only what the status allows", async () => {
    const r1 = await api.patch(`/v1/vms/${vm.id}`, {
      description: "front",
      memory_size: 4 * GiB,
      placement: { anti_affinity_tags: null, spread_tags: ["web"] },
      config: { a: null },
    }, { "if-match": '"1"' });
    assert.equal(r1.status, 200, JSON.stringify(r1.body));
    assert.equal(r1.body.memory_size, 4 * GiB);
    assert.deepEqual(r1.body.placement.anti_affinity_tags, []);
    assert.deepEqual(r1.body.placement.spread_tags, ["web"]);
    assert.deepEqual(r1.body.config, { b: 20, c: 30 });
    assert.equal(r1.headers.get("etag"), '"2"');
    assert.equal(
      (await api.patch(`/v1/vms/${vm.id}`, { description: "x" }, { "if-match": '"1"' })).status,
      412,
    );
    const bad = await api.patch(`/v1/vms/${vm.id}`, { max_vcpus: 1 });
    assert.equal(bad.status, 422);
    assert.deepEqual(fieldsOf(bad), ["max_vcpus"]);
    assert.deepEqual(fieldsOf(await api.patch(`/v1/vms/${vm.id}`, { boot_vcpus: null })), [
      "boot_vcpus",
    ]);
    assert.deepEqual(fieldsOf(await api.patch(`/v1/vms/${vm.id}`, { status: "running" })), [
      "status",
    ]);

    // The node says it is running now (the orchestration layer sets this).
    await api.db.sql`update vms set status = 'running' where id = ${vm.id}`;
    const sizing = await api.patch(`/v1/vms/${vm.id}`, { boot_vcpus: 2 });
    assert.equal(sizing.status, 409);
    assert.equal(sizing.body.code, "failed_precondition");
    assert.match(sizing.body.message, /it is running \(allowed when created, shutdown\)/);
    const cloud = await api.patch(`/v1/vms/${vm.id}`, { cloud_init_user_data: null });
    assert.equal(cloud.status, 409);
    const meta = await api.patch(`/v1/vms/${vm.id}`, {
      description: "still fine",
      tags: ["web", "prod"],
    });
    assert.equal(meta.status, 200);
    assert.deepEqual(meta.body.tags, ["web", "prod"]);
    // Sending an unchanged sizing field is not a change.
    const same = await api.patch(`/v1/vms/${vm.id}`, { boot_vcpus: 3, name: "web-one" });
    assert.equal(same.status, 200, JSON.stringify(same.body));
    assert.equal(same.body.name, "web-one");
    const audit = await api.get(`/v1/audit-logs?resource_id=${vm.id}&action=update`);
    assert.deepEqual(audit.body.items[0].summary.fields, ["name"]);
  });

  await t.step("disks and NICs follow the status table too", async () => {
    const disk = await obj("d2", "disk");
    const attach = await api.post(`/v1/vms/${vm.id}/disks`, { storage_object_id: disk.id });
    assert.equal(attach.status, 409);
    assert.match(attach.body.message, /cannot attach disk vm .*: it is running/);
    assert.equal((await api.post(`/v1/vms/${vm.id}/nics`, { network_id: net.id })).status, 409);
    assert.equal((await api.del(`/v1/vms/${vm.id}/nics/net0`)).status, 409);
    await api.db.sql`update vms set status = 'shutdown' where id = ${vm.id}`;
    const ok = await api.post(`/v1/vms/${vm.id}/disks`, {
      storage_object_id: disk.id,
      boot_order: 1,
    });
    assert.equal(ok.status, 201, JSON.stringify(ok.body));
    assert.equal(ok.body.device_id, "disk0");
    assert.equal(ok.headers.get("location"), `/v1/vms/${vm.id}/disks/disk0`);
    const twice = await api.post(`/v1/vms/${vm.id}/disks`, { storage_object_id: disk.id });
    assert.equal(twice.status, 409);
    const plain = (await api.get("/v1/vms?name=plain")).body.items[0];
    const elsewhere = await api.post(`/v1/vms/${plain.id}/disks`, { storage_object_id: disk.id });
    assert.equal(elsewhere.status, 409);
    assert.match(elsewhere.body.message, /attached to vm web-one/);
    const named = await api.post(`/v1/vms/${vm.id}/nics`, {
      network_id: net.id,
      device_id: "net7",
      mac_address: "52:54:00:12:34:56",
    });
    assert.equal(named.status, 201, JSON.stringify(named.body));
    assert.equal(named.body.mac_address, "52:54:00:12:34:56");
    const dupMac = await api.post(`/v1/vms/${plain.id}/nics`, {
      network_id: net.id,
      mac_address: "52:54:00:12:34:56",
    });
    assert.equal(dupMac.status, 409);
    assert.deepEqual(fieldsOf(dupMac), ["mac_address"]);
    const dupDev = await api.post(`/v1/vms/${vm.id}/nics`, {
      network_id: net.id,
      device_id: "net7",
    });
    assert.equal(dupDev.status, 409);
    assert.deepEqual(fieldsOf(dupDev), ["device_id"]);
    assert.equal((await api.get(`/v1/vms/${vm.id}/disks/disk0`)).body.storage_object_id, disk.id);
    assert.equal((await api.get(`/v1/vms/${vm.id}/disks/disk9`)).status, 404);
    const inUse = await api.del(`/v1/storage-objects/${disk.id}`);
    assert.equal(inUse.status, 409);
    assert.equal((await api.del(`/v1/vms/${vm.id}/disks/disk0`)).status, 204);
    const net7 = (await api.get(`/v1/vms/${vm.id}/nics/net7`)).body;
    assert.equal((await api.del(`/v1/vms/${vm.id}/nics/net7`)).status, 204);
    const ips = (await api.get(`/v1/networks/${net.id}/ips`)).body.items;
    assert.ok(!ips.some((a: { ip_address: string }) => a.ip_address === net7.ip_address));
  });

  await t.step("delete: 202 + a job; refused while starting; honours If-Match", async () => {
    await api.db.sql`update vms set status = 'pending' where id = ${vm.id}`;
    const pending = await api.del(`/v1/vms/${vm.id}`);
    assert.equal(pending.status, 409);
    assert.match(pending.body.message, /cannot delete vm .*: it is pending/);
    await api.db.sql`update vms set status = 'shutdown' where id = ${vm.id}`;
    assert.equal((await api.del(`/v1/vms/${vm.id}`, { "if-match": '"1"' })).status, 412);
    const res = await api.del(`/v1/vms/${vm.id}`);
    assert.equal(res.status, 202);
    assert.equal(res.headers.get("location"), `/v1/jobs/${res.body.id}`);
    assert.equal(res.body.type, "vm_delete");
    const job = await api.awaitJob(res);
    assert.equal(job.status, "succeeded", JSON.stringify(job.error));
    assert.equal((await api.get(`/v1/vms/${vm.id}`)).status, 404);
    assert.equal((await api.get(`/v1/vms/${vm.id}/nics`)).status, 404);
    const audit = await api.get(`/v1/audit-logs?resource_id=${vm.id}`);
    assert.deepEqual(
      audit.body.items.map((a: { action: string }) => a.action).slice(0, 2),
      ["delete", "remove_nic"],
    );
  });

  await t.step(
    "presets that VMs use: instance types and templates can go, boot sources cannot",
    async () => {
      const full = (await api.get("/v1/vms?name=full")).body.items[0];
      const used = await api.del(`/v1/boot-sources/${fwboot.id}`);
      assert.equal(used.status, 409);
      assert.match(used.body.message, /in use by vm full/);
      assert.equal((await api.del(`/v1/vm-templates/${tpl.id}`)).status, 204);
      assert.equal((await api.del(`/v1/instance-types/${it.id}`)).status, 204);
      assert.equal((await api.get(`/v1/vms/${full.id}`)).status, 200);
    },
  );
});

import assert from "node:assert/strict";
import { createTestApi, fieldsOf } from "../../tests/support/api.ts";

const GiB = 1024 ** 3;

Deno.test("boot sources and VM templates", async (t) => {
  await using api = await createTestApi();
  const pool = await api.create("/v1/storage-pools", { name: "p", path: "/p" });
  const obj = (name: string, type: string) =>
    api.create("/v1/storage-objects", { name, type, storage_pool_id: pool.id, path: name });
  const kernel = await obj("vmlinux", "kernel");
  const initrd = await obj("initrd", "initrd");
  const fw = await obj("fw", "firmware");
  const disk = await obj("disk", "disk");
  const net = await api.create("/v1/networks", { name: "n", subnet: "10.70.0.0/24" });
  let boot: { id: string };

  await t.step("boot source CRUD", async () => {
    const res = await api.post("/v1/boot-sources", {
      name: "linux",
      kernel_image_id: kernel.id,
      initrd_image_id: initrd.id,
      kernel_params: "console=ttyS0 root=/dev/vda1",
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.equal(res.body.boot_mode, "kernel");
    boot = res.body;
    const efi = await api.post("/v1/boot-sources", { name: "efi", firmware_image_id: fw.id });
    assert.equal(efi.body.boot_mode, "firmware");
    assert.equal((await api.get(`/v1/boot-sources?boot_mode=firmware`)).body.items.length, 1);
    const p = await api.patch(`/v1/boot-sources/${boot.id}`, {
      initrd_image_id: null,
      kernel_params: "quiet",
    });
    assert.equal(p.status, 200);
    assert.equal(p.body.initrd_image_id, null);
    const switched = await api.patch(`/v1/boot-sources/${efi.body.id}`, {
      firmware_image_id: null,
      kernel_image_id: kernel.id,
    });
    assert.equal(switched.body.boot_mode, "kernel");
    assert.equal((await api.del(`/v1/boot-sources/${efi.body.id}`)).status, 204);
  });

  await t.step("boot source validation", async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ name: "b" }, "kernel_image_id"],
      [{ name: "b", kernel_image_id: kernel.id, firmware_image_id: fw.id }, "firmware_image_id"],
      [{ name: "b", firmware_image_id: fw.id, initrd_image_id: initrd.id }, "initrd_image_id"],
      [{ name: "b", firmware_image_id: fw.id, kernel_params: "x" }, "kernel_params"],
      [{ name: "b", kernel_image_id: disk.id }, "kernel_image_id"],
      [{ name: "b", kernel_image_id: kernel.id, initrd_image_id: kernel.id }, "initrd_image_id"],
      [
        { name: "b", firmware_image_id: "00000000-0000-4000-8000-000000000000" },
        "firmware_image_id",
      ],
      [{ name: "b", kernel_image_id: kernel.id, kernel_params: "a\nb" }, "kernel_params"],
    ];
    for (const [input, field] of cases) {
      const r = await api.post("/v1/boot-sources", input);
      assert.equal(r.status, 422, JSON.stringify(input));
      assert.deepEqual(fieldsOf(r), [field], JSON.stringify(input));
    }
    const clear = await api.patch(`/v1/boot-sources/${boot.id}`, { kernel_image_id: null });
    assert.deepEqual(fieldsOf(clear), ["kernel_image_id"]);
    const kernelInUse = await api.del(`/v1/storage-objects/${kernel.id}`);
    assert.equal(kernelInUse.status, 409);
    assert.match(kernelInUse.body.message, /boot source linux/);
  });

  await t.step("template CRUD with merge patch", async () => {
    const res = await api.post("/v1/vm-templates", {
      name: "small-web",
      boot_vcpus: 1,
      memory_size: GiB,
      boot_mode: "kernel",
      boot_source_id: boot.id,
      placement: { required_host_labels: { zone: "a" } },
      nics: [{ network_id: net.id, mtu: 1400 }],
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.deepEqual(res.body.nics, [{ network_id: net.id, mtu: 1400 }]);
    assert.deepEqual(res.body.tags, []);
    const id = res.body.id;
    const p = await api.patch(`/v1/vm-templates/${id}`, {
      placement: { required_host_labels: { zone: null, rack: "r1" } },
      memory_size: 2 * GiB,
      nics: null,
    });
    assert.equal(p.status, 200, JSON.stringify(p.body));
    assert.deepEqual(p.body.placement, { required_host_labels: { rack: "r1" } });
    assert.deepEqual(p.body.nics, []);
    assert.equal(p.body.memory_size, 2 * GiB);
    assert.equal((await api.get(`/v1/vm-templates?name=small-web`)).body.items.length, 1);
    const vm = await api.create("/v1/vms", { name: "from-tpl", vm_template_id: id });
    assert.equal(vm.memory_size, 2 * GiB);
    assert.deepEqual(vm.placement.required_host_labels, { rack: "r1" });
    assert.equal((await api.del(`/v1/vm-templates/${id}`)).status, 204);
    assert.equal((await api.get(`/v1/vms/${vm.id}`)).body.vm_template_id, null);
  });

  await t.step("console: request > template > log", async () => {
    const tpl = await api.create("/v1/vm-templates", { name: "sock", console: "socket" });
    assert.equal(tpl.console, "socket");
    const plain = await api.create("/v1/vm-templates", { name: "plain" });
    assert.equal(plain.console, null);
    const it = await api.create("/v1/instance-types", {
      name: "tiny",
      boot_vcpus: 1,
      memory_size: GiB,
    });
    const vm = (body: Record<string, unknown>) => api.create("/v1/vms", body);
    assert.equal((await vm({ name: "c1", vm_template_id: tpl.id })).console, "socket");
    assert.equal(
      (await vm({ name: "c2", vm_template_id: tpl.id, instance_type_id: it.id })).console,
      "socket",
    );
    assert.equal((await vm({ name: "c3", vm_template_id: tpl.id, console: "log" })).console, "log");
    assert.equal(
      (await vm({ name: "c4", vm_template_id: tpl.id, console: null })).console,
      "socket",
    );
    assert.equal((await vm({ name: "c5", vm_template_id: plain.id })).console, "log");
    assert.equal((await vm({ name: "c6" })).console, "log");
    const p = await api.patch(`/v1/vm-templates/${tpl.id}`, { console: null });
    assert.equal(p.status, 200, JSON.stringify(p.body));
    assert.equal(p.body.console, null);
    assert.equal((await vm({ name: "c7", vm_template_id: tpl.id })).console, "log");
    const bad = await api.post("/v1/vm-templates", { name: "bad", console: "tty" });
    assert.equal(bad.status, 422);
    assert.deepEqual(fieldsOf(bad), ["console"]);
  });

  await t.step("template validation", async () => {
    const efi = await api.create("/v1/boot-sources", { name: "efi2", firmware_image_id: fw.id });
    const cases: [Record<string, unknown>, string][] = [
      [{ name: "t", boot_vcpus: 4, max_vcpus: 1 }, "max_vcpus"],
      [{ name: "t", boot_source_id: "00000000-0000-4000-8000-000000000000" }, "boot_source_id"],
      [{ name: "t", boot_mode: "kernel", boot_source_id: efi.id }, "boot_source_id"],
      [
        { name: "t", nics: [{ network_id: "00000000-0000-4000-8000-000000000000" }] },
        "nics.0.network_id",
      ],
      [{ name: "t", nics: [{ network_id: net.id, ip_address: "10.70.0.5" }] }, "nics.0.ip_address"],
      [{ name: "t", memory_size: 5 }, "memory_size"],
      [
        { name: "t", placement: { required_host_labels: { "": "x" } } },
        "placement.required_host_labels.",
      ],
    ];
    for (const [input, field] of cases) {
      const r = await api.post("/v1/vm-templates", input);
      assert.equal(r.status, 422, JSON.stringify([input, r.body]));
      assert.deepEqual(fieldsOf(r), [field], JSON.stringify(input));
    }
  });
});

Deno.test("POST /vms/{id}/template copies a VM's reusable fields", async (t) => {
  await using api = await createTestApi();
  const pool = await api.create("/v1/storage-pools", { name: "p", path: "/p" });
  const kernel = await api.create("/v1/storage-objects", {
    name: "vmlinux",
    type: "kernel",
    storage_pool_id: pool.id,
    path: "vmlinux",
  });
  const boot = await api.create("/v1/boot-sources", { name: "linux", kernel_image_id: kernel.id });
  const net = await api.create("/v1/networks", { name: "n", subnet: "10.71.0.0/24" });
  const source = await api.create("/v1/vms", {
    name: "web-1",
    description: "the first web server",
    boot_vcpus: 2,
    max_vcpus: 4,
    memory_size: 2 * GiB,
    memory_hotplug_size: GiB,
    memory_shared: true,
    console: "socket",
    boot_mode: "kernel",
    boot_source_id: boot.id,
    cloud_init_user_data: "#cloud-config\n",
    placement: { required_host_labels: { zone: "a" }, spread_tags: ["web"] },
    tags: ["web", "prod"],
    config: { k: 1 },
    nics: [{ network_id: net.id, mtu: 1400, ip_address: "10.71.0.9" }],
  });
  // What a template keeps, in the VM's and the template's shapes alike.
  const reusable = [
    "hypervisor",
    "architecture",
    "boot_mode",
    "boot_source_id",
    "boot_vcpus",
    "max_vcpus",
    "memory_size",
    "memory_hotplug_size",
    "memory_shared",
    "memory_hugepages",
    "console",
    "cloud_init_user_data",
    "cloud_init_meta_data",
    "cloud_init_network_config",
    "placement",
    "tags",
    "config",
  ];
  const pick = (o: Record<string, unknown>) =>
    Object.fromEntries(reusable.map((k) => [k, o[k]] as const));
  let tplId = "";

  await t.step("201 + Location + audit; the template has the VM's fields", async () => {
    const res = await api.post(`/v1/vms/${source.id}/template`, { name: "web", description: "d" });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    tplId = res.body.id;
    assert.equal(res.headers.get("location"), `/v1/vm-templates/${tplId}`);
    assert.ok(res.headers.get("etag"));
    assert.equal(res.body.name, "web");
    assert.equal(res.body.description, "d");
    assert.deepEqual(pick(res.body), pick(source));
    assert.deepEqual(res.body.nics, [{ network_id: net.id, mtu: 1400 }]);
    assert.deepEqual((await api.get(`/v1/vm-templates/${tplId}`)).body, res.body);
    const logs = await api.get(`/v1/audit-logs?resource_id=${tplId}`);
    assert.equal(logs.body.items.length, 1);
    assert.equal(logs.body.items[0].action, "create");
    assert.equal(logs.body.items[0].resource_type, "vm_template");
    assert.deepEqual(logs.body.items[0].summary, { name: "web", vm_id: source.id });
  });

  await t.step("a VM made from the template gets the fields back", async () => {
    const vm = await api.create("/v1/vms", { name: "web-2", vm_template_id: tplId });
    assert.deepEqual(pick(vm), pick(source));
    assert.equal(vm.description, null);
    const nics = (await api.get(`/v1/vms/${vm.id}/nics`)).body.items;
    assert.equal(nics.length, 1);
    assert.deepEqual([nics[0].network_id, nics[0].mtu], [net.id, 1400]);
    assert.notEqual(nics[0].ip_address, "10.71.0.9");
  });

  await t.step("409 on a duplicate name, 404 for an unknown VM, 422 on a bad body", async () => {
    const dup = await api.post(`/v1/vms/${source.id}/template`, { name: "web" });
    assert.equal(dup.status, 409, JSON.stringify(dup.body));
    const missing = await api.post(
      "/v1/vms/00000000-0000-4000-8000-000000000000/template",
      { name: "other" },
    );
    assert.equal(missing.status, 404, JSON.stringify(missing.body));
    const bad = await api.post(`/v1/vms/${source.id}/template`, { name: "bad name" });
    assert.equal(bad.status, 422);
    assert.deepEqual(fieldsOf(bad), ["name"]);
    const extra = await api.post(`/v1/vms/${source.id}/template`, { name: "x", memory_size: 1 });
    assert.equal(extra.status, 422);
    assert.equal((await api.get("/v1/vm-templates")).body.items.length, 1);
  });
});

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

import assert from "node:assert/strict";
import { createTestApi, fieldsOf } from "../../tests/support/api.ts";

const GiB = 1024 ** 3;

Deno.test("instance types API", async (t) => {
  await using api = await createTestApi();
  let it: { id: string };

  await t.step("CRUD", async () => {
    const res = await api.post("/v1/instance-types", {
      name: "small",
      boot_vcpus: 1,
      max_vcpus: 2,
      memory_size: GiB,
    });
    assert.equal(res.status, 201);
    assert.equal(res.headers.get("location"), `/v1/instance-types/${res.body.id}`);
    it = res.body;
    assert.equal((await api.get(`/v1/instance-types/${it.id}`)).body.memory_size, GiB);
    const list = await api.get("/v1/instance-types?name=small");
    assert.equal(list.body.items.length, 1);
    const patched = await api.patch(`/v1/instance-types/${it.id}`, {
      boot_vcpus: 2,
      description: "two",
    });
    assert.equal(patched.status, 200);
    assert.equal(patched.body.boot_vcpus, 2);
    const cleared = await api.patch(`/v1/instance-types/${it.id}`, { description: null });
    assert.equal(cleared.body.description, null);
    assert.equal(
      (await api.post("/v1/instance-types", { name: "small", boot_vcpus: 1, memory_size: GiB }))
        .status,
      409,
    );
  });

  await t.step("validation names each field", async () => {
    const base = { name: "v", boot_vcpus: 1, memory_size: GiB };
    const cases: [Record<string, unknown>, string][] = [
      [{ ...base, boot_vcpus: 0 }, "boot_vcpus"],
      [{ ...base, boot_vcpus: 1.5 }, "boot_vcpus"],
      [{ ...base, memory_size: 1000 }, "memory_size"],
      [{ ...base, memory_size: GiB + 1 }, "memory_size"],
      [{ ...base, memory_size: 2 ** 60 }, "memory_size"],
      [{ ...base, max_vcpus: 0 }, "max_vcpus"],
      [{ ...base, boot_vcpus: 4, max_vcpus: 2 }, "max_vcpus"],
      [{ ...base, memory_hotplug_size: -1 }, "memory_hotplug_size"],
      [{ ...base, architecture: "mips" }, "architecture"],
      [{ ...base, memory_shared: "yes" }, "memory_shared"],
      [{ ...base, name: null }, "name"],
    ];
    for (const [input, field] of cases) {
      const res = await api.post("/v1/instance-types", input);
      assert.equal(res.status, 422, JSON.stringify(input));
      assert.deepEqual(fieldsOf(res), [field], JSON.stringify(input));
    }
    const patch = await api.patch(`/v1/instance-types/${it.id}`, { max_vcpus: 1 });
    assert.equal(patch.status, 422);
    assert.deepEqual(fieldsOf(patch), ["max_vcpus"]);
  });

  await t.step("delete", async () => {
    assert.equal((await api.del(`/v1/instance-types/${it.id}`)).status, 204);
    assert.equal((await api.get(`/v1/instance-types/${it.id}`)).status, 404);
  });
});

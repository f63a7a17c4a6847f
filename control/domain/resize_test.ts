/** The resize rules (pure). */
import assert from "node:assert/strict";
import { checkDiskGrowth, reservedSizing, resizedSizing, sameSizing } from "./resize.ts";
import { capacityRejection } from "./placement.ts";

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;
const vm = { boot_vcpus: 2, max_vcpus: 4, memory_size: GiB, memory_hotplug_size: GiB };

function fieldOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    return (e as { details?: { field: string }[] }).details?.[0]?.field ?? "?";
  }
  return "none";
}

Deno.test("resize rules: running VMs follow CH's hotplug rules and keep the ceiling", () => {
  assert.deepEqual(resizedSizing(vm, { desired_vcpus: 4 }, true), {
    boot_vcpus: 4,
    memory_size: GiB,
    memory_hotplug_size: GiB,
  });
  assert.deepEqual(resizedSizing(vm, { desired_ram: GiB + 256 * MiB }, true), {
    boot_vcpus: 2,
    memory_size: GiB + 256 * MiB,
    memory_hotplug_size: GiB - 256 * MiB,
  });
  assert.equal(fieldOf(() => resizedSizing(vm, {}, true)), "desired_vcpus");
  assert.equal(fieldOf(() => resizedSizing(vm, { desired_vcpus: 5 }, true)), "desired_vcpus");
  assert.equal(fieldOf(() => resizedSizing(vm, { desired_ram: GiB + MiB }, true)), "desired_ram");
  assert.equal(fieldOf(() => resizedSizing(vm, { desired_ram: 3 * GiB }, true)), "desired_ram");
  assert.equal(fieldOf(() => resizedSizing(vm, { desired_ram: 512 * MiB }, true)), "desired_ram");
  const noHotplug = { ...vm, memory_hotplug_size: null };
  assert.equal(
    fieldOf(() => resizedSizing(noHotplug, { desired_ram: 2 * GiB }, true)),
    "desired_ram",
  );
});

Deno.test("resize rules: a stopped VM gets new boot sizes (≥ 128 MiB, whole MiB)", () => {
  assert.deepEqual(resizedSizing(vm, { desired_ram: 512 * MiB, desired_vcpus: 1 }, false), {
    boot_vcpus: 1,
    memory_size: 512 * MiB,
    memory_hotplug_size: GiB,
  });
  assert.equal(fieldOf(() => resizedSizing(vm, { desired_ram: 64 * MiB }, false)), "desired_ram");
  assert.equal(fieldOf(() => resizedSizing(vm, { desired_ram: GiB + 1 }, false)), "desired_ram");
});

Deno.test("disk growth: grow only, whole MiB; capacity uses the placement maths", () => {
  checkDiskGrowth(GiB, 2 * GiB);
  checkDiskGrowth(null, GiB);
  assert.equal(fieldOf(() => checkDiskGrowth(GiB, GiB)), "size_bytes");
  assert.equal(fieldOf(() => checkDiskGrowth(2 * GiB, GiB)), "size_bytes");
  assert.equal(fieldOf(() => checkDiskGrowth(GiB, 2 * GiB + 512)), "size_bytes");
  const host = {
    total_cpus: 2,
    total_memory_bytes: 4 * GiB,
    allocated_vcpus: 6,
    allocated_memory_bytes: GiB,
  };
  const policy = { cpu_overcommit_ratio: 4, memory_overcommit_ratio: 1 };
  assert.equal(capacityRejection({ boot_vcpus: 2, memory_size: GiB }, host, policy), null);
  assert.equal(
    capacityRejection({ boot_vcpus: 3, memory_size: GiB }, host, policy)?.filter,
    "vcpus",
  );
  assert.equal(
    capacityRejection({ boot_vcpus: 1, memory_size: 4 * GiB }, host, policy)?.filter,
    "memory",
  );
});

Deno.test("resize reservation: the larger of the old and new sizes while a resize runs", () => {
  const before = { boot_vcpus: 4, memory_size: GiB, memory_hotplug_size: GiB };
  const after = { boot_vcpus: 2, memory_size: 2 * GiB, memory_hotplug_size: 0 };
  assert.deepEqual(reservedSizing(before, after), { ...after, boot_vcpus: 4 });
  assert.deepEqual(reservedSizing(after, before), { ...after, boot_vcpus: 4 });
  assert.ok(sameSizing(reservedSizing(before, before), before));
  assert.ok(
    sameSizing({ ...before, memory_hotplug_size: null }, { ...before, memory_hotplug_size: null }),
  );
  assert.ok(!sameSizing(before, after));
});

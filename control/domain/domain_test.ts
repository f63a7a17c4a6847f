import assert from "node:assert/strict";
import { parseCidr, parseIpv4 } from "../../shared/net/ip.ts";
import { checkStaticAddress, formatAddress, nextFreeAddress, poolSize } from "./ipam.ts";
import { checkRequestedMac, generateMac } from "./mac.ts";
import { nextDeviceId } from "./devices.ts";
import {
  allowedActions,
  assertVmAction,
  canDo,
  VM_ACTION_TABLE,
  VM_STATUSES,
} from "./vm_status.ts";
import { checkBootSource, resolveVmFields, type VmDefaults } from "./vm_fields.ts";

const net = { net: parseCidr("10.0.0.0/29"), gateway: parseIpv4("10.0.0.1") };

Deno.test("ipam: pool excludes network, broadcast and gateway", () => {
  assert.equal(poolSize(net), 5); // .2-.6
  assert.equal(poolSize({ net: parseCidr("10.0.0.0/29") }), 6);
  assert.equal(poolSize({ net: parseCidr("10.0.0.0/29"), gateway: parseIpv4("10.9.9.9") }), 6);
});

Deno.test("ipam: next free skips used addresses and the gateway, null when full", () => {
  const used: number[] = [];
  const got: string[] = [];
  for (;;) {
    const a = nextFreeAddress(net, used);
    if (a === null) break;
    used.push(a);
    got.push(formatAddress(a));
  }
  assert.deepEqual(got, ["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"]);
  // A released address in the middle is reused first.
  const freed = used.filter((a) => a !== parseIpv4("10.0.0.4"));
  assert.equal(formatAddress(nextFreeAddress(net, freed)!), "10.0.0.4");
});

Deno.test("ipam: next free is fast on a large network", () => {
  const big = { net: parseCidr("10.0.0.0/8") };
  const used = Array.from({ length: 10_000 }, (_, i) => parseIpv4("10.0.0.1") + i);
  assert.equal(formatAddress(nextFreeAddress(big, used)!), "10.0.39.17");
});

Deno.test("ipam: static addresses must be usable hosts of the network", () => {
  assert.equal(checkStaticAddress(net, "10.0.0.3"), parseIpv4("10.0.0.3"));
  for (
    const [ip, why] of [
      ["10.0.0.0", /network or broadcast/],
      ["10.0.0.7", /network or broadcast/],
      ["10.0.0.1", /gateway/],
      ["10.0.1.3", /not inside 10.0.0.0\/29/],
      ["10.0.0.300", /not an IPv4 address/],
    ] as const
  ) {
    assert.throws(() => checkStaticAddress(net, ip), (e: Error & { details: unknown[] }) => {
      assert.match(e.message, why);
      assert.deepEqual((e.details[0] as { field: string }).field, "ip_address");
      return true;
    });
  }
});

Deno.test("mac: generated MACs are locally administered unicast", () => {
  for (let i = 0; i < 100; i++) {
    const mac = generateMac();
    const first = parseInt(mac.slice(0, 2), 16);
    assert.equal(first & 1, 0);
    assert.equal(first & 2, 2);
  }
  assert.equal(generateMac(() => new Uint8Array([1, 2, 3, 4, 5])), "52:01:02:03:04:05");
  assert.equal(checkRequestedMac("52-54-00-AA-BB-CC"), "52:54:00:aa:bb:cc");
  assert.throws(() => checkRequestedMac("01:00:5e:00:00:01"), /not a unicast/);
  assert.throws(() => checkRequestedMac("nope"), /not a MAC/);
});

Deno.test("device ids: lowest free index", () => {
  assert.equal(nextDeviceId("disk", []), "disk0");
  assert.equal(nextDeviceId("disk", ["disk0", "disk2"]), "disk1");
  assert.equal(nextDeviceId("net", ["net0", "net1", "rootfs"]), "net2");
});

Deno.test("vm actions: the table answers per status and 409s name the status", () => {
  assert.ok(canDo("created", "start"));
  assert.ok(!canDo("running", "start"));
  assert.ok(canDo("running", "update_metadata"));
  assert.ok(!canDo("running", "update_sizing"));
  assert.ok(!canDo("pending", "delete"));
  assert.deepEqual(allowedActions("paused"), [
    "stop",
    "force_stop",
    "resume",
    "delete",
    "update_metadata",
    "snapshot",
    "resize_disk",
  ]);
  for (const statuses of Object.values(VM_ACTION_TABLE)) {
    for (const s of statuses) assert.ok(VM_STATUSES.includes(s));
  }
  assert.throws(
    () => assertVmAction({ id: "v1", status: "running" }, "update_sizing"),
    (e: Error & { code: string }) => {
      assert.equal(e.code, "failed_precondition");
      assert.match(e.message, /it is running \(allowed when created, shutdown\)/);
      return true;
    },
  );
});

const defaults: VmDefaults = {
  hypervisor: "cloud_hv",
  boot_mode: "kernel",
  architecture: "x86_64",
  boot_vcpus: 1,
  memory_size: 512,
};

Deno.test("vm fields: request > instance type > template > defaults", () => {
  const r = resolveVmFields(
    { boot_vcpus: 4, config: { a: 1 } },
    { boot_vcpus: 2, memory_size: 2048, max_vcpus: 8 },
    {
      boot_vcpus: 1,
      memory_size: 1024,
      memory_shared: true,
      boot_mode: "firmware",
      tags: ["web", "web"],
      config: { a: 0, b: 2 },
      nics: [{ network_id: "n1" }],
    },
    defaults,
  );
  assert.equal(r.boot_vcpus, 4);
  assert.equal(r.max_vcpus, 8);
  assert.equal(r.memory_size, 2048);
  assert.equal(r.memory_shared, true);
  assert.equal(r.boot_mode, "firmware");
  assert.equal(r.architecture, "x86_64");
  assert.deepEqual(r.tags, ["web"]);
  assert.deepEqual(r.config, { a: 1, b: 2 });
  assert.deepEqual(r.nics, [{ network_id: "n1" }]);
  assert.equal(r.placement.reservation_class, null);
  const d = resolveVmFields({}, undefined, undefined, defaults);
  assert.equal(d.boot_vcpus, 1);
  assert.equal(d.max_vcpus, 1);
  assert.equal(d.memory_size, 512);
});

Deno.test("vm fields: max_vcpus below boot_vcpus is raised from presets, refused from requests", () => {
  assert.equal(
    resolveVmFields({ boot_vcpus: 4 }, { max_vcpus: 2 }, undefined, defaults).max_vcpus,
    4,
  );
  assert.throws(
    () => resolveVmFields({ boot_vcpus: 4, max_vcpus: 2 }, undefined, undefined, defaults),
    /max_vcpus: must be at least boot_vcpus \(4\)/,
  );
});

Deno.test("vm fields: boot source must match the boot mode", () => {
  checkBootSource("kernel", { id: "b", boot_mode: "kernel" });
  assert.throws(
    () => checkBootSource("firmware", { id: "b", boot_mode: "kernel" }),
    /boot_source_id: boot source b boots kernel/,
  );
});

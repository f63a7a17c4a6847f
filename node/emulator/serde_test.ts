import assert from "node:assert/strict";
import { JsonError } from "./json.ts";
import * as schema from "./schema.ts";
import { deserializeJson, normalize } from "./serde.ts";

function fails(text: string, s: typeof schema.VmConfig, message: string) {
  assert.throws(
    () => deserializeJson(text, s),
    (e) => e instanceof JsonError && e.message === message,
    text,
  );
}

Deno.test("serde defaults are filled in and fields come out in struct order", () => {
  const cfg = deserializeJson(
    '{"disks":[{"id":"d","path":"/x"}],"payload":{"kernel":"/k"}}',
    schema.VmConfig,
  ) as Record<string, unknown>;
  assert.deepEqual(Object.keys(cfg).slice(0, 4), ["cpus", "memory", "payload", "disks"]);
  assert.deepEqual(cfg.cpus, {
    boot_vcpus: 1,
    max_vcpus: 1,
    kvm_hyperv: false,
    max_phys_bits: 46,
    features: { amx: false },
    nested: true,
    core_scheduling: "Vm",
  });
  const disk = (cfg.disks as Record<string, unknown>[])[0];
  assert.deepEqual(Object.keys(disk).slice(0, 3), ["path", "readonly", "direct"]);
  assert.equal(disk.num_queues, 1);
  assert.equal(disk.queue_size, 128);
  assert.equal(disk.image_type, undefined, "Option fields stay absent");
  assert.deepEqual(cfg.serial, { mode: "Null", iommu: false });
  assert.deepEqual(cfg.console, { mode: "Tty", iommu: false });
});

Deno.test("each NIC gets its own random locally administered MAC unless given one", () => {
  const cfg = deserializeJson('{"net":[{},{},{"mac":"12:34:56:78:9a:bc"}]}', schema.VmConfig) as {
    net: { mac: string }[];
  };
  assert.notEqual(cfg.net[0].mac, cfg.net[1].mac);
  for (const n of cfg.net.slice(0, 2)) assert.equal(parseInt(n.mac.slice(0, 2), 16) & 3, 2);
  assert.equal(cfg.net[2].mac, "12:34:56:78:9a:bc");
});

Deno.test("unknown fields are dropped; null means None for Option fields", () => {
  const cfg = deserializeJson(
    '{"bogus":1,"payload":null,"memory":{"size":1,"x":2}}',
    schema.VmConfig,
  ) as Record<string, unknown>;
  assert.equal("bogus" in cfg, false);
  assert.equal("payload" in cfg, false);
  assert.equal("x" in (cfg.memory as object), false);
});

Deno.test("type errors are worded and positioned like serde's", () => {
  fails(
    '{"memory":{"size":-1}}',
    schema.VmConfig,
    "invalid value: integer `-1`, expected u64 at line 1 column 20",
  );
  fails(
    '{"memory":{"size":1.5}}',
    schema.VmConfig,
    "invalid type: floating point `1.5`, expected u64 at line 1 column 21",
  );
  fails(
    '{"cpus":{"boot_vcpus":true,"max_vcpus":1}}',
    schema.VmConfig,
    "invalid type: boolean `true`, expected u32 at line 1 column 26",
  );
  fails(
    '{"cpus":{"boot_vcpus":1,"max_vcpus":1,"max_phys_bits":300}}',
    schema.VmConfig,
    "invalid value: integer `300`, expected u8 at line 1 column 57",
  );
  fails(
    '{"disks":{}}',
    schema.VmConfig,
    "invalid type: map, expected a sequence at line 1 column 11",
  );
  fails('{"rng":{}}', schema.VmConfig, "missing field `src` at line 1 column 9");
  fails(
    '{"payload":{"kernel":5}}',
    schema.VmConfig,
    "invalid type: integer `5`, expected path string at line 1 column 22",
  );
  fails(
    '{"memory":null}',
    schema.VmConfig,
    "invalid type: null, expected struct MemoryConfig at line 1 column 14",
  );
  fails(
    '{"memory":{"size":1,"size":2}}',
    schema.VmConfig,
    "duplicate field `size` at line 1 column 26",
  );
  fails(
    "[1]",
    schema.VmConfig,
    "invalid type: sequence, expected struct VmConfig at line 1 column 3",
  );
});

Deno.test("normalize applies the same rules to in-memory values", () => {
  const v = normalize({ id: "x", desired_size: 10, extra: true }, schema.VmResizeDisk);
  assert.deepEqual(v, { id: "x", desired_size: 10 });
  assert.throws(() => normalize({ id: "x" }, schema.VmResizeDisk), /missing field `desired_size`/);
});

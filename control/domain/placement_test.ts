import assert from "node:assert/strict";
import {
  formatBytes,
  type LocalObject,
  place,
  type PlacementHost,
  type PlacementPolicy,
  type PlacementVm,
  splitLocalObjects,
} from "./placement.ts";
import { normalizePlacement } from "./vm_fields.ts";

const GiB = 1024 ** 3;
const policy: PlacementPolicy = {
  cpu_overcommit_ratio: 1,
  memory_overcommit_ratio: 1,
  strategy: "spread",
};

function vm(over: Partial<PlacementVm> = {}): PlacementVm {
  return {
    id: "vm-1",
    name: "web-1",
    architecture: "x86_64",
    boot_vcpus: 2,
    memory_size: 2 * GiB,
    tags: [],
    placement: normalizePlacement({}),
    networks: [],
    pools: [],
    local_objects: [],
    ...over,
  };
}

function host(name: string, over: Partial<PlacementHost> = {}): PlacementHost {
  return {
    id: `id-${name}`,
    name,
    status: "up",
    architecture: "x86_64",
    labels: {},
    reservation_class: null,
    total_cpus: 8,
    total_memory_bytes: 16 * GiB,
    allocated_vcpus: 0,
    allocated_memory_bytes: 0,
    networks: [],
    pools: [],
    vm_tags: [],
    ...over,
  };
}

function local(name: string, hostName: string): LocalObject {
  return { id: `obj-${name}`, name, host_id: `id-${hostName}`, host_name: hostName };
}

function chosen(v: PlacementVm, hosts: PlacementHost[], p = policy): string {
  const r = place(v, hosts, p);
  if (!r.ok) throw new Error(r.message);
  return r.host.name;
}

function rejected(v: PlacementVm, hosts: PlacementHost[], p = policy) {
  const r = place(v, hosts, p);
  assert.equal(r.ok, false, "expected no host to fit");
  if (r.ok) throw new Error("unreachable");
  return r;
}

Deno.test("placement: each filter removes the hosts that fail it, and says why", () => {
  const cases: [PlacementVm, PlacementHost, string, RegExp][] = [
    [vm(), host("a", { status: "down" }), "status", /a is down/],
    [vm(), host("a", { status: "maintenance" }), "status", /a is in maintenance/],
    [vm(), host("a", { status: "unknown" }), "status", /a is not initialised/],
    [vm({ architecture: "aarch64" }), host("a"), "architecture", /is x86_64, the vm needs aarch64/],
    [
      vm(),
      host("a", { reservation_class: "gpu" }),
      "reservation_class",
      /a is reserved for class gpu/,
    ],
    [
      vm({ placement: normalizePlacement({ reservation_class: "gpu" }) }),
      host("a"),
      "reservation_class",
      /no reservation class \(the vm asks for gpu\)/,
    ],
    [
      vm({ placement: normalizePlacement({ required_host_labels: { zone: "b" } }) }),
      host("a", { labels: { zone: "a" } }),
      "labels",
      /a lacks label zone=b/,
    ],
    [vm({ networks: ["n1", "n2"] }), host("a", { networks: ["n1"] }), "networks", /network n2/],
    [vm({ pools: ["p1"] }), host("a"), "storage_pools", /storage pool p1 attached/],
    [
      vm({ local_objects: [local("root", "b")] }),
      host("a"),
      "local_objects",
      /a does not hold root \(on b\)/,
    ],
    [
      vm({ boot_vcpus: 4 }),
      host("a", { allocated_vcpus: 6 }),
      "vcpus",
      /a has 2 of 8 vCPUs free, the vm needs 4/,
    ],
    [
      vm(),
      host("a", { allocated_memory_bytes: 15 * GiB }),
      "memory",
      /a has 1 GiB of 16 GiB free, the vm needs 2 GiB/,
    ],
    [vm(), host("a", { total_cpus: null }), "vcpus", /unknown capacity/],
    [
      vm({ placement: normalizePlacement({ anti_affinity_tags: ["db"] }) }),
      host("a", { vm_tags: [["db", "x"], ["web"]] }),
      "anti_affinity",
      /a runs 1 vm\(s\) tagged db/,
    ],
  ];
  for (const [v, h, filter, why] of cases) {
    const r = rejected(v, [h]);
    assert.deepEqual(r.rejections.map((x) => x.filter), [filter], why.source);
    assert.match(r.message, new RegExp(`${filter}: .*${why.source}`));
    assert.match(r.message, /^no host can run vm web-1 \(\d+ vCPU, [\d.]+ GiB\): /);
  }
});

Deno.test("placement: the no-fit message lists every filter's hosts (five at most each)", () => {
  const hosts = [
    host("a", { status: "down" }),
    host("b", { allocated_memory_bytes: 15 * GiB }),
    ...Array.from({ length: 7 }, (_, i) => host(`m${i}`, { status: "maintenance" })),
  ];
  const r = rejected(vm(), hosts);
  assert.match(
    r.message,
    /status: a is down, m0 is in maintenance, .*m3 is in maintenance \(and 3 more\); memory: b has 1 GiB/,
  );
  assert.equal(
    rejected(vm(), []).message,
    "no host can run vm web-1 (2 vCPU, 2 GiB): there are no hosts",
  );
});

Deno.test("placement: overcommit ratios scale capacity; resource holders are what counts", () => {
  const busy = host("a", { total_cpus: 4, allocated_vcpus: 4 });
  rejected(vm(), [busy]);
  assert.equal(chosen(vm(), [busy], { ...policy, cpu_overcommit_ratio: 2 }), "a");
  const full = host("a", { allocated_memory_bytes: 15 * GiB });
  assert.equal(chosen(vm(), [full], { ...policy, memory_overcommit_ratio: 1.5 }), "a");
  // Exactly full is still a fit.
  assert.equal(chosen(vm({ memory_size: GiB }), [full]), "a");
});

Deno.test("placement: spread prefers the least loaded host, pack the most loaded", () => {
  const hosts = [host("a", { allocated_vcpus: 4 }), host("b", { allocated_vcpus: 1 }), host("c")];
  assert.equal(chosen(vm(), hosts), "c");
  assert.equal(chosen(vm(), hosts, { ...policy, strategy: "pack" }), "a");
  // Load is the larger of the CPU and memory fractions.
  const mem = [host("a", { allocated_memory_bytes: 12 * GiB }), host("b", { allocated_vcpus: 2 })];
  assert.equal(chosen(vm(), mem), "b");
});

Deno.test("placement: preferred labels, then affinity, then spread tags outrank load", () => {
  const p = (x: Parameters<typeof normalizePlacement>[0]) =>
    vm({ placement: normalizePlacement(x) });
  const hosts = [
    host("a", { labels: { ssd: "yes" }, allocated_vcpus: 6, vm_tags: [["web"]] }),
    host("b", { vm_tags: [["db"], ["db"]] }),
    host("c"),
  ];
  assert.equal(chosen(p({ preferred_host_labels: { ssd: "yes" } }), hosts), "a");
  assert.equal(chosen(p({ affinity_tags: ["db"] }), hosts), "b");
  assert.equal(chosen(p({ spread_tags: ["db"] }), hosts), "c");
  assert.equal(chosen(p({ spread_tags: ["web", "db"] }), hosts.slice(0, 2)), "a");
});

Deno.test("placement: ties are broken by name then id, whatever the input order", () => {
  const hosts = [host("b"), host("a", { id: "z" }), host("a", { id: "y" })];
  for (let i = 0; i < 6; i++) {
    const shuffled = [...hosts].sort(() => Math.random() - 0.5);
    const r = place(vm(), shuffled, policy);
    assert.ok(r.ok);
    assert.equal(r.host.id, "y");
    assert.deepEqual(r.ranked.map((c) => c.host.id), ["y", "z", "id-b"]);
  }
});

Deno.test("placement: spreading a series of VMs alternates between equal hosts", () => {
  const hosts = [host("a"), host("b")];
  const names: string[] = [];
  for (let i = 0; i < 4; i++) {
    const r = place(vm({ boot_vcpus: 1, memory_size: GiB }), hosts, policy);
    assert.ok(r.ok);
    names.push(r.host.name);
    r.host.allocated_vcpus += 1;
    r.host.allocated_memory_bytes += GiB;
  }
  assert.deepEqual(names, ["a", "b", "a", "b"]);
});

Deno.test("placement: a VM with local-pool files goes to their host, however loaded", () => {
  const hosts = [host("a"), host("b", { allocated_vcpus: 6 }), host("c")];
  const v = vm({ local_objects: [local("root", "b"), local("vmlinux", "b")] });
  const r = place(v, hosts, policy);
  assert.ok(r.ok);
  assert.equal(r.host.name, "b");
  assert.deepEqual(r.ranked.map((c) => c.host.name), ["b"]);
  assert.deepEqual(
    r.rejections.map((x) => [x.host, x.filter, x.reason]),
    [
      ["a", "local_objects", "does not hold root (on b), vmlinux (on b)"],
      ["c", "local_objects", "does not hold root (on b), vmlinux (on b)"],
    ],
  );
  // Its host must still fit it: the other filters keep applying.
  const full = [host("a"), host("b", { allocated_vcpus: 8 })];
  const no = rejected(v, full);
  assert.match(no.message, /local_objects: a does not hold root \(on b\).*; vcpus: b has 0 of 8/);
  // Its host down: the status filter names it, the others lack the files.
  const down = rejected(v, [host("a"), host("b", { status: "down" })]);
  assert.match(down.message, /status: b is down; local_objects: a does not hold root/);
});

Deno.test("placement: local-pool files on two hosts → no host, and the message says why", () => {
  const v = vm({ local_objects: [local("data", "b"), local("root", "a"), local("swap", "a")] });
  const r = rejected(v, [host("a"), host("b"), host("c")]);
  assert.deepEqual(r.rejections.map((x) => x.filter), Array(3).fill("local_objects"));
  assert.equal(r.rejections[0].reason, "does not hold data (on b)");
  assert.equal(
    r.message,
    "no host can run vm web-1 (2 vCPU, 2 GiB): local_objects: its files in local pools are on " +
      "different hosts (root, swap on a; data on b), so no single host can run it; move or " +
      "recreate them on one host",
  );
  assert.equal(splitLocalObjects(vm({ local_objects: [local("x", "a")] })), null);
});

Deno.test("formatBytes", () => {
  assert.equal(formatBytes(512 * 1024 ** 2), "512 MiB");
  assert.equal(formatBytes(1.5 * GiB), "1.5 GiB");
});

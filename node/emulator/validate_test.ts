import assert from "node:assert/strict";
import type { VmConfig } from "../vmm/types.ts";
import * as schema from "./schema.ts";
import { normalize } from "./serde.ts";
import { validateVmConfig } from "./validate.ts";

const base = (extra: Record<string, unknown> = {}): VmConfig =>
  normalize(
    { payload: { kernel: "/k" }, cpus: { boot_vcpus: 2, max_vcpus: 2 }, ...extra },
    schema.VmConfig,
  ) as VmConfig;

Deno.test("a minimal config with a kernel is valid", () => {
  assert.equal(validateVmConfig(base()), null);
  assert.equal(validateVmConfig(base({ payload: { firmware: "/fw" } })), null);
});

Deno.test("CH's validation messages and codes", () => {
  const cases: [Record<string, unknown>, 400 | 409, string][] = [
    [{ payload: {} }, 400, "No bootitem provided: neither firmware nor kernel"],
    [
      { payload: { firmware: "/f", kernel: "/k" } },
      400,
      "Specifying a kernel is not supported when a firmware is provided",
    ],
    [{ cpus: { boot_vcpus: 3, max_vcpus: 2 } }, 400, "Max CPUs lower than boot CPUs"],
    [{ serial: { mode: "File" } }, 400, "Path missing when using file console mode"],
    [{ serial: { mode: "Socket" } }, 400, "Path missing when using socket console mode"],
    [
      { disks: [{ path: "/a", vhost_socket: "/s" }] },
      400,
      "Disk path and vhost socket both provided",
    ],
    [
      { disks: [{ vhost_user: true, vhost_socket: "/s" }] },
      400,
      "Using vhost-user requires using shared memory or huge pages",
    ],
    [
      { disks: [{ path: "/a", num_queues: 4 }] },
      400,
      "Number of vCPUs is insufficient for number of queues",
    ],
    [{ net: [{ num_queues: 1 }] }, 400, "Number of queues to virtio_net less than 2"],
    [
      { net: [{ mtu: 1000 }] },
      400,
      "Provided MTU 1000 is lower than 1280 (expected by VIRTIO specification)",
    ],
    [
      { net: [{ ip: "10.0.0.1" }] },
      400,
      "Both an IP address and a netmask are needed to configure the tap",
    ],
    [
      { fs: [{ tag: "t", socket: "/s" }] },
      400,
      "Using vhost-user requires using shared memory or huge pages",
    ],
    [
      { balloon: { size: 1024 ** 4 } },
      400,
      `Ballon size (${1024 ** 4}) greater than RAM (536870912)`,
    ],
    [{ vsock: { cid: 2, socket: "/v" } }, 400, "2 is a special VSOCK CID"],
    [{ disks: [{ path: "/a", id: "__x" }] }, 400, "Identifier __x is not invalid"],
    [{ disks: [{ path: "/a", id: "x" }], net: [{ id: "x" }] }, 409, "Identifier x is not unique"],
    [{ disks: [{ path: "/a" }, { path: "/a" }] }, 409, "Duplicated device path: /a"],
  ];
  for (const [extra, status, message] of cases) {
    const problem = validateVmConfig(base(extra));
    assert.ok(problem, JSON.stringify(extra));
    assert.equal(problem.status, status, message);
    assert.equal(problem.causes.at(-1), message);
  }
});

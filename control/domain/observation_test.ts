import assert from "node:assert/strict";
import { node } from "../../shared/proto/mod.ts";
import { type KnownVm, observable, observedStatus, reconcile } from "./observation.ts";

const S = node.VmStatus;

Deno.test("observation: node statuses map to VM statuses; a crash keeps its reason", () => {
  assert.deepEqual(observedStatus(S.VM_STATUS_RUNNING, ""), { status: "running", reason: null });
  assert.deepEqual(observedStatus(S.VM_STATUS_PAUSED, ""), { status: "paused", reason: null });
  assert.deepEqual(observedStatus(S.VM_STATUS_SHUTDOWN, "guest powered off"), {
    status: "shutdown",
    reason: "guest powered off",
  });
  assert.deepEqual(observedStatus(S.VM_STATUS_CREATED, ""), { status: "shutdown", reason: null });
  assert.deepEqual(observedStatus(S.VM_STATUS_CRASHED, "killed by signal 9"), {
    status: "unknown",
    reason: "VMM crashed: killed by signal 9",
  });
  assert.equal(observedStatus(S.VM_STATUS_UNKNOWN, "").status, "unknown");
});

Deno.test("observation: created, pending and migrating VMs are not changed by observations", () => {
  assert.deepEqual(
    (["created", "pending", "migrating", "running", "paused", "shutdown", "unknown"] as const)
      .filter(observable),
    ["running", "paused", "shutdown", "unknown"],
  );
});

Deno.test("reconcile: changes only what differs, skips busy VMs, flags missing and strays", () => {
  const vm = (id: string, status: KnownVm["status"], over: Partial<KnownVm> = {}): KnownVm => ({
    id,
    status,
    status_reason: null,
    version: 7,
    busy: false,
    ...over,
  });
  const { changes, unknownToDb } = reconcile(
    [
      vm("a", "running"),
      vm("b", "running"),
      vm("c", "unknown", { status_reason: "host h1 is down" }),
      vm("d", "running"),
      vm("e", "running", { busy: true }),
      vm("f", "pending"),
      vm("g", "unknown", { status_reason: "its node h1 does not know it" }),
    ],
    [
      { id: "a", status: S.VM_STATUS_RUNNING, reason: "" },
      { id: "b", status: S.VM_STATUS_SHUTDOWN, reason: "" },
      { id: "c", status: S.VM_STATUS_RUNNING, reason: "" },
      { id: "e", status: S.VM_STATUS_SHUTDOWN, reason: "" },
      { id: "f", status: S.VM_STATUS_CREATED, reason: "" },
      { id: "zz", status: S.VM_STATUS_RUNNING, reason: "" },
    ],
    "h1",
  );
  assert.deepEqual(changes, [
    { vm_id: "b", version: 7, status: "shutdown", reason: null },
    { vm_id: "c", version: 7, status: "running", reason: null },
    { vm_id: "d", version: 7, status: "unknown", reason: "its node h1 does not know it" },
  ]);
  assert.deepEqual(unknownToDb, ["zz"]);
});

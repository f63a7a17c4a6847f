/** The pure parts of the snapshot steps: where a restore runs. */
import assert from "node:assert/strict";
import { FailedPreconditionError } from "../../shared/errors/errors.ts";
import { PLANS } from "./plans.ts";
import { restoreHost } from "./snapshot_steps.ts";

const A = "00000000-0000-4000-8000-00000000000a";
const B = "00000000-0000-4000-8000-00000000000b";

Deno.test("restoreHost: the snapshot's host, which must be the VM's when it has one", () => {
  assert.equal(restoreHost({ name: "v", host_id: null }, { name: "s", host_id: A }), A);
  assert.equal(restoreHost({ name: "v", host_id: A }, { name: "s", host_id: A }), A);
  assert.equal(restoreHost({ name: "v", host_id: A }, { name: "s", host_id: null }), A);
  assert.throws(
    () => restoreHost({ name: "v", host_id: B }, { name: "s", host_id: A }),
    (e) =>
      e instanceof FailedPreconditionError && /snapshot s is on host .*a but vm v/.test(e.message),
  );
  assert.throws(
    () => restoreHost({ name: "v", host_id: null }, { name: "s", host_id: null }),
    /on no known host/,
  );
});

Deno.test("snapshot, restore and snapshot delete plans: step order, undo and release", () => {
  assert.deepEqual(PLANS.vm_snapshot.steps.map((s) => s.name), [
    "check",
    "pause",
    "snapshot_on_node",
    "resume",
    "mark_ready",
  ]);
  assert.ok(PLANS.vm_snapshot.onFailure && PLANS.vm_snapshot.release);
  assert.deepEqual(PLANS.vm_restore.steps.map((s) => s.name), [
    "check",
    "ensure_networks",
    "ensure_pools",
    "create_on_node",
    "restore_on_node",
    "confirm_running",
  ]);
  assert.ok(PLANS.vm_restore.onFailure);
  assert.deepEqual(PLANS.vm_snapshot_delete.steps.map((s) => s.name), [
    "check",
    "delete_files",
    "remove_record",
  ]);
  // A VM's snapshots go (files, then objects) before its record takes only their rows.
  const vmDelete = PLANS.vm_delete.steps.map((s) => s.name);
  assert.ok(vmDelete.indexOf("delete_snapshots") < vmDelete.indexOf("remove_record"));
});

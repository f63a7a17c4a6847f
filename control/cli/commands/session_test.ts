import assert from "node:assert/strict";
import { eventLine, eventSummary } from "./session.ts";

Deno.test("event lines: time, type, resource and data; anything else as sent", () => {
  const data = {
    id: 42,
    time: "2026-01-01T00:00:00.000Z",
    type: "vm.status_changed",
    resource_type: "vm",
    resource_id: "11111111-1111-4111-8111-111111111111",
    data: { name: "web-1", status: "running", previous_status: "pending", reason: null },
  };
  assert.equal(
    eventLine({ id: "42", event: "vm.status_changed", data: JSON.stringify(data) }),
    "2026-01-01T00:00:00.000Z  vm.status_changed  vm/11111111-1111-4111-8111-111111111111  pending → running\n",
  );
  const job = {
    ...data,
    type: "job.progress",
    resource_type: "job",
    resource_id: "22222222-2222-4222-8222-222222222222",
    data: {
      job_type: "vm_start",
      status: "running",
      progress: 29,
      progress_message: "place done",
      resource_type: "vm",
      resource_id: data.resource_id,
    },
  };
  // A job event names the job's resource.
  assert.equal(
    eventLine({ id: "43", event: "job.progress", data: JSON.stringify(job) }),
    "2026-01-01T00:00:00.000Z  job.progress  vm/11111111-1111-4111-8111-111111111111  vm_start running 29% place done\n",
  );
  assert.equal(eventSummary({ other: 1 }), '{"other":1}');
  assert.equal(eventLine({ id: "7", event: "ping", data: "hello" }), "7  ping  hello\n");
  assert.equal(eventLine({ event: "message", data: "[1,2]" }), "-  message  [1,2]\n");
});

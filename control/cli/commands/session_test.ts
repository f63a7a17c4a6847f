import assert from "node:assert/strict";
import { eventLine } from "./session.ts";

Deno.test("event lines: time, type, resource and data; anything else as sent", () => {
  const data = {
    id: 42,
    time: "2026-01-01T00:00:00.000Z",
    type: "vm.status_changed",
    resource_type: "vm",
    resource_id: "11111111-1111-4111-8111-111111111111",
    data: { from: "pending", to: "running" },
  };
  assert.equal(
    eventLine({ id: "42", event: "vm.status_changed", data: JSON.stringify(data) }),
    '2026-01-01T00:00:00.000Z  vm.status_changed  vm/11111111-1111-4111-8111-111111111111  {"from":"pending","to":"running"}\n',
  );
  assert.equal(eventLine({ id: "7", event: "ping", data: "hello" }), "7  ping  hello\n");
  assert.equal(eventLine({ event: "message", data: "[1,2]" }), "-  message  [1,2]\n");
});

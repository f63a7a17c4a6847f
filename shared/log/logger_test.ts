import assert from "node:assert/strict";
import { Logger } from "./logger.ts";

function capture(options: ConstructorParameters<typeof Logger>[0] = {}) {
  const lines: string[] = [];
  const log = new Logger({ format: "json", ...options, sink: (l) => lines.push(l) });
  return { log, lines };
}

Deno.test("JSON lines carry time, level, message and fields, including child fields", () => {
  const { log, lines } = capture();
  log.child({ request_id: "r1" }).child({ vm_id: "v1" }).info("started", { host_id: "h1" });
  const rec = JSON.parse(lines[0]);
  assert.equal(rec.level, "info");
  assert.equal(rec.msg, "started");
  assert.equal(rec.request_id, "r1");
  assert.equal(rec.vm_id, "v1");
  assert.equal(rec.host_id, "h1");
  assert.ok(!Number.isNaN(Date.parse(rec.time)));
});

Deno.test("lines below the configured level are dropped", () => {
  const { log, lines } = capture({ level: "warn" });
  log.info("no");
  log.debug("no");
  log.warn("yes");
  log.error("yes");
  assert.deepEqual(lines.map((l) => JSON.parse(l).level), ["warn", "error"]);
});

Deno.test("secret fields and URL passwords never reach the output", () => {
  const { log, lines } = capture();
  log.info("connect", {
    password: "hunter2",
    auth_token: "tok",
    url: "postgres://u:hunter2@db/x",
    nested: { api_key: "k" },
  });
  assert.ok(!lines[0].includes("hunter2"));
  assert.ok(!lines[0].includes('"tok"'));
  assert.ok(!lines[0].includes('"k"'));
  assert.ok(lines[0].includes("postgres://u:[redacted]@db/x"));
});

Deno.test("errors are logged with name, message and cause", () => {
  const { log, lines } = capture();
  log.error("failed", { err: new Error("outer", { cause: new Error("inner") }) });
  const rec = JSON.parse(lines[0]);
  assert.equal(rec.err.message, "outer");
  assert.equal(rec.err.cause.message, "inner");
});

Deno.test("text format is one readable line", () => {
  const { log, lines } = capture({ format: "text" });
  log.warn("disk low", { vm_id: "v1", free: 10 });
  assert.match(lines[0], /^\d\d:\d\d:\d\d\.\d{3} WARN {2}disk low {2}vm_id=v1 free=10$/);
});

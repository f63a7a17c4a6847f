import assert from "node:assert/strict";
import { ServerError, Status } from "nice-grpc-common";
import { parseSamples, valueOf } from "../../tests/support/metrics.ts";
import { UnavailableError } from "../../shared/errors/errors.ts";
import type { VmState } from "../vms/manager.ts";
import type { VmStatusName } from "../vms/status.ts";
import { callCode } from "../rpc/middleware.ts";
import { NodeMetrics, type VmSource } from "./metrics.ts";
import { handleScrape, startMetricsServer } from "./server.ts";

function vm(id: string, status: VmStatusName): VmState {
  return { config: { vmId: id }, status, reason: "", vmmPid: status === "created" ? 0 : 1 };
}

const A = "00000000-0000-4000-8000-00000000000a";
const B = "00000000-0000-4000-8000-00000000000b";
const C = "00000000-0000-4000-8000-00000000000c";

function source(): VmSource {
  return {
    list: () => [vm(A, "running"), vm(B, "paused"), vm(C, "created")],
    counters: (id) => {
      // B's VMM does not answer: only B's counters are missing.
      if (id === B) return Promise.reject(new UnavailableError("no answer"));
      if (id === C) throw new Error("never asked: not booted");
      return Promise.resolve({
        _disk0: { read_bytes: 4096, write_ops: 3 },
        _net1: { rx_bytes: 7 },
      });
    },
  };
}

Deno.test("VMs by status and the CH counters of booted VMs", async () => {
  const m = new NodeMetrics(source());
  const s = parseSamples(await m.render());
  assert.equal(valueOf(s, "qarax_node_vms", { status: "running" }), 1);
  assert.equal(valueOf(s, "qarax_node_vms", { status: "paused" }), 1);
  assert.equal(valueOf(s, "qarax_node_vms", { status: "created" }), 1);
  assert.ok(s.has('qarax_node_vms{status="crashed"}'), "every status has a series");
  const c = "qarax_node_vm_device_counter_total";
  assert.equal(valueOf(s, c, { vm_id: A, device: "_disk0", counter: "read_bytes" }), 4096);
  assert.equal(valueOf(s, c, { vm_id: A, device: "_disk0", counter: "write_ops" }), 3);
  assert.equal(valueOf(s, c, { vm_id: A, device: "_net1", counter: "rx_bytes" }), 7);
  assert.ok(![...s.keys()].some((k) => k.includes(B) || k.includes(C)));
});

Deno.test("gRPC calls are counted by method and code, with their latency", async () => {
  const m = new NodeMetrics();
  m.observeCall("/qarax.node.v1.VmService/CreateVM", "OK", 0.02);
  m.observeCall("/qarax.node.v1.VmService/CreateVM", "OK", 0.2);
  m.observeCall("/qarax.node.v1.VmService/CreateVM", "ALREADY_EXISTS", 0.001);
  const s = parseSamples(await m.render());
  const method = "/qarax.node.v1.VmService/CreateVM";
  assert.equal(valueOf(s, "qarax_node_grpc_requests_total", { method, code: "OK" }), 2);
  assert.equal(
    valueOf(s, "qarax_node_grpc_requests_total", { method, code: "ALREADY_EXISTS" }),
    1,
  );
  const h = "qarax_node_grpc_request_duration_seconds";
  assert.equal(valueOf(s, `${h}_count`, { method }), 3);
  assert.equal(valueOf(s, `${h}_bucket`, { method, le: "0.025" }), 2);
});

Deno.test("call codes: errors, cancellations, success", () => {
  assert.equal(callCode(undefined, false), Status.OK);
  assert.equal(callCode(undefined, true), Status.CANCELLED);
  assert.equal(callCode(new ServerError(Status.NOT_FOUND, "x"), false), Status.NOT_FOUND);
  assert.equal(callCode(new DOMException("aborted", "AbortError"), false), Status.CANCELLED);
  assert.equal(callCode(new Error("boom"), false), Status.UNKNOWN);
});

Deno.test("the scrape handler: path, method and its own bearer token", async () => {
  const metrics = new NodeMetrics();
  const req = (path: string, init: RequestInit = {}) =>
    handleScrape(new Request(`http://node${path}`, init), { token: "scrape", metrics });
  assert.equal((await req("/other")).status, 404);
  assert.equal((await req("/metrics", { method: "POST" })).status, 405);
  const anonymous = await req("/metrics");
  assert.equal(anonymous.status, 401);
  assert.match(anonymous.headers.get("www-authenticate")!, /Bearer/);
  assert.equal((await req("/metrics", { headers: { authorization: "Bearer nope" } })).status, 401);
  const ok = await req("/metrics", { headers: { authorization: "Bearer scrape" } });
  assert.equal(ok.status, 200);
  assert.equal(ok.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  assert.match(await ok.text(), /^# TYPE qarax_node_vms gauge$/m);
});

Deno.test("the listener serves on TCP (port 0: any free one) and on a unix socket", async () => {
  const metrics = new NodeMetrics(source());
  const tcp = await startMetricsServer({
    listen: { transport: "tcp", hostname: "127.0.0.1", port: 0 },
    token: "",
    metrics,
  });
  const dir = await Deno.makeTempDir();
  const unix = await startMetricsServer({
    listen: { transport: "unix", path: `${dir}/m.sock` },
    token: "",
    metrics,
  });
  const client = Deno.createHttpClient({ proxy: { transport: "unix", path: `${dir}/m.sock` } });
  try {
    assert.match(tcp.address, /^127\.0\.0\.1:\d+$/);
    assert.equal(unix.address, `unix:${dir}/m.sock`);
    const a = await fetch(`http://${tcp.address}/metrics`);
    assert.match(await a.text(), /^qarax_node_vms\{status="running"\} 1$/m);
    const b = await fetch("http://localhost/metrics", { client });
    assert.match(await b.text(), /^qarax_node_vms\{status="running"\} 1$/m);
  } finally {
    client.close();
    await tcp.shutdown();
    await unix.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});

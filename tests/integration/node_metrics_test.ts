/**
 * The node agent's `/metrics` as a real process driving emulator VMMs: VM counts by status,
 * the Cloud Hypervisor counters of a booted VM, gRPC calls by method and code, and the
 * listener's own bearer token.
 */
import assert from "node:assert/strict";
import { ClientError, Status } from "nice-grpc";
import { waitFor } from "../support/process.ts";
import { TestAgent } from "../support/node_agent.ts";
import { parseSamples, valueOf } from "../support/metrics.ts";

const A = "3e7a0000-0000-4000-8000-00000000000a";
const B = "3e7a0000-0000-4000-8000-00000000000b";
const TOKEN = "scrape-secret";
const VM_SERVICE = "/node.VmService";

Deno.test("node /metrics: VMs by status, CH counters of a booted VM, gRPC calls", async () => {
  await using agent = await TestAgent.start({ env: { QARAX_NODE__METRICS_TOKEN: TOKEN } });
  const scrape = async () => {
    const res = await agent.scrape({ authorization: `Bearer ${TOKEN}` });
    assert.equal(res.status, 200, res.text);
    return parseSamples(res.text);
  };
  assert.equal((await agent.scrape()).status, 401, "the metrics token is required");
  assert.equal((await agent.scrape({ authorization: "Bearer wrong" })).status, 401);

  const empty = await scrape();
  assert.equal(valueOf(empty, "qarax_node_vms", { status: "running" }), 0);
  assert.equal(valueOf(empty, "qarax_node_vms", { status: "created" }), 0);

  await agent.attachPool();
  const kernel = await agent.kernel();
  const disk = `${agent.poolDir}/root.raw`;
  await Deno.writeFile(disk, new Uint8Array(1024 * 1024));
  await agent.vms.createVM({
    vmId: A,
    name: "metrics-a",
    payload: { kernel },
    disks: [{ id: "root", path: disk }],
  });
  await agent.vms.createVM({ vmId: B, name: "metrics-b", payload: { kernel } });
  await agent.vms.startVM({ id: A });
  // Pausing a VM that never ran is refused: a call that ends with a non-OK code.
  await assert.rejects(agent.vms.pauseVM({ id: B }), (err) => {
    assert.ok(err instanceof ClientError);
    assert.equal(err.code, Status.FAILED_PRECONDITION);
    return true;
  });

  const s = await scrape();
  assert.equal(valueOf(s, "qarax_node_vms", { status: "running" }), 1);
  assert.equal(valueOf(s, "qarax_node_vms", { status: "created" }), 1);
  assert.equal(valueOf(s, "qarax_node_vms", { status: "paused" }), 0);

  const c = "qarax_node_vm_device_counter_total";
  const ofA = [...s.keys()].filter((k) => k.startsWith(`${c}{vm_id="${A}",device="root",`));
  assert.ok(ofA.length > 0, `CH counters of VM A's disk: ${[...s.keys()].join("\n")}`);
  assert.ok(s.has(`${c}{vm_id="${A}",device="root",counter="read_bytes"}`));
  assert.ok(![...s.keys()].some((k) => k.includes(B)), "VM B never booted: no counters");

  const calls = (method: string, code: string) =>
    valueOf(s, "qarax_node_grpc_requests_total", { method: `${VM_SERVICE}/${method}`, code });
  assert.equal(calls("CreateVM", "OK"), 2);
  assert.equal(calls("StartVM", "OK"), 1);
  assert.equal(calls("PauseVM", "FAILED_PRECONDITION"), 1);
  assert.ok(calls("GetNodeInfo", "OK") >= 1, "the test agent's readiness call");
  const h = "qarax_node_grpc_request_duration_seconds";
  const start = { method: `${VM_SERVICE}/StartVM` };
  assert.equal(valueOf(s, `${h}_count`, start), 1);
  assert.equal(valueOf(s, `${h}_bucket`, { ...start, le: "+Inf" }), 1);
  assert.ok(valueOf(s, `${h}_sum`, start) > 0);

  // Counters follow the VM: gone once it is deleted.
  await agent.vms.deleteVM({ id: A });
  const after = await scrape();
  assert.equal(valueOf(after, "qarax_node_vms", { status: "running" }), 0);
  assert.ok(![...after.keys()].some((k) => k.includes(A)));
});

Deno.test("node /metrics: a metrics port already in use is logged; the agent still serves", async () => {
  using taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (taken.addr as Deno.NetAddr).port;
  await using agent = await TestAgent.start({
    env: { QARAX_NODE__METRICS_LISTEN: `127.0.0.1:${port}` },
  });
  await waitFor(() => /metrics listener failed/.test(agent.output()), 10_000, "the error line");
  assert.ok((await agent.vms.getNodeInfo({})).hostname, "gRPC works without metrics");
});

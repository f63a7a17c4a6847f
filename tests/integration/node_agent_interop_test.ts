/**
 * Interop: an independent gRPC peer (Debian's python3-grpcio, C core, with messages generated
 * by Debian's protoc) drives the agent: GetNodeInfo, CreateVM, StartVM, GetVmInfo, plus an
 * error status, over the agent's unix socket.
 */
import assert from "node:assert/strict";
import { run } from "../../shared/cmd/run.ts";
import { TestAgent } from "../support/node_agent.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
// The system interpreter: the pyenv python3 first in PATH cannot see Debian's grpcio.
const PYTHON = "/usr/bin/python3";

const CLIENT = `
import json, sys
import grpc
from google.protobuf import empty_pb2
import node_pb2

target, vm_id, kernel = sys.argv[1:4]
channel = grpc.insecure_channel(target)

def call(method, request, response):
    fn = channel.unary_unary("/node.VmService/" + method,
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=response.FromString)
    return fn(request, timeout=20)

out = {}
info = call("GetNodeInfo", empty_pb2.Empty(), node_pb2.NodeInfo)
out["node"] = {"hostname": info.hostname, "cpus": info.total_cpus,
               "emulated": info.cloud_hypervisor_emulated, "version": info.node_version}
cfg = node_pb2.VmConfig(vm_id=vm_id, name="py-vm",
    cpus=node_pb2.CpusConfig(boot_vcpus=2, max_vcpus=2),
    memory=node_pb2.MemoryConfig(size=256 * 1024 * 1024),
    payload=node_pb2.PayloadConfig(kernel=kernel, cmdline="console=ttyS0"))
state = call("CreateVM", cfg, node_pb2.VmState)
out["created"] = {"status": node_pb2.VmStatus.Name(state.status), "pid": state.vmm_pid}
call("StartVM", node_pb2.VmID(id=vm_id), empty_pb2.Empty)
state = call("GetVmInfo", node_pb2.VmID(id=vm_id), node_pb2.VmState)
out["info"] = {"status": node_pb2.VmStatus.Name(state.status), "vcpus": state.config.cpus.boot_vcpus,
               "memory": state.memory_actual_size, "name": state.config.name}
try:
    call("GetVmInfo", node_pb2.VmID(id="no-such-vm"), node_pb2.VmState)
except grpc.RpcError as e:
    out["missing"] = e.code().name
print(json.dumps(out))
`;

Deno.test("a python3-grpcio client drives the agent", async () => {
  await using agent = await TestAgent.start();
  await agent.attachPool();
  const kernel = await agent.kernel();
  const gen = `${agent.dir}/py`;
  await Deno.mkdir(gen);
  await run([
    "protoc",
    `--python_out=${gen}`,
    `-I${ROOT}proto`,
    "-I/usr/include",
    `${ROOT}proto/node.proto`,
  ]);
  await Deno.writeTextFile(`${gen}/client.py`, CLIENT);
  const id = "1f2e3d4c-5b6a-4789-8abc-def012345678";
  const r = await run([PYTHON, `${gen}/client.py`, `unix:${agent.socket}`, id, kernel], {
    cwd: gen,
    env: { PYTHONPATH: gen },
    timeoutMs: 60_000,
  });
  const out = JSON.parse(r.stdout);
  assert.equal(out.node.hostname, Deno.hostname());
  assert.ok(out.node.cpus >= 1);
  assert.equal(out.node.emulated, true);
  assert.equal(out.created.status, "VM_STATUS_CREATED");
  assert.ok(out.created.pid > 0);
  assert.deepEqual(out.info, {
    status: "VM_STATUS_RUNNING",
    vcpus: 2,
    memory: 256 * 1024 * 1024,
    name: "py-vm",
  });
  assert.equal(out.missing, "NOT_FOUND");
  await agent.vms.deleteVM({ id });
});

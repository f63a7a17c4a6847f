/**
 * A transcript (for humans, not a test): starts the node agent with the CH emulator as its VMM
 * binary, drives one VM through its lifecycle over gRPC and prints each call with its answer,
 * then the VM's events as WatchEvents delivered them.
 *
 * Run: `deno run -A bench/node_transcript.ts`
 */
import { node } from "../shared/proto/mod.ts";
import { eventLabel, EventLog, TestAgent } from "../tests/support/node_agent.ts";

const STATUS = (s: node.VmStatus) => node.VmStatus[s].replace("VM_STATUS_", "");

function show(call: string, answer: unknown): void {
  console.log(`> ${call}`);
  console.log(`< ${typeof answer === "string" ? answer : JSON.stringify(answer)}`);
}

async function main() {
  await using agent = await TestAgent.start({ env: { QARAX_LOG__LEVEL: "warn" } });
  console.log(
    `# qarax-node --listen unix:${agent.socket} --runtime-dir ${agent.runtimeDir} ` +
      `--cloud-hypervisor-binary node/emulator/cloud-hypervisor\n`,
  );
  const info = await agent.vms.getNodeInfo({});
  show("GetNodeInfo {}", {
    hostname: info.hostname,
    cloud_hypervisor_version: info.cloudHypervisorVersion,
    emulated: info.cloudHypervisorEmulated,
    total_cpus: info.totalCpus,
    vm_count: info.vmCount,
  });
  const pool = await agent.vms.attachStoragePool({
    poolId: "7e0f6c1a-0d4b-4b8e-9a55-3c2f1e0d9b01",
    poolKind: node.StoragePoolKind.STORAGE_POOL_KIND_LOCAL,
    configJson: JSON.stringify({ path: agent.poolDir }),
  });
  show(`AttachStoragePool {LOCAL, path: ${agent.poolDir}}`, pool);
  const kernel = await agent.kernel();
  let last: node.TransferResponse | undefined;
  for await (
    const r of agent.files.createDisk({
      path: `${agent.poolDir}/root.qcow2`,
      sizeBytes: 1 << 30,
      qcow2: {},
    })
  ) last = r;
  show("CreateDisk {root.qcow2, 1 GiB, qcow2}", { success: last?.success, final: last?.isFinal });

  const id = "d3m0d3m0-0000-4000-8000-000000000001".replace(/m/g, "e");
  const events = new EventLog(agent.vms, { vmId: id });
  const created = await agent.vms.createVM({
    vmId: id,
    name: "demo",
    cpus: { bootVcpus: 2, maxVcpus: 4 },
    memory: { size: 1 << 30 },
    payload: { kernel, cmdline: "console=ttyS0 root=/dev/vda" },
    disks: [{ id: "root", path: `${agent.poolDir}/root.qcow2` }],
    cloudInit: { userData: "#cloud-config\nhostname: demo\n" },
  });
  show(`CreateVM {vm_id: ${id}, 2/4 vCPUs, 1 GiB, root.qcow2, cloud-init}`, {
    status: STATUS(created.status),
    vmm_pid: created.vmmPid,
  });
  const step = async (call: string, fn: () => Promise<unknown>) => {
    const t = performance.now();
    await fn();
    const s = await agent.vms.getVmInfo({ id });
    show(`${call}   (${(performance.now() - t).toFixed(0)} ms)`, {
      status: STATUS(s.status),
      vmm_pid: s.vmmPid,
      ...(s.reason ? { reason: s.reason } : {}),
    });
    return s;
  };
  await step("StartVM", () => agent.vms.startVM({ id }));
  await step("PauseVM", () => agent.vms.pauseVM({ id }));
  await step("ResumeVM", () => agent.vms.resumeVM({ id }));
  await step(
    "ResizeVm {desired_vcpus: 4}",
    () => agent.vms.resizeVm({ vmId: id, desiredVcpus: 4 }),
  );
  await step("RebootVM", () => agent.vms.rebootVM({ id }));
  await step("StopVM {timeout_ms: 5000}", () => agent.vms.stopVM({ id, timeoutMs: 5000 }));
  const running = await step("StartVM", () => agent.vms.startVM({ id }));
  await step(`(kill -9 ${running.vmmPid}: the VMM dies)`, async () => {
    Deno.kill(running.vmmPid, "SIGKILL");
    await events.waitFor((e) => e.event === "crashed", "crash");
  });
  await step("StartVM", () => agent.vms.startVM({ id }));
  await step("ForceStopVM", () => agent.vms.forceStopVM({ id }));
  const list = await agent.vms.listVms({});
  show("ListVms {}", list.vms.map((v) => ({ vm_id: v.config.vmId, status: STATUS(v.status) })));
  await agent.vms.deleteVM({ id });
  show("DeleteVM", "{}");
  try {
    await agent.vms.getVmInfo({ id });
  } catch (err) {
    show("GetVmInfo", (err as Error).message);
  }
  await events.waitFor((e) => e.event === "deleted", "deleted");
  await events.close();
  console.log("\n# WatchEvents {vm_id} (sequence kind status message)");
  for (const e of events.events) {
    console.log(
      `${String(e.sequence).padStart(3)} ${eventLabel(e).padEnd(24)} ${
        STATUS(e.status).padEnd(9)
      } ${e.message.slice(0, 70)}`,
    );
  }
}

if (import.meta.main) await main();

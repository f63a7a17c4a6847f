/**
 * Node agent benchmark (not a test): in one run,
 *  1. create+start+delete latency of a VM through the agent (gRPC → agent → emulator VMM)
 *     against the same CH calls made directly on a freshly spawned emulator (spawn, vm.create,
 *     vm.boot, vmm.shutdown), as a ratio;
 *  2. ListVms latency and the agent's RSS with N running VMs (each a real emulator process;
 *     N defaults to 200 and is capped by the memory available).
 *
 * Run: `deno task bench node_agent` (or `deno run -A bench/node_agent_bench.ts [--vms N]
 * [--rounds R]`). Prints a table and a JSON line with the figures.
 */
import { parseArgs } from "node:util";
import { VmmClient, waitForVmm } from "../node/vmm/client.ts";
import { VmmProcess } from "../node/vmm/process.ts";
import { createVmDir, vmPaths } from "../node/vmm/runtime_dir.ts";
import { Logger, setLogger } from "../shared/log/logger.ts";
import { EMULATOR_BINARY, emulatorEnv, TestAgent } from "../tests/support/node_agent.ts";

const { values } = parseArgs({
  options: { vms: { type: "string", default: "200" }, rounds: { type: "string", default: "30" } },
});
const WANTED_VMS = Number(values.vms);
const ROUNDS = Number(values.rounds);

setLogger(new Logger({ level: "error", format: "json" }));

function stats(ms: number[]) {
  const s = ms.toSorted((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  return { median: q(0.5), p90: q(0.9), min: s[0], max: s.at(-1)! };
}

function fmt(n: number): string {
  return n.toFixed(1).padStart(8);
}

function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(Deno.readTextFileSync(`/proc/${pid}/status`));
  return Number(m?.[1] ?? 0);
}

function memAvailableKiB(): number {
  const m = /MemAvailable:\s+(\d+) kB/.exec(Deno.readTextFileSync("/proc/meminfo"));
  return Number(m?.[1] ?? 0);
}

function vmId(n: number): string {
  return `be0c0000-0000-4000-8000-${String(n).padStart(12, "0")}`;
}

/** The same CH calls without the agent: spawn the emulator, create, boot, shut it down. */
async function directRound(root: string, kernel: string, n: number): Promise<number> {
  const paths = vmPaths(root, `direct-${n}`);
  const t0 = performance.now();
  await createVmDir(paths);
  const vmm = VmmProcess.spawn({ binary: EMULATOR_BINARY, paths, env: emulatorEnv() });
  await waitForVmm(paths.apiSocket, { timeoutMs: 15_000 });
  const client = new VmmClient({ socketPath: paths.apiSocket });
  try {
    await client.create({
      cpus: { boot_vcpus: 1, max_vcpus: 1 },
      memory: { size: 512 * 1024 * 1024 },
      payload: { kernel },
      serial: { mode: "File", file: paths.serialLog },
      console: { mode: "Off" },
    });
    await client.boot();
    await client.shutdownVmm();
  } finally {
    client.close();
  }
  await vmm.exited;
  await Deno.remove(paths.dir, { recursive: true });
  return performance.now() - t0;
}

async function agentRound(agent: TestAgent, kernel: string, n: number): Promise<number> {
  const id = vmId(n);
  const t0 = performance.now();
  await agent.vms.createVM({ vmId: id, payload: { kernel } });
  await agent.vms.startVM({ id });
  await agent.vms.deleteVM({ id });
  return performance.now() - t0;
}

async function main() {
  await using agent = await TestAgent.start({ env: { QARAX_LOG__LEVEL: "warn" } });
  await agent.attachPool();
  const kernel = await agent.kernel();
  const directRoot = `${agent.dir}/direct`;
  await Deno.mkdir(directRoot);

  // Warm-up (module caches), then interleaved rounds so both see the same machine load.
  await directRound(directRoot, kernel, -1);
  await agentRound(agent, kernel, 999_999);
  const direct: number[] = [];
  const viaAgent: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    direct.push(await directRound(directRoot, kernel, i));
    viaAgent.push(await agentRound(agent, kernel, i));
  }
  const d = stats(direct);
  const a = stats(viaAgent);
  console.log(`create+start+delete, ${ROUNDS} rounds (ms)      median      p90      min      max`);
  console.log(
    `  direct on the emulator             ${fmt(d.median)} ${fmt(d.p90)} ${fmt(d.min)} ${
      fmt(d.max)
    }`,
  );
  console.log(
    `  through the agent (gRPC)           ${fmt(a.median)} ${fmt(a.p90)} ${fmt(a.min)} ${
      fmt(a.max)
    }`,
  );
  console.log(`  ratio agent/direct (median)        ${fmt(a.median / d.median)}`);

  // Many VMs: how many fit comfortably in memory (each emulator is ~40 MB RSS, mostly shared).
  const agentPid = agent.proc!.child.pid;
  const rssIdle = rssKiB(agentPid);
  const budget = memAvailableKiB() * 0.5;
  const perVm = 45 * 1024;
  const count = Math.max(1, Math.min(WANTED_VMS, Math.floor(budget / perVm)));
  if (count < WANTED_VMS) console.log(`  (memory allows ${count} of ${WANTED_VMS} VMs)`);
  const t0 = performance.now();
  const ids = Array.from({ length: count }, (_, i) => vmId(100_000 + i));
  // A few at a time: the machine has few cores and each VMM is a Deno process starting up.
  for (let i = 0; i < ids.length; i += 4) {
    await Promise.all(
      ids.slice(i, i + 4).map(async (id) => {
        await agent.vms.createVM({ vmId: id, payload: { kernel } });
        await agent.vms.startVM({ id });
      }),
    );
  }
  const bootAll = performance.now() - t0;
  await new Promise((r) => setTimeout(r, 2_000)); // let the VMMs settle
  const list: number[] = [];
  for (let i = 0; i < 50; i++) {
    const t = performance.now();
    const r = await agent.vms.listVms({});
    list.push(performance.now() - t);
    if (r.vms.length !== count) throw new Error(`ListVms returned ${r.vms.length} VMs`);
  }
  const info: number[] = [];
  for (let i = 0; i < 50; i++) {
    const t = performance.now();
    await agent.vms.getVmInfo({ id: ids[i % ids.length] });
    info.push(performance.now() - t);
  }
  const rssFull = rssKiB(agentPid);
  const l = stats(list);
  const g = stats(info);
  console.log(
    `\nwith ${count} running VMs (emulator processes), started in ${(bootAll / 1000).toFixed(1)} s`,
  );
  console.log(
    `  ListVms (ms)                       ${fmt(l.median)} ${fmt(l.p90)} ${fmt(l.min)} ${
      fmt(l.max)
    }`,
  );
  console.log(
    `  GetVmInfo (ms)                     ${fmt(g.median)} ${fmt(g.p90)} ${fmt(g.min)} ${
      fmt(g.max)
    }`,
  );
  console.log(
    `  agent RSS: ${(rssIdle / 1024).toFixed(0)} MiB idle -> ${
      (rssFull / 1024).toFixed(0)
    } MiB with ${count} VMs`,
  );
  const t1 = performance.now();
  for (let i = 0; i < ids.length; i += 8) {
    await Promise.all(ids.slice(i, i + 8).map((id) => agent.vms.deleteVM({ id })));
  }
  console.log(`  deleted all in ${((performance.now() - t1) / 1000).toFixed(1)} s`);
  console.log(JSON.stringify({
    rounds: ROUNDS,
    direct_ms: d,
    agent_ms: a,
    ratio: a.median / d.median,
    vms: count,
    list_vms_ms: l,
    get_vm_info_ms: g,
    agent_rss_mib: { idle: rssIdle / 1024, loaded: rssFull / 1024 },
  }));
}

if (import.meta.main) await main();

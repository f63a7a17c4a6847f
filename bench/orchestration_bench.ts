/**
 * Orchestration benchmark (not a test): the control plane on PostgreSQL with node agents
 * (subprocesses on loopback) running the CH emulator.
 *  1. start → running through the API (POST start, job long-poll) minus the same CH calls made
 *     directly on a freshly spawned emulator (spawn, vm.create, vm.boot, vm.info): p50, p99;
 *  2. 100 concurrent VM starts across 5 nodes: all succeed, wall time;
 *  3. the reconciliation cycle (ListVms on every node, compared with the database) with 200
 *     running VMs on 10 nodes (real emulator processes);
 *  4. without nodes: list and placement latency with 10,000 VM rows and 100 hosts.
 *
 * Run: `deno task bench orchestration` (`--only start,concurrent,reconcile,db`, `--rounds N`,
 * `--vms N`, `--nodes N`). Prints tables and one JSON line with every figure.
 */
import { parseArgs } from "node:util";
import { VmmClient, waitForVmm } from "../node/vmm/client.ts";
import { VmmProcess } from "../node/vmm/process.ts";
import { createVmDir, vmPaths } from "../node/vmm/runtime_dir.ts";
import { loadControlConfig } from "../shared/config/load.ts";
import type { ControlConfig } from "../shared/config/schema.ts";
import { Logger, setLogger } from "../shared/log/logger.ts";
import { startServer } from "../control/server.ts";
import { migrate } from "../control/db/migrate.ts";
import { transaction } from "../control/db/query.ts";
import { placementHosts } from "../control/db/placement.ts";
import { place } from "../control/domain/placement.ts";
import { normalizePlacement } from "../control/domain/vm_fields.ts";
import { MIGRATIONS } from "../migrations/mod.ts";
import { createTestDatabase } from "../tests/support/db.ts";
import { EMULATOR_BINARY, emulatorEnv } from "../tests/support/node_agent.ts";
import { freePort, pidsWhere, spawn, type Spawned, waitFor } from "../tests/support/process.ts";

const { values } = parseArgs({
  options: {
    only: { type: "string", default: "start,concurrent,reconcile,db" },
    rounds: { type: "string", default: "30" },
    vms: { type: "string", default: "200" },
    nodes: { type: "string", default: "10" },
  },
});
const ONLY = new Set(values.only!.split(","));
const ROUNDS = Number(values.rounds);
const RECONCILE_VMS = Number(values.vms);
const RECONCILE_NODES = Number(values.nodes);
const ROOT = new URL("../", import.meta.url).pathname;
const quiet = new Logger({ level: "error", format: "json" });
setLogger(quiet);
const results: Record<string, unknown> = {};

function stats(ms: number[]) {
  const s = ms.toSorted((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)];
  return { p50: q(0.5), p99: q(0.99), min: s[0], max: s.at(-1)! };
}
const f = (n: number) => n.toFixed(1).padStart(8);
function row(label: string, s: ReturnType<typeof stats>) {
  console.log(`  ${label.padEnd(44)}${f(s.p50)}${f(s.p99)}${f(s.min)}${f(s.max)}`);
}
const header = (t: string) =>
  console.log(`\n${t}\n  ${"".padEnd(44)}     p50     p99     min     max`);

/** A node agent on loopback. */
class Agent {
  proc!: Spawned;
  constructor(readonly dir: string, readonly port: number, readonly token: string) {}
  async start() {
    await Deno.mkdir(`${this.dir}/pool`, { recursive: true });
    this.proc = spawn(Deno.execPath(), [
      "run",
      "-A",
      "--quiet",
      `${ROOT}node/main.ts`,
      "--listen",
      `127.0.0.1:${this.port}`,
      "--runtime-dir",
      `${this.dir}/rt`,
      "--cloud-hypervisor-binary",
      EMULATOR_BINARY,
    ], {
      env: emulatorEnv({
        NO_COLOR: "1",
        QARAX_NODE__STATE_DIR: `${this.dir}/state`,
        QARAX_NODE__AUTH_TOKEN: this.token,
        QARAX_LOG__LEVEL: "warn",
        QARAX_LOG__FORMAT: "json",
      }),
    });
    await waitFor(
      async () => {
        (await Deno.connect({ hostname: "127.0.0.1", port: this.port })).close();
        return true;
      },
      60_000,
      "agent",
    );
  }
  async stop() {
    await this.proc.stop(5000);
    for (const pid of pidsWhere((a) => a.some((x) => x.includes(`${this.dir}/rt/`)))) {
      try {
        Deno.kill(pid, "SIGKILL");
      } catch { /* gone */ }
    }
  }
}

/** A control plane (in this process) and agents. */
async function cluster(nodes: number, patch: (c: ControlConfig) => ControlConfig = (c) => c) {
  const db = await createTestDatabase(2);
  const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "qx-bench-" }));
  const token = crypto.randomUUID();
  const agents = Array.from(
    { length: nodes },
    (_, i) => new Agent(`${dir}/n${i}`, freePort(), token),
  );
  for (let i = 0; i < agents.length; i += 4) {
    await Promise.all(agents.slice(i, i + 4).map((a) => a.start()));
  }
  const base = loadControlConfig({ env: {} }).config;
  const config = patch({
    ...base,
    application: { ...base.application, host: "127.0.0.1", port: 0 },
    database: { ...base.database, url: db.url, max_connections: 10 },
    log: { ...base.log, level: "error" },
    nodes: { ...base.nodes, auth_token: token, reconcile_interval_ms: 3_600_000 },
    jobs: { ...base.jobs, workers: 8, poll_interval_ms: 200 },
    // Every "host" is this same 2-core machine: let placement count many VMs per core.
    scheduling: { ...base.scheduling, cpu_overcommit_ratio: 64 },
  });
  const server = await startServer(config, { logger: quiet });
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${server.url}${path}`, {
      method,
      headers: body === undefined ? {} : { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${text}`);
    return text ? JSON.parse(text) : null;
  };
  const pool = await call("POST", "/v1/storage-pools", { name: "images", path: `${dir}/images` });
  await Deno.mkdir(`${dir}/images`);
  await Deno.writeTextFile(`${dir}/images/vmlinux`, "emulated kernel\n");
  const hosts: string[] = [];
  for (const [i, a] of agents.entries()) {
    const h = await call("POST", "/v1/hosts", {
      name: `n${i}`,
      address: "127.0.0.1",
      port: a.port,
      labels: { group: i < 5 ? "first5" : "rest" },
    });
    await call("POST", `/v1/hosts/${h.id}/init`);
    await call("POST", `/v1/storage-pools/${pool.id}/hosts`, { host_id: h.id });
    hosts.push(h.id);
  }
  const kernel = await call("POST", "/v1/storage-objects", {
    name: "vmlinux",
    storage_pool_id: pool.id,
    type: "kernel",
    path: "vmlinux",
    host_id: null, // one directory shared by every emulated node
  });
  const boot = await call("POST", "/v1/boot-sources", { name: "k", kernel_image_id: kernel.id });
  const job = async (id: string) => {
    for (;;) {
      const j = await call("GET", `/v1/jobs/${id}?wait=30`);
      if (j.status === "succeeded" || j.status === "failed") return j;
    }
  };
  return {
    dir,
    server,
    call,
    job,
    boot: boot.id as string,
    hosts,
    async dispose() {
      await server.shutdown();
      await Promise.all(agents.map((a) => a.stop()));
      await db.drop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

/** The same CH calls the start makes on the node, straight on a fresh emulator. */
async function directStart(root: string, kernel: string, n: number): Promise<number> {
  const paths = vmPaths(root, `direct-${n}`);
  const t0 = performance.now();
  await createVmDir(paths);
  const vmm = VmmProcess.spawn({ binary: EMULATOR_BINARY, paths, env: emulatorEnv() });
  await waitForVmm(paths.apiSocket, { timeoutMs: 15_000 });
  const client = new VmmClient({ socketPath: paths.apiSocket });
  let took = 0;
  try {
    await client.create({
      cpus: { boot_vcpus: 1, max_vcpus: 1 },
      memory: { size: 512 * 1024 * 1024 },
      payload: { kernel, cmdline: "console=ttyS0" },
      serial: { mode: "File", file: paths.serialLog },
      console: { mode: "Off" },
    });
    await client.boot();
    await client.info();
    took = performance.now() - t0;
    await client.shutdownVmm();
  } finally {
    client.close();
  }
  await vmm.exited;
  await Deno.remove(paths.dir, { recursive: true });
  return took;
}

async function benchStart() {
  const c = await cluster(1);
  try {
    const root = `${c.dir}/direct`;
    await Deno.mkdir(root);
    const kernel = `${c.dir}/images/vmlinux`;
    const round = async (i: number) => {
      const vm = await c.call("POST", "/v1/vms", { name: `s${i}`, boot_source_id: c.boot });
      const t0 = performance.now();
      const j = await c.call("POST", `/v1/vms/${vm.id}/start`);
      const done = await c.job(j.id);
      const took = performance.now() - t0;
      if (done.status !== "succeeded") throw new Error(JSON.stringify(done.error));
      await c.job((await c.call("DELETE", `/v1/vms/${vm.id}`)).id);
      return took;
    };
    await directStart(root, kernel, -1);
    await round(-1);
    const direct: number[] = [];
    const api: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      direct.push(await directStart(root, kernel, i));
      api.push(await round(i));
    }
    const d = stats(direct);
    const a = stats(api);
    const overhead = { p50: a.p50 - d.p50, p99: a.p99 - d.p99 };
    header(`start → running, ${ROUNDS} interleaved rounds (ms)`);
    row("direct CH calls on a fresh emulator", d);
    row("through the API (job, node agent, emulator)", a);
    console.log(
      `  overhead of qarax: p50 ${overhead.p50.toFixed(1)} ms, p99 ${overhead.p99.toFixed(1)} ms`,
    );
    results.start = { rounds: ROUNDS, direct_ms: d, api_ms: a, overhead_ms: overhead };
  } finally {
    await c.dispose();
  }
}

async function benchScale() {
  const nodes = Math.max(RECONCILE_NODES, ONLY.has("concurrent") ? 5 : 0);
  const c = await cluster(nodes);
  try {
    if (ONLY.has("concurrent")) {
      const vms = await Promise.all(
        Array.from({ length: 100 }, (_, i) =>
          c.call("POST", "/v1/vms", {
            name: `c${i}`,
            boot_source_id: c.boot,
            memory_size: 256 * 1024 * 1024,
            placement: { required_host_labels: { group: "first5" } },
          })),
      );
      const t0 = performance.now();
      const jobs = await Promise.all(vms.map((v) => c.call("POST", `/v1/vms/${v.id}/start`)));
      const done = await Promise.all(jobs.map((j) => c.job(j.id)));
      const wall = performance.now() - t0;
      const ok = done.filter((j) => j.status === "succeeded").length;
      const spread = new Map<string, number>();
      for (const j of done) spread.set(j.result?.host_id, (spread.get(j.result?.host_id) ?? 0) + 1);
      console.log(
        `\n100 concurrent starts across 5 nodes: ${ok}/100 succeeded in ${
          (wall / 1000).toFixed(2)
        } s ` +
          `(per node: ${[...spread.values()].join(", ")})`,
      );
      results.concurrent = {
        vms: 100,
        nodes: 5,
        succeeded: ok,
        wall_ms: wall,
        per_node: [...spread.values()],
      };
      const t1 = performance.now();
      const dels = await Promise.all(vms.map((v) => c.call("DELETE", `/v1/vms/${v.id}`)));
      await Promise.all(dels.map((j) => c.job(j.id)));
      results.concurrent_delete_ms = performance.now() - t1;
    }
    if (ONLY.has("reconcile")) {
      const t0 = performance.now();
      const ids: string[] = [];
      for (let i = 0; i < RECONCILE_VMS; i += 20) {
        const batch = await Promise.all(
          Array.from(
            { length: Math.min(20, RECONCILE_VMS - i) },
            (_, k) =>
              c.call("POST", "/v1/vms", {
                name: `r${i + k}`,
                boot_source_id: c.boot,
                memory_size: 128 * 1024 * 1024,
              }),
          ),
        );
        const jobs = await Promise.all(batch.map((v) => c.call("POST", `/v1/vms/${v.id}/start`)));
        for (const j of await Promise.all(jobs.map((j) => c.job(j.id)))) {
          if (j.status !== "succeeded") throw new Error(JSON.stringify(j.error));
        }
        ids.push(...batch.map((v) => v.id));
      }
      const bootAll = performance.now() - t0;
      await new Promise((r) => setTimeout(r, 2000));
      const monitors = c.server.runtime.monitors;
      const cycles: number[] = [];
      for (let i = 0; i < 20; i++) {
        const t = performance.now();
        const reports = await monitors.reconcileAll();
        cycles.push(performance.now() - t);
        const checked = reports.reduce((n, r) => n + r.checked, 0);
        const changed = reports.reduce((n, r) => n + r.changed, 0);
        if (checked !== ids.length || changed !== 0) {
          throw new Error(`reconcile checked ${checked}, changed ${changed}`);
        }
      }
      const s = stats(cycles);
      header(
        `reconciliation with ${ids.length} running VMs on ${RECONCILE_NODES} nodes (started in ${
          (bootAll / 1000).toFixed(1)
        } s)`,
      );
      row("one full cycle (ListVms ×nodes + compare)", s);
      results.reconcile = {
        vms: ids.length,
        nodes: RECONCILE_NODES,
        start_all_ms: bootAll,
        cycle_ms: s,
      };
      const t1 = performance.now();
      for (let i = 0; i < ids.length; i += 25) {
        const dels = await Promise.all(
          ids.slice(i, i + 25).map((id) => c.call("DELETE", `/v1/vms/${id}`)),
        );
        await Promise.all(dels.map((j) => c.job(j.id)));
      }
      results.reconcile_delete_all_ms = performance.now() - t1;
    }
  } finally {
    await c.dispose();
  }
}

async function benchDb() {
  await using db = await createTestDatabase(4);
  await migrate(db.sql, MIGRATIONS);
  const sql = db.sql;
  await sql`
    insert into hosts (name, address, port, status, architecture, total_cpus, total_memory_bytes,
                       labels)
    select 'h' || i, '10.0.' || (i / 250) || '.' || (i % 250), 50051, 'up', 'x86_64', 64,
           256::int8 * 1024 * 1024 * 1024, jsonb_build_object('rack', 'r' || (i % 10))
    from generate_series(1, 100) i`;
  await sql`
    insert into vms (name, status, host_id, architecture, boot_vcpus, max_vcpus, memory_size, tags)
    select 'vm' || i, (array['running','running','running','shutdown','paused'])[1 + i % 5]::vm_status,
           (select id from hosts where name = 'h' || (1 + i % 100)), 'x86_64', 2, 2,
           1024::int8 * 1024 * 1024, array['team' || (i % 20), 'app' || (i % 7)]
    from generate_series(1, 10000) i`;
  await sql`analyze`;
  const base = loadControlConfig({ env: {} }).config;
  const config = {
    ...base,
    application: { ...base.application, host: "127.0.0.1", port: 0 },
    database: { ...base.database, url: db.url },
    log: { ...base.log, level: "error" as const },
    jobs: { ...base.jobs, workers: 0 },
  };
  const server = await startServer(config, { logger: quiet });
  try {
    const timeGet = async (path: string, n = 50) => {
      const ms: number[] = [];
      for (let i = 0; i < n + 3; i++) {
        const t = performance.now();
        const res = await fetch(`${server.url}${path}`);
        await res.arrayBuffer();
        if (i >= 3) ms.push(performance.now() - t);
      }
      return stats(ms);
    };
    header("10,000 VMs and 100 hosts, no nodes (ms)");
    const list = await timeGet("/v1/vms?limit=100");
    row("GET /v1/vms?limit=100 (first page)", list);
    const page = await (await fetch(`${server.url}/v1/vms?limit=1000`)).json();
    let cursor = page.next_cursor;
    for (let i = 0; i < 5; i++) {
      cursor = (await (await fetch(`${server.url}/v1/vms?limit=1000&cursor=${cursor}`)).json())
        .next_cursor;
    }
    const deep = await timeGet(`/v1/vms?limit=100&cursor=${cursor}`);
    row("GET /v1/vms?limit=100 (page at row 6,000)", deep);
    const big = await timeGet("/v1/vms?limit=1000", 20);
    row("GET /v1/vms?limit=1000", big);
    const tagged = await timeGet("/v1/vms?tag=team3&tag=app2&limit=100");
    row("GET /v1/vms?tag=team3&tag=app2", tagged);
    const hostList = await timeGet("/v1/hosts?limit=100");
    row("GET /v1/hosts?limit=100", hostList);
    const vm = {
      id: crypto.randomUUID(),
      name: "new",
      architecture: "x86_64",
      boot_vcpus: 2,
      memory_size: 1024 ** 3,
      tags: ["team3"],
      networks: [],
      pools: [],
      local_objects: [],
    };
    const timePlace = async (placement: ReturnType<typeof normalizePlacement>) => {
      const ms: number[] = [];
      for (let i = 0; i < 53; i++) {
        const t = performance.now();
        await transaction(sql, async (tx) => {
          const tags = [...placement.anti_affinity_tags, ...placement.spread_tags];
          const hosts = await placementHosts(tx, { vmId: vm.id, networks: [], pools: [], tags });
          const r = place({ ...vm, placement }, hosts, base.scheduling);
          if (!r.ok) throw new Error(r.message);
        });
        if (i >= 3) ms.push(performance.now() - t);
      }
      return stats(ms);
    };
    const plain = await timePlace(normalizePlacement({}));
    row("placement (lock hosts, ledger, choose)", plain);
    const spread = await timePlace(normalizePlacement({ spread_tags: ["team3"] }));
    row("placement with spread tags", spread);
    results.db = {
      vms: 10000,
      hosts: 100,
      list,
      deep,
      big,
      tagged,
      host_list: hostList,
      placement: plain,
      placement_spread: spread,
    };
  } finally {
    await server.shutdown();
  }
}

if (ONLY.has("start")) await benchStart();
if (ONLY.has("concurrent") || ONLY.has("reconcile")) await benchScale();
if (ONLY.has("db")) await benchDb();
console.log(`\n${JSON.stringify(results)}`);

/**
 * Benchmark: `GET /v1/vms/{id}` and `GET /v1/vms?limit=100` with 1,000 VMs in PostgreSQL,
 * through the qarax control plane and through a bare Hono + postgres.js endpoint doing the
 * same single SELECT, side by side; prints throughput, p50/p99 latency and the ratios.
 *
 *   deno run -A bench/api_bench.ts [--requests 4000] [--concurrency 16] [--pool 10] [--log-level warn]
 *
 * `--log-level info` adds qarax's access log (one JSON line per request, sent to /dev/null).
 *
 * Needs PostgreSQL at TEST_DATABASE_URL (as the tests do); uses a throw-away database.
 */
import { parseArgs } from "node:util";
import { createTestDatabase } from "../tests/support/db.ts";
import { migrate } from "../control/db/migrate.ts";
import { MIGRATIONS } from "../migrations/mod.ts";

const args = parseArgs({
  args: Deno.args,
  options: {
    requests: { type: "string", default: "4000" },
    concurrency: { type: "string", default: "16" },
    pool: { type: "string", default: "10" },
    vms: { type: "string", default: "1000" },
    "log-level": { type: "string", default: "warn" },
  },
});
const REQUESTS = Number(args.values.requests);
const CONCURRENCY = Number(args.values.concurrency);
const VMS = Number(args.values.vms);

interface Result {
  rps: number;
  p50: number;
  p99: number;
}

async function load(urls: () => string, total: number): Promise<Result> {
  const latencies: number[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next < total) {
      next++;
      const t0 = performance.now();
      const res = await fetch(urls());
      await res.arrayBuffer();
      if (res.status !== 200) throw new Error(`${res.url}: ${res.status}`);
      latencies.push(performance.now() - t0);
    }
  }));
  const wall = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const q = (p: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))];
  return { rps: latencies.length / wall, p50: q(0.5), p99: q(0.99) };
}

await using db = await createTestDatabase(2);
await migrate(db.sql, MIGRATIONS);
await db.sql`
  insert into vms (name, boot_vcpus, max_vcpus, memory_size, tags, placement, config,
                   cloud_init_user_data)
  select 'bench-' || i, 1 + i % 4, 4, 536870912::int8 * (1 + i % 8), array['bench', 'g' || (i % 10)],
         '{"reservation_class":null,"required_host_labels":{},"preferred_host_labels":{},"affinity_tags":[],"anti_affinity_tags":[],"spread_tags":[]}',
         '{}', '#cloud-config' || chr(10) || 'hostname: bench-' || i
  from generate_series(1, ${VMS}) as i`;
const ids = (await db.sql<{ id: string }[]>`select id from vms`).map((r) => r.id);

const child = new Deno.Command(Deno.execPath(), {
  args: [
    "run",
    "-A",
    new URL("./api_servers.ts", import.meta.url).pathname,
    db.url,
    args.values.pool!,
    args.values["log-level"]!,
  ],
  stdout: "piped",
  stderr: args.values["log-level"] === "info" ? "null" : "inherit",
}).spawn();
const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
let line = "";
while (!line.includes("\n")) {
  const { value, done } = await reader.read();
  if (done) throw new Error("server process exited");
  line += value;
}
const urls = JSON.parse(line.split("\n")[0]) as { qarax: string; bare: string };

try {
  const pick = () => ids[Math.floor(Math.random() * ids.length)];
  const scenarios = [
    {
      name: "GET /v1/vms/{id}",
      qarax: () => `${urls.qarax}/v1/vms/${pick()}`,
      bare: () => `${urls.bare}/vms/${pick()}`,
    },
    {
      name: "GET /v1/vms?limit=100",
      qarax: () => `${urls.qarax}/v1/vms?limit=100`,
      bare: () => `${urls.bare}/vms?limit=100`,
    },
  ];
  console.log(
    `${VMS} VMs, ${REQUESTS} requests per run, concurrency ${CONCURRENCY}, pool ${args.values.pool}, log level ${
      args.values["log-level"]
    }, deno ${Deno.version.deno}`,
  );
  console.log("| endpoint | server | req/s | p50 ms | p99 ms |");
  console.log("| --- | --- | ---: | ---: | ---: |");
  const ratios: string[] = [];
  for (const s of scenarios) {
    // Warm both (JIT, connection pools, PostgreSQL caches), then measure alternately.
    await load(s.qarax, 300);
    await load(s.bare, 300);
    const q = await load(s.qarax, REQUESTS);
    const b = await load(s.bare, REQUESTS);
    for (const [label, r] of [["qarax", q], ["bare Hono + postgres.js", b]] as const) {
      console.log(
        `| ${s.name} | ${label} | ${r.rps.toFixed(0)} | ${r.p50.toFixed(2)} | ${
          r.p99.toFixed(2)
        } |`,
      );
    }
    ratios.push(
      `${s.name}: qarax/bare throughput ${(q.rps / b.rps).toFixed(2)}, p50 ${
        (q.p50 / b.p50).toFixed(2)
      }×, p99 ${(q.p99 / b.p99).toFixed(2)}×`,
    );
  }
  console.log("");
  for (const r of ratios) console.log(r);
} finally {
  child.kill("SIGTERM");
  await child.status;
  await reader.cancel().catch(() => {});
}

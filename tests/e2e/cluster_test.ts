/**
 * End to end, with real processes: a control plane and two node agents (each in its own
 * network namespace, joined by a bridge in a hub namespace) running emulated VMMs, on
 * PostgreSQL. Registers and initialises both hosts, attaches a network and pools, starts VMs
 * (placement spreads them), sees a guest poweroff through the API and the event stream, loses
 * and gets back a node agent, kills the control plane while jobs run, runs 200 jobs on two
 * control planes (each exactly once), and checks that stop and delete leave nothing behind.
 */
import assert from "node:assert/strict";
import { netnsSupport } from "../support/netns.ts";
import { E2eCluster, type E2eControlPlane, type E2eNode } from "../support/cluster.ts";
import { waitFor } from "../support/process.ts";

const support = netnsSupport();
if (!support.ok) console.warn(`skipping end-to-end tests: ${support.reason} (CI=true forces them)`);

interface Sse {
  events: { id: number; event: string; data: Record<string, unknown>; at: number }[];
  close(): Promise<void>;
}

/** Collects an SSE stream in the background. */
async function collect(cp: E2eControlPlane, path: string): Promise<Sse> {
  const ac = new AbortController();
  const res = await cp.request(path, { signal: ac.signal });
  assert.equal(res.status, 200);
  const events: Sse["events"] = [];
  const done = (async () => {
    let buf = "";
    for await (const chunk of res.body!.pipeThrough(new TextDecoderStream())) {
      buf += chunk;
      let i;
      while ((i = buf.indexOf("\n\n")) >= 0) {
        const frame = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const f: Record<string, string> = {};
        for (const line of frame.split("\n")) {
          if (line.startsWith(":")) continue;
          const at = line.indexOf(": ");
          f[line.slice(0, at)] = line.slice(at + 2);
        }
        if (f.data) {
          events.push({
            id: Number(f.id),
            event: f.event,
            data: JSON.parse(f.data),
            at: Date.now(),
          });
        }
      }
    }
  })().catch(() => {});
  return {
    events,
    async close() {
      ac.abort();
      await done;
    },
  };
}

Deno.test({
  name: "e2e: a control plane and two node agents in their own namespaces",
  ignore: !support.ok,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    await using cluster = await E2eCluster.create(2);
    const [a, b] = cluster.nodes;
    await Promise.all(cluster.nodes.map((n) => n.start()));
    const cp = await cluster.addControlPlane();
    const hosts = new Map<string, E2eNode>();
    const hostOf = async (vmId: string) =>
      hosts.get((await cp.call("GET", `/v1/vms/${vmId}`)).body.host_id)!;
    let network: { id: string };
    let images: { id: string };
    let boot: { id: string };
    const vms: { id: string; name: string }[] = [];

    await t.step("register and initialise both hosts", async () => {
      for (const n of [a, b]) {
        const h = await cp.ok("POST", "/v1/hosts", { name: n.name, address: n.ip, port: n.port });
        const init = await cp.ok("POST", `/v1/hosts/${h.id}/init`);
        assert.equal(init.host.status, "up");
        assert.equal(init.host.cloud_hypervisor_emulated, true);
        assert.ok(init.host.total_cpus >= 1);
        hosts.set(h.id, n);
      }
    });

    await t.step("a network on both hosts, a shared image pool, a local pool on each", async () => {
      network = await cp.ok("POST", "/v1/networks", {
        name: "e2e-net",
        subnet: "172.30.9.0/24",
        gateway: "172.30.9.1",
      });
      images = await cp.ok("POST", "/v1/storage-pools", {
        name: "images",
        path: `${cluster.dir}/images`,
      });
      await Deno.mkdir(`${cluster.dir}/images`, { recursive: true });
      await Deno.writeTextFile(`${cluster.dir}/images/vmlinux`, "emulated kernel\n");
      for (const [id, n] of hosts) {
        const att = await cp.ok("POST", `/v1/networks/${network.id}/hosts`, {
          host_id: id,
          bridge_name: "qxe2e0",
        });
        assert.equal(att.status, "ready");
        assert.equal(
          (await cp.ok("POST", `/v1/storage-pools/${images.id}/hosts`, { host_id: id }))
            .status,
          "ready",
        );
        const local = await cp.ok("POST", "/v1/storage-pools", {
          name: `local-${n.name}`,
          path: n.poolDir,
        });
        await cp.ok("POST", `/v1/storage-pools/${local.id}/hosts`, { host_id: id });
        // The node made the bridge in its own namespace.
        const link = await n.ns.exec(["ip", "-o", "link", "show", "qxe2e0"]);
        assert.match(link, /qxe2e0/);
        // A disk made by that node, with the job's progress.
        const job = await cp.ok("POST", `/v1/storage-pools/${local.id}/disks`, {
          name: `data-${n.name}`,
          size_bytes: 8 * 1024 * 1024,
        });
        const done = await cp.job(job.id);
        assert.equal(done.status, "succeeded", JSON.stringify(done.error));
        assert.equal(done.result.host_id, id);
        const obj = (await cp.call("GET", `/v1/storage-objects/${job.resource_id}`)).body;
        assert.equal(obj.status, "ready");
        assert.equal(obj.host_id, id, "a local pool's disk belongs to the host that made it");
        assert.equal((await Deno.stat(`${n.poolDir}/${obj.path}`)).size, 8 * 1024 * 1024);
      }
      const kernel = await cp.ok("POST", "/v1/storage-objects", {
        name: "vmlinux",
        storage_pool_id: images.id,
        type: "kernel",
        path: "vmlinux",
        host_id: null, // the same kernel is in every node's images directory
      });
      boot = await cp.ok("POST", "/v1/boot-sources", { name: "e2e", kernel_image_id: kernel.id });
    });

    await t.step("VMs start, spread over both hosts, each NIC a tap on its node", async () => {
      for (let i = 1; i <= 4; i++) {
        vms.push(
          await cp.ok("POST", "/v1/vms", {
            name: `web-${i}`,
            boot_vcpus: 1,
            memory_size: 256 * 1024 * 1024,
            boot_source_id: boot.id,
            nics: [{ network_id: network.id }],
          }),
        );
      }
      const jobs = await Promise.all(vms.map((v) => cp.ok("POST", `/v1/vms/${v.id}/start`)));
      for (const j of jobs) {
        const done = await cp.job(j.id);
        assert.equal(done.status, "succeeded", JSON.stringify(done.error));
      }
      const placed = await Promise.all(vms.map((v) => hostOf(v.id)));
      assert.equal(placed.filter((n) => n === a).length, 2, "spread: two VMs per host");
      for (const v of vms) {
        const vm = (await cp.call("GET", `/v1/vms/${v.id}`)).body;
        assert.equal(vm.status, "running");
        const n = await hostOf(v.id);
        assert.equal(n.vmmPids(v.id).length, 1, `one VMM for ${v.name}`);
      }
      assert.equal((await a.taps()).length, 2);
      assert.equal((await b.taps()).length, 2);
    });

    await t.step(
      "a guest poweroff shows as shutdown in the API and the stream within 2 s",
      async () => {
        const vm = vms[0];
        const n = await hostOf(vm.id);
        const stream = await collect(cp, `/v1/events?resource_id=${vm.id}&type=vm`);
        try {
          await new Promise((r) => setTimeout(r, 200));
          const [pid] = n.vmmPids(vm.id);
          const t0 = Date.now();
          Deno.kill(pid, "SIGUSR1");
          await waitFor(
            async () => (await cp.call("GET", `/v1/vms/${vm.id}`)).body.status === "shutdown",
            2000,
            "shutdown in the API",
          );
          const e = await waitFor(
            () =>
              stream.events.find((e) =>
                e.data.data && (e.data.data as { status: string }).status === "shutdown"
              ),
            2000,
            "shutdown event",
          );
          assert.ok(e.at - t0 < 2000, `event after ${e.at - t0} ms`);
          assert.equal((e.data.data as { source: string }).source, "node");
        } finally {
          await stream.close();
        }
      },
    );

    await t.step(
      "kill -9 a node agent: host down; restarted: up by itself, VMs re-adopted",
      async () => {
        const hostId = [...hosts].find(([, n]) => n === a)![0];
        const onA = [];
        for (const v of vms) if (await hostOf(v.id) === a) onA.push(v);
        const before = new Map<string, string>();
        for (const v of onA) {
          before.set(v.id, (await cp.call("GET", `/v1/vms/${v.id}`)).body.status);
        }
        await a.kill9();
        const down = await waitFor(
          async () => {
            const h = (await cp.call("GET", `/v1/hosts/${hostId}`)).body;
            return h.status === "down" && h;
          },
          15_000,
          "host down",
        );
        assert.match(down.status_reason, /health probes failed/);
        for (const v of onA) {
          const vm = (await cp.call("GET", `/v1/vms/${v.id}`)).body;
          if (before.get(v.id) === "running") {
            assert.equal(vm.status, "unknown");
          }
        }
        // Slow boots from now on, so the next step catches start jobs mid-way.
        await a.start({ QARAX_EMU_BOOT_DELAY_MS: "1500" });
        await waitFor(
          async () => (await cp.call("GET", `/v1/hosts/${hostId}`)).body.status === "up",
          15_000,
          "host up",
        );
        for (const v of onA) {
          await waitFor(
            async () => (await cp.call("GET", `/v1/vms/${v.id}`)).body.status === before.get(v.id),
            10_000,
            `${v.name} ${before.get(v.id)} again`,
          );
          if (before.get(v.id) === "running") {
            assert.equal(a.vmmPids(v.id).length, 1, "the same VMM");
          }
        }
      },
    );

    await t.step(
      "kill -9 the control plane while jobs run: after a restart every job ends",
      async () => {
        const stopped = vms[0];
        // Node A boots slowly now (1.5 s): VMs pinned to it are mid-start when the crash comes.
        const hostA = [...hosts].find(([, n]) => n === a)![0];
        await cp.ok("PATCH", `/v1/hosts/${hostA}`, { labels: { boot: "slow" } });
        const slow = [];
        for (let i = 1; i <= 3; i++) {
          slow.push(
            await cp.ok("POST", "/v1/vms", {
              name: `slow-${i}`,
              boot_vcpus: 1,
              memory_size: 256 * 1024 * 1024,
              boot_source_id: boot.id,
              placement: { required_host_labels: { boot: "slow" } },
            }),
          );
        }
        vms.push(...slow);
        const jobs = [
          await cp.ok("POST", `/v1/vms/${stopped.id}/start`),
          ...await Promise.all(slow.map((v) => cp.ok("POST", `/v1/vms/${v.id}/start`))),
        ];
        for (const n of [a, b]) {
          const pool =
            (await cp.call("GET", `/v1/storage-pools?name=local-${n.name}`)).body.items[0];
          for (let i = 0; i < 5; i++) {
            jobs.push(
              await cp.ok("POST", `/v1/storage-pools/${pool.id}/disks`, {
                name: `crash-${n.name}-${i}`,
                size_bytes: 1024 * 1024,
              }),
            );
          }
        }
        await new Promise((r) => setTimeout(r, 300));
        const states = await cluster.db.sql`select status::text, count(*)::int as n from jobs
        where id = any(${jobs.map((j) => j.id)}::uuid[]) group by status`;
        assert.ok(
          states.some((r) => r.status !== "succeeded" && r.status !== "failed"),
          `some jobs are under way when the control plane dies: ${JSON.stringify(states)}`,
        );
        await cp.kill9();
        await cp.start();
        for (const j of jobs) {
          const done = await cp.job(j.id, 90);
          assert.ok(
            ["succeeded", "failed"].includes(done.status),
            `${j.type} ${done.status} (${JSON.stringify(states)})`,
          );
          if (done.status === "failed") assert.ok(done.error?.message, "a failed job says why");
        }
        const outcomes = await cluster.db.sql`select type, status::text, error from jobs
          where id = any(${jobs.map((j) => j.id)}::uuid[])`;
        // The interrupted starts resumed from their checkpoints on the restarted process.
        for (const o of outcomes.filter((o) => o.type === "vm_start")) {
          assert.equal(o.status, "succeeded", JSON.stringify(o.error));
        }
        const [{ stuck }] = await cluster.db.sql`
        select count(*)::int as stuck from jobs where status in ('pending', 'running')`;
        assert.equal(stuck, 0);
        await waitFor(
          async () => (await cp.call("GET", `/v1/vms/${stopped.id}`)).body.status === "running",
          10_000,
          "started",
        );
      },
    );

    await t.step("two control planes on one database run 200 jobs, each exactly once", async () => {
      const cp1 = await cluster.addControlPlane();
      const pools = await Promise.all(
        [a, b].map(async (n) =>
          (await cp.call("GET", `/v1/storage-pools?name=local-${n.name}`)).body.items[0]
        ),
      );
      const since =
        (await cluster.db.sql`select coalesce(max(id), 0)::int8 as id from events`)[0].id;
      const queued = await Promise.all(
        Array.from(
          { length: 200 },
          (_, i) =>
            [cp, cp1][i % 2].ok("POST", `/v1/storage-pools/${pools[i % 2].id}/disks`, {
              name: `many-${i}`,
              size_bytes: 1024 * 1024,
            }),
        ),
      );
      const ids = queued.map((j) => j.id);
      await waitFor(
        async () => {
          const [{ n }] = await cluster.db.sql`select count(*)::int as n from jobs
          where id = any(${ids}::uuid[]) and status in ('succeeded', 'failed')`;
          return n === 200;
        },
        120_000,
        "200 jobs done",
      );
      const failed = await cluster.db.sql`select id, error from jobs
        where id = any(${ids}::uuid[]) and status <> 'succeeded'`;
      assert.deepEqual([...failed], []);
      const events = await cluster.db.sql<
        { type: string; resource_id: string; data: Record<string, unknown> }[]
      >`
        select type, resource_id, data from events
        where id > ${since} and resource_id = any(${ids}::uuid[]) and type in ('job.started', 'job.progress')`;
      const claims = new Map<string, number>();
      const steps = new Map<string, number>();
      const owners = new Set<string>();
      for (const e of events) {
        if (e.type === "job.started") {
          claims.set(e.resource_id, (claims.get(e.resource_id) ?? 0) + 1);
          owners.add(String(e.data.owner).split("#")[0]);
        } else if (e.data.step) {
          const k = `${e.resource_id}/${e.data.step}`;
          steps.set(k, (steps.get(k) ?? 0) + 1);
        }
      }
      assert.equal(claims.size, 200);
      assert.deepEqual([...new Set(claims.values())], [1], "each job claimed once");
      assert.equal(steps.size, 800);
      assert.deepEqual([...new Set(steps.values())], [1], "each step run once");
      assert.equal(owners.size, 2, "both control planes ran jobs");
    });

    await t.step("stop and delete leave no VMM processes or taps behind", async () => {
      for (const v of vms) {
        const stop = await cp.call("POST", `/v1/vms/${v.id}/stop?timeout=2`);
        if (stop.status === 202) {
          assert.equal((await cp.job(stop.body.id)).status, "succeeded");
        }
      }
      for (const v of vms) {
        const vm = (await cp.call("GET", `/v1/vms/${v.id}`)).body;
        // Shut down; or never provisioned (a start that failed after the crash undid itself).
        assert.ok(["shutdown", "created"].includes(vm.status), `${v.name} is ${vm.status}`);
      }
      const deletes = await Promise.all(vms.map((v) => cp.ok("DELETE", `/v1/vms/${v.id}`)));
      for (const d of deletes) assert.equal((await cp.job(d.id)).status, "succeeded");
      for (const v of vms) {
        assert.equal((await cp.call("GET", `/v1/vms/${v.id}`)).status, 404);
        assert.deepEqual([...a.vmmPids(v.id), ...b.vmmPids(v.id)], [], `no VMM of ${v.name}`);
      }
      assert.deepEqual(await a.taps(), []);
      assert.deepEqual(await b.taps(), []);
      const ips = (await cp.call("GET", `/v1/networks/${network.id}/ips`)).body.items;
      assert.deepEqual(ips, []);
    });
  },
});

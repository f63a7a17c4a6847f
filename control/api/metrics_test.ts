import assert from "node:assert/strict";
import { createTestApi, fastConfig, testConfig } from "../../tests/support/api.ts";
import { parseSamples, type Samples, valueOf } from "../../tests/support/metrics.ts";
import { sha256Hex } from "./middleware/auth.ts";
import type { TestApi } from "../../tests/support/api.ts";
import { commit, VERSION } from "../../shared/version.ts";

async function scrape(api: TestApi, headers: Record<string, string> = {}): Promise<Samples> {
  const res = await api.app.request("/metrics", { headers });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  return parseSamples(await res.text());
}

const requests = (s: Samples, route: string, method: string, status: string) =>
  valueOf(s, "qarax_http_requests_total", { route, method, status });

Deno.test("/metrics counts requests by route pattern, VMs and hosts by status, finished jobs", async () => {
  await using api = await createTestApi(fastConfig(), { active: true });
  const before = await scrape(api);
  assert.equal(valueOf(before, "qarax_vms", { status: "created" }), 0);
  assert.equal(valueOf(before, "qarax_build_info", { version: VERSION, commit: commit() }), 1);

  const missing = crypto.randomUUID();
  assert.equal((await api.get(`/v1/vms/${missing}`)).status, 404);
  assert.equal((await api.get("/v1/no-such-thing/abc")).status, 404);
  const a = await api.post("/v1/vms", { name: "m-a" });
  const b = await api.post("/v1/vms", { name: "m-b" });
  assert.equal(a.status, 201);
  assert.equal(b.status, 201);
  const host = await api.post("/v1/hosts", { name: "h1", address: "192.0.2.10" });
  assert.equal(host.status, 201);
  // No host is up: the start job fails (placement), which the jobs counter records.
  const job = await api.awaitJob(await api.post(`/v1/vms/${a.body.id}/start`));
  assert.equal(job.status, "failed");

  const res = await api.app.request("/metrics");
  const text = await res.text();
  const after = parseSamples(text);
  assert.ok(!text.includes(missing), "raw paths never become label values");
  assert.equal(requests(after, "/v1/vms/:id", "GET", "404"), 1);
  assert.equal(requests(after, "unmatched", "GET", "404"), 1);
  assert.equal(requests(after, "/v1/vms", "POST", "201"), 2);
  assert.equal(requests(after, "/v1/hosts", "POST", "201"), 1);
  assert.equal(requests(after, "/v1/vms/:id/start", "POST", "202"), 1);
  assert.equal(requests(after, "/metrics", "GET", "200"), 1, "the first scrape is counted");

  const h = "qarax_http_request_duration_seconds";
  const labels = { route: "/v1/vms", method: "POST" };
  assert.equal(valueOf(after, `${h}_count`, labels), 2);
  assert.equal(valueOf(after, `${h}_bucket`, { ...labels, le: "+Inf" }), 2);
  assert.ok(valueOf(after, `${h}_sum`, labels) > 0);
  assert.ok(
    valueOf(after, `${h}_bucket`, { ...labels, le: "0.005" }) <=
      valueOf(after, `${h}_bucket`, { ...labels, le: "10" }),
    "buckets are cumulative",
  );

  const vmStatus = (await api.get(`/v1/vms/${a.body.id}`)).body.status;
  const expected = new Map<string, number>([["created", 0], ["running", 0], ["shutdown", 0]]);
  for (const s of [vmStatus, "created"]) expected.set(s, (expected.get(s) ?? 0) + 1);
  for (const [status, n] of expected) {
    assert.equal(valueOf(after, "qarax_vms", { status }), n, `qarax_vms{status="${status}"}`);
  }
  assert.equal(valueOf(after, "qarax_hosts", { status: host.body.status }), 1);
  assert.ok(after.has('qarax_hosts{status="up"}'), "every known status has a series");
  assert.equal(
    valueOf(after, "qarax_jobs_finished_total", { type: "vm_start", outcome: "failed" }),
    1,
  );
  const jd = "qarax_job_duration_seconds";
  const jobLabels = { type: "vm_start", outcome: "failed" };
  assert.equal(valueOf(after, `${jd}_count`, jobLabels), 1);
  assert.equal(valueOf(after, `${jd}_bucket`, { ...jobLabels, le: "+Inf" }), 1);
  assert.equal(valueOf(after, `${jd}_bucket`, { ...jobLabels, le: "3600" }), 1);
  assert.ok(valueOf(after, `${jd}_sum`, jobLabels) >= 0);
  assert.equal(valueOf(after, "qarax_jobs", { type: "vm_start", status: "failed" }), 1);
  assert.equal(valueOf(after, "qarax_jobs", { type: "vm_stop", status: "pending" }), 0);

  const doc = (await api.get("/openapi.json")).body;
  assert.ok(doc.paths["/metrics"].get, "documented with the health routes");
});

Deno.test("job durations: first start to end, in job-sized buckets; never-started jobs only counted", async () => {
  await using api = await createTestApi();
  const m = api.deps.metrics;
  const at = (s: number) => new Date(Date.UTC(2026, 0, 1) + s * 1000);
  m.observeJobFinished(
    { type: "disk_create", started_at: at(0), finished_at: at(90) },
    "succeeded",
  );
  m.observeJobFinished(
    { type: "disk_create", started_at: at(0), finished_at: at(0.2) },
    "succeeded",
  );
  m.observeJobFinished({ type: "vm_start", started_at: null, finished_at: at(1) }, "cancelled");
  const s = await scrape(api);
  const jd = "qarax_job_duration_seconds";
  const ok = { type: "disk_create", outcome: "succeeded" };
  assert.equal(valueOf(s, `${jd}_count`, ok), 2);
  assert.equal(valueOf(s, `${jd}_sum`, ok), 90.2);
  assert.equal(valueOf(s, `${jd}_bucket`, { ...ok, le: "0.1" }), 0);
  assert.equal(valueOf(s, `${jd}_bucket`, { ...ok, le: "0.5" }), 1);
  assert.equal(valueOf(s, `${jd}_bucket`, { ...ok, le: "60" }), 1);
  assert.equal(valueOf(s, `${jd}_bucket`, { ...ok, le: "120" }), 2);
  assert.equal(valueOf(s, `${jd}_bucket`, { ...ok, le: "3600" }), 2);
  const never = { type: "vm_start", outcome: "cancelled" };
  assert.equal(valueOf(s, "qarax_jobs_finished_total", never), 1);
  assert.ok(![...s.keys()].some((k) => k.startsWith(`${jd}_count{type="vm_start"`)));
});

Deno.test("/metrics follows auth unless metrics.public", async (t) => {
  const secret = "metrics-secret";
  const auth = { enabled: true, tokens: [{ name: "prom", sha256: await sha256Hex(secret) }] };

  await t.step("auth on: a token is needed", async () => {
    await using api = await createTestApi({ auth });
    const anonymous = await api.get("/metrics");
    assert.equal(anonymous.status, 401);
    assert.equal(anonymous.body.code, "unauthenticated");
    const s = await scrape(api, { authorization: `Bearer ${secret}` });
    assert.equal(requests(s, "/metrics", "GET", "401"), 1);
    assert.equal((await api.get("/openapi.json")).body.paths["/metrics"].get.security, undefined);
  });

  await t.step("metrics.public: served without a token; the API still needs one", async () => {
    await using api = await createTestApi({
      auth,
      metrics: { ...testConfig().metrics, public: true },
    });
    await scrape(api);
    assert.equal((await api.get("/v1/vms")).status, 401);
    assert.deepEqual((await api.get("/openapi.json")).body.paths["/metrics"].get.security, []);
  });
});

Deno.test("a failing database read leaves the DB gauges empty and is counted", async () => {
  await using api = await createTestApi();
  await api.db.sql`alter table hosts rename to hosts_gone`;
  try {
    const s = await scrape(api);
    assert.equal(valueOf(s, "qarax_metrics_collect_errors_total", { collector: "database" }), 1);
    assert.ok(![...s.keys()].some((k) => k.startsWith("qarax_vms{")), "no stale VM counts");
    assert.equal(requests(s, "/metrics", "GET", "200"), 0, "the request counters still render");
  } finally {
    await api.db.sql`alter table hosts_gone rename to hosts`;
  }
});

import assert from "node:assert/strict";
import { escapeHelp, escapeLabelValue, formatValue, Histogram, Registry } from "./registry.ts";

Deno.test("counters and gauges render HELP, TYPE and sorted labelled samples", async () => {
  const r = new Registry();
  const c = r.counter("qarax_things_total", "Things done.", ["kind", "status"]);
  const g = r.gauge("qarax_level", "A level.");
  c.inc({ status: "ok", kind: "b" });
  c.inc({ kind: "a", status: "ok" }, 2);
  c.inc({ kind: "b", status: "ok" });
  g.set({}, 1.5);
  g.inc({}, -0.5);
  assert.equal(
    await r.render(),
    [
      "# HELP qarax_things_total Things done.",
      "# TYPE qarax_things_total counter",
      'qarax_things_total{kind="a",status="ok"} 2',
      'qarax_things_total{kind="b",status="ok"} 2',
      "# HELP qarax_level A level.",
      "# TYPE qarax_level gauge",
      "qarax_level 1",
      "",
    ].join("\n"),
  );
});

Deno.test("label values and help text are escaped", async () => {
  assert.equal(escapeLabelValue('a\\b"c\nd'), 'a\\\\b\\"c\\nd');
  assert.equal(escapeHelp("line\\one\nline two"), "line\\\\one\\nline two");
  const r = new Registry();
  r.counter("x_total", 'Help with "quotes"\nand a newline.', ["path"]).inc({ path: '/a"b\\' });
  const text = await r.render();
  assert.match(text, /^# HELP x_total Help with "quotes"\\nand a newline\.$/m);
  assert.match(text, /^x_total\{path="\/a\\"b\\\\"\} 1$/m);
});

Deno.test("special values are spelled +Inf, -Inf, NaN", () => {
  assert.equal(formatValue(Infinity), "+Inf");
  assert.equal(formatValue(-Infinity), "-Inf");
  assert.equal(formatValue(NaN), "NaN");
  assert.equal(formatValue(0.25), "0.25");
  assert.equal(formatValue(12345678901234), "12345678901234");
});

Deno.test("histograms render cumulative buckets, +Inf, sum and count", async () => {
  const r = new Registry();
  const h = r.histogram("rpc_seconds", "RPC latency.", ["method"], [0.1, 0.5, 1]);
  for (const v of [0.05, 0.1, 0.3, 2]) h.observe({ method: "Get" }, v);
  assert.equal(
    await r.render(),
    [
      "# HELP rpc_seconds RPC latency.",
      "# TYPE rpc_seconds histogram",
      'rpc_seconds_bucket{method="Get",le="0.1"} 2',
      'rpc_seconds_bucket{method="Get",le="0.5"} 3',
      'rpc_seconds_bucket{method="Get",le="1"} 3',
      'rpc_seconds_bucket{method="Get",le="+Inf"} 4',
      'rpc_seconds_sum{method="Get"} 2.45',
      'rpc_seconds_count{method="Get"} 4',
      "",
    ].join("\n"),
  );
});

Deno.test("bad names, label sets and buckets are programming errors", () => {
  const r = new Registry();
  assert.throws(() => r.counter("bad-name", "x"), /invalid metric name/);
  assert.throws(() => r.counter("ok_total", "x", ["__reserved"]), /invalid label name/);
  const c = r.counter("ok_total", "x", ["a"]);
  assert.throws(() => r.gauge("ok_total", "x"), /registered twice/);
  assert.throws(() => c.inc({ b: "1" }), /do not match/);
  assert.throws(() => c.inc({ a: "1" }, -1), /cannot decrease/);
  assert.throws(() => new Histogram("h", "x", ["le"]), /reserved/);
  assert.throws(() => new Histogram("h", "x", [], [1, 1]), /strictly increasing/);
});

Deno.test("collectors refill their families at every scrape; a failure leaves them empty", async () => {
  const errors: string[] = [];
  const r = new Registry({ onCollectError: (name) => errors.push(name) });
  const vms = r.gauge("vms", "VMs.", ["status"]);
  let rows: [string, number][] = [["running", 2], ["created", 1]];
  let fail = false;
  r.collect("db", [vms], () => {
    if (fail) throw new Error("db down");
    for (const [status, n] of rows) vms.set({ status }, n);
  });
  assert.match(await r.render(), /^vms\{status="created"\} 1\nvms\{status="running"\} 2$/m);
  rows = [["running", 3]];
  const second = await r.render();
  assert.match(second, /^vms\{status="running"\} 3$/m);
  assert.doesNotMatch(second, /created/);
  fail = true;
  assert.equal(await r.render(), "# HELP vms VMs.\n# TYPE vms gauge\n");
  assert.deepEqual(errors, ["db"]);
});

/**
 * Reading a Prometheus text-format scrape in tests: samples keyed by their series exactly as
 * written (`name{a="x",b="y"}`), and a strict line check so a malformed line fails the test.
 */
import assert from "node:assert/strict";

/** Sample value by series (`name` or `name{labels}` as rendered). */
export type Samples = Map<string, number>;

const SAMPLE =
  /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*",?)*\})?) (\S+)$/;
const COMMENT = /^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .*$/;

/** Parses a scrape; every line must be a HELP/TYPE comment or a well-formed sample. */
export function parseSamples(text: string): Samples {
  assert.ok(text.endsWith("\n"), "a scrape ends with a line feed");
  const out: Samples = new Map();
  for (const line of text.slice(0, -1).split("\n")) {
    if (line.startsWith("#")) {
      assert.match(line, COMMENT);
      continue;
    }
    const m = SAMPLE.exec(line);
    assert.ok(m, `malformed sample line: ${line}`);
    const value = m[2] === "+Inf" ? Infinity : m[2] === "-Inf" ? -Infinity : Number(m[2]);
    assert.ok(!out.has(m[1]), `duplicate series ${m[1]}`);
    out.set(m[1], value);
  }
  return out;
}

/** The series key of `name` with `labels` in the given order (as the registry renders them). */
export function series(name: string, labels: Record<string, string> = {}): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  return parts.length ? `${name}{${parts.join(",")}}` : name;
}

/** A sample's value, 0 when the series is absent (counters not yet incremented). */
export function valueOf(samples: Samples, name: string, labels: Record<string, string> = {}) {
  return samples.get(series(name, labels)) ?? 0;
}

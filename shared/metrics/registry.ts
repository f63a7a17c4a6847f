/**
 * A small Prometheus metrics registry shared by both binaries: counter, gauge and histogram
 * families with fixed label names, collectors that refresh values at scrape time (database
 * counts, VMM counters), and rendering in the text exposition format 0.0.4. It exists so that
 * neither binary needs a metrics dependency; it implements only what qarax uses.
 */

/** `Content-Type` of a scrape answer. */
export const CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** Label values of one series, by label name. */
export type Labels = Record<string, string>;

/** Latency buckets in seconds: 5 ms to 10 s (API calls, RPCs). */
export const LATENCY_BUCKETS: readonly number[] = [
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
];

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** Escapes a label value: backslash, double quote and line feed. */
export function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

/** Escapes `# HELP` text: backslash and line feed. */
export function escapeHelp(text: string): string {
  return text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

/** A sample value as the format spells it (`+Inf`, `-Inf`, `NaN`). */
export function formatValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return String(value);
}

function renderLabels(names: readonly string[], values: readonly string[]): string {
  if (names.length === 0) return "";
  return `{${names.map((n, i) => `${n}="${escapeLabelValue(values[i])}"`).join(",")}}`;
}

type MetricType = "counter" | "gauge" | "histogram";

/** What every family shares: name, help, label names and its series keyed by label values. */
abstract class Family<S> {
  readonly #series = new Map<string, { values: string[]; state: S }>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: MetricType,
    readonly labelNames: readonly string[],
  ) {
    if (!METRIC_NAME.test(name)) throw new Error(`invalid metric name ${name}`);
    for (const l of labelNames) {
      if (!LABEL_NAME.test(l) || l.startsWith("__")) {
        throw new Error(`${name}: invalid label name ${l}`);
      }
    }
    if (new Set(labelNames).size !== labelNames.length) {
      throw new Error(`${name}: duplicate label names`);
    }
  }

  protected abstract initial(): S;

  /** The series for `labels`, created on first use; the label set must match exactly. */
  protected series(labels: Labels): S {
    const keys = Object.keys(labels);
    if (keys.length !== this.labelNames.length || keys.some((k) => !this.labelNames.includes(k))) {
      throw new Error(
        `${this.name}: labels {${keys.join(",")}} do not match {${this.labelNames.join(",")}}`,
      );
    }
    const values = this.labelNames.map((n) => String(labels[n]));
    const key = JSON.stringify(values);
    let entry = this.#series.get(key);
    if (!entry) {
      entry = { values, state: this.initial() };
      this.#series.set(key, entry);
    }
    return entry.state;
  }

  /** Forgets every series (collectors call it before refilling the family). */
  reset(): void {
    this.#series.clear();
  }

  protected abstract renderSeries(values: string[], state: S, out: string[]): void;

  /** The family in the text format: `# HELP`, `# TYPE`, then its samples (sorted). */
  render(out: string[]): void {
    out.push(`# HELP ${this.name} ${escapeHelp(this.help)}`);
    out.push(`# TYPE ${this.name} ${this.type}`);
    const entries = [...this.#series.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    for (const [, { values, state }] of entries) this.renderSeries(values, state, out);
  }
}

/** A value that only goes up (reset only by a restart). */
export class Counter extends Family<{ value: number }> {
  constructor(name: string, help: string, labelNames: readonly string[] = []) {
    super(name, help, "counter", labelNames);
  }
  protected initial() {
    return { value: 0 };
  }
  /** Adds `by` (≥ 0) to the series of `labels`. */
  inc(labels: Labels = {}, by = 1): void {
    if (!(by >= 0)) throw new Error(`${this.name}: a counter cannot decrease`);
    this.series(labels).value += by;
  }
  /** Sets a total counted elsewhere (a VMM's counters), read at scrape time. */
  set(labels: Labels, value: number): void {
    this.series(labels).value = value;
  }
  /** The current value of a series (0 when absent). */
  get(labels: Labels = {}): number {
    return this.series(labels).value;
  }
  protected renderSeries(values: string[], s: { value: number }, out: string[]): void {
    out.push(`${this.name}${renderLabels(this.labelNames, values)} ${formatValue(s.value)}`);
  }
}

/** A value that goes up and down. */
export class Gauge extends Family<{ value: number }> {
  constructor(name: string, help: string, labelNames: readonly string[] = []) {
    super(name, help, "gauge", labelNames);
  }
  protected initial() {
    return { value: 0 };
  }
  set(labels: Labels, value: number): void {
    this.series(labels).value = value;
  }
  inc(labels: Labels = {}, by = 1): void {
    this.series(labels).value += by;
  }
  get(labels: Labels = {}): number {
    return this.series(labels).value;
  }
  protected renderSeries(values: string[], s: { value: number }, out: string[]): void {
    out.push(`${this.name}${renderLabels(this.labelNames, values)} ${formatValue(s.value)}`);
  }
}

interface HistogramState {
  /** Per-bucket (non-cumulative) counts; rendering accumulates them. */
  counts: number[];
  sum: number;
  count: number;
}

/** Observations counted into cumulative `le` buckets, with their sum and count. */
export class Histogram extends Family<HistogramState> {
  readonly buckets: readonly number[];

  constructor(
    name: string,
    help: string,
    labelNames: readonly string[] = [],
    buckets: readonly number[] = LATENCY_BUCKETS,
  ) {
    super(name, help, "histogram", labelNames);
    if (labelNames.includes("le")) throw new Error(`${name}: "le" is reserved for buckets`);
    const sorted = [...buckets].filter((b) => b !== Infinity);
    if (!sorted.length || sorted.some((b, i) => !Number.isFinite(b) || (i && b <= sorted[i - 1]))) {
      throw new Error(`${name}: buckets must be finite and strictly increasing`);
    }
    this.buckets = sorted;
  }
  protected initial(): HistogramState {
    return { counts: new Array(this.buckets.length).fill(0), sum: 0, count: 0 };
  }
  /** Records one observation (seconds, for durations). */
  observe(labels: Labels, value: number): void {
    const s = this.series(labels);
    const i = this.buckets.findIndex((b) => value <= b);
    if (i >= 0) s.counts[i]++;
    s.sum += value;
    s.count++;
  }
  protected renderSeries(values: string[], s: HistogramState, out: string[]): void {
    const names = [...this.labelNames, "le"];
    let cumulative = 0;
    this.buckets.forEach((b, i) => {
      cumulative += s.counts[i];
      out.push(
        `${this.name}_bucket${renderLabels(names, [...values, formatValue(b)])} ${cumulative}`,
      );
    });
    out.push(`${this.name}_bucket${renderLabels(names, [...values, "+Inf"])} ${s.count}`);
    const labels = renderLabels(this.labelNames, values);
    out.push(`${this.name}_sum${labels} ${formatValue(s.sum)}`);
    out.push(`${this.name}_count${labels} ${s.count}`);
  }
}

/** Any metric family. */
export type MetricFamily = Counter | Gauge | Histogram;

/** Refreshes some families just before a scrape renders them. */
export type Collector = () => void | Promise<void>;

export interface RegistryOptions {
  /** Told about a collector that failed (its families render without samples). */
  onCollectError?: (collector: string, err: unknown) => void;
}

/** The families of one process and the collectors that refresh them. */
export class Registry {
  readonly #families = new Map<string, MetricFamily>();
  readonly #collectors: { name: string; families: MetricFamily[]; run: Collector }[] = [];

  constructor(readonly options: RegistryOptions = {}) {}

  #add<F extends MetricFamily>(family: F): F {
    if (this.#families.has(family.name)) throw new Error(`metric ${family.name} registered twice`);
    this.#families.set(family.name, family);
    return family;
  }

  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    return this.#add(new Counter(name, help, labelNames));
  }

  gauge(name: string, help: string, labelNames: readonly string[] = []): Gauge {
    return this.#add(new Gauge(name, help, labelNames));
  }

  histogram(
    name: string,
    help: string,
    labelNames: readonly string[] = [],
    buckets: readonly number[] = LATENCY_BUCKETS,
  ): Histogram {
    return this.#add(new Histogram(name, help, labelNames, buckets));
  }

  /**
   * Runs `run` before every scrape. The `families` it fills are reset first, so a failed or
   * partial collection never shows stale values.
   */
  collect(name: string, families: MetricFamily[], run: Collector): void {
    this.#collectors.push({ name, families, run });
  }

  /** Runs the collectors, then renders every family in registration order. */
  async render(): Promise<string> {
    await Promise.all(this.#collectors.map(async (c) => {
      for (const f of c.families) f.reset();
      try {
        await c.run();
      } catch (err) {
        for (const f of c.families) f.reset();
        this.options.onCollectError?.(c.name, err);
      }
    }));
    const out: string[] = [];
    for (const f of this.#families.values()) f.render(out);
    return out.join("\n") + "\n";
  }
}

/**
 * @module observability/registry
 * The metric registry (Counter, Gauge, Histogram) and the Prometheus text writer (exposition format
 * 0.0.4). No dependency: the registry is a few maps, the writer a pure function of a snapshot.
 * Why not a library: docs/benchmarks.md, "The metrics registry: ours or a library (measured; ours stays)".
 *
 * Whatever a caller passes, a family holds at most `maxSeries` label sets (1,000 by default): the
 * updates of any further label set are counted under one overflow set whose every label is `other`,
 * and the registry's overflow hook hears of each, so neither memory nor the scrape grows without bound.
 */
export type MetricType = 'counter' | 'gauge' | 'histogram';

/** One line of output: `name{labels} value`. `labels` are in declaration order. */
export interface Sample {
  readonly name: string;
  readonly labels: readonly (readonly [string, string])[];
  readonly value: number;
}

/** What the writer renders: one `# HELP` / `# TYPE` block and its samples. */
export interface MetricFamily {
  readonly name: string;
  readonly help: string;
  readonly type: MetricType;
  readonly samples: readonly Sample[];
}

/** Anything the registry can scrape. */
export interface MetricSource {
  readonly name: string;
  collect(): MetricFamily;
}

export type LabelValues<L extends string> = Readonly<Record<L, string>>;

export interface MetricOptions<L extends string> {
  name: string;
  help: string;
  labelNames?: readonly L[];
  /** Label sets this family holds at most; default {@link DEFAULT_MAX_SERIES}. */
  maxSeries?: number;
}

/** Label sets one family holds at most, unless told otherwise. */
export const DEFAULT_MAX_SERIES = 1000;
/** The value of every label of the overflow label set. */
export const OVERFLOW_LABEL = 'other';

export interface HistogramOptions<L extends string> extends MetricOptions<L> {
  /** Upper bounds, strictly increasing and finite; `+Inf` is implicit. */
  buckets: readonly number[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

function checkDeclaration(name: string, labelNames: readonly string[], reserved: readonly string[] = []): void {
  if (!METRIC_NAME.test(name)) throw new Error(`metric name "${name}" must match ${METRIC_NAME.source}`);
  const seen = new Set<string>();
  for (const l of labelNames) {
    if (!LABEL_NAME.test(l) || l.startsWith('__')) {
      throw new Error(`metric ${name}: label name "${l}" must match ${LABEL_NAME.source} and not start with "__"`);
    }
    if (reserved.includes(l)) throw new Error(`metric ${name}: label name "${l}" is reserved`);
    if (seen.has(l)) throw new Error(`metric ${name}: label "${l}" declared twice`);
    seen.add(l);
  }
}

/** Values in declaration order; a missing or non-string label is a programming error. */
function labelTuple(
  metric: string,
  labelNames: readonly string[],
  labels: Readonly<Record<string, unknown>>,
): string[] {
  const values: string[] = [];
  for (const l of labelNames) {
    const v = labels[l];
    if (typeof v !== 'string') throw new Error(`metric ${metric}: label "${l}" is missing`);
    values.push(v);
  }
  return values;
}

/** Series key: values joined by a separator that cannot appear in them unescaped. */
function seriesKey(values: readonly string[]): string {
  return JSON.stringify(values);
}

function pairs(names: readonly string[], values: readonly string[]): [string, string][] {
  return names.map((n, i) => [n, values[i] ?? '']);
}

abstract class BaseMetric<L extends string, S> implements MetricSource {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly L[];
  /** Label sets held at most; one more (the overflow set) takes every update beyond. */
  readonly maxSeries: number;
  protected readonly series = new Map<string, { values: string[]; state: S }>();
  /** Told of every update that went to the overflow set (the registry sets it). */
  onOverflow: ((metric: string) => void) | undefined;

  constructor(opts: MetricOptions<L>, reserved: readonly string[] = []) {
    this.name = opts.name;
    this.help = opts.help;
    this.labelNames = opts.labelNames ?? [];
    this.maxSeries = opts.maxSeries ?? DEFAULT_MAX_SERIES;
    checkDeclaration(this.name, this.labelNames, reserved);
    if (!(Number.isInteger(this.maxSeries) && this.maxSeries >= 1))
      throw new Error(`metric ${this.name}: maxSeries must be a positive integer`);
  }

  protected abstract initial(): S;

  protected get(labels: LabelValues<L>): S {
    const values = labelTuple(this.name, this.labelNames, labels);
    const key = seriesKey(values);
    let entry = this.series.get(key);
    if (entry === undefined) {
      if (this.series.size >= this.maxSeries && this.labelNames.length > 0) return this.overflow();
      entry = { values, state: this.initial() };
      this.series.set(key, entry);
    }
    return entry.state;
  }

  /** The overflow label set (every label `other`), created on first need beyond the cap. */
  private overflow(): S {
    this.onOverflow?.(this.name);
    const values = this.labelNames.map(() => OVERFLOW_LABEL);
    const key = seriesKey(values);
    let entry = this.series.get(key);
    if (entry === undefined) {
      entry = { values, state: this.initial() };
      this.series.set(key, entry);
    }
    return entry.state;
  }

  /** Label sets held now (the overflow set included). */
  get seriesCount(): number {
    return this.series.size;
  }

  /**
   * Series sorted by their label values, so the output does not depend on arrival order. A metric
   * without labels always has its one series (it reads 0 before first use), as client libraries do.
   */
  protected sorted(): { values: string[]; state: S }[] {
    if (this.labelNames.length === 0 && this.series.size === 0) this.get({} as LabelValues<L>);
    return [...this.series.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, e]) => e);
  }

  abstract collect(): MetricFamily;

  /** Forget every series (tests). */
  reset(): void {
    this.series.clear();
  }
}

/** One number per series: what counters and gauges share. */
abstract class ScalarMetric<L extends string> extends BaseMetric<L, { v: number }> {
  protected abstract readonly type: 'counter' | 'gauge';

  protected initial(): { v: number } {
    return { v: 0 };
  }

  /** Current value of one series (tests, and callers that report it elsewhere). */
  value(labels: LabelValues<L>): number {
    const values = labelTuple(this.name, this.labelNames, labels);
    return this.series.get(seriesKey(values))?.state.v ?? 0;
  }

  collect(): MetricFamily {
    const samples = this.sorted().map((e) => ({
      name: this.name,
      labels: pairs(this.labelNames, e.values),
      value: e.state.v,
    }));
    return { name: this.name, help: this.help, type: this.type, samples };
  }
}

/** A monotonically increasing count. */
export class Counter<L extends string = never> extends ScalarMetric<L> {
  protected readonly type = 'counter';

  inc(labels: LabelValues<L>, by = 1): void {
    if (!(by >= 0)) throw new Error(`metric ${this.name}: a counter only goes up (got ${by})`);
    this.get(labels).v += by;
  }
}

/** A value that goes up and down. */
export class Gauge<L extends string = never> extends ScalarMetric<L> {
  protected readonly type = 'gauge';

  set(labels: LabelValues<L>, value: number): void {
    this.get(labels).v = value;
  }

  inc(labels: LabelValues<L>, by = 1): void {
    this.get(labels).v += by;
  }

  dec(labels: LabelValues<L>, by = 1): void {
    this.get(labels).v -= by;
  }
}

interface HistogramState {
  /** Per-bucket (non-cumulative) counts; the last slot is `+Inf`. */
  counts: number[];
  sum: number;
  count: number;
}

/** Observations counted into fixed buckets; rendered cumulative, with `_sum` and `_count`. */
export class Histogram<L extends string = never> extends BaseMetric<L, HistogramState> {
  readonly buckets: readonly number[];

  constructor(opts: HistogramOptions<L>) {
    const buckets = [...opts.buckets];
    if (buckets.length === 0) throw new Error(`metric ${opts.name}: at least one bucket is needed`);
    buckets.forEach((b, i) => {
      if (!Number.isFinite(b)) throw new Error(`metric ${opts.name}: bucket ${b} must be finite (+Inf is implicit)`);
      const prev = buckets[i - 1];
      if (prev !== undefined && !(b > prev))
        throw new Error(`metric ${opts.name}: buckets must be strictly increasing`);
    });
    super(opts, ['le']);
    this.buckets = buckets;
  }

  protected initial(): HistogramState {
    const n = this.buckets.length + 1;
    return { counts: new Array<number>(n).fill(0), sum: 0, count: 0 };
  }

  observe(labels: LabelValues<L>, value: number): void {
    if (Number.isNaN(value)) return;
    const s = this.get(labels);
    let i = this.buckets.findIndex((b) => value <= b);
    if (i === -1) i = this.buckets.length;
    s.counts[i] = (s.counts[i] ?? 0) + 1;
    s.sum += value;
    s.count += 1;
  }

  /** Starts a timer; the returned function observes the seconds elapsed since (per `now`, in ms). */
  startTimer(labels: LabelValues<L>, now: () => number = performance.now.bind(performance)): () => number {
    const start = now();
    return () => {
      const seconds = (now() - start) / 1000;
      this.observe(labels, seconds);
      return seconds;
    };
  }

  collect(): MetricFamily {
    const samples: Sample[] = [];
    for (const e of this.sorted()) {
      const base = pairs(this.labelNames, e.values);
      let cumulative = 0;
      this.buckets.forEach((b, i) => {
        cumulative += e.state.counts[i] ?? 0;
        samples.push({ name: `${this.name}_bucket`, labels: [...base, ['le', formatNumber(b)]], value: cumulative });
      });
      samples.push({ name: `${this.name}_bucket`, labels: [...base, ['le', '+Inf']], value: e.state.count });
      samples.push({ name: `${this.name}_sum`, labels: base, value: e.state.sum });
      samples.push({ name: `${this.name}_count`, labels: base, value: e.state.count });
    }
    return { name: this.name, help: this.help, type: 'histogram', samples };
  }
}

/** A metric whose single value is computed at scrape time (process metrics). */
export class CallbackMetric implements MetricSource {
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: 'counter' | 'gauge',
    private readonly read: () => number,
  ) {
    checkDeclaration(name, []);
  }

  collect(): MetricFamily {
    return {
      name: this.name,
      help: this.help,
      type: this.type,
      samples: [{ name: this.name, labels: [], value: this.read() }],
    };
  }
}

export interface RegistryOptions {
  /** Label sets each family made by this registry holds at most; default {@link DEFAULT_MAX_SERIES}. */
  maxSeries?: number;
}

/**
 * Holds metric sources in declaration order; a name is declared once. Families it makes share its
 * series cap; `onOverflow` hears of every update counted under an overflow label set.
 */
export class Registry {
  private readonly sources = new Map<string, MetricSource>();
  private readonly maxSeries: number;
  private overflowListener: ((metric: string) => void) | undefined;

  constructor(opts: RegistryOptions = {}) {
    this.maxSeries = opts.maxSeries ?? DEFAULT_MAX_SERIES;
  }

  register<M extends MetricSource>(source: M): M {
    if (this.sources.has(source.name)) throw new Error(`metric ${source.name} is declared twice`);
    this.sources.set(source.name, source);
    if (source instanceof BaseMetric) source.onOverflow = (metric) => this.overflowListener?.(metric);
    return source;
  }

  /** Called with the family's name for every update that went to its overflow label set. */
  onOverflow(listener: (metric: string) => void): void {
    this.overflowListener = listener;
  }

  counter<L extends string = never>(opts: MetricOptions<L>): Counter<L> {
    return this.register(new Counter<L>({ maxSeries: this.maxSeries, ...opts }));
  }

  gauge<L extends string = never>(opts: MetricOptions<L>): Gauge<L> {
    return this.register(new Gauge<L>({ maxSeries: this.maxSeries, ...opts }));
  }

  histogram<L extends string = never>(opts: HistogramOptions<L>): Histogram<L> {
    return this.register(new Histogram<L>({ maxSeries: this.maxSeries, ...opts }));
  }

  /** A snapshot of every family, in declaration order. */
  collect(): MetricFamily[] {
    return [...this.sources.values()].map((s) => s.collect());
  }
}

/** Go-style float text: `1`, `0.005`, `1e-7`, `+Inf`, `-Inf`, `NaN`. */
export function formatNumber(n: number): string {
  if (Number.isNaN(n)) return 'NaN';
  if (n === Infinity) return '+Inf';
  if (n === -Infinity) return '-Inf';
  return String(n);
}

/** HELP text escapes `\` and newline. */
function escapeHelp(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

/** Label values escape `\`, `"` and newline. */
function escapeLabelValue(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/**
 * Prometheus text exposition format 0.0.4 of a registry (or a snapshot of families). Pure: the same
 * input gives the same text. Families in declaration order; families with no series are left out
 * (as client_golang does), series sorted by label values.
 *
 *   counter `x_total{a="b\"c"}` 3  →  `# HELP x_total …\n# TYPE x_total counter\nx_total{a="b\"c"} 3\n`
 */
export function renderPrometheus(source: Registry | readonly MetricFamily[]): string {
  const families = source instanceof Registry ? source.collect() : source;
  let out = '';
  for (const f of families) {
    if (f.samples.length === 0) continue;
    out += `# HELP ${f.name} ${escapeHelp(f.help)}\n# TYPE ${f.name} ${f.type}\n`;
    for (const s of f.samples) {
      const labels = s.labels.map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(',');
      out += `${s.name}${labels === '' ? '' : `{${labels}}`} ${formatNumber(s.value)}\n`;
    }
  }
  return out;
}

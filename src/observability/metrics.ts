/**
 * @module observability/metrics
 * The metric registry (Counter, Gauge, Histogram), the Prometheus text writer (exposition format
 * 0.0.4) and every metric the provider exports, declared once in `createProviderMetrics`.
 * No dependency: the registry is a few maps, the writer a pure function of a snapshot.
 *
 * Label values are bounded by construction: the typed helpers take unions, free-form strings
 * (reason, AWS error code, operation, region, resource) pass through `boundedLabel`, and object
 * names appear only when the operator opted in (`--metrics-object-names`, off by default). No pod
 * name, no secret value, no token is ever a label. And whatever a caller passes, a family holds at
 * most `maxSeries` label sets (1,000 by default): the updates of any further label set are counted
 * under one overflow set whose every label is `other`, and the registry's overflow hook hears of
 * each (the provider counts them in `metric_series_dropped_total`), so neither memory nor the
 * scrape grows without bound.
 */
import { readFileSync } from 'node:fs';

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
function labelTuple(metric: string, labelNames: readonly string[], labels: Readonly<Record<string, unknown>>): string[] {
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
    if (!(Number.isInteger(this.maxSeries) && this.maxSeries >= 1)) throw new Error(`metric ${this.name}: maxSeries must be a positive integer`);
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
      if (prev !== undefined && !(b > prev)) throw new Error(`metric ${opts.name}: buckets must be strictly increasing`);
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
    return { name: this.name, help: this.help, type: this.type, samples: [{ name: this.name, labels: [], value: this.read() }] };
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

// ---------------------------------------------------------------------------------------------
// The provider's metrics.

export const METRIC_PREFIX = 'csi_provider_aws_';

export type Outcome = 'success' | 'error';
export type AwsService = 'secretsmanager' | 'ssm' | 'sts' | 'pod-identity';
export type CacheName = 'credentials' | 'service-account' | 'node-region' | 'value';
export type CredentialMethod = 'irsa' | 'pod-identity' | 'assume-role';
export type ObjectType = 'secretsmanager' | 'ssmparameter';

/** Mount durations: 5 ms (warm cache) to 30 s (a slow STS plus failover). */
export const MOUNT_BUCKETS: readonly number[] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** One AWS call: a local emulator answers in ~1 ms, a throttled regional endpoint in seconds. */
export const AWS_CALL_BUCKETS: readonly number[] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

const BOUNDED = /^[A-Za-z0-9_.:-]{1,64}$/;

/**
 * A free-form string made safe as a label value: short identifier-like strings pass
 * (`AccessDeniedException`, `GetSecretValue`, `us-east-1`, `404`), anything else becomes `other`,
 * so a hostile or unexpected value cannot grow the series count or leak text into metrics.
 */
export function boundedLabel(value: string | undefined, empty = 'none'): string {
  if (value === undefined || value === '') return empty;
  return BOUNDED.test(value) ? value : 'other';
}

/** An object name as a label (opt-in): names only, capped in length. */
function objectLabel(name: string): string {
  return name.length <= 256 ? name : `${name.slice(0, 253)}...`;
}

export interface ProcessStats {
  residentMemoryBytes: number;
  heapUsedBytes: number;
  /** User + system CPU time, in microseconds (process.cpuUsage()). */
  cpuMicros: number;
}

function readProcessStats(): ProcessStats {
  const mem = process.memoryUsage();
  const cpu = process.cpuUsage();
  return { residentMemoryBytes: mem.rss, heapUsedBytes: mem.heapUsed, cpuMicros: cpu.user + cpu.system };
}

export interface ProviderMetricsOptions {
  /** Add an `object` label (the objectName, never its value) to objects_fetched_total. */
  objectNames: boolean;
  /** Label sets per family at most (default {@link DEFAULT_MAX_SERIES}); beyond, `other`. */
  maxSeries?: number;
  /** Clock in milliseconds for the timers (tests); performance.now by default. */
  now?: () => number;
  /** Process figures read at scrape time (tests inject fixed ones). */
  processStats?: () => ProcessStats;
  /** Unix time in seconds the process started (tests). */
  startTimeSeconds?: number;
  /** Labels of build_info (tests); our package version and process.version by default. */
  buildInfo?: { version: string; nodeVersion: string };
}

/** The result a finished mount reports. `code` is a gRPC status name, or `OK`. */
export interface MountResult {
  code: string;
  /** ProviderError.reason: a short stable class (`AccessDenied`, `Config`). */
  reason?: string | undefined;
}

export interface ProviderMetrics {
  readonly registry: Registry;
  readonly mountsTotal: Counter<'outcome' | 'code' | 'reason'>;
  readonly mountDuration: Histogram<'outcome'>;
  readonly mountsInFlight: Gauge;
  readonly awsCallsTotal: Counter<'service' | 'operation' | 'region' | 'outcome' | 'code'>;
  readonly awsCallDuration: Histogram<'service' | 'operation'>;
  readonly cacheRequestsTotal: Counter<'cache' | 'result'>;
  readonly credentialExchangesTotal: Counter<'method' | 'outcome'>;
  readonly kubernetesRequestsTotal: Counter<'resource' | 'code'>;
  readonly objectsFetchedTotal: Counter<'type' | 'outcome' | 'object'>;
  readonly buildInfo: Gauge<'version' | 'node_version'>;
  /** Updates that went to an overflow label set, by family (see Registry's series cap). */
  readonly seriesDroppedTotal: Counter<'metric'>;
  readonly grpcConnectionsTotal: Counter<'outcome'>;
  readonly grpcCallsRefusedTotal: Counter<'reason'>;

  /**
   * Call when a Mount starts: in-flight goes up; the returned function (call it exactly once, in a
   * `finally`) brings it down and records the count and duration.
   */
  startMount(): (result: MountResult) => void;
  /** Where `mounts_waiting` reads how many mounts wait for a working slot (admission). */
  watchWaiting(read: () => number): void;
  /** Where `grpc_connections` and `grpc_request_bytes_arriving` read the socket's state. */
  watchTransport(read: () => { connections: number; arrivingBytes: number }): void;
  /** A connection accepted on the socket. */
  connectionAccepted(): void;
  /**
   * A connection closed at accept (`connections`) or before it spoke HTTP/2 (`handshake`), or a
   * call refused by the socket's limits.
   */
  transportRefused(why: 'connections' | 'handshake' | 'calls_in_flight' | 'receive_budget' | 'request_too_slow'): void;
  /**
   * Call when an AWS call starts; the returned function records its outcome. `code` is the AWS error
   * name (`AccessDeniedException`) on failure; success records `OK`.
   */
  startAwsCall(service: AwsService, operation: string, region: string): (error?: { code?: string | undefined }) => void;
  /**
   * The same, after the fact, for callers that time the call themselves (the shape of aws/'s
   * CallObserver, so `metrics.awsCall` can be passed as it is). `code` is `OK` on success.
   */
  awsCall(service: AwsService, operation: string, region: string, outcome: Outcome, code: string, seconds: number): void;
  cacheRequest(cache: CacheName, hit: boolean): void;
  credentialExchange(method: CredentialMethod, outcome: Outcome): void;
  /** `code`: the HTTP status (`200`, `404`), or a short failure class (`timeout`, `network`). */
  kubernetesRequest(resource: 'serviceaccounts' | 'pods' | 'nodes' | 'csidrivers' | 'secretproviderclasses' | 'openid-configuration', code: number | string): void;
  /** `objectName` becomes a label only when the operator opted in. Never pass a value here. */
  objectFetched(type: ObjectType, outcome: Outcome, objectName: string): void;
}

/** Declares every metric the provider exports, in one registry. */
export function createProviderMetrics(opts: ProviderMetricsOptions): ProviderMetrics {
  const now = opts.now ?? performance.now.bind(performance);
  const stats = opts.processStats ?? readProcessStats;
  const startTime = opts.startTimeSeconds ?? Date.now() / 1000 - process.uptime();
  const registry = new Registry({ maxSeries: opts.maxSeries ?? DEFAULT_MAX_SERIES });
  const p = METRIC_PREFIX;

  const mountsTotal = registry.counter<'outcome' | 'code' | 'reason'>({
    name: `${p}mounts_total`,
    help: 'Mount requests answered, by outcome, gRPC status name (OK on success) and error reason.',
    labelNames: ['outcome', 'code', 'reason'],
  });
  const mountDuration = registry.histogram<'outcome'>({
    name: `${p}mount_duration_seconds`,
    help: 'Time to answer a Mount request, in seconds.',
    labelNames: ['outcome'],
    buckets: MOUNT_BUCKETS,
  });
  const mountsInFlight = registry.gauge({
    name: `${p}mounts_in_flight`,
    help: 'Mount requests being worked on now.',
  });
  let waiting = (): number => 0;
  registry.register(
    new CallbackMetric(`${p}mounts_waiting`, 'Mount requests of mounts_in_flight that wait for a working slot (admission queue).', 'gauge', () => waiting()),
  );
  const awsCallsTotal = registry.counter<'service' | 'operation' | 'region' | 'outcome' | 'code'>({
    name: `${p}aws_calls_total`,
    help: 'Calls to AWS (Secrets Manager, SSM, STS, the Pod Identity agent), by operation, region, outcome and error code.',
    labelNames: ['service', 'operation', 'region', 'outcome', 'code'],
  });
  const awsCallDuration = registry.histogram<'service' | 'operation'>({
    name: `${p}aws_call_duration_seconds`,
    help: 'Duration of one call to AWS, in seconds.',
    labelNames: ['service', 'operation'],
    buckets: AWS_CALL_BUCKETS,
  });
  const cacheRequestsTotal = registry.counter<'cache' | 'result'>({
    name: `${p}cache_requests_total`,
    help: 'Cache look-ups, by cache and result (hit or miss).',
    labelNames: ['cache', 'result'],
  });
  const credentialExchangesTotal = registry.counter<'method' | 'outcome'>({
    name: `${p}credential_exchanges_total`,
    help: 'Exchanges of a pod token for AWS credentials (cache misses), by method and outcome.',
    labelNames: ['method', 'outcome'],
  });
  const kubernetesRequestsTotal = registry.counter<'resource' | 'code'>({
    name: `${p}kubernetes_requests_total`,
    help: 'Requests to the Kubernetes API, by resource and HTTP status.',
    labelNames: ['resource', 'code'],
  });
  const objectLabels = opts.objectNames ? (['type', 'outcome', 'object'] as const) : (['type', 'outcome'] as const);
  const objectsFetchedTotal = registry.counter<'type' | 'outcome' | 'object'>({
    name: `${p}objects_fetched_total`,
    help: opts.objectNames
      ? 'Objects fetched from AWS, by type, outcome and object name (never its value).'
      : 'Objects fetched from AWS, by type and outcome.',
    labelNames: objectLabels,
  });
  const buildInfo = registry.gauge<'version' | 'node_version'>({
    name: `${p}build_info`,
    help: 'Always 1; the labels name the provider version and the Node.js version.',
    labelNames: ['version', 'node_version'],
  });
  buildInfo.set(
    { version: opts.buildInfo?.version ?? packageVersion(), node_version: opts.buildInfo?.nodeVersion ?? process.version },
    1,
  );

  let transport = (): { connections: number; arrivingBytes: number } => ({ connections: 0, arrivingBytes: 0 });
  registry.register(
    new CallbackMetric(`${p}grpc_connections`, 'Connections open on the provider socket.', 'gauge', () => transport().connections),
  );
  registry.register(
    new CallbackMetric(
      `${p}grpc_request_bytes_arriving`,
      'Bytes received of requests on the provider socket that have not arrived whole yet (bounded by the receive budget).',
      'gauge',
      () => transport().arrivingBytes,
    ),
  );
  const grpcConnectionsTotal = registry.counter<'outcome'>({
    name: `${p}grpc_connections_total`,
    help: 'Connections to the provider socket, by outcome: accepted; refused at accept because the socket held its maximum; or closed because they did not open with the HTTP/2 preface in time (handshake).',
    labelNames: ['outcome'],
  });
  const grpcCallsRefusedTotal = registry.counter<'reason'>({
    name: `${p}grpc_calls_refused_total`,
    help: 'Calls the socket ended before any work, by reason: calls_in_flight or receive_budget (at capacity, answered UNAVAILABLE), or request_too_slow (request not received in time).',
    labelNames: ['reason'],
  });
  const seriesDroppedTotal = registry.counter<'metric'>({
    name: `${p}metric_series_dropped_total`,
    help: 'Updates counted under the overflow label set (every label "other") because their metric family already held its maximum of label sets, by family.',
    labelNames: ['metric'],
    // One label set per declared family: never near the cap, whatever the others' cap is.
    maxSeries: DEFAULT_MAX_SERIES,
  });
  registry.onOverflow((metric) => {
    if (metric !== seriesDroppedTotal.name) seriesDroppedTotal.inc({ metric });
  });

  registry.register(
    new CallbackMetric('process_resident_memory_bytes', 'Resident memory size in bytes.', 'gauge', () => stats().residentMemoryBytes),
  );
  registry.register(
    new CallbackMetric('process_cpu_seconds_total', 'Total user and system CPU time spent in seconds.', 'counter', () => stats().cpuMicros / 1e6),
  );
  registry.register(
    new CallbackMetric('process_start_time_seconds', 'Start time of the process since unix epoch in seconds.', 'gauge', () => startTime),
  );
  registry.register(
    new CallbackMetric('nodejs_heap_used_bytes', 'V8 heap in use, in bytes.', 'gauge', () => stats().heapUsedBytes),
  );

  const recordAwsCall = (service: AwsService, operation: string, region: string, outcome: Outcome, code: string, seconds: number): void => {
    const op = boundedLabel(operation);
    awsCallsTotal.inc({ service, operation: op, region: boundedLabel(region), outcome, code: boundedLabel(code, 'unknown') });
    awsCallDuration.observe({ service, operation: op }, seconds);
  };

  return {
    registry,
    mountsTotal,
    mountDuration,
    mountsInFlight,
    awsCallsTotal,
    awsCallDuration,
    cacheRequestsTotal,
    credentialExchangesTotal,
    kubernetesRequestsTotal,
    objectsFetchedTotal,
    buildInfo,
    seriesDroppedTotal,
    grpcConnectionsTotal,
    grpcCallsRefusedTotal,

    startMount() {
      const start = now();
      mountsInFlight.inc({});
      let done = false;
      return (result) => {
        if (done) return;
        done = true;
        mountsInFlight.dec({});
        const outcome: Outcome = result.code === 'OK' ? 'success' : 'error';
        mountsTotal.inc({
          outcome,
          code: boundedLabel(result.code),
          reason: outcome === 'success' ? '' : boundedLabel(result.reason),
        });
        mountDuration.observe({ outcome }, (now() - start) / 1000);
      };
    },

    watchWaiting(read) {
      waiting = read;
    },

    watchTransport(read) {
      transport = read;
    },

    connectionAccepted() {
      grpcConnectionsTotal.inc({ outcome: 'accepted' });
    },

    transportRefused(why) {
      if (why === 'connections') grpcConnectionsTotal.inc({ outcome: 'refused' });
      else if (why === 'handshake') grpcConnectionsTotal.inc({ outcome: 'handshake' });
      else grpcCallsRefusedTotal.inc({ reason: why });
    },

    startAwsCall(service, operation, region) {
      const start = now();
      return (error) => {
        const code = error === undefined ? 'OK' : boundedLabel(error.code, 'unknown');
        recordAwsCall(service, operation, region, error === undefined ? 'success' : 'error', code, (now() - start) / 1000);
      };
    },

    awsCall(service, operation, region, outcome, code, seconds) {
      recordAwsCall(service, operation, region, outcome, code, seconds);
    },

    cacheRequest(cache, hit) {
      cacheRequestsTotal.inc({ cache, result: hit ? 'hit' : 'miss' });
    },

    credentialExchange(method, outcome) {
      credentialExchangesTotal.inc({ method, outcome });
    },

    kubernetesRequest(resource, code) {
      kubernetesRequestsTotal.inc({ resource, code: boundedLabel(String(code), 'unknown') });
    },

    objectFetched(type, outcome, objectName) {
      // Without opt-in the counter has no `object` label; the extra key is simply not read.
      objectsFetchedTotal.inc({ type, outcome, object: objectLabel(objectName) });
    },
  };
}

/**
 * Our version for build_info, read from package.json as version.ts does (observability/ imports
 * nothing of ours; src/ and dist/ both sit two levels below the package root from here).
 */
function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
}

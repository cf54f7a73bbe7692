/**
 * @module observability/metrics
 * Every metric the provider exports, declared once in `createProviderMetrics`, on the registry of
 * registry.ts.
 *
 * Label values are bounded by construction: the typed helpers take unions, free-form strings
 * (reason, AWS error code, operation, region, resource) pass through `boundedLabel`, and object
 * names appear only when the operator opted in (`--metrics-object-names`, off by default). No pod
 * name, no secret value, no token is ever a label; a family's label sets are capped by the registry
 * (overflow counted in `metric_series_dropped_total`).
 */
import { VERSION } from '../version.js';
import { DEFAULT_MAX_SERIES, Counter, Gauge, Histogram, CallbackMetric, Registry } from './registry.js';
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
  awsCall(
    service: AwsService,
    operation: string,
    region: string,
    outcome: Outcome,
    code: string,
    seconds: number,
  ): void;
  cacheRequest(cache: CacheName, hit: boolean): void;
  credentialExchange(method: CredentialMethod, outcome: Outcome): void;
  /** `code`: the HTTP status (`200`, `404`), or a short failure class (`timeout`, `network`). */
  kubernetesRequest(
    resource: 'serviceaccounts' | 'pods' | 'nodes' | 'csidrivers' | 'secretproviderclasses' | 'openid-configuration',
    code: number | string,
  ): void;
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
    new CallbackMetric(
      `${p}mounts_waiting`,
      'Mount requests of mounts_in_flight that wait for a working slot (admission queue).',
      'gauge',
      () => waiting(),
    ),
  );
  const awsCallsTotal = registry.counter<'service' | 'operation' | 'region' | 'outcome' | 'code'>({
    name: `${p}aws_calls_total`,
    help:
      'Calls to AWS (Secrets Manager, SSM, STS, the Pod Identity agent), by operation, region, outcome and ' +
      'error code.',
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
    { version: opts.buildInfo?.version ?? VERSION, node_version: opts.buildInfo?.nodeVersion ?? process.version },
    1,
  );

  let transport = (): { connections: number; arrivingBytes: number } => ({ connections: 0, arrivingBytes: 0 });
  registry.register(
    new CallbackMetric(
      `${p}grpc_connections`,
      'Connections open on the provider socket.',
      'gauge',
      () => transport().connections,
    ),
  );
  registry.register(
    new CallbackMetric(
      `${p}grpc_request_bytes_arriving`,
      'Bytes received of requests on the provider socket that have not arrived whole yet (bounded by the receive ' +
        'budget).',
      'gauge',
      () => transport().arrivingBytes,
    ),
  );
  const grpcConnectionsTotal = registry.counter<'outcome'>({
    name: `${p}grpc_connections_total`,
    help:
      'Connections to the provider socket, by outcome: accepted; refused at accept because the socket held its ' +
      'maximum; or closed because they did not open with the HTTP/2 preface in time (handshake).',
    labelNames: ['outcome'],
  });
  const grpcCallsRefusedTotal = registry.counter<'reason'>({
    name: `${p}grpc_calls_refused_total`,
    help:
      'Calls the socket ended before any work, by reason: calls_in_flight or receive_budget (at capacity, ' +
      'answered UNAVAILABLE), or request_too_slow (request not received in time).',
    labelNames: ['reason'],
  });
  const seriesDroppedTotal = registry.counter<'metric'>({
    name: `${p}metric_series_dropped_total`,
    help:
      'Updates counted under the overflow label set (every label "other") because their metric family already ' +
      'held its maximum of label sets, by family.',
    labelNames: ['metric'],
    // One label set per declared family: never near the cap, whatever the others' cap is.
    maxSeries: DEFAULT_MAX_SERIES,
  });
  registry.onOverflow((metric) => {
    if (metric !== seriesDroppedTotal.name) seriesDroppedTotal.inc({ metric });
  });

  registry.register(
    new CallbackMetric(
      'process_resident_memory_bytes',
      'Resident memory size in bytes.',
      'gauge',
      () => stats().residentMemoryBytes,
    ),
  );
  registry.register(
    new CallbackMetric(
      'process_cpu_seconds_total',
      'Total user and system CPU time spent in seconds.',
      'counter',
      () => stats().cpuMicros / 1e6,
    ),
  );
  registry.register(
    new CallbackMetric(
      'process_start_time_seconds',
      'Start time of the process since unix epoch in seconds.',
      'gauge',
      () => startTime,
    ),
  );
  registry.register(
    new CallbackMetric('nodejs_heap_used_bytes', 'V8 heap in use, in bytes.', 'gauge', () => stats().heapUsedBytes),
  );

  const recordAwsCall = (
    service: AwsService,
    operation: string,
    region: string,
    outcome: Outcome,
    code: string,
    seconds: number,
  ): void => {
    const op = boundedLabel(operation);
    awsCallsTotal.inc({
      service,
      operation: op,
      region: boundedLabel(region),
      outcome,
      code: boundedLabel(code, 'unknown'),
    });
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
        recordAwsCall(
          service,
          operation,
          region,
          error === undefined ? 'success' : 'error',
          code,
          (now() - start) / 1000,
        );
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

import { describe, expect, it } from 'vitest';
import { boundedLabel, createProviderMetrics } from './metrics.js';
import {
  Counter,
  DEFAULT_MAX_SERIES,
  Gauge,
  Histogram,
  Registry,
  formatNumber,
  renderPrometheus,
  type MetricFamily,
} from './registry.js';

describe('renderPrometheus', () => {
  it('writes a counter with labels, sorted series and escaped values', () => {
    const r = new Registry();
    const c = r.counter<'method' | 'path'>({
      name: 'http_requests_total',
      help: 'Requests.',
      labelNames: ['method', 'path'],
    });
    c.inc({ method: 'post', path: '/b' }, 2);
    c.inc({ method: 'get', path: 'a "quoted" \\ back\nslash' });
    c.inc({ method: 'get', path: 'a "quoted" \\ back\nslash' });
    expect(renderPrometheus(r)).toBe(
      '# HELP http_requests_total Requests.\n' +
        '# TYPE http_requests_total counter\n' +
        'http_requests_total{method="get",path="a \\"quoted\\" \\\\ back\\nslash"} 2\n' +
        'http_requests_total{method="post",path="/b"} 2\n',
    );
  });

  it('writes a gauge without labels (0 before first use), and escapes HELP', () => {
    const r = new Registry();
    const g = r.gauge({ name: 'in_flight', help: 'Line one\nback\\slash "quotes" stay' });
    expect(renderPrometheus(r)).toBe(
      '# HELP in_flight Line one\\nback\\\\slash "quotes" stay\n# TYPE in_flight gauge\nin_flight 0\n',
    );
    g.inc({});
    g.inc({}, 3);
    g.dec({});
    expect(renderPrometheus(r)).toContain('\nin_flight 3\n');
    g.set({}, -1.5);
    expect(renderPrometheus(r)).toContain('\nin_flight -1.5\n');
  });

  it('writes a histogram: cumulative buckets, +Inf, _sum, _count, per label set', () => {
    const r = new Registry();
    const h = r.histogram<'op'>({
      name: 'call_seconds',
      help: 'Call time.',
      labelNames: ['op'],
      buckets: [0.005, 0.5, 30],
    });
    h.observe({ op: 'get' }, 0.001);
    h.observe({ op: 'get' }, 0.005); // le is inclusive
    h.observe({ op: 'get' }, 0.25);
    h.observe({ op: 'get' }, 45);
    h.observe({ op: 'a\\b' }, 1);
    expect(renderPrometheus(r)).toBe(
      [
        '# HELP call_seconds Call time.',
        '# TYPE call_seconds histogram',
        'call_seconds_bucket{op="a\\\\b",le="0.005"} 0',
        'call_seconds_bucket{op="a\\\\b",le="0.5"} 0',
        'call_seconds_bucket{op="a\\\\b",le="30"} 1',
        'call_seconds_bucket{op="a\\\\b",le="+Inf"} 1',
        'call_seconds_sum{op="a\\\\b"} 1',
        'call_seconds_count{op="a\\\\b"} 1',
        'call_seconds_bucket{op="get",le="0.005"} 2',
        'call_seconds_bucket{op="get",le="0.5"} 3',
        'call_seconds_bucket{op="get",le="30"} 3',
        'call_seconds_bucket{op="get",le="+Inf"} 4',
        'call_seconds_sum{op="get"} 45.256',
        'call_seconds_count{op="get"} 4',
        '',
      ].join('\n'),
    );
  });

  it('leaves out families with no series and keeps declaration order', () => {
    const r = new Registry();
    r.counter<'x'>({ name: 'unused_total', help: 'Never incremented.', labelNames: ['x'] });
    r.counter({ name: 'b_total', help: 'B.' });
    r.counter({ name: 'a_total', help: 'A.' });
    expect(renderPrometheus(r)).toBe(
      '# HELP b_total B.\n# TYPE b_total counter\nb_total 0\n# HELP a_total A.\n# TYPE a_total counter\na_total 0\n',
    );
    expect(renderPrometheus(new Registry())).toBe('');
  });

  it('renders a snapshot of families (pure)', () => {
    const families: MetricFamily[] = [
      {
        name: 'x',
        help: 'X.',
        type: 'gauge',
        samples: [{ name: 'x', labels: [['k', 'v']], value: Number.POSITIVE_INFINITY }],
      },
    ];
    expect(renderPrometheus(families)).toBe('# HELP x X.\n# TYPE x gauge\nx{k="v"} +Inf\n');
    expect(renderPrometheus(families)).toBe(renderPrometheus(families));
  });

  it.each([
    [1, '1'],
    [0.005, '0.005'],
    [45.256, '45.256'],
    [1e-7, '1e-7'],
    [Number.POSITIVE_INFINITY, '+Inf'],
    [Number.NEGATIVE_INFINITY, '-Inf'],
    [Number.NaN, 'NaN'],
  ])('formatNumber(%s) = %s', (n, text) => {
    expect(formatNumber(n)).toBe(text);
  });
});

describe('declarations', () => {
  it.each<[string, () => unknown, RegExp]>([
    ['bad metric name', () => new Counter({ name: 'bad-name', help: '' }), /metric name "bad-name"/],
    [
      'bad label name',
      () => new Counter({ name: 'ok', help: '', labelNames: ['bad-label'] }),
      /label name "bad-label"/,
    ],
    ['reserved __ label', () => new Counter({ name: 'ok', help: '', labelNames: ['__x'] }), /label name "__x"/],
    ['duplicate label', () => new Counter({ name: 'ok', help: '', labelNames: ['a', 'a'] }), /declared twice/],
    ['le on a histogram', () => new Histogram({ name: 'h', help: '', labelNames: ['le'], buckets: [1] }), /reserved/],
    ['no buckets', () => new Histogram({ name: 'h', help: '', buckets: [] }), /at least one bucket/],
    ['unsorted buckets', () => new Histogram({ name: 'h', help: '', buckets: [1, 1] }), /strictly increasing/],
    ['infinite bucket', () => new Histogram({ name: 'h', help: '', buckets: [1, Infinity] }), /must be finite/],
    [
      'same name twice',
      () => {
        const r = new Registry();
        r.counter({ name: 'x', help: '' });
        r.gauge({ name: 'x', help: '' });
      },
      /declared twice/,
    ],
  ])('refuses %s', (_, build, message) => {
    expect(build).toThrow(message);
  });

  it('refuses a missing label and a negative counter increment', () => {
    const c = new Counter<'a' | 'b'>({ name: 'c', help: '', labelNames: ['a', 'b'] });
    expect(() => c.inc({ a: 'x' } as unknown as { a: string; b: string })).toThrow(/label "b" is missing/);
    expect(() => c.inc({ a: 'x', b: 'y' }, -1)).toThrow(/only goes up/);
  });

  it('times with an injected clock', () => {
    let t = 1000;
    const h = new Histogram({ name: 'h', help: '', buckets: [1] });
    const stop = h.startTimer({}, () => t);
    t += 1500;
    expect(stop()).toBe(1.5);
    expect(renderPrometheus([h.collect()])).toContain('h_sum 1.5\n');
  });
});

describe('boundedLabel', () => {
  it.each([
    ['AccessDeniedException', 'AccessDeniedException'],
    ['us-gov-west-1', 'us-gov-west-1'],
    ['404', '404'],
    ['', 'none'],
    ['has space', 'other'],
    ['x'.repeat(65), 'other'],
    ['eyJhbGciOi.eyJzdWIi.sig/with/slashes', 'other'],
  ])('%j → %j', (input, out) => {
    expect(boundedLabel(input)).toBe(out);
  });
});

const fixedProcess = {
  processStats: () => ({ residentMemoryBytes: 52428800, heapUsedBytes: 1048576, cpuMicros: 2_500_000 }),
  startTimeSeconds: 1700000000,
  buildInfo: { version: '1.2.3', nodeVersion: 'v24.0.0' },
};

describe('createProviderMetrics', () => {
  it('exposes build info and process metrics computed at scrape time', () => {
    const m = createProviderMetrics({ objectNames: false, ...fixedProcess });
    expect(renderPrometheus(m.registry)).toBe(
      [
        '# HELP csi_provider_aws_mounts_in_flight Mount requests being worked on now.',
        '# TYPE csi_provider_aws_mounts_in_flight gauge',
        'csi_provider_aws_mounts_in_flight 0',
        '# HELP csi_provider_aws_mounts_waiting Mount requests of mounts_in_flight that wait for a working slot ' +
          '(admission queue).',
        '# TYPE csi_provider_aws_mounts_waiting gauge',
        'csi_provider_aws_mounts_waiting 0',
        '# HELP csi_provider_aws_build_info Always 1; the labels name the provider version and the Node.js version.',
        '# TYPE csi_provider_aws_build_info gauge',
        'csi_provider_aws_build_info{version="1.2.3",node_version="v24.0.0"} 1',
        '# HELP csi_provider_aws_grpc_connections Connections open on the provider socket.',
        '# TYPE csi_provider_aws_grpc_connections gauge',
        'csi_provider_aws_grpc_connections 0',
        '# HELP csi_provider_aws_grpc_request_bytes_arriving Bytes received of requests on the provider socket that ' +
          'have not arrived whole yet (bounded by the receive budget).',
        '# TYPE csi_provider_aws_grpc_request_bytes_arriving gauge',
        'csi_provider_aws_grpc_request_bytes_arriving 0',
        '# HELP process_resident_memory_bytes Resident memory size in bytes.',
        '# TYPE process_resident_memory_bytes gauge',
        'process_resident_memory_bytes 52428800',
        '# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.',
        '# TYPE process_cpu_seconds_total counter',
        'process_cpu_seconds_total 2.5',
        '# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.',
        '# TYPE process_start_time_seconds gauge',
        'process_start_time_seconds 1700000000',
        '# HELP nodejs_heap_used_bytes V8 heap in use, in bytes.',
        '# TYPE nodejs_heap_used_bytes gauge',
        'nodejs_heap_used_bytes 1048576',
        '',
      ].join('\n'),
    );
  });

  it('reads real process figures and the package version by default', () => {
    const text = renderPrometheus(createProviderMetrics({ objectNames: false }).registry);
    expect(text).toMatch(/\nprocess_resident_memory_bytes [1-9]\d*\n/);
    expect(text).toMatch(/\nnodejs_heap_used_bytes [1-9]\d*\n/);
    expect(text).toContain(`node_version="${process.version}"`);
    expect(text).toMatch(/build_info\{version="\d+\.\d+\.\d+[^"]*"/);
  });

  it('records a mount: in flight while running, then count and duration', () => {
    let t = 0;
    const m = createProviderMetrics({ objectNames: false, now: () => t, ...fixedProcess });
    const finishA = m.startMount();
    const finishB = m.startMount();
    expect(m.mountsInFlight.value({})).toBe(2);
    t = 20;
    finishA({ code: 'OK' });
    finishA({ code: 'OK' }); // a second call is ignored
    t = 3000;
    finishB({ code: 'PERMISSION_DENIED', reason: 'AccessDenied' });
    expect(m.mountsInFlight.value({})).toBe(0);
    const text = renderPrometheus(m.registry);
    expect(text).toContain(
      'csi_provider_aws_mounts_total{outcome="error",code="PERMISSION_DENIED",reason="AccessDenied"} 1\n' +
        'csi_provider_aws_mounts_total{outcome="success",code="OK",reason=""} 1\n',
    );
    expect(text).toContain('csi_provider_aws_mount_duration_seconds_bucket{outcome="success",le="0.025"} 1\n');
    expect(text).toContain('csi_provider_aws_mount_duration_seconds_bucket{outcome="success",le="0.01"} 0\n');
    expect(text).toContain('csi_provider_aws_mount_duration_seconds_sum{outcome="error"} 3\n');
    expect(text).toContain('csi_provider_aws_mount_duration_seconds_bucket{outcome="error",le="30"} 1\n');
  });

  it('records AWS calls, caches, exchanges, Kubernetes requests with bounded labels', () => {
    let t = 0;
    const m = createProviderMetrics({ objectNames: false, now: () => t, ...fixedProcess });
    const done = m.startAwsCall('secretsmanager', 'GetSecretValue', 'us-east-1');
    t = 50;
    done();
    m.startAwsCall('sts', 'AssumeRoleWithWebIdentity', 'not a region!')({ code: 'InvalidIdentityToken' });
    m.startAwsCall('ssm', 'GetParameters', 'eu-west-1')({ code: undefined });
    m.awsCall('ssm', 'GetParameters', 'eu-west-1', 'error', 'Throttling exception!', 0.2);
    m.awsCall('secretsmanager', 'GetSecretValue', 'us-east-1', 'success', 'OK', 2);
    m.cacheRequest('credentials', true);
    m.cacheRequest('credentials', false);
    m.credentialExchange('irsa', 'success');
    m.kubernetesRequest('serviceaccounts', 404);
    m.kubernetesRequest('pods', 'timeout');
    const text = renderPrometheus(m.registry);
    for (const line of [
      'csi_provider_aws_aws_calls_total{service="secretsmanager",operation="GetSecretValue",' +
        'region="us-east-1",outcome="success",code="OK"} 2',
      'csi_provider_aws_aws_calls_total{service="ssm",operation="GetParameters",' +
        'region="eu-west-1",outcome="error",code="other"} 1',
      'csi_provider_aws_aws_call_duration_seconds_bucket{service="secretsmanager",operation="GetSecretValue",' +
        'le="2.5"} 2',
      'csi_provider_aws_aws_call_duration_seconds_sum{service="secretsmanager",operation="GetSecretValue"} 2.05',
      'csi_provider_aws_aws_calls_total{service="sts",operation="AssumeRoleWithWebIdentity",' +
        'region="other",outcome="error",code="InvalidIdentityToken"} 1',
      'csi_provider_aws_aws_calls_total{service="ssm",operation="GetParameters",' +
        'region="eu-west-1",outcome="error",code="unknown"} 1',
      'csi_provider_aws_aws_call_duration_seconds_bucket{service="secretsmanager",operation="GetSecretValue",' +
        'le="0.05"} 1',
      'csi_provider_aws_aws_call_duration_seconds_bucket{service="secretsmanager",operation="GetSecretValue",' +
        'le="0.025"} 0',
      'csi_provider_aws_cache_requests_total{cache="credentials",result="hit"} 1',
      'csi_provider_aws_cache_requests_total{cache="credentials",result="miss"} 1',
      'csi_provider_aws_credential_exchanges_total{method="irsa",outcome="success"} 1',
      'csi_provider_aws_kubernetes_requests_total{resource="pods",code="timeout"} 1',
      'csi_provider_aws_kubernetes_requests_total{resource="serviceaccounts",code="404"} 1',
    ]) {
      expect(text).toContain(line + '\n');
    }
  });

  it.each([
    [false, 'csi_provider_aws_objects_fetched_total{type="secretsmanager",outcome="success"} 2\n'],
    [true, 'csi_provider_aws_objects_fetched_total{type="secretsmanager",outcome="success",object="prod/db"} 2\n'],
  ])('objects_fetched_total with objectNames=%s', (objectNames, line) => {
    const m = createProviderMetrics({ objectNames, ...fixedProcess });
    m.objectFetched('secretsmanager', 'success', 'prod/db');
    m.objectFetched('secretsmanager', 'success', 'prod/db');
    const text = renderPrometheus(m.registry);
    expect(text).toContain(line);
    if (!objectNames) expect(text).not.toContain('prod/db');
  });

  it('exposes only names the contract lists (no pod, no secret label)', () => {
    const m = createProviderMetrics({ objectNames: true, ...fixedProcess });
    m.startMount()({ code: 'INTERNAL', reason: 'x' });
    m.startAwsCall('pod-identity', 'GetCredentials', 'us-east-1')();
    m.cacheRequest('value', false);
    m.credentialExchange('pod-identity', 'error');
    m.kubernetesRequest('nodes', 200);
    m.objectFetched('ssmparameter', 'error', 'p');
    const labels = new Set(m.registry.collect().flatMap((f) => f.samples.flatMap((s) => s.labels.map(([k]) => k))));
    expect(labels.size).toBeGreaterThan(10);
    expect([...labels].filter((l) => /pod|secret|token|value/i.test(l))).toEqual([]);
  });
});

describe('Gauge and Counter values', () => {
  it('reads series values', () => {
    const g = new Gauge<'k'>({ name: 'g', help: '', labelNames: ['k'] });
    g.set({ k: 'a' }, 5);
    expect(g.value({ k: 'a' })).toBe(5);
    expect(g.value({ k: 'b' })).toBe(0);
    const c = new Counter({ name: 'c', help: '' });
    c.inc({});
    c.reset();
    expect(c.value({})).toBe(0);
  });
});

describe('socket metrics', () => {
  it('counts connections accepted and refused, calls refused by reason, and reads open connections at scrape', () => {
    const m = createProviderMetrics({ objectNames: false, ...fixedProcess });
    let open = 3;
    m.watchTransport(() => ({ connections: open, arrivingBytes: 4096 }));
    m.connectionAccepted();
    m.connectionAccepted();
    m.transportRefused('connections');
    m.transportRefused('calls_in_flight');
    m.transportRefused('request_too_slow');
    open = 2;
    const text = renderPrometheus(m.registry);
    for (const line of [
      'csi_provider_aws_grpc_connections 2',
      'csi_provider_aws_grpc_request_bytes_arriving 4096',
      'csi_provider_aws_grpc_connections_total{outcome="accepted"} 2',
      'csi_provider_aws_grpc_connections_total{outcome="refused"} 1',
      'csi_provider_aws_grpc_calls_refused_total{reason="calls_in_flight"} 1',
      'csi_provider_aws_grpc_calls_refused_total{reason="request_too_slow"} 1',
    ])
      expect(text).toContain(line + '\n');
  });
});

describe('series cap', () => {
  it('a family holds at most maxSeries label sets; further updates go to the all-"other" set and are reported', () => {
    const r = new Registry({ maxSeries: 3 });
    const dropped: string[] = [];
    r.onOverflow((m) => dropped.push(m));
    const c = r.counter<'code' | 'region'>({ name: 'calls_total', help: 'Calls.', labelNames: ['code', 'region'] });
    for (let i = 0; i < 10; i++) c.inc({ code: `E${i}`, region: 'r' });
    c.inc({ code: 'E0', region: 'r' }); // an existing set keeps counting in its own series
    expect(c.seriesCount).toBe(4);
    expect(renderPrometheus(r)).toBe(
      '# HELP calls_total Calls.\n# TYPE calls_total counter\n' +
        'calls_total{code="E0",region="r"} 2\ncalls_total{code="E1",region="r"} ' +
        '1\ncalls_total{code="E2",region="r"} 1\ncalls_total{code="other",region="other"} 7\n',
    );
    expect(dropped).toEqual(new Array(7).fill('calls_total'));
  });

  it('caps histograms too, and leaves label-less families alone', () => {
    const r = new Registry({ maxSeries: 2 });
    const h = r.histogram<'op'>({ name: 'h', help: '', labelNames: ['op'], buckets: [1] });
    for (const op of ['a', 'b', 'c', 'd']) h.observe({ op }, 0.5);
    expect(renderPrometheus(r)).toContain('h_count{op="other"} 2\n');
    expect(h.seriesCount).toBe(3);
    const g = r.gauge({ name: 'g', help: '' });
    g.set({}, 1);
    expect(g.seriesCount).toBe(1);
  });

  it('defaults to 1,000 label sets per family', () => {
    expect(DEFAULT_MAX_SERIES).toBe(1000);
    const c = new Counter<'k'>({ name: 'c', help: '', labelNames: ['k'] });
    for (let i = 0; i < 1500; i++) c.inc({ k: `v${i}` });
    expect(c.seriesCount).toBe(1001);
  });

  it('refuses a cap that is not a positive integer', () => {
    expect(() => new Counter({ name: 'c', help: '', maxSeries: 0 })).toThrow(/maxSeries/);
  });

  it('provider metrics: 500 AWS error codes give at most maxSeries series, a valid scrape, the drop counted', () => {
    const m = createProviderMetrics({ objectNames: true, maxSeries: 50, ...fixedProcess });
    for (let i = 0; i < 500; i++) {
      m.awsCall('secretsmanager', 'GetSecretValue', 'us-east-1', 'error', `Code${i}Exception`, 0.01);
      m.objectFetched('secretsmanager', 'error', `tenant-${i}/secret`);
    }
    const text = renderPrometheus(m.registry);
    const calls = text.split('\n').filter((l) => l.startsWith('csi_provider_aws_aws_calls_total{'));
    expect(calls).toHaveLength(51);
    expect(text).toContain(
      'csi_provider_aws_aws_calls_total{service="other",operation="other",' +
        'region="other",outcome="other",code="other"} 450\n',
    );
    expect(text).toContain(
      'csi_provider_aws_metric_series_dropped_total{metric="csi_provider_aws_aws_calls_total"} 450\n',
    );
    expect(text).toContain(
      'csi_provider_aws_metric_series_dropped_total{metric="csi_provider_aws_objects_fetched_total"} 450\n',
    );
    // Exposition format: every line a comment or `name{labels} value`, one HELP and TYPE per family.
    const families = new Set<string>();
    for (const line of text.trimEnd().split('\n')) {
      const type = /^# TYPE (\S+) (counter|gauge|histogram)$/.exec(line);
      if (type) {
        expect(families.has(type[1] as string), line).toBe(false);
        families.add(type[1] as string);
        continue;
      }
      expect(line, line).toMatch(
        /^(# HELP \S+ .*|[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? \S+)$/,
      );
    }
  });

  it('provider metrics: without overflow there is no dropped-series sample', () => {
    const m = createProviderMetrics({ objectNames: false, ...fixedProcess });
    m.awsCall('ssm', 'GetParameters', 'us-east-1', 'success', 'OK', 0.01);
    expect(renderPrometheus(m.registry)).not.toContain('metric_series_dropped_total');
  });
});

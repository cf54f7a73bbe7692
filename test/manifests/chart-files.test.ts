// The chart's operator-facing files, checked with the real Helm: values.schema.json refuses wrong
// values at install and accepts every documented one, the README's values table lists every key,
// NOTES.txt says how to check the provider is up, and the optional dashboard and alerts query only
// metrics the provider exports.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createProviderMetrics } from '../../src/observability/metrics.js';
import { CHART_DIR, cleanUpHelm, parseYaml11, readDefaultValues, renderChart, type K8sObject } from './helm.js';
import { validateObject } from './validate.js';

afterAll(cleanUpHelm);

const ascpValues = parseYaml11(readFileSync(new URL('testdata/ascp-values.yaml', import.meta.url), 'utf8'));
const monitoring = { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } };

/** Every leaf key path of a values tree (maps the chart owns are walked; Kubernetes shapes are leaves). */
function keyPaths(v: unknown, prefix = ''): string[] {
  const opaque = [
    'affinity',
    'resources',
    'securityContext',
    'podSecurityContext',
    'dnsConfig',
    'updateStrategy',
    'livenessProbe',
    'readinessProbe',
    'commonLabels',
    'podLabels',
    'podAnnotations',
    'nodeSelector',
    'secrets-store-csi-driver.linux',
    'secrets-store-csi-driver.syncSecret',
    'metrics.serviceMonitor.labels',
    'metrics.prometheusRule.labels',
    'metrics.dashboard.labels',
    'metrics.dashboard.annotations',
  ];
  if (v === null || typeof v !== 'object' || Array.isArray(v) || opaque.includes(prefix)) return [prefix];
  return Object.entries(v).flatMap(([k, x]) => keyPaths(x, prefix ? `${prefix}.${k}` : k));
}

describe('values.schema.json', () => {
  it.each<[string, unknown, RegExp]>([
    ['a misspelt top-level key', { awsregion: 'eu-west-1' }, /additional properties 'awsregion' not allowed/],
    [
      'a misspelt nested key',
      { metrics: { enabeld: true } },
      /at '\/metrics': additional properties 'enabeld' not allowed/,
    ],
    [
      'a log level the provider does not ' + 'know',
      { logLevel: 'verbose' },
      /at '\/logLevel': value must be one of 'debug', 'info', 'warn', 'error'/,
    ],
    ['a boolean as a string', { driverWritesSecrets: 'yes' }, /at '\/driverWritesSecrets': got string, want boolean/],
    ['a duration without a unit', { cacheTtl: '300' }, /at '\/cacheTtl'/],
    ['a relative socket directory', { providerVolume: 'var/run/x' }, /at '\/providerVolume'/],
    ['a port out of range', { health: { port: 70000 } }, /at '\/health\/port'/],
    ['an image pull policy that does not exist', { image: { pullPolicy: 'Sometimes' } }, /at '\/image\/pullPolicy'/],
    ['a qps that is not a number', { k8sThrottlingParams: { qps: 'fast' } }, /at '\/k8sThrottlingParams\/qps'/],
    ['a size the provider does not read', { mounts: { maxBytes: '4MB' } }, /at '\/mounts\/maxBytes'/],
    ['no mount at a time', { mounts: { maxConcurrent: 0 } }, /at '\/mounts\/maxConcurrent'/],
    [
      'a driver value of the wrong type',
      { 'secrets-store-csi-driver': { syncSecret: { enabled: 'true' } } },
      /syncSecret\/enabled/,
    ],
  ])('refuses %s, at install', (_name, values, message) => {
    expect(() => renderChart({ values: [values] })).toThrow(message);
  });

  it.each<[string, unknown]>([
    ['the ASCP values file', ascpValues],
    ['ASCP keys we ignore (rbac.pspEnabled of old ASCP files)', { rbac: { pspEnabled: false } }],
    [
      'numbers where ASCP files write numbers',
      { image: { tag: 2 }, k8sThrottlingParams: { qps: 20, burst: 40 }, port: 9000 },
    ],
    [
      'every value of our own',
      {
        metrics: {
          enabled: true,
          objectNames: true,
          expose: true,
          networkPolicy: { enabled: true, from: [monitoring] },
          serviceMonitor: { enabled: true, interval: '30s', scrapeTimeout: '5s', labels: { release: 'prom' } },
          prometheusRule: { enabled: true, labels: { release: 'prom' }, mountErrorRatio: 0.05, for: '5m' },
          dashboard: { enabled: true, labels: { grafana_dashboard: '1' }, annotations: { folder: 'Secrets' } },
        },
        mounts: { maxConcurrent: 4, maxQueued: 100, maxBytes: '8Mi', maxFiles: 100 },
        health: { port: 8991 },
        logLevel: 'debug',
        logFormat: 'text',
        cacheTtl: '1m30s',
        podIdentityEndpoint: 'http://127.0.0.1:2703/v1/credentials',
        podIdentityHttpTimeout: '250ms',
        env: [{ name: 'HTTPS_PROXY', value: 'http://proxy:3128' }],
        extraArgs: ['--max-concurrent-mounts=4'],
        livenessProbe: null,
        readinessProbe: null,
        podSecurityContext: { runAsUser: 0 },
        kubeletPath: '/var/lib/k0s/kubelet',
      },
    ],
    ['the driver installed separately', { 'secrets-store-csi-driver': { install: false } }],
  ])('accepts %s', (_name, values) => {
    const { objects } = renderChart({ values: [values] });
    expect(objects.flatMap(validateObject)).toEqual([]);
  });

  it('describes every key of values.yaml (and no key values.yaml lacks)', () => {
    const schema = JSON.parse(readFileSync(join(CHART_DIR, 'values.schema.json'), 'utf8')) as Record<string, unknown>;
    const inSchema = (path: string): boolean => {
      let node: unknown = schema;
      for (const k of path.split('.')) {
        const props = (node as { properties?: Record<string, unknown> }).properties;
        if (!props || !(k in props)) return false;
        node = props[k];
      }
      return true;
    };
    expect(keyPaths(readDefaultValues()).filter((p) => !inSchema(p))).toEqual([]);
  });
});

describe('chart README', () => {
  const readme = readFileSync(join(CHART_DIR, 'README.md'), 'utf8');
  it('has a values table row for every key of values.yaml, with its default', () => {
    const rows = new Map([...readme.matchAll(/^\| `([^`]+)` \| ([^|]*) \| `([^`]*)` \|/gm)].map((m) => [m[1], m[3]]));
    const defaults = readDefaultValues();
    const missing: string[] = [];
    const wrong: string[] = [];
    for (const path of keyPaths(defaults)) {
      if (!rows.has(path)) {
        missing.push(path);
        continue;
      }
      const value = path.split('.').reduce<unknown>((cur, k) => (cur as Record<string, unknown>)[k], defaults);
      if (rows.get(path) !== JSON.stringify(value))
        wrong.push(`${path}: table ${rows.get(path)}, values.yaml ${JSON.stringify(value)}`);
    }
    expect(missing).toEqual([]);
    expect(wrong).toEqual([]);
  });
  it('says how to install from a checkout with the pinned driver', () => {
    expect(readme).toContain('helm dependency build');
    expect(readme).toContain('1.6.0');
  });
});

describe('NOTES.txt', () => {
  it('says how to check the provider is up, and what to install when the chart does not install the driver', () => {
    const { notes } = renderChart({
      releaseName: 'r',
      namespace: 'ns',
      values: [{ 'secrets-store-csi-driver': { install: false } }],
    });
    expect(notes).toContain('kubectl -n ns rollout status daemonset/r-csi-secrets-provider-aws');
    expect(notes).toContain('/readyz');
    expect(notes).toContain('tokenRequests');
    expect(notes).toContain('syncSecret');
  });
});

describe('monitoring (optional)', () => {
  const values = {
    metrics: {
      serviceMonitor: { enabled: true },
      networkPolicy: { from: [monitoring] },
      prometheusRule: { enabled: true },
      dashboard: { enabled: true },
    },
  };
  const { objects } = renderChart({ values: [values], releaseName: 'r', namespace: 'ns' });
  // Every family the provider declares (families with no series yet included), with histogram suffixes.
  const exported = new Set(
    createProviderMetrics({ objectNames: false })
      .registry.collect()
      .flatMap((f) => (f.type === 'histogram' ? [`${f.name}_bucket`, `${f.name}_sum`, `${f.name}_count`] : [f.name])),
  );
  const ours = (expr: string): string[] =>
    [...expr.matchAll(/\b(csi_provider_aws_\w+|process_\w+|nodejs_\w+)/g)].map((m) => m[1]!);

  it('are off by default', () => {
    expect(renderChart().objects.map((o) => o.kind)).not.toContain('PrometheusRule');
    expect(renderChart().objects.filter((o) => o.kind === 'ConfigMap')).toEqual([]);
  });

  it('the PrometheusRule alerts only on metrics the provider exports', () => {
    const rule = objects.find((o) => o.kind === 'PrometheusRule') as K8sObject & {
      spec: { groups: { rules: { alert: string; expr: string }[] }[] };
    };
    const rules = rule.spec.groups.flatMap((g) => g.rules);
    expect(rules.map((r) => r.alert)).toEqual([
      'CsiProviderAwsMountsFailing',
      'CsiProviderAwsMountsSlow',
      'CsiProviderAwsThrottled',
      'CsiProviderAwsAtCapacity',
      'CsiProviderAwsPodsUnavailable',
    ]);
    const used = rules.flatMap((r) => ours(r.expr));
    expect(used.length).toBeGreaterThan(4);
    expect(used.filter((m) => !exported.has(m))).toEqual([]);
    expect(rules[0]!.expr).toContain('> 0.1');
    expect(rules[4]!.expr).toContain('daemonset="r-csi-secrets-provider-aws"');
  });

  it('the dashboard ConfigMap holds valid Grafana JSON querying only exported metrics', () => {
    const cm = objects.find((o) => o.kind === 'ConfigMap') as K8sObject & { data: Record<string, string> };
    expect(cm.metadata.labels?.grafana_dashboard).toBe('1');
    const dash = JSON.parse(cm.data['csi-secrets-provider-aws.json']!) as {
      uid: string;
      panels: { title: string; targets: { expr: string }[] }[];
    };
    expect(dash.uid).toBe('csi-secrets-provider-aws');
    const used = dash.panels.flatMap((p) => p.targets.flatMap((t) => ours(t.expr)));
    expect(used.length).toBeGreaterThan(10);
    expect(used.filter((m) => !exported.has(m))).toEqual([]);
    expect(dash.panels.map((p) => p.title)).toContain('Failed mounts by code and reason');
  });

  it('the metric check can fail: a made-up name is not exported', () => {
    expect(exported.has('csi_provider_aws_mounts_total')).toBe(true);
    expect(exported.has('csi_provider_aws_mount_failures_total')).toBe(false);
  });
});

/**
 * Metrics and health end to end: mounts through the real socket against the emulator, then
 * `/metrics` scraped over HTTP must show what happened (mounts by outcome and code, AWS calls as the
 * emulator counted them, credential exchanges, Kubernetes requests, caches, objects, in-flight back
 * to 0, duration counts); `/readyz` answers 200 while serving; after stop the socket is gone and a
 * new probe fails.
 */
import { existsSync } from 'node:fs';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { probeSocket } from '../../src/server/index.js';
import { REGION, startHarness, type Harness } from '../helpers/harness.js';

const P = 'csi_provider_aws_';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Prometheus text format 0.0.4 → samples (HELP/TYPE lines skipped). */
function parse(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g))
      labels[l[1] ?? ''] = (l[2] ?? '').replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    out.push({ name: m[1] ?? '', labels, value: Number(m[3]) });
  }
  return out;
}

/** Sum of the samples of `name` whose labels include `labels`. */
function total(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  return samples
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((a, s) => a + s.value, 0);
}

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => h?.close());

async function scrape(): Promise<{ samples: Sample[]; text: string; type: string | null }> {
  const url = h.provider.metricsUrl;
  if (url === undefined) throw new Error('harness has no metrics URL');
  const res = await fetch(url);
  expect(res.status).toBe(200);
  const text = await res.text();
  return { samples: parse(text), text, type: res.headers.get('content-type') };
}

async function refusal(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    return status[(err as { code: number }).code] ?? 'UNKNOWN';
  }
  throw new Error('mount succeeded but was expected to fail');
}

describe('metrics after real mounts', () => {
  it('counters follow mounts, AWS calls, credential exchanges, Kubernetes requests, caches and objects', async () => {
    const before = (await scrape()).samples;
    expect(total(before, `${P}mounts_total`)).toBe(0);
    expect(total(before, `${P}mounts_in_flight`)).toBe(0);
    expect(total(before, `${P}build_info`)).toBe(1);

    h.emu.putSecret(REGION, 'obs/db', '{"user":"app"}');
    h.emu.putParameter(REGION, '/obs/flag', 'on');
    const pod = h.pod();
    const objects = `
- {objectName: obs/db, objectType: secretsmanager}
- {objectName: /obs/flag, objectType: ssmparameter, objectAlias: flag}
`;
    // Two successes for one pod: the second reuses its credentials (cache hit, no new exchange).
    await h.client.mount({ attributes: pod.attributes({ region: REGION, objects }), targetPath: await h.target() });
    await h.client.mount({ attributes: pod.attributes({ region: REGION, objects }), targetPath: await h.target() });
    // Failures: an AWS error (secret missing) and a refusal before any call (attributes not JSON).
    const missing = await refusal(
      h.client.mount({
        attributes: pod.attributes({
          region: REGION,
          objects: '- {objectName: obs/missing, objectType: secretsmanager}',
        }),
        targetPath: await h.target(),
      }),
    );
    const invalid = await refusal(h.client.mount({ attributes: 'not json', targetPath: await h.target() }));
    expect(invalid).toBe('INVALID_ARGUMENT');

    const { samples, type } = await scrape();
    expect(type).toMatch(/^text\/plain; version=0\.0\.4/);

    // Mounts by outcome and code; in flight back to 0; one duration observation per mount.
    expect(total(samples, `${P}mounts_total`, { outcome: 'success', code: 'OK', reason: '' })).toBe(2);
    expect(total(samples, `${P}mounts_total`, { outcome: 'error', code: missing })).toBe(1);
    expect(total(samples, `${P}mounts_total`, { outcome: 'error', code: 'INVALID_ARGUMENT' })).toBe(1);
    expect(total(samples, `${P}mounts_total`)).toBe(4);
    expect(total(samples, `${P}mounts_in_flight`)).toBe(0);
    expect(total(samples, `${P}mount_duration_seconds_count`, { outcome: 'success' })).toBe(2);
    expect(total(samples, `${P}mount_duration_seconds_count`, { outcome: 'error' })).toBe(2);
    expect(total(samples, `${P}mount_duration_seconds_bucket`, { outcome: 'success', le: '+Inf' })).toBe(2);
    expect(total(samples, `${P}mount_duration_seconds_sum`, { outcome: 'success' })).toBeGreaterThan(0);

    // AWS calls: the provider's count per service and operation is what the emulator answered.
    for (const [service, operation] of [
      ['secretsmanager', 'GetSecretValue'],
      ['ssm', 'GetParameters'],
      ['sts', 'AssumeRoleWithWebIdentity'],
    ] as const) {
      const seen = h.emu.callCount({ service, operation });
      expect(seen, `${service} ${operation}`).toBeGreaterThan(0);
      expect(total(samples, `${P}aws_calls_total`, { service, operation }), `${service} ${operation}`).toBe(seen);
      expect(total(samples, `${P}aws_call_duration_seconds_count`, { service, operation })).toBe(seen);
    }
    expect(
      total(samples, `${P}aws_calls_total`, {
        service: 'secretsmanager',
        operation: 'GetSecretValue',
        region: REGION,
        outcome: 'success',
        code: 'OK',
      }),
    ).toBe(2);
    expect(
      total(samples, `${P}aws_calls_total`, {
        service: 'secretsmanager',
        operation: 'GetSecretValue',
        outcome: 'error',
        code: 'ResourceNotFoundException',
      }),
    ).toBe(1);
    expect(
      total(samples, `${P}aws_calls_total`, {
        service: 'sts',
        operation: 'AssumeRoleWithWebIdentity',
        region: REGION,
        outcome: 'success',
        code: 'OK',
      }),
    ).toBe(1);

    // One IRSA exchange for the pod, however many mounts; the other mounts hit the credential cache.
    expect(total(samples, `${P}credential_exchanges_total`, { method: 'irsa', outcome: 'success' })).toBe(1);
    expect(total(samples, `${P}credential_exchanges_total`, { outcome: 'error' })).toBe(0);
    expect(total(samples, `${P}cache_requests_total`, { cache: 'credentials', result: 'miss' })).toBe(1);
    // (a mount may look its credentials up more than once: per service it calls)
    expect(total(samples, `${P}cache_requests_total`, { cache: 'credentials', result: 'hit' })).toBeGreaterThanOrEqual(
      2,
    );

    // Kubernetes: the service account GET (role annotation) answered 200, as the emulator saw it.
    expect(
      total(samples, `${P}kubernetes_requests_total`, { resource: 'serviceaccounts', code: '200' }),
    ).toBeGreaterThan(0);
    expect(total(samples, `${P}kubernetes_requests_total`)).toBe(h.emu.callCount({ service: 'k8s' }));

    // Objects by type and outcome; no object name (--metrics-object-names is off by default).
    expect(total(samples, `${P}objects_fetched_total`, { type: 'secretsmanager', outcome: 'success' })).toBe(2);
    expect(total(samples, `${P}objects_fetched_total`, { type: 'ssmparameter', outcome: 'success' })).toBe(2);
    expect(total(samples, `${P}objects_fetched_total`, { type: 'secretsmanager', outcome: 'error' })).toBe(1);
    expect(samples.filter((s) => 'object' in s.labels)).toEqual([]);
  });

  it('no secret value, token, pod name or object name in the scrape', async () => {
    h.emu.putSecret(REGION, 'obs/private', 'sup3r-s3cret-value');
    const pod = h.pod();
    await h.client.mount({
      attributes: pod.attributes({
        region: REGION,
        objects: '- {objectName: obs/private, objectType: secretsmanager}',
      }),
      targetPath: await h.target(),
    });
    const { text } = await scrape();
    for (const needle of [
      'obs/private',
      'sup3r-s3cret-value',
      pod.irsaToken,
      pod.podIdentityToken,
      pod.pod,
      pod.serviceAccount,
    ])
      expect(text).not.toContain(needle);
  });

  it('with --metrics-object-names, objects are counted by name (never by value)', async () => {
    const named = await startHarness({ flags: ['--metrics-object-names'] });
    try {
      named.emu.putSecret(REGION, 'obs/named', 'n4med-s3cret-value');
      const pod = named.pod();
      await named.client.mount({
        attributes: pod.attributes({
          region: REGION,
          objects: '- {objectName: obs/named, objectType: secretsmanager}',
        }),
        targetPath: await named.target(),
      });
      const text = await fetch(named.provider.metricsUrl ?? '').then((r) => r.text());
      expect(
        total(parse(text), `${P}objects_fetched_total`, {
          type: 'secretsmanager',
          outcome: 'success',
          object: 'obs/named',
        }),
      ).toBe(1);
      expect(text).not.toContain('n4med-s3cret-value');
    } finally {
      await named.close();
    }
  });

  it('every declared family is present in the scrape', async () => {
    const { text } = await scrape();
    for (const family of [
      'mounts_total',
      'mount_duration_seconds',
      'mounts_in_flight',
      'mounts_waiting',
      'aws_calls_total',
      'aws_call_duration_seconds',
      'cache_requests_total',
      'credential_exchanges_total',
      'kubernetes_requests_total',
      'objects_fetched_total',
      'build_info',
    ]) {
      expect(text, family).toContain(`# TYPE ${P}${family} `);
    }
    expect(text).toContain('# TYPE process_resident_memory_bytes gauge');
  });
});

describe('health', () => {
  it('/healthz and /readyz answer 200 while serving', async () => {
    const base = h.provider.healthUrl;
    if (base === undefined) throw new Error('harness has no health URL');
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
  });

  it('after stop: the socket is gone, a new probe fails, the health port is closed', async () => {
    const h2 = await startHarness();
    try {
      const { socketPath } = h2;
      const base = h2.provider.healthUrl;
      if (base === undefined) throw new Error('harness has no health URL');
      await expect(probeSocket(socketPath, AbortSignal.timeout(5000))).resolves.toBeUndefined();
      expect((await fetch(`${base}/readyz`)).status).toBe(200);

      h2.client.close();
      await h2.provider.stop();
      expect(existsSync(socketPath)).toBe(false);
      await expect(probeSocket(socketPath, AbortSignal.timeout(5000))).rejects.toThrow();
      await expect(fetch(`${base}/readyz`)).rejects.toThrow();
    } finally {
      await h2.close();
    }
  });
});

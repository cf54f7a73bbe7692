/**
 * A broken or hostile upstream, through the socket: the real server, with the emulator playing
 * Secrets Manager, SSM, STS, the Pod Identity agent and the Kubernetes API. Answers of hundreds of
 * MiB, bodies that trickle in a byte at a time, bodies that are not the service's format, fields of
 * the wrong type, a role annotation that is not a role ARN. Each ends in a clear error naming the
 * service, the operation, the object and the region, before anything is written; the provider
 * keeps serving other pods (checked after every test); no text planted in an upstream body or a
 * wrong-typed field reaches a gRPC status or a log line (checked after every test).
 */
import { readFile, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { status } from '@grpc/grpc-js';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { KubeClient, loadKubeConfigFile } from '../../src/k8s/index.js';
import { REGION } from '../helpers/harness.js';
import { callsSince, listDir, startFaultHarness, withFault, type FaultHarness } from './fault-harness.js';
import { clearError, CODE_NAME, leaks, outcomeOf, watchProcess } from './hardening-helpers.js';

/** Planted in every hostile body and field: it must never come back. */
const MARK = 'hunter2-s3cr3t-UPSTREAM-MARK';
const MiB = 1024 * 1024;
const SM = (...names: string[]): string =>
  names.map((n) => `- {objectName: ${n}, objectType: secretsmanager}`).join('\n');
const SSM = (...names: string[]): string =>
  names.map((n) => `- {objectName: ${n}, objectType: ssmparameter}`).join('\n');

const watcher = watchProcess();
const report: string[] = [];
let h: FaultHarness;
/** Every refusal's message, for the leak scan. */
const errors: string[] = [];

beforeAll(async () => {
  // A short agent timeout keeps the agent's retry rounds (6) quick; the AWS limits are the defaults.
  h = await startFaultHarness({ flags: ['--pod-identity-http-timeout=1s'] });
  h.emu.putSecret(REGION, 'still-fine', 'fine');
});

afterAll(async () => {
  watcher.stop();
  if (report.length > 0) process.stdout.write(`[upstream]\n  ${report.join('\n  ')}\n`);
  await h?.close();
});

let seen = { logs: 0, errors: 0 };
beforeEach(() => {
  seen = { logs: h.logs.length, errors: errors.length };
});

afterEach(async () => {
  h.emu.clearFaults();
  // Nothing planted came back, in a status or a log line.
  expect(leaks({ logs: h.logs.slice(seen.logs), errors: errors.slice(seen.errors) }, [MARK, 'hunter2'])).toEqual([]);
  // The process still serves another pod, promptly.
  const other = h.pod();
  const target = await h.target();
  await h.client.mount(
    { attributes: other.attributes({ region: REGION, objects: SM('still-fine') }), targetPath: target },
    { deadlineMs: 10_000 },
  );
  expect(await readFile(path.join(target, 'still-fine'), 'utf8')).toBe('fine');
  expect(watcher.seen).toEqual([]);
});

/** A refused mount: a status chosen on purpose with a clear message, kept for the leak scan. */
async function refusal(
  attributes: Record<string, string>,
  targetPath: string,
  deadlineMs = 90_000,
): Promise<{ code: number; details: string }> {
  const o = await outcomeOf(h.client.mount({ attributes, targetPath }, { deadlineMs }));
  if (o.ok) throw new Error('expected the mount to be refused, and it succeeded');
  errors.push(o.details);
  expect(clearError(o)).toBeUndefined();
  return o;
}

function expectCode(e: { code: number; details: string }, code: number): void {
  expect(CODE_NAME[e.code], e.details).toBe(CODE_NAME[code]);
}

/** Peak memory of this process (provider, emulator and client in one) while `body` runs. */
async function peakMemory<T>(
  body: () => Promise<T>,
): Promise<{ result: T; before: NodeJS.MemoryUsage; peak: { rss: number; external: number; heapUsed: number } }> {
  (globalThis as { gc?: () => void }).gc?.();
  const before = process.memoryUsage();
  const peak = { rss: before.rss, external: before.external, heapUsed: before.heapUsed };
  const take = (): void => {
    const m = process.memoryUsage();
    peak.rss = Math.max(peak.rss, m.rss);
    peak.external = Math.max(peak.external, m.external);
    peak.heapUsed = Math.max(peak.heapUsed, m.heapUsed);
  };
  const timer = setInterval(take, 5);
  try {
    return { result: await body(), before, peak };
  } finally {
    clearInterval(timer);
    take();
  }
}

const mib = (n: number): string => `${(n / MiB).toFixed(0)} MiB`;

describe('answers larger than any AWS answer', () => {
  it.each([
    ['with a Content-Length (refused at the headers)', false],
    ['chunked (counted while reading, the socket closed at 1 MiB)', true],
  ])(
    'a 200 MiB Secrets Manager answer %s: INTERNAL naming service, operation, object and region; nothing written',
    async (how, chunked) => {
      h.emu.putSecret(REGION, 'flood', 'real value');
      const pod = h.pod();
      const target = await h.target();
      const attributes = pod.attributes({ region: REGION, objects: SM('flood') });
      // Warm: the SDK and the pipeline are loaded, so the figure below is the answer's alone.
      await h.client.mount({ attributes, targetPath: await h.target() });
      const mark = h.emu.calls.length;
      const t0 = performance.now();
      const {
        result: e,
        before,
        peak,
      } = await peakMemory(() =>
        withFault(
          h.emu,
          {
            service: 'secretsmanager',
            target: 'flood',
            bodyBytes: 200 * MiB,
            chunked,
            rawBody: `{"SecretString":"${MARK}`,
          },
          () => refusal(attributes, target),
        ),
      );
      report.push(
        `200 MiB answer ${how}: refused in ${((performance.now() - t0) / 1000).toFixed(1)} s; process ` +
          `RSS ${mib(before.rss)} → peak ${mib(peak.rss)}, ` +
          `external ${mib(before.external)} → ${mib(peak.external)}`,
      );
      expectCode(e, status.INTERNAL);
      expect(e.details).toContain('Secrets Manager GetSecretValue answered more than 1 MiB');
      expect(e.details).toContain('flood');
      expect(e.details).toContain(REGION);
      // A 200 answer that is too large is not retried.
      expect(callsSince(h.emu, mark, { service: 'secretsmanager' })).toHaveLength(1);
      expect(await listDir(target)).toEqual([]);
    },
    60_000,
  );

  it('12 mounts at once, each fed a chunked 200 MiB flood: all refused, each read stopped at its 1 MiB', async () => {
    const names = Array.from({ length: 12 }, (_, i) => `flood-many-${i}`);
    for (const n of names) h.emu.putSecret(REGION, n, 'real value');
    const mounts = await Promise.all(names.map(async (n) => ({ n, pod: h.pod(), target: await h.target() })));
    // Warm (SDK loaded, credentials cached), so the figure below is the answers' alone.
    await Promise.all(
      mounts.map(async (m) =>
        h.client.mount({
          attributes: m.pod.attributes({ region: REGION, objects: SM('still-fine') }),
          targetPath: await h.target(),
        }),
      ),
    );
    const { result, before, peak } = await peakMemory(() =>
      withFault(
        h.emu,
        {
          service: 'secretsmanager',
          operation: 'GetSecretValue',
          bodyBytes: 200 * MiB,
          chunked: true,
          rawBody: `{"SecretString":"${MARK}`,
        },
        () => Promise.all(mounts.map((m) => refusal(m.pod.attributes({ region: REGION, objects: SM(m.n) }), m.target))),
      ),
    );
    const own = result.filter(
      (e) => e.code === status.INTERNAL && e.details.includes('answered more than 1 MiB'),
    ).length;
    const shared = result.filter(
      (e) =>
        e.code === status.UNAVAILABLE &&
        e.details.includes('the AWS answers this provider was reading at once held more than 16 MiB'),
    ).length;
    report.push(
      `12 mounts at once, each a chunked 200 MiB answer: ${own} stopped at their own 1 MiB, ${shared} at the ` +
        `provider's 16 MiB; process RSS ${mib(before.rss)} → ` +
        `peak ${mib(peak.rss)}, external ${mib(before.external)} → ${mib(peak.external)}`,
    );
    expect(own + shared).toBe(12);
    result.forEach((e, i) => expect(e.details).toContain(names[i]));
    for (const m of mounts) expect(await listDir(m.target)).toEqual([]);
  }, 60_000);

  it('largest real answer fits: a 64 KiB secret of control characters (~400 KiB of JSON escapes) is read', async () => {
    const value = '\u0001'.repeat(64 * 1024);
    h.emu.putSecret(REGION, 'escaped', value);
    const pod = h.pod();
    const target = await h.target();
    await h.client.mount({
      attributes: pod.attributes({ region: REGION, objects: SM('escaped') }),
      targetPath: target,
    });
    expect(await readFile(path.join(target, 'escaped'), 'utf8')).toBe(value);
  });

  it('largest real batch fits: 20 secrets of 64 KiB (~2.2 MiB: quotes escaped, binary base64) are read', async () => {
    const names = Array.from({ length: 20 }, (_, i) => `big-${i}`);
    names.forEach((n, i) =>
      h.emu.putSecret(REGION, n, i % 2 === 0 ? '"'.repeat(64 * 1024) : Buffer.alloc(64 * 1024, i)),
    );
    const pod = h.pod({ allowBatch: true });
    const attributes = pod.attributes({ region: REGION, objects: SM(...names) });
    await h.client.mount({ attributes, targetPath: await h.target() });
    // The first mount learned that the role may batch: this one reads all 20 in one call (~2 MiB).
    const target = await h.target();
    const mark = h.emu.calls.length;
    await h.client.mount({ attributes, targetPath: target });
    expect(callsSince(h.emu, mark, { service: 'secretsmanager' }).map((c) => `${c.operation} ${c.status}`)).toEqual([
      'BatchGetSecretValue 200',
    ]);
    expect(await readFile(path.join(target, 'big-0'), 'utf8')).toBe('"'.repeat(64 * 1024));
    expect(await readFile(path.join(target, 'big-1'))).toEqual(Buffer.alloc(64 * 1024, 1));
  });

  it('the Pod Identity agent answering 1 MiB: INTERNAL, not retried, naming the agent and the limit', async () => {
    const pod = h.pod({ podIdentity: true });
    const mark = h.emu.calls.length;
    const e = await withFault(
      h.emu,
      { service: 'pod-identity', bodyBytes: MiB, chunked: true, rawBody: `{"Token":"${MARK}` },
      async () =>
        refusal(
          pod.attributes(
            { region: REGION, usePodIdentity: 'true', objects: SM('still-fine') },
            { tokens: 'pod-identity' },
          ),
          await h.target(),
        ),
    );
    expectCode(e, status.INTERNAL);
    expect(e.details).toMatch(
      /Pod Identity agent http:\/\/127\.0\.0\.1:\d+\/v1\/credentials: agent answered more than 64 KiB/,
    );
    expect(callsSince(h.emu, mark, { service: 'pod-identity' })).toHaveLength(1);
  });

  it('a 3 MiB service account from the Kubernetes API: INTERNAL naming the GET and limit; no STS call', async () => {
    const pod = h.pod();
    const mark = h.emu.calls.length;
    const e = await withFault(
      h.emu,
      {
        service: 'k8s',
        target: `/serviceaccounts/${pod.serviceAccount}`,
        bodyBytes: 3 * MiB,
        rawBody: `{"metadata":{"annotations":{"x":"${MARK}`,
      },
      async () => refusal(pod.attributes({ region: REGION, objects: SM('still-fine') }), await h.target()),
    );
    expectCode(e, status.INTERNAL);
    expect(e.details).toContain(`serviceaccounts/${pod.serviceAccount}: the API server answered more than 2 MiB`);
    expect(callsSince(h.emu, mark, { service: 'sts' })).toHaveLength(0);
  });
});

describe('bodies that trickle in', () => {
  it('Secrets Manager trickling: UNAVAILABLE after 3 tries of 10 s, not the deadline; other pods served', async () => {
    h.emu.putSecret(REGION, 'trickle', 'real value');
    const pod = h.pod();
    const target = await h.target();
    const mark = h.emu.calls.length;
    const t0 = performance.now();
    const e = await withFault(h.emu, { service: 'secretsmanager', target: 'trickle', trickleMs: 2_000 }, async () => {
      const pending = refusal(pod.attributes({ region: REGION, objects: SM('trickle') }), target, 120_000);
      // While it trickles, another pod mounts at once.
      await new Promise((r) => setTimeout(r, 3_000));
      const other = h.pod();
      const t1 = performance.now();
      await h.client.mount(
        { attributes: other.attributes({ region: REGION, objects: SM('still-fine') }), targetPath: await h.target() },
        { deadlineMs: 10_000 },
      );
      expect(performance.now() - t1).toBeLessThan(5_000);
      return pending;
    });
    const seconds = (performance.now() - t0) / 1000;
    report.push(`trickling answer (1 byte / 2 s): refused after ${seconds.toFixed(1)} s (3 attempts × 10 s)`);
    expectCode(e, status.UNAVAILABLE);
    expect(e.details).toContain(
      'Secrets Manager GetSecretValue did not answer completely within 10 s (the answer was still arriving',
    );
    expect(e.details).toContain('trickle');
    expect(e.details).toContain(REGION);
    expect(
      callsSince(h.emu, mark, { service: 'secretsmanager' }).filter((c) => c.names.includes('trickle')),
    ).toHaveLength(3);
    expect(seconds).toBeGreaterThan(29);
    expect(seconds).toBeLessThan(45);
    expect(await listDir(target)).toEqual([]);
  }, 90_000);

  it('the Pod Identity agent trickling: attempts cut at --pod-identity-http-timeout, then UNAVAILABLE', async () => {
    const pod = h.pod({ podIdentity: true });
    const t0 = performance.now();
    const e = await withFault(h.emu, { service: 'pod-identity', trickleMs: 300 }, async () =>
      refusal(
        pod.attributes(
          { region: REGION, usePodIdentity: 'true', objects: SM('still-fine') },
          { tokens: 'pod-identity' },
        ),
        await h.target(),
      ),
    );
    expectCode(e, status.UNAVAILABLE);
    expect(e.details).toContain('no complete answer within 1000 ms (the answer was still arriving)');
    // 6 rounds of 1 s, with backoff between them: well before any mount deadline.
    expect(performance.now() - t0).toBeLessThan(20_000);
  });

  it('Kubernetes client: a trickle ends at the per-attempt timeout; a non-Status 5xx body is not quoted', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'upstream-kube-'));
    try {
      await h.emu.writeKubeconfig(path.join(dir, 'kubeconfig'));
      const kube = new KubeClient(await loadKubeConfigFile(path.join(dir, 'kubeconfig')), {
        qps: 100,
        burst: 100,
        timeoutMs: 600,
        retryBaseMs: 10,
      });
      h.emu.addServiceAccount('kube-ns', 'kube-sa', {});
      try {
        h.emu.addFault({ service: 'k8s', target: '/serviceaccounts/kube-sa', trickleMs: 200 });
        const slow = await kube
          .getServiceAccount('kube-ns', 'kube-sa', new AbortController().signal)
          .catch((err: unknown) => err as Error);
        expect(slow).toMatchObject({ code: 'UNAVAILABLE' });
        expect((slow as Error).message).toMatch(
          /after 3 attempts: no complete answer within 600 ms \(the answer was still arriving\)/,
        );
        h.emu.clearFaults();
        h.emu.addFault({
          service: 'k8s',
          target: '/serviceaccounts/kube-sa',
          status: 502,
          rawBody: `<html>${MARK}</html>`,
        });
        const bad = await kube
          .getServiceAccount('kube-ns', 'kube-sa', new AbortController().signal)
          .catch((err: unknown) => err as Error);
        expect(bad).toMatchObject({ code: 'UNAVAILABLE' });
        errors.push((bad as Error).message);
        expect((bad as Error).message).toMatch(/HTTP 502 after 3 attempts$/);
      } finally {
        kube.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("bodies that are not the service's format: never quoted", () => {
  it.each([
    [
      'Secrets Manager, HTTP 200, not JSON',
      'secretsmanager',
      200,
      `${MARK} is the password`,
      status.INTERNAL,
      'Secrets Manager GetSecretValue answered (HTTP 200) something that is not a readable AWS answer',
      1,
    ],
    [
      'Secrets Manager, HTTP 200, JSON cut short',
      'secretsmanager',
      200,
      `{"VersionId":"v1","SecretString":"${MARK}`,
      status.INTERNAL,
      'Secrets Manager GetSecretValue answered (HTTP 200) something that is not a readable AWS answer',
      1,
    ],
    [
      'Secrets Manager, HTTP 502, a proxy page (retried: a server error)',
      'secretsmanager',
      502,
      `<html><body>${MARK}</body></html>`,
      status.UNAVAILABLE,
      'Secrets Manager GetSecretValue answered (HTTP 502) something that is not a readable AWS answer',
      3,
    ],
    [
      'SSM, HTTP 200, not JSON',
      'ssm',
      200,
      `${MARK}`,
      status.INTERNAL,
      'SSM GetParameters answered (HTTP 200) something that is not a readable AWS answer',
      1,
    ],
  ] as const)(
    '%s: status and message name service, operation, object and region, without the body',
    async (_name, service, httpStatus, rawBody, code, text, attempts) => {
      const name = `raw-${service}-${httpStatus}-${rawBody.length}`;
      if (service === 'secretsmanager') h.emu.putSecret(REGION, name, 'real');
      else h.emu.putParameter(REGION, name, 'real');
      const pod = h.pod();
      const target = await h.target();
      const mark = h.emu.calls.length;
      const e = await withFault(h.emu, { service, target: name, status: httpStatus, rawBody }, async () =>
        refusal(
          pod.attributes({ region: REGION, objects: service === 'secretsmanager' ? SM(name) : SSM(name) }),
          target,
        ),
      );
      expectCode(e, code);
      expect(e.details).toContain(text);
      expect(e.details).toContain(name);
      expect(e.details).toContain(REGION);
      expect(e.details).toContain('its text is not shown');
      expect(callsSince(h.emu, mark, { service })).toHaveLength(attempts);
      expect(await listDir(target)).toEqual([]);
    },
  );

  it('STS answering non-XML text: INTERNAL naming STS AssumeRoleWithWebIdentity, the role and the region', async () => {
    const pod = h.pod();
    const e = await withFault(
      h.emu,
      { service: 'sts', operation: 'AssumeRoleWithWebIdentity', rawBody: `${MARK} <<<` },
      async () => refusal(pod.attributes({ region: REGION, objects: SM('still-fine') }), await h.target()),
    );
    expectCode(e, status.INTERNAL);
    expect(e.details).toContain(
      'STS AssumeRoleWithWebIdentity answered (HTTP 200) something that is not a readable AWS answer',
    );
    expect(e.details).toContain(pod.roleArn);
    expect(e.details).toContain(REGION);
  });

  it("the Pod Identity agent's non-JSON 500 page: retried, then UNAVAILABLE saying the body is not shown", async () => {
    const pod = h.pod({ podIdentity: true });
    const e = await withFault(
      h.emu,
      { service: 'pod-identity', status: 500, rawBody: `<html>${MARK}</html>` },
      async () =>
        refusal(
          pod.attributes(
            { region: REGION, usePodIdentity: 'true', objects: SM('still-fine') },
            { tokens: 'pod-identity' },
          ),
          await h.target(),
        ),
    );
    expectCode(e, status.UNAVAILABLE);
    expect(e.details).toContain('HTTP 500: (an answer that is not JSON; not shown)');
  });
});

describe('fields of the wrong type: refused before anything is written', () => {
  it.each<
    [
      string,
      'secretsmanager' | 'ssm',
      { answerFields?: Record<string, unknown>; entryFields?: Record<string, unknown> },
      string,
    ]
  >([
    [
      'VersionId a number',
      'secretsmanager',
      { answerFields: { VersionId: 5 } },
      'Secrets Manager GetSecretValue answered a VersionId that is not a string',
    ],
    [
      'VersionId an object',
      'secretsmanager',
      { answerFields: { VersionId: { v: MARK } } },
      'Secrets Manager GetSecretValue answered a VersionId that is not a string',
    ],
    [
      'VersionId of 560 characters',
      'secretsmanager',
      { answerFields: { VersionId: MARK.repeat(20) } },
      'Secrets Manager GetSecretValue answered a VersionId longer than 256 characters or with control characters',
    ],
    [
      'VersionId with a newline',
      'secretsmanager',
      { answerFields: { VersionId: `v1\n${MARK}` } },
      'a VersionId longer than 256 characters or with control characters',
    ],
    [
      'VersionId missing',
      'secretsmanager',
      { answerFields: { VersionId: null } },
      'Secrets Manager GetSecretValue answered without a VersionId',
    ],
    [
      'SecretString a number',
      'secretsmanager',
      { answerFields: { SecretString: 42 } },
      'Secrets Manager GetSecretValue answered a SecretString that is not a string',
    ],
    [
      'SecretString an object',
      'secretsmanager',
      { answerFields: { SecretString: { password: MARK } } },
      'Secrets Manager GetSecretValue answered a SecretString that is not a string',
    ],
    [
      'SecretBinary a number',
      'secretsmanager',
      { answerFields: { SecretString: null, SecretBinary: 7 } },
      'Secrets Manager GetSecretValue answered a SecretBinary that is not binary',
    ],
    [
      'neither value',
      'secretsmanager',
      { answerFields: { SecretString: null } },
      'Secrets Manager GetSecretValue answered neither a SecretString nor a SecretBinary',
    ],
    [
      'SecretBinary not base64',
      'secretsmanager',
      { answerFields: { SecretString: null, SecretBinary: `${MARK}!!` } },
      'Secrets Manager GetSecretValue answered (HTTP 200) something that is not a readable AWS answer',
    ],
    [
      'SSM Value a number',
      'ssm',
      { entryFields: { Value: 5 } },
      'SSM GetParameters answered a parameter Value that is not a string',
    ],
    [
      'SSM Version an object',
      'ssm',
      { entryFields: { Version: { v: MARK } } },
      'SSM GetParameters answered a parameter Version that is not a positive integer',
    ],
    [
      'SSM Version a string',
      'ssm',
      { entryFields: { Version: `1${MARK}` } },
      'SSM GetParameters answered a parameter Version that is not a positive integer',
    ],
    [
      'SSM Parameters not a list',
      'ssm',
      { answerFields: { Parameters: MARK } },
      'SSM GetParameters answered Parameters that are not a list of objects',
    ],
  ])('%s: INTERNAL naming object and region; the target stays empty', async (_name, service, fields, text) => {
    const name = `typed-${service}-${_name.replace(/\W+/g, '-')}`;
    if (service === 'secretsmanager') h.emu.putSecret(REGION, name, 'real');
    else h.emu.putParameter(REGION, name, 'real');
    const pod = h.pod();
    const target = await h.target();
    const e = await withFault(h.emu, { service, target: name, ...fields }, async () =>
      refusal(
        pod.attributes({
          region: REGION,
          objects: service === 'secretsmanager' ? SM(name, 'still-fine') : `${SSM(name)}\n${SM('still-fine')}`,
        }),
        target,
      ),
    );
    expectCode(e, status.INTERNAL);
    expect(e.details).toContain(text);
    expect(e.details).toContain(name);
    expect(e.details).toContain(REGION);
    // All or nothing: the good object of the same class was not written either.
    expect(await listDir(target)).toEqual([]);
  });

  it('a wrong-typed VersionId in a batch: it is set aside, each secret read alone, versions are strings', async () => {
    const a = h.emu.putSecret(REGION, 'batch-a', 'A');
    const b = h.emu.putSecret(REGION, 'batch-b', 'B');
    const pod = h.pod({ allowBatch: true });
    const attributes = pod.attributes({ region: REGION, objects: SM('batch-a', 'batch-b') });
    await h.client.mount({ attributes, targetPath: await h.target() });
    const target = await h.target();
    const mark = h.emu.calls.length;
    const res = await withFault(
      h.emu,
      { service: 'secretsmanager', operation: 'BatchGetSecretValue', entryFields: { VersionId: 9 } },
      () => h.client.mount({ attributes, targetPath: target }),
    );
    expect(res.objectVersion).toEqual([
      { id: 'batch-a', version: a.versionId },
      { id: 'batch-b', version: b.versionId },
    ]);
    expect(callsSince(h.emu, mark, { service: 'secretsmanager' }).map((c) => c.operation)).toEqual([
      'BatchGetSecretValue',
      'GetSecretValue',
      'GetSecretValue',
    ]);
  });

  it.each([
    ['Token a number', { Token: 5 }, 'agent answered a Token that is not a string'],
    [
      'AccessKeyId with a newline',
      { AccessKeyId: `AKIA\n${MARK}` },
      'agent answered an AccessKeyId that is not 256 or fewer printable characters',
    ],
    ['Expiration not a date', { Expiration: MARK }, 'agent answered an Expiration that is not a date'],
  ])('the Pod Identity agent: %s → INTERNAL at once, naming the agent', async (_name, answerFields, text) => {
    const pod = h.pod({ podIdentity: true });
    const mark = h.emu.calls.length;
    const e = await withFault(h.emu, { service: 'pod-identity', answerFields }, async () =>
      refusal(
        pod.attributes(
          { region: REGION, usePodIdentity: 'true', objects: SM('still-fine') },
          { tokens: 'pod-identity' },
        ),
        await h.target(),
      ),
    );
    expectCode(e, status.INTERNAL);
    expect(e.details).toContain(text);
    expect(e.details).toMatch(/Pod Identity agent http:\/\/127\.0\.0\.1:\d+\/v1\/credentials/);
    expect(callsSince(h.emu, mark, { service: 'pod-identity' })).toHaveLength(1);
    expect(callsSince(h.emu, mark, { service: 'secretsmanager' })).toHaveLength(0);
  });
});

describe('a role annotation that is not an IAM role ARN', () => {
  const ANNOTATION = 'eks.amazonaws.com/role-arn';

  const long = `arn:aws:iam::123456789012:role/${'a'.repeat(100_000)}${MARK}`;
  it.each([
    ['100 KB long', long, `"${long.slice(0, 60)}"… (${long.length} characters)`],
    [
      'with a newline and ANSI codes',
      `arn:aws:iam::123456789012:role/x\n\u001b[31mlevel=error msg=${MARK}`,
      `"arn:aws:iam::123456789012:role/x\\u000a\\u001b[31mlevel=error msg=hunter"… (82 characters)`,
    ],
    ['an account that is not 12 digits', 'arn:aws:iam::12345:role/app', '"arn:aws:iam::12345:role/app"'],
    ['a user, not a role', 'arn:aws:iam::123456789012:user/app', '"arn:aws:iam::123456789012:user/app"'],
    ['a bare role name', 'app-reader', '"app-reader"'],
  ])(
    '%s: FAILED_PRECONDITION naming the service account and the annotation, quoting at most 60 characters escaped; ' +
      'no STS call',
    async (_name, value, quoted) => {
      const pod = h.pod({ noAnnotation: true });
      h.emu.addServiceAccount(pod.namespace, pod.serviceAccount, { [ANNOTATION]: value });
      const mark = h.emu.calls.length;
      const e = await refusal(pod.attributes({ region: REGION, objects: SM('still-fine') }), await h.target());
      expectCode(e, status.FAILED_PRECONDITION);
      expect(e.details).toContain(
        `The ${ANNOTATION} annotation of service account ${pod.serviceAccount} (namespace: ${pod.namespace}) is not ` +
          `an IAM role ARN: ${quoted}`,
      );
      expect(e.details.length).toBeLessThan(600);
      // eslint-disable-next-line no-control-regex -- control characters are what must not appear
      expect(e.details).not.toMatch(/[\u0000-\u001f\u007f]/);
      expect(callsSince(h.emu, mark, { service: 'sts' })).toHaveLength(0);
    },
  );

  it('role ARNs with a path, or in another partition, are accepted', async () => {
    for (const role of [
      'arn:aws:iam::123456789012:role/team-a/apps/reader',
      'arn:aws-us-gov:iam::123456789012:role/reader_gov',
    ]) {
      const pod = h.pod({ role, allowSecrets: ['still-fine'] });
      const target = await h.target();
      await h.client.mount({
        attributes: pod.attributes({ region: REGION, objects: SM('still-fine') }),
        targetPath: target,
      });
      expect(await readFile(path.join(target, 'still-fine'), 'utf8')).toBe('fine');
    }
  });
});

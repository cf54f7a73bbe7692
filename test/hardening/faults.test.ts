/**
 * Faults from the emulator, through the socket: throttling, 5xx and failover,
 * connection refused, slow answers and answers that never come, STS refusal, credentials that
 * expire while cached. Each ends with a clear error naming the object and the region, and the next
 * mount after the fault clears succeeds. Retry counts are read from the emulator's call log (the
 * SDK makes 3 attempts). Kubernetes and Pod Identity agent faults are in k8s-agent-faults.test.ts.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { mountAttributes } from '../../tools/emulator/index.js';
import { FAILOVER_REGION, REGION } from '../helpers/harness.js';
import {
  callsSince,
  listDir,
  refused,
  startFaultHarness,
  withFault as withFaultOn,
  type FaultHarness,
} from './fault-harness.js';

const SM = (...names: string[]): string =>
  names.map((n) => `- {objectName: ${n}, objectType: secretsmanager}`).join('\n');
const SSM = (...names: string[]): string =>
  names.map((n) => `- {objectName: ${n}, objectType: ssmparameter}`).join('\n');

let h: FaultHarness;
beforeAll(async () => {
  h = await startFaultHarness();
});
afterAll(async () => h?.close());

function withFault<T>(fault: Parameters<FaultHarness['emu']['addFault']>[0], body: () => Promise<T>): Promise<T> {
  return withFaultOn(h.emu, fault, body);
}

describe('throttling: retried with backoff, bounded', () => {
  it.each([
    ['secretsmanager', 'GetSecretValue', 'ThrottlingException'],
    ['ssm', 'GetParameters', 'ThrottlingException'],
  ] as const)(
    '%s %s answering %s on every attempt: 3 attempts, then UNAVAILABLE naming object and region; the next mount ' +
      'succeeds',
    async (service, operation, code) => {
      const name = `throttle-${service}`;
      if (service === 'secretsmanager') h.emu.putSecret(REGION, name, 'value-1');
      else h.emu.putParameter(REGION, name, 'value-1');
      const objects = service === 'secretsmanager' ? SM(name) : SSM(name);
      const pod = h.pod();
      const target = await h.target();
      const mark = h.emu.calls.length;
      const e = await withFault({ service, target: name, status: 400, code, message: 'Rate exceeded' }, () =>
        refused(h.client.mount({ attributes: pod.attributes({ region: REGION, objects }), targetPath: target })),
      );
      expect(e.code).toBe(status.UNAVAILABLE);
      expect(e.details).toContain(name);
      expect(e.details).toContain(REGION);
      expect(e.details).toContain(code);
      const attempts = callsSince(h.emu, mark, { service, operation });
      expect(attempts).toHaveLength(3);
      expect(attempts.every((c) => c.errorCode === code)).toBe(true);
      expect(await listDir(target)).toEqual([]);

      await h.client.mount({ attributes: pod.attributes({ region: REGION, objects }), targetPath: target });
      expect(await readFile(path.join(target, name), 'utf8')).toBe('value-1');
    },
  );

  it('throttling that clears within the retries: the mount succeeds on the third attempt', async () => {
    h.emu.putSecret(REGION, 'throttle-twice', 'ok');
    const pod = h.pod();
    const target = await h.target();
    const mark = h.emu.calls.length;
    await withFault(
      { service: 'secretsmanager', target: 'throttle-twice', code: 'ThrottlingException', times: 2 },
      () =>
        h.client.mount({
          attributes: pod.attributes({ region: REGION, objects: SM('throttle-twice') }),
          targetPath: target,
        }),
    );
    expect(callsSince(h.emu, mark, { service: 'secretsmanager' }).map((c) => c.status)).toEqual([400, 400, 200]);
    expect(await readFile(path.join(target, 'throttle-twice'), 'utf8')).toBe('ok');
  });
});

describe('5xx: retried, then failover if configured', () => {
  it.each([
    ['secretsmanager', 500, 'InternalServiceError'],
    ['secretsmanager', 503, 'ServiceUnavailable'],
    ['ssm', 500, 'InternalServerError'],
  ] as const)(
    '%s HTTP %i %s on every attempt, no failover: 3 attempts, UNAVAILABLE naming object and region',
    async (service, httpStatus, code) => {
      const name = `fivexx-${service}-${httpStatus}`;
      if (service === 'secretsmanager') h.emu.putSecret(REGION, name, 'v');
      else h.emu.putParameter(REGION, name, 'v');
      const objects = service === 'secretsmanager' ? SM(name) : SSM(name);
      const pod = h.pod();
      const target = await h.target();
      const mark = h.emu.calls.length;
      const e = await withFault({ service, target: name, status: httpStatus, code }, () =>
        refused(h.client.mount({ attributes: pod.attributes({ region: REGION, objects }), targetPath: target })),
      );
      expect(e.code).toBe(status.UNAVAILABLE);
      expect(e.details).toContain(name);
      expect(e.details).toContain(REGION);
      expect(e.details).toContain(code);
      expect(callsSince(h.emu, mark, { service })).toHaveLength(3);
      await h.client.mount({ attributes: pod.attributes({ region: REGION, objects }), targetPath: target });
      expect(await readFile(path.join(target, name), 'utf8')).toBe('v');
    },
  );

  it.each(['secretsmanager', 'ssm'] as const)(
    "%s: the primary keeps answering 500, failoverRegion answers after the primary's 3 attempts",
    async (service) => {
      const name = `failover-${service}`;
      const put = (region: string, v: string): void => {
        if (service === 'secretsmanager') h.emu.putSecret(region, name, v);
        else h.emu.putParameter(region, name, v);
      };
      put(REGION, 'from the primary');
      put(FAILOVER_REGION, 'from the failover region');
      const objects = service === 'secretsmanager' ? SM(name) : SSM(name);
      const pod = h.pod();
      const target = await h.target();
      const attributes = pod.attributes({ region: REGION, failoverRegion: FAILOVER_REGION, objects });
      const mark = h.emu.calls.length;
      const res = await withFault({ service, region: REGION, target: name, status: 500 }, () =>
        h.client.mount({ attributes, targetPath: target }),
      );
      expect(await readFile(path.join(target, name), 'utf8')).toBe('from the failover region');
      expect(res.objectVersion.map((v) => v.id)).toEqual([name]);
      expect(callsSince(h.emu, mark, { service, region: REGION })).toHaveLength(3);
      expect(callsSince(h.emu, mark, { service, region: FAILOVER_REGION })).toHaveLength(1);
      expect(h.logs.some((l) => l.includes('failover region answered') && l.includes(name))).toBe(true);

      // Fault cleared: the primary answers again, the failover region is not asked.
      const mark2 = h.emu.calls.length;
      await h.client.mount({ attributes, targetPath: target });
      expect(await readFile(path.join(target, name), 'utf8')).toBe('from the primary');
      expect(callsSince(h.emu, mark2, { service, region: FAILOVER_REGION })).toHaveLength(0);
    },
  );

  it('both regions failing: one error naming the object and each region with its cause', async () => {
    h.emu.putSecret(REGION, 'failover-both', 'a');
    h.emu.putSecret(FAILOVER_REGION, 'failover-both', 'b');
    const pod = h.pod();
    const target = await h.target();
    const attributes = pod.attributes({
      region: REGION,
      failoverRegion: FAILOVER_REGION,
      objects: SM('failover-both'),
    });
    const id = h.emu.addFault({
      service: 'secretsmanager',
      region: FAILOVER_REGION,
      target: 'failover-both',
      status: 503,
      code: 'ServiceUnavailable',
    });
    try {
      const e = await withFault(
        {
          service: 'secretsmanager',
          region: REGION,
          target: 'failover-both',
          status: 500,
          code: 'InternalServiceError',
        },
        () => refused(h.client.mount({ attributes, targetPath: target })),
      );
      expect(e.code).toBe(status.UNAVAILABLE);
      expect(e.details).toContain('failover-both');
      expect(e.details).toMatch(new RegExp(`${REGION}.*InternalServiceError`));
      expect(e.details).toMatch(new RegExp(`${FAILOVER_REGION}.*ServiceUnavailable`));
    } finally {
      h.emu.removeFault(id);
    }
    expect(await listDir(target)).toEqual([]);
    await h.client.mount({ attributes, targetPath: target });
    expect(await readFile(path.join(target, 'failover-both'), 'utf8')).toBe('a');
  });

  it('a fatal error in the primary (ResourceNotFoundException) is not sent to the failover region', async () => {
    h.emu.putSecret(FAILOVER_REGION, 'only-in-failover', 'b');
    const pod = h.pod();
    const mark = h.emu.calls.length;
    const e = await refused(
      h.client.mount({
        attributes: pod.attributes({
          region: REGION,
          failoverRegion: FAILOVER_REGION,
          objects: SM('only-in-failover'),
        }),
        targetPath: await h.target(),
      }),
    );
    expect(e.code).toBe(status.NOT_FOUND);
    expect(e.details).toContain('only-in-failover');
    expect(e.details).toContain(REGION);
    expect(callsSince(h.emu, mark, { service: 'secretsmanager', region: REGION })).toHaveLength(1);
    expect(callsSince(h.emu, mark, { service: 'secretsmanager', region: FAILOVER_REGION })).toHaveLength(0);
  });
});

describe('connection refused', () => {
  it('Secrets Manager: UNAVAILABLE naming object, region, ECONNREFUSED; back up, the next mount succeeds', async () => {
    h.emu.putSecret(REGION, 'refused-conn', 'v');
    const pod = h.pod();
    const target = await h.target();
    const attributes = pod.attributes({ region: REGION, objects: SM('refused-conn') });
    const mark = h.emu.calls.length;
    await h.smGate.refuse();
    let e: { code: number; details: string };
    try {
      e = await refused(h.client.mount({ attributes, targetPath: target }));
    } finally {
      await h.smGate.open();
    }
    expect(e.code).toBe(status.UNAVAILABLE);
    expect(e.details).toContain('refused-conn');
    expect(e.details).toContain(REGION);
    expect(e.details).toContain('ECONNREFUSED');
    expect(callsSince(h.emu, mark, { service: 'secretsmanager' })).toHaveLength(0);
    expect(await listDir(target)).toEqual([]);
    await h.client.mount({ attributes, targetPath: target });
    expect(await readFile(path.join(target, 'refused-conn'), 'utf8')).toBe('v');
  });
});

describe('slow answers and answers that never come', () => {
  it('a slow answer inside the deadline: the mount succeeds', async () => {
    h.emu.putSecret(REGION, 'slow-ok', 'v');
    const pod = h.pod();
    const target = await h.target();
    await withFault({ service: 'secretsmanager', target: 'slow-ok', delayMs: 300 }, () =>
      h.client.mount(
        { attributes: pod.attributes({ region: REGION, objects: SM('slow-ok') }), targetPath: target },
        { deadlineMs: 10_000 },
      ),
    );
    expect(await readFile(path.join(target, 'slow-ok'), 'utf8')).toBe('v');
  });

  it.each([
    ['Secrets Manager never answers', { service: 'secretsmanager' as const, target: 'hang-sm' }],
    ['SSM never answers', { service: 'ssm' as const, target: 'hang-ssm' }],
    ['STS never answers', { service: 'sts' as const, operation: 'AssumeRoleWithWebIdentity' }],
  ])(
    "%s: the provider answers DEADLINE_EXCEEDED before the driver's deadline, writes nothing, and the next mount " +
      'succeeds',
    async (_name, fault) => {
      h.emu.putSecret(REGION, 'hang-sm', 'sm');
      h.emu.putParameter(REGION, 'hang-ssm', 'ssm');
      h.emu.putSecret(REGION, 'hang-ok', 'ok');
      const pod = h.pod();
      const target = await h.target();
      const objects = `${SM('hang-ok', 'hang-sm')}\n${SSM('hang-ssm')}`;
      const deadlineMs = 1_500;
      const t0 = performance.now();
      const e = await withFault({ ...fault, hang: true }, () =>
        refused(
          h.client.mount(
            { attributes: pod.attributes({ region: REGION, objects }), targetPath: target },
            { deadlineMs },
          ),
        ),
      );
      const elapsed = performance.now() - t0;
      expect(e.code).toBe(status.DEADLINE_EXCEEDED);
      // The provider's own answer (the client's deadline would say "Deadline exceeded").
      expect(e.details).toContain('nothing was written');
      expect(elapsed).toBeLessThan(deadlineMs);
      expect(await listDir(target)).toEqual([]);
      await h.client.mount(
        { attributes: pod.attributes({ region: REGION, objects }), targetPath: target },
        { deadlineMs: 10_000 },
      );
      expect(await listDir(target)).toEqual(['hang-ok', 'hang-sm', 'hang-ssm']);
    },
  );

  it('an answer that comes after the deadline is not written', async () => {
    h.emu.putSecret(REGION, 'late', 'late value');
    h.emu.putSecret(REGION, 'late-ok', 'ok');
    const pod = h.pod();
    const target = await h.target();
    const mark = h.emu.calls.length;
    const e = await withFault({ service: 'secretsmanager', target: 'late', delayMs: 2_500 }, () =>
      refused(
        h.client.mount(
          { attributes: pod.attributes({ region: REGION, objects: SM('late', 'late-ok') }), targetPath: target },
          { deadlineMs: 1_500 },
        ),
      ),
    );
    expect(e.code).toBe(status.DEADLINE_EXCEEDED);
    // Wait until the emulator has answered the late call (recorded when it answers), then look.
    await vi.waitFor(
      () =>
        expect(callsSince(h.emu, mark, { service: 'secretsmanager' }).some((c) => c.names.includes('late'))).toBe(true),
      { timeout: 5_000, interval: 50 },
    );
    expect(await listDir(target)).toEqual([]);
  });
});

describe('STS refusal', () => {
  it('AccessDenied: PERMISSION_DENIED naming the role and region, not retried; the next mount succeeds', async () => {
    h.emu.putSecret(REGION, 'sts-refused', 'v');
    const pod = h.pod();
    const target = await h.target();
    const attributes = pod.attributes({ region: REGION, objects: SM('sts-refused') });
    const mark = h.emu.calls.length;
    const e = await withFault(
      {
        service: 'sts',
        target: pod.roleArn,
        status: 403,
        code: 'AccessDenied',
        message: 'Not authorized to perform sts:AssumeRoleWithWebIdentity',
      },
      () => refused(h.client.mount({ attributes, targetPath: target })),
    );
    expect(e.code).toBe(status.PERMISSION_DENIED);
    expect(e.details).toContain(pod.roleArn);
    expect(e.details).toContain(REGION);
    expect(e.details).toContain('AccessDenied');
    expect(callsSince(h.emu, mark, { service: 'sts' })).toHaveLength(1);
    expect(callsSince(h.emu, mark, { service: 'secretsmanager' })).toHaveLength(0);
    await h.client.mount({ attributes, targetPath: target });
    expect(await readFile(path.join(target, 'sts-refused'), 'utf8')).toBe('v');
  });

  it('STS answering 500: 3 attempts, UNAVAILABLE naming the role and region', async () => {
    h.emu.putSecret(REGION, 'sts-500', 'v');
    const pod = h.pod();
    const target = await h.target();
    const attributes = pod.attributes({ region: REGION, objects: SM('sts-500') });
    const mark = h.emu.calls.length;
    const e = await withFault({ service: 'sts', target: pod.roleArn, status: 500 }, () =>
      refused(h.client.mount({ attributes, targetPath: target })),
    );
    expect(e.code).toBe(status.UNAVAILABLE);
    expect(e.details).toContain(pod.roleArn);
    expect(e.details).toContain(REGION);
    expect(callsSince(h.emu, mark, { service: 'sts' })).toHaveLength(3);
    await h.client.mount({ attributes, targetPath: target });
  });

  // Each fault ends with a clear error naming the object (docs/behaviour.md, "Errors"). An identity failure names the
  // role and region but not the objects the mount was for (fetcher.ts credentialError drops `d.objectName`).
  it('an STS refusal also names the object the mount was for', async () => {
    h.emu.putSecret(REGION, 'sts-names-object', 'v');
    const pod = h.pod();
    const target = await h.target();
    const e = await withFault({ service: 'sts', target: pod.roleArn, status: 403, code: 'AccessDenied' }, () =>
      refused(
        h.client.mount({
          attributes: pod.attributes({ region: REGION, objects: SM('sts-names-object') }),
          targetPath: target,
        }),
      ),
    );
    expect(e.details).toContain('sts-names-object');
  });
});

describe('expired credentials mid-flight', () => {
  it('an expired cached session (clock moved on) is dropped; the same mount exchanges again and succeeds', async () => {
    h.emu.putSecret(REGION, 'expiring', 'v1');
    const pod = h.pod();
    const target = await h.target();
    // A pod token valid for a day, so only the STS session (one hour) expires.
    const token = h.emu.issueToken({
      namespace: pod.namespace,
      serviceAccount: pod.serviceAccount,
      audience: 'sts.amazonaws.com',
      podName: pod.pod,
      expiresInSeconds: 86_400,
    });
    const attributes = mountAttributes({
      podName: pod.pod,
      namespace: pod.namespace,
      serviceAccount: pod.serviceAccount,
      tokens: { 'sts.amazonaws.com': token },
      parameters: { region: REGION, objects: SM('expiring') },
    });

    const mark = h.emu.calls.length;
    await h.client.mount({ attributes, targetPath: target });
    await h.client.mount({ attributes, targetPath: target });
    expect(callsSince(h.emu, mark, { service: 'sts' })).toHaveLength(1); // the second mount used the cached session

    h.clock.offsetMs += 2 * 3600_000;
    try {
      h.emu.putSecret(REGION, 'expiring', 'v2');
      const mark2 = h.emu.calls.length;
      await h.client.mount({ attributes, targetPath: target });
      // AWS refused the cached session once; the provider dropped it, exchanged again, and read.
      expect(callsSince(h.emu, mark2, { service: 'secretsmanager' }).map((c) => c.errorCode ?? 'OK')).toEqual([
        'ExpiredTokenException',
        'OK',
      ]);
      expect(callsSince(h.emu, mark2, { service: 'sts', operation: 'AssumeRoleWithWebIdentity' })).toHaveLength(1);
      expect(await readFile(path.join(target, 'expiring'), 'utf8')).toBe('v2');
      expect(h.logs.some((l) => l.includes('credentials refused by AWS: exchanging again'))).toBe(true);
    } finally {
      h.clock.offsetMs = 0;
    }
  });

  it('UnrecognizedClientException drops the session too; a lasting one fails naming object and region', async () => {
    h.emu.putSecret(REGION, 'unrecognised', 'v');
    const pod = h.pod();
    const target = await h.target();
    const attributes = pod.attributes({ region: REGION, objects: SM('unrecognised') });
    await h.client.mount({ attributes, targetPath: target });
    const mark = h.emu.calls.length;
    await withFault(
      { service: 'secretsmanager', target: 'unrecognised', status: 400, code: 'UnrecognizedClientException', times: 1 },
      () => h.client.mount({ attributes, targetPath: target }),
    );
    expect(callsSince(h.emu, mark, { service: 'sts' })).toHaveLength(1);
    const e = await withFault(
      { service: 'secretsmanager', target: 'unrecognised', status: 400, code: 'UnrecognizedClientException' },
      () => refused(h.client.mount({ attributes, targetPath: target })),
    );
    expect(e.code).toBe(status.UNAUTHENTICATED);
    expect(e.details).toContain('unrecognised');
    expect(e.details).toContain(REGION);
  });
});

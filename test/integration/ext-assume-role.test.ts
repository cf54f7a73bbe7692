/**
 * Our extension: cross-account role chaining (docs/extensions.md) through the real socket.
 * After IRSA or Pod Identity the provider calls sts:AssumeRole into `assumeRoleArn` (external id and
 * duration when given) and fetches with the chained credentials. The credential cache keys them by
 * the pod identity and the chain, so a wrong external id is refused even right after the right one.
 * The emulator plays the trust: `trustedRoles`, `externalId`, duration bounds.
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFilesLikeDriver } from '../../tools/emulator/driver-client.js';
import { FAILOVER_REGION, REGION, startHarness, type Harness, type Pod } from '../helpers/harness.js';
import { refused } from '../helpers/failure.js';
import { freePort } from '../helpers/ports.js';

const OTHER_ACCOUNT = '210987654321';
let roles = 0;

/** A role in another account that the pod's own role may chain into; it alone reads `xa-*`. */
function crossRole(
  h: Harness,
  trusted: string[],
  o: { externalId?: string; maxSessionDurationSeconds?: number } = {},
): string {
  const arn = `arn:aws:iam::${OTHER_ACCOUNT}:role/cross-reader-${++roles}`;
  h.emu.addRole({ arn, trustedRoles: trusted, ...o, allow: { secretsmanager: ['xa-*'], ssm: ['xa-*'] } });
  return arn;
}

/** A pod whose own role reads nothing, so every successful read proves the chained credentials. */
function podWithoutAccess(h: Harness, spec: { namespace?: string; serviceAccount?: string } = {}): Pod {
  return h.pod({ ...spec, allowSecrets: ['none'], allowParameters: ['none'] });
}

const SM = (name: string): string => `- {objectName: ${name}, objectType: secretsmanager}`;

describe('role chaining (provider writes)', () => {
  let h: Harness;
  beforeAll(async () => {
    const port = await freePort();
    h = await startHarness({
      emulator: { port },
      flags: [`--pod-identity-endpoint=http://127.0.0.1:${port}/v1/credentials`],
    });
  });
  afterAll(async () => h?.close());

  it("IRSA → sts:AssumeRole into the class's role: read with chained credentials; without it, refused", async () => {
    h.emu.putSecret(REGION, 'xa-irsa', 'cross value');
    const pod = podWithoutAccess(h);
    const role = crossRole(h, [pod.roleArn]);
    const target = await h.target();
    h.emu.resetCalls();
    const res = await h.client.mount({
      attributes: pod.attributes({ region: REGION, objects: SM('xa-irsa'), assumeRoleArn: role }),
      targetPath: target,
    });
    expect(res.objectVersion.map((v) => v.id)).toEqual(['xa-irsa']);
    expect(await readFile(path.join(target, 'xa-irsa'), 'utf8')).toBe('cross value');
    expect(h.emu.callCount({ service: 'sts', operation: 'AssumeRoleWithWebIdentity' })).toBe(1);
    expect(h.emu.callCount({ service: 'sts', operation: 'AssumeRole' })).toBe(1);
    const read = h.emu.calls.filter((c) => c.service === 'secretsmanager' && c.operation === 'GetSecretValue');
    expect(read.map((c) => c.roleArn)).toEqual([role]);
    // CloudTrail in the other account sees which workload chained in.
    expect(read[0]?.sessionName).toBe(`${pod.namespace}.${pod.serviceAccount}`);

    const e = await refused(
      h.client.mount({
        attributes: pod.attributes({ region: REGION, objects: SM('xa-irsa') }),
        targetPath: await h.target(),
      }),
    );
    expect(e.code).toBe(status.PERMISSION_DENIED);
    expect(e.details).toContain('xa-irsa');
  });

  it("Pod Identity → sts:AssumeRole into the class's role", async () => {
    h.emu.putSecret(REGION, 'xa-pi', 'via pod identity');
    h.emu.putParameter(REGION, 'xa-pi-parm', 'parm via pod identity');
    const pod = podWithoutAccess(h);
    h.emu.addPodIdentityAssociation({
      namespace: pod.namespace,
      serviceAccount: pod.serviceAccount,
      roleArn: pod.roleArn,
    });
    const role = crossRole(h, [pod.roleArn]);
    const target = await h.target();
    h.emu.resetCalls();
    const objects = `${SM('xa-pi')}\n- {objectName: xa-pi-parm, objectType: ssmparameter}`;
    await h.client.mount({
      attributes: pod.attributes({ region: REGION, objects, usePodIdentity: 'true', assumeRoleArn: role }),
      targetPath: target,
    });
    expect(await readFile(path.join(target, 'xa-pi'), 'utf8')).toBe('via pod identity');
    expect(await readFile(path.join(target, 'xa-pi-parm'), 'utf8')).toBe('parm via pod identity');
    expect(h.emu.callCount({ service: 'pod-identity' })).toBe(1);
    expect(h.emu.callCount({ service: 'sts', operation: 'AssumeRoleWithWebIdentity' })).toBe(0);
    expect(h.emu.callCount({ service: 'sts', operation: 'AssumeRole' })).toBe(1);
    expect(
      new Set(h.emu.calls.filter((c) => c.service === 'secretsmanager' || c.service === 'ssm').map((c) => c.roleArn)),
    ).toEqual(new Set([role]));
  });

  it('the chained credentials are cached: the next mount (and a rotation) makes no STS or agent call', async () => {
    h.emu.putSecret(REGION, 'xa-cache', 'v1');
    const pod = podWithoutAccess(h);
    const role = crossRole(h, [pod.roleArn]);
    const target = await h.target();
    const attributes = pod.attributes({ region: REGION, objects: SM('xa-cache'), assumeRoleArn: role });
    await h.client.mount({ attributes, targetPath: target });
    h.emu.resetCalls();
    await h.client.mount({ attributes, targetPath: target });
    h.emu.putSecret(REGION, 'xa-cache', 'v2');
    await h.client.mount({ attributes, targetPath: target });
    expect(await readFile(path.join(target, 'xa-cache'), 'utf8')).toBe('v2');
    expect(h.emu.callCount({ service: 'sts' })).toBe(0);
    expect(h.emu.callCount({ service: 'secretsmanager', operation: 'GetSecretValue' })).toBe(2);
  });

  it('a wrong external id is refused just after the right one mounted (same pod or same service account)', async () => {
    h.emu.putSecret(REGION, 'xa-ext', 'guarded');
    const ns = 'ext-ns';
    const sa = 'ext-sa';
    const pod = podWithoutAccess(h, { namespace: ns, serviceAccount: sa });
    const role = crossRole(h, [pod.roleArn], { externalId: 'right-id-1' });
    const mountWith = (p: Pod, ext: string | undefined, target: string) =>
      h.client.mount({
        attributes: p.attributes({
          region: REGION,
          objects: SM('xa-ext'),
          assumeRoleArn: role,
          ...(ext === undefined ? {} : { assumeRoleExternalId: ext }),
        }),
        targetPath: target,
      });

    const good = await h.target();
    await mountWith(pod, 'right-id-1', good);
    expect(await readFile(path.join(good, 'xa-ext'), 'utf8')).toBe('guarded');

    for (const [who, ext] of [
      [pod, 'wrong-id-2'],
      [pod, undefined],
      [h.pod({ namespace: ns, serviceAccount: sa, role: pod.roleArn, allowSecrets: ['none'] }), 'wrong-id-3'],
    ] as const) {
      const target = await h.target();
      const e = await refused(mountWith(who, ext, target));
      expect(e.code).toBe(status.PERMISSION_DENIED);
      expect(e.details).toContain(`sts:AssumeRole into ${role}`);
      expect(e.details).toContain('AccessDenied');
      expect(e.details).not.toContain('right-id-1');
      expect(await readdir(target)).toEqual([]);
    }

    // The right id still works, from the cache.
    h.emu.resetCalls();
    await mountWith(pod, 'right-id-1', await h.target());
    expect(h.emu.callCount({ service: 'sts' })).toBe(0);
  });

  it("a role that does not trust the pod's role: refused naming the role and the cause", async () => {
    h.emu.putSecret(REGION, 'xa-untrusted', 'x');
    const pod = podWithoutAccess(h);
    const role = crossRole(h, ['arn:aws:iam::123456789012:role/someone-else']);
    const target = await h.target();
    const e = await refused(
      h.client.mount({
        attributes: pod.attributes({ region: REGION, objects: SM('xa-untrusted'), assumeRoleArn: role }),
        targetPath: target,
      }),
    );
    expect(e.code).toBe(status.PERMISSION_DENIED);
    expect(e.details).toContain(`sts:AssumeRole into ${role} failed`);
    expect(e.details).toContain('not authorized to perform: sts:AssumeRole');
    expect(await readdir(target)).toEqual([]);
  });

  it("assumeRoleDurationSeconds sets the chained session's lifetime (900 and 3600)", async () => {
    for (const seconds of [900, 3600]) {
      const name = `xa-dur-${seconds}`;
      h.emu.putSecret(REGION, name, 'x');
      const pod = podWithoutAccess(h);
      const role = crossRole(h, [pod.roleArn]);
      const before = Date.now();
      await h.client.mount({
        attributes: pod.attributes({
          region: REGION,
          objects: SM(name),
          assumeRoleArn: role,
          assumeRoleDurationSeconds: String(seconds),
        }),
        targetPath: await h.target(),
      });
      const session = h.emu
        .sessions()
        .filter((s) => s.roleArn === role && s.source === 'AssumeRole')
        .at(-1);
      expect(session).toBeDefined();
      const lifetime = ((session?.expiration.getTime() ?? 0) - before) / 1000;
      expect(lifetime).toBeGreaterThan(seconds - 60);
      expect(lifetime).toBeLessThanOrEqual(seconds + 1);
    }
  });

  it("a duration over the role's MaxSessionDuration (1800): refused naming the role and the cause", async () => {
    h.emu.putSecret(REGION, 'xa-max', 'x');
    const pod = podWithoutAccess(h);
    const role = crossRole(h, [pod.roleArn], { maxSessionDurationSeconds: 1800 });
    const e = await refused(
      h.client.mount({
        attributes: pod.attributes({
          region: REGION,
          objects: SM('xa-max'),
          assumeRoleArn: role,
          assumeRoleDurationSeconds: '3600',
        }),
        targetPath: await h.target(),
      }),
    );
    expect(e.details).toContain(`sts:AssumeRole into ${role}`);
    expect(e.details).toContain('MaxSessionDuration');
  });

  const badParameters: { name: string; params: Record<string, string>; field: string }[] = [
    {
      name: 'duration below 900',
      params: { assumeRoleArn: `arn:aws:iam::${OTHER_ACCOUNT}:role/r`, assumeRoleDurationSeconds: '899' },
      field: 'assumeRoleDurationSeconds',
    },
    {
      name: 'duration above 3600 (role chaining caps at one hour)',
      params: { assumeRoleArn: `arn:aws:iam::${OTHER_ACCOUNT}:role/r`, assumeRoleDurationSeconds: '3601' },
      field: 'assumeRoleDurationSeconds',
    },
    {
      name: 'duration that is not a whole number',
      params: { assumeRoleArn: `arn:aws:iam::${OTHER_ACCOUNT}:role/r`, assumeRoleDurationSeconds: '1h' },
      field: 'assumeRoleDurationSeconds',
    },
    { name: 'not a role ARN', params: { assumeRoleArn: 'arn:aws:iam::12:user/x' }, field: 'assumeRoleArn' },
    { name: 'external id without a role', params: { assumeRoleExternalId: 'abc123' }, field: 'assumeRoleExternalId' },
    {
      name: 'external id with characters STS refuses',
      params: { assumeRoleArn: `arn:aws:iam::${OTHER_ACCOUNT}:role/r`, assumeRoleExternalId: 'has space' },
      field: 'assumeRoleExternalId',
    },
  ];
  for (const c of badParameters) {
    it(`refused before any Kubernetes or AWS call: ${c.name}`, async () => {
      const pod = podWithoutAccess(h);
      h.emu.resetCalls();
      const e = await refused(
        h.client.mount({
          attributes: pod.attributes({ region: REGION, objects: SM('xa-any'), ...c.params }),
          targetPath: await h.target(),
        }),
      );
      expect(e.code).toBe(status.INVALID_ARGUMENT);
      expect(e.details).toContain(c.field);
      expect(h.emu.calls).toEqual([]);
    });
  }

  it('with a failover region: the primary fails; the failover region answers, credentials chained there', async () => {
    h.emu.putSecret(REGION, 'xa-fo', 'east');
    h.emu.putSecret(FAILOVER_REGION, 'xa-fo', 'west');
    const pod = podWithoutAccess(h);
    const role = crossRole(h, [pod.roleArn], { externalId: 'fo-id-1' });
    const fault = h.emu.addFault({
      service: 'secretsmanager',
      region: REGION,
      target: 'xa-fo',
      status: 500,
      code: 'InternalServiceError',
      message: 'injected',
    });
    try {
      const target = await h.target();
      h.emu.resetCalls();
      await h.client.mount({
        attributes: pod.attributes({
          region: REGION,
          failoverRegion: FAILOVER_REGION,
          objects: SM('xa-fo'),
          assumeRoleArn: role,
          assumeRoleExternalId: 'fo-id-1',
        }),
        targetPath: target,
      });
      expect(await readFile(path.join(target, 'xa-fo'), 'utf8')).toBe('west');
      const chained = h.emu.calls.filter((c) => c.service === 'sts' && c.operation === 'AssumeRole');
      expect(new Set(chained.map((c) => c.region))).toEqual(new Set([REGION, FAILOVER_REGION]));
      const west = h.emu.calls.filter((c) => c.service === 'secretsmanager' && c.region === FAILOVER_REGION);
      expect(west.map((c) => c.roleArn)).toEqual([role]);
      // And a wrong external id is refused in the failover region too.
      const e = await refused(
        h.client.mount({
          attributes: pod.attributes({
            region: REGION,
            failoverRegion: FAILOVER_REGION,
            objects: SM('xa-fo'),
            assumeRoleArn: role,
            assumeRoleExternalId: 'fo-id-2',
          }),
          targetPath: await h.target(),
        }),
      );
      expect(e.details).toContain(`sts:AssumeRole into ${role}`);
    } finally {
      h.emu.removeFault(fault);
    }
  });

  it('no token, role, external id or secret value in any log line', () => {
    const all = h.logs.join('\n');
    expect(all).not.toMatch(/eyJ[\w-]+\.[\w-]+\.[\w-]+/);
    for (const s of ['cross value', 'via pod identity', 'guarded', 'right-id-1']) expect(all).not.toContain(s);
  });
});

describe('role chaining (driver writes)', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ flags: ['--driver-writes-secrets'] });
  });
  afterAll(async () => h?.close());

  it('the files come back from the chained read, and a rotation follows', async () => {
    h.emu.putSecret(REGION, 'xa-dw', '{"user":"u1"}');
    const pod = podWithoutAccess(h);
    const role = crossRole(h, [pod.roleArn], { externalId: 'dw-id-1' });
    const target = await h.target();
    const attributes = pod.attributes({
      region: REGION,
      objects: '- {objectName: xa-dw, objectType: secretsmanager, jmesPath: [{path: user, objectAlias: user}]}',
      assumeRoleArn: role,
      assumeRoleExternalId: 'dw-id-1',
      assumeRoleDurationSeconds: '900',
    });
    const first = await h.client.mount({ attributes, targetPath: target });
    await writeFilesLikeDriver(target, first.files);
    expect(await readFile(path.join(target, 'user'), 'utf8')).toBe('u1');
    h.emu.putSecret(REGION, 'xa-dw', '{"user":"u2"}');
    const second = await h.client.mount({ attributes, targetPath: target, currentObjectVersion: first.objectVersion });
    await writeFilesLikeDriver(target, second.files);
    expect(await readFile(path.join(target, 'user'), 'utf8')).toBe('u2');
  });
});

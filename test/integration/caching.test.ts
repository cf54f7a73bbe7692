/**
 * Caching through the socket (README, "Caching and cost"), asserted from the emulator's call log: STS / agent /
 * Kubernetes calls for a first mount, a warm mount and a rotation poll; concurrent mounts sharing one
 * exchange and one lookup; the confused-deputy refusal; credential expiry and refresh; refused
 * credentials dropped; the role annotation cached (60 s TTL); the 40-pod × 30-secret burst on a fresh
 * node. No sleeps: expiry is played by running the emulator's clock ahead of the provider's.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Emulator } from '../../tools/emulator/index.js';
import {
  ACCOUNT,
  FAILOVER_REGION,
  REGION,
  startIdentityHarness,
  type IdentityHarness,
  type Pod,
} from '../helpers/identity-harness.js';
import { refused } from '../helpers/failure.js';

const MIN = 60_000;

interface Counts {
  sts: number;
  agent: number;
  serviceAccount: number;
  pod: number;
  node: number;
  getSecretValue: number;
  getParameters: number;
}

function counts(emu: Emulator): Counts {
  return {
    sts: emu.callCount({ service: 'sts', operation: 'AssumeRoleWithWebIdentity' }),
    agent: emu.callCount({ service: 'pod-identity' }),
    serviceAccount: emu.callCount({ service: 'k8s', operation: 'GetServiceAccount' }),
    pod: emu.callCount({ service: 'k8s', operation: 'GetPod' }),
    node: emu.callCount({ service: 'k8s', operation: 'GetNode' }),
    getSecretValue: emu.callCount({ service: 'secretsmanager', operation: 'GetSecretValue' }),
    getParameters: emu.callCount({ service: 'ssm', operation: 'GetParameters' }),
  };
}

const OBJECTS = `
- {objectName: c-one, objectType: secretsmanager}
- {objectName: c-two, objectType: secretsmanager}
- {objectName: c-three, objectType: secretsmanager}
- {objectName: c-parm1, objectType: ssmparameter}
- {objectName: c-parm2, objectType: ssmparameter}
`;

function seed(emu: Emulator, region = REGION): void {
  for (const n of ['c-one', 'c-two', 'c-three']) emu.putSecret(region, n, `${n}-value`);
  for (const n of ['c-parm1', 'c-parm2']) emu.putParameter(region, n, `${n}-value`);
}

describe('without NODE_NAME (region through the pod, as ASCP)', () => {
  let h: IdentityHarness;
  /** Minutes the emulator's clock runs ahead of the provider's (plays a revoked / early-expired session). */
  let skew = 0;
  beforeAll(async () => {
    h = await startIdentityHarness({ emulator: { now: () => Date.now() + skew } });
    seed(h.emu);
    seed(h.emu, FAILOVER_REGION);
  });
  afterAll(async () => h?.close());
  beforeEach(() => {
    skew = 0;
    h.emu.resetCalls();
  });

  it('IRSA: first mount, warm mount, rotation polls (measured)', async () => {
    const pod = h.pod({ tokenSeconds: 2 * 3600 });
    const target = await h.target();
    const attributes = pod.attributes({ objects: OBJECTS });
    await h.client.mount({ attributes, targetPath: target });
    expect(counts(h.emu)).toEqual({
      sts: 1,
      agent: 0,
      serviceAccount: 1,
      pod: 1,
      node: 1,
      getSecretValue: 3,
      getParameters: 1,
    });
    h.emu.resetCalls();
    const first = await h.client.mount({ attributes, targetPath: target }); // warm: the driver v1.6 rotation poll
    expect(counts(h.emu)).toEqual({
      sts: 0,
      agent: 0,
      serviceAccount: 0,
      pod: 0,
      node: 0,
      getSecretValue: 3,
      getParameters: 1,
    });
    h.emu.resetCalls();
    // driver ≤1.5 poll
    await h.client.mount({ attributes, targetPath: target, currentObjectVersion: first.objectVersion });
    expect(counts(h.emu)).toMatchObject({ sts: 0, agent: 0, serviceAccount: 0, pod: 0, node: 0 });
  });

  it('region attribute set: a warm mount makes no Kubernetes call at all', async () => {
    const pod = h.pod();
    const attributes = pod.attributes({ region: REGION, objects: OBJECTS });
    await h.client.mount({ attributes, targetPath: await h.target() });
    expect(counts(h.emu)).toMatchObject({ sts: 1, serviceAccount: 1, pod: 0, node: 0 });
    h.emu.resetCalls();
    await h.client.mount({ attributes, targetPath: await h.target() });
    expect(counts(h.emu)).toMatchObject({ sts: 0, serviceAccount: 0, pod: 0, node: 0 });
  });

  it('Pod Identity: one agent call for many mounts and both regions; no STS, no service-account lookup', async () => {
    const pod = h.pod({ podIdentity: true });
    const attributes = pod.attributes({
      region: REGION,
      failoverRegion: FAILOVER_REGION,
      usePodIdentity: 'true',
      objects: OBJECTS,
    });
    // makes the failover region need credentials too
    h.emu.addFault({ service: 'secretsmanager', region: REGION, target: 'c-one', status: 500 });
    try {
      for (let i = 0; i < 5; i++) await h.client.mount({ attributes, targetPath: await h.target() });
    } finally {
      h.emu.clearFaults();
    }
    expect(counts(h.emu)).toMatchObject({ agent: 1, sts: 0, serviceAccount: 0 });
  });

  it('IRSA with a failover region asked: one exchange per region, then none', async () => {
    const pod = h.pod();
    const attributes = pod.attributes({ region: REGION, failoverRegion: FAILOVER_REGION, objects: OBJECTS });
    h.emu.addFault({ service: 'secretsmanager', region: REGION, target: 'c-one', status: 500 });
    try {
      for (let i = 0; i < 3; i++) await h.client.mount({ attributes, targetPath: await h.target() });
    } finally {
      h.emu.clearFaults();
    }
    expect(counts(h.emu)).toMatchObject({ sts: 2, serviceAccount: 1 });
  });

  it('20 concurrent mounts of one pod share one STS exchange and one service-account lookup', async () => {
    const pod = h.pod();
    const attributes = pod.attributes({ region: REGION, objects: OBJECTS });
    const targets = await Promise.all(Array.from({ length: 20 }, () => h.target()));
    await Promise.all(targets.map((targetPath) => h.client.mount({ attributes, targetPath })));
    expect(counts(h.emu)).toMatchObject({ sts: 1, serviceAccount: 1, getSecretValue: 60 });
  });

  it("confused deputy: a pod naming another team's role is refused just after that team's pod (no trust)", async () => {
    const legit = h.pod({ namespace: 'team-a', serviceAccount: 'reader' });
    await h.client.mount({
      attributes: legit.attributes({ region: REGION, objects: OBJECTS }),
      targetPath: await h.target(),
    });
    const intruder = h.pod({ namespace: 'team-b', serviceAccount: 'sneaky', role: legit.roleArn, foreignRole: true });
    const target = await h.target();
    const e = await refused(
      h.client.mount({ attributes: intruder.attributes({ region: REGION, objects: OBJECTS }), targetPath: target }),
    );
    expect(e.code).toBe(status.PERMISSION_DENIED);
    expect(e.details).toContain('AccessDenied');
    expect(e.details).toContain(legit.roleArn);
    expect(e.details).not.toContain(intruder.irsaToken);
    expect(counts(h.emu)).toMatchObject({ sts: 2, getSecretValue: 3 }); // STS decided for the intruder; it read nothing
    await expect(readFile(path.join(target, 'c-one'))).rejects.toThrow();
    // … and stays refused on the next try (a refusal is not cached as success, nor is the legit pod's entry reused).
    await refused(
      h.client.mount({ attributes: intruder.attributes({ region: REGION, objects: OBJECTS }), targetPath: target }),
    );
    expect(counts(h.emu).sts).toBe(3);
  });

  it('credentials AWS refuses (expired early / revoked) are dropped and the same mount exchanges again', async () => {
    const pod = h.pod({ tokenSeconds: 4 * 3600 });
    const attributes = pod.attributes({ region: REGION, objects: OBJECTS });
    await h.client.mount({ attributes, targetPath: await h.target() });
    skew = 61 * MIN; // AWS now considers the cached session expired; the provider does not know yet
    await h.client.mount({ attributes, targetPath: await h.target() });
    expect(counts(h.emu).sts).toBe(2);
    expect(
      h.emu.calls.filter((c) => c.service === 'secretsmanager' && c.errorCode === 'ExpiredTokenException').length,
    ).toBeGreaterThan(0);
    await h.client.mount({ attributes, targetPath: await h.target() });
    expect(counts(h.emu).sts).toBe(2);
  });

  // The other half (a changed annotation is used once the 60 s TTL has passed) needs the provider's
  // clock: KubeLookups and CredentialCache capture `Date.now` when built, and start() takes no clock,
  // so it is tested in src/k8s/lookups.test.ts ('caches per namespace/name for the TTL, then asks again').
  it('a changed role annotation is not used until the 60 s TTL passes (cached role, cached credentials)', async () => {
    const pod = h.pod({ namespace: 'rotate', serviceAccount: 'app' });
    const newRole = `arn:aws:iam::${ACCOUNT}:role/rotated-role`;
    h.emu.addRole({
      arn: newRole,
      trust: { subjects: ['system:serviceaccount:rotate:app'] },
      allow: { secretsmanager: ['*'], ssm: ['*'] },
    });
    const attributes = pod.attributes({ region: REGION, objects: OBJECTS });
    const roleUsed = (): string | undefined =>
      h.emu.calls.filter((c) => c.service === 'secretsmanager').at(-1)?.roleArn;
    await h.client.mount({ attributes, targetPath: await h.target() });
    expect(roleUsed()).toBe(pod.roleArn);
    h.emu.addServiceAccount('rotate', 'app', { 'eks.amazonaws.com/role-arn': newRole });
    await h.client.mount({ attributes, targetPath: await h.target() });
    expect(roleUsed()).toBe(pod.roleArn);
    expect(counts(h.emu)).toMatchObject({ serviceAccount: 1, sts: 1 });
  });

  it(
    'burst without NODE_NAME, 40 pods × 30 secrets, 8 service accounts: a pod GET per pod on first mounts, none on ' +
      'polls (pod uid); one node GET; one SA GET and one STS exchange per service account',
    { timeout: 120_000 },
    async () => {
      const r = await burst(h, 'nn');
      expect(r.first).toEqual({
        sts: 8,
        agent: 0,
        serviceAccount: 8,
        pod: 40,
        node: 1,
        getSecretValue: 1200,
        getParameters: 0,
      });
      expect(r.poll).toEqual({
        sts: 0,
        agent: 0,
        serviceAccount: 0,
        pod: 0,
        node: 0,
        getSecretValue: 1200,
        getParameters: 0,
      });
    },
  );
});

describe("with NODE_NAME (the region from the provider's own node, looked up once)", () => {
  let h: IdentityHarness;
  beforeAll(async () => {
    h = await startIdentityHarness({ env: { NODE_NAME: 'node-1' } });
  });
  afterAll(async () => h?.close());

  it(
    'burst, 40 pods × 30 secrets, 8 service accounts: no pod GET; one node GET; one SA GET and one STS exchange per ' +
      'service account (pod-bound tokens of one service account are one web identity)',
    { timeout: 120_000 },
    async () => {
      const r = await burst(h, 'wn');
      expect(r.first).toEqual({
        sts: 8,
        agent: 0,
        serviceAccount: 8,
        pod: 0,
        node: 1,
        getSecretValue: 1200,
        getParameters: 0,
      });
      expect(r.poll).toEqual({
        sts: 0,
        agent: 0,
        serviceAccount: 0,
        pod: 0,
        node: 0,
        getSecretValue: 1200,
        getParameters: 0,
      });
    },
  );
});

/**
 * 40 pods landing on a fresh node (8 service accounts × 5 pods), each mounting 30 secrets, all at
 * once; then every pod's rotation poll (driver v1.6: no versions sent).
 */
async function burst(h: IdentityHarness, prefix: string): Promise<{ first: Counts; poll: Counts }> {
  const node = `${prefix}-fresh-node`;
  h.emu.addNode(node, { 'topology.kubernetes.io/region': REGION });
  const names = Array.from({ length: 30 }, (_, i) => `${prefix}-burst-${i}`);
  for (const n of names) h.emu.putSecret(REGION, n, `v-${n}`);
  const objects = names.map((n) => `- {objectName: ${n}, objectType: secretsmanager}`).join('\n');
  const pods: Pod[] = [];
  for (let sa = 0; sa < 8; sa++) {
    const namespace = `${prefix}-team-${sa % 4}`;
    const serviceAccount = `${prefix}-sa-${sa}`;
    const role = `arn:aws:iam::${ACCOUNT}:role/${prefix}-burst-${sa}`;
    for (let p = 0; p < 5; p++) {
      // The harness adds the role (trusting this service account) with the first pod; later pods reuse it.
      pods.push(h.pod({ namespace, serviceAccount, pod: `${serviceAccount}-pod-${p}`, role, node }));
    }
  }
  const mounts = await Promise.all(pods.map(async (pod) => ({ pod, targetPath: await h.target() })));
  h.emu.resetCalls();
  await Promise.all(
    mounts.map(({ pod, targetPath }) => h.client.mount({ attributes: pod.attributes({ objects }), targetPath })),
  );
  const first = counts(h.emu);
  const sample = mounts[17];
  if (sample) expect(await readFile(path.join(sample.targetPath, names[29] as string), 'utf8')).toBe(`v-${names[29]}`);
  h.emu.resetCalls();
  await Promise.all(
    mounts.map(({ pod, targetPath }) => h.client.mount({ attributes: pod.attributes({ objects }), targetPath })),
  );
  return { first, poll: counts(h.emu) };
}

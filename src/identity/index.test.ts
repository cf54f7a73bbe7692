/**
 * IdentityResolver against the emulator's STS and Pod Identity agent: one exchange per identity
 * (not per mount), keys that never hand one pod's credentials to another identity, in-flight
 * sharing, expiry and refresh on an injected clock, forget(), role chaining, session names.
 */
import { Buffer } from 'node:buffer';
import { STSClient } from '@aws-sdk/client-sts';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startEmulator, type Emulator } from '../../tools/emulator/index.js';
import { ProviderError } from '../errors.js';
import type { CachedCredentials } from './credential-cache.js';
import { CredentialCache, IdentityResolver, type IdentityRequest, type StsClientSource } from './index.js';

const ACCOUNT = '123456789012';
const ROLE_A = `arn:aws:iam::${ACCOUNT}:role/team-a-reader`;
const ROLE_B = `arn:aws:iam::${ACCOUNT}:role/team-b-reader`;
const CHAIN = `arn:aws:iam::210987654321:role/cross-account`;
const MIN = 60_000;

let emu: Emulator;
let t = Date.now();
const now = (): number => t;
const clients: STSClient[] = [];

/** STS clients pointed at the emulator (identity/ does not import aws/, so the test builds its own). */
const sts: StsClientSource = {
  async sts(region: string, creds?: CachedCredentials) {
    const c = new STSClient({
      region,
      endpoint: emu.url,
      maxAttempts: 1,
      credentials: creds
        ? {
            accessKeyId: creds.accessKeyId,
            secretAccessKey: creds.secretAccessKey,
            ...(creds.sessionToken ? { sessionToken: creds.sessionToken } : {}),
          }
        : async () => {
            throw new Error('unsigned');
          },
    });
    clients.push(c);
    return c;
  },
};

beforeAll(async () => {
  emu = await startEmulator({ now });
  emu.addRole({
    arn: ROLE_A,
    trust: { subjects: ['system:serviceaccount:team-a:reader'] },
    allow: { secretsmanager: ['*'] },
  });
  emu.addRole({
    arn: ROLE_B,
    trust: { subjects: ['system:serviceaccount:team-b:reader'] },
    allow: { secretsmanager: ['team-b/*'] },
  });
  emu.addRole({ arn: CHAIN, trustedRoles: [ROLE_A], externalId: 'ext-1', allow: { secretsmanager: ['*'] } });
  emu.addPodIdentityAssociation({ namespace: 'team-a', serviceAccount: 'reader', roleArn: ROLE_A });
});
afterAll(async () => {
  for (const c of clients) c.destroy();
  await emu?.close();
});
beforeEach(() => {
  t = Date.now();
  emu.resetCalls();
});

const signal = (): AbortSignal => new AbortController().signal;

function irsa(o: { ns?: string; sa?: string; role?: string; pod?: string; token?: string } = {}): IdentityRequest {
  const namespace = o.ns ?? 'team-a';
  const serviceAccount = o.sa ?? 'reader';
  return {
    method: 'irsa',
    token:
      o.token ??
      emu.issueToken({
        namespace,
        serviceAccount,
        audience: 'sts.amazonaws.com',
        podName: o.pod ?? 'p1',
        expiresInSeconds: 24 * 3600,
      }),
    roleArn: o.role ?? ROLE_A,
    namespace,
    serviceAccount,
    preference: 'auto',
  };
}

const stsCalls = (op = 'AssumeRoleWithWebIdentity'): number => emu.callCount({ service: 'sts', operation: op });

function resolver(o: { observe?: (method: string, outcome: string) => void } = {}): IdentityResolver {
  return new IdentityResolver({
    sts,
    cache: new CredentialCache({ now }),
    now,
    podIdentity: { endpoint: emu.podIdentityUrl },
    ...(o.observe ? { observe: o.observe } : {}),
  });
}

describe('IRSA through the cache', () => {
  it('one AssumeRoleWithWebIdentity per identity and region, whatever the number of mounts', async () => {
    const r = resolver();
    const req = irsa();
    const first = await r.credentials(req, 'us-east-1', signal());
    for (let i = 0; i < 5; i++)
      expect((await r.credentials(req, 'us-east-1', signal())).accessKeyId).toBe(first.accessKeyId);
    expect(stsCalls()).toBe(1);
    await r.credentials(req, 'us-west-2', signal()); // each region gets its own credentials
    expect(stsCalls()).toBe(2);
  });

  it('concurrent requests of one identity share one exchange in flight', async () => {
    const r = resolver();
    const req = irsa();
    const all = await Promise.all(Array.from({ length: 25 }, () => r.credentials(req, 'us-east-1', signal())));
    expect(new Set(all.map((c) => c.accessKeyId)).size).toBe(1);
    expect(stsCalls()).toBe(1);
  });

  it('the session name carries namespace and service account (audit), not a timestamp', async () => {
    const r = resolver();
    const c = await r.credentials(irsa(), 'us-east-1', signal());
    const s = emu.sessions().find((x) => x.accessKeyId === c.accessKeyId);
    expect(s).toMatchObject({ roleArn: ROLE_A, sessionName: 'team-a.reader', source: 'AssumeRoleWithWebIdentity' });
  });

  it("confused deputy: a pod naming another team's role is refused just after that team's pod (no trust)", async () => {
    const r = resolver();
    await r.credentials(irsa({ ns: 'team-b', role: ROLE_B }), 'us-east-1', signal()); // team B, legitimately
    const intruder = irsa({ ns: 'team-a', sa: 'reader', role: ROLE_B }); // team A's pod, annotated with team B's role
    const e = await r.credentials(intruder, 'us-east-1', signal()).then(
      () => undefined,
      (err: unknown) => err as ProviderError,
    );
    expect(e).toBeInstanceOf(ProviderError);
    expect(e?.code).toBe('PERMISSION_DENIED');
    expect(e?.message).toContain('AccessDenied');
    expect(e?.message).toContain(ROLE_B);
    expect(e?.message).not.toContain(intruder.token);
    expect(stsCalls()).toBe(2); // STS itself decided; nothing came from the cache
  });

  it.each([
    ['another pod of the same service account (another token)', { pod: 'p2' }],
    ['the same pod with a refreshed token', { pod: 'p1' }],
  ])('%s: the same web identity, so the same credentials (one exchange per service account)', async (_what, o) => {
    const r = resolver();
    const first = await r.credentials(irsa(), 'us-east-1', signal());
    t += 1_000; // a token issued a second later differs even for the same pod
    const again = irsa(o);
    expect(again.token).not.toBe(irsa().token);
    expect((await r.credentials(again, 'us-east-1', signal())).accessKeyId).toBe(first.accessKeyId);
    expect(stsCalls()).toBe(1);
  });

  it('another service account with the same role annotation: a new exchange', async () => {
    emu.addRole({
      arn: ROLE_A,
      trust: { subjects: ['system:serviceaccount:team-a:reader', 'system:serviceaccount:team-a:other'] },
      allow: { secretsmanager: ['*'] },
    });
    const r = resolver();
    const a = await r.credentials(irsa(), 'us-east-1', signal());
    const b = await r.credentials(irsa({ sa: 'other' }), 'us-east-1', signal());
    expect(b.accessKeyId).not.toBe(a.accessKeyId);
    expect(stsCalls()).toBe(2);
  });

  it("a token claiming a service account the kubelet did not name never gets that account's credentials", async () => {
    emu.addRole({
      arn: ROLE_A,
      trust: { subjects: ['system:serviceaccount:team-a:reader', 'system:serviceaccount:team-a:other'] },
      allow: { secretsmanager: ['*'] },
    });
    const r = resolver();
    const other = await r.credentials(irsa({ sa: 'other' }), 'us-east-1', signal());
    // A pod of `reader` presenting a token of `other` (as a class could, where the driver passes no tokens).
    const claimed = irsa({ token: irsa({ sa: 'other', pod: 'p9' }).token });
    const got = await r.credentials(claimed, 'us-east-1', signal()).catch(() => undefined);
    expect(got?.accessKeyId).not.toBe(other.accessKeyId);
    expect(stsCalls()).toBe(2);
  });

  it.each([
    [
      'has expired',
      (): string =>
        emu.issueToken({
          namespace: 'team-a',
          serviceAccount: 'reader',
          audience: 'sts.amazonaws.com',
          podName: 'p9',
          expiresInSeconds: -10,
        }),
    ],
    ['is not a JWT', (): string => 'not-a-jwt'],
    ['has claims that are not JSON', (): string => `x.${Buffer.from('{"sub":').toString('base64url')}.y`],
  ])("a token that %s never reaches the service account's cached credentials: STS decides", async (_what, token) => {
    const r = resolver();
    const first = await r.credentials(irsa(), 'us-east-1', signal());
    await expect(r.credentials(irsa({ token: token() }), 'us-east-1', signal())).rejects.toBeInstanceOf(ProviderError);
    expect(stsCalls()).toBe(2);
    expect(first.accessKeyId).toBeTruthy();
  });

  it('credentials are reused until 5 minutes before they expire, then exchanged again', async () => {
    const r = resolver();
    const req = irsa();
    const first = await r.credentials(req, 'us-east-1', signal()); // STS: 1 h
    t += 55 * MIN - 1;
    expect((await r.credentials(req, 'us-east-1', signal())).accessKeyId).toBe(first.accessKeyId);
    t += 1;
    const second = await r.credentials(req, 'us-east-1', signal());
    expect(second.accessKeyId).not.toBe(first.accessKeyId);
    expect(stsCalls()).toBe(2);
  });

  it('forget() drops refused credentials: the next request exchanges again', async () => {
    const r = resolver();
    const req = irsa();
    await r.credentials(req, 'us-east-1', signal());
    r.forget(req, 'us-east-1');
    await r.credentials(req, 'us-east-1', signal());
    expect(stsCalls()).toBe(2);
  });

  it('errors are not cached: each request asks STS again (no refusal kept forever, none hidden)', async () => {
    const r = resolver();
    const req = irsa({ role: `arn:aws:iam::${ACCOUNT}:role/does-not-exist` });
    for (let i = 0; i < 2; i++)
      await expect(r.credentials(req, 'us-east-1', signal())).rejects.toBeInstanceOf(ProviderError);
    expect(stsCalls()).toBe(2);
  });

  it('an expired token is a fatal STS error naming the role and region', async () => {
    const r = resolver();
    const req = irsa({
      token: emu.issueToken({
        namespace: 'team-a',
        serviceAccount: 'reader',
        audience: 'sts.amazonaws.com',
        expiresInSeconds: -10,
      }),
    });
    const e = (await r.credentials(req, 'us-east-1', signal()).catch((err: unknown) => err)) as ProviderError & {
      fatal?: boolean;
    };
    expect(e.message).toContain('us-east-1');
    expect(e.message).toContain('ExpiredTokenException');
    expect(e.fatal).toBe(true);
  });

  it('observe() sees each exchange, not each cache hit', async () => {
    const seen: string[] = [];
    const r = resolver({ observe: (m, o) => seen.push(`${m}:${o}`) });
    const req = irsa();
    await r.credentials(req, 'us-east-1', signal());
    await r.credentials(req, 'us-east-1', signal());
    await r.credentials(irsa({ role: ROLE_B }), 'us-east-1', signal()).catch(() => undefined);
    expect(seen).toEqual(['irsa:success', 'irsa:error']);
  });
});

describe('Pod Identity through the cache', () => {
  function podIdentity(pod = 'p1'): IdentityRequest {
    const token = emu.issueToken({
      namespace: 'team-a',
      serviceAccount: 'reader',
      audience: 'pods.eks.amazonaws.com',
      podName: pod,
      expiresInSeconds: 24 * 3600,
    });
    return { method: 'pod-identity', token, namespace: 'team-a', serviceAccount: 'reader', preference: 'auto' };
  }

  it('one agent call for every region and mount of one pod; no STS call', async () => {
    const r = resolver();
    const req = podIdentity();
    await Promise.all([r.credentials(req, 'us-east-1', signal()), r.credentials(req, 'us-west-2', signal())]);
    await r.credentials(req, 'us-east-1', signal());
    expect(emu.callCount({ service: 'pod-identity' })).toBe(1);
    expect(emu.callCount({ service: 'sts' })).toBe(0);
  });

  it('agent credentials (6 h) are refreshed 5 minutes before they expire', async () => {
    const r = resolver();
    const req = podIdentity();
    await r.credentials(req, 'us-east-1', signal());
    t += 354 * MIN; // the agent's Expiration has whole seconds: stay a minute clear of the edge
    await r.credentials(req, 'us-east-1', signal());
    expect(emu.callCount({ service: 'pod-identity' })).toBe(1);
    t += 2 * MIN;
    await r.credentials(req, 'us-east-1', signal());
    expect(emu.callCount({ service: 'pod-identity' })).toBe(2);
  });

  it("the agent's session carries EKS's namespace / service-account tags", async () => {
    const r = resolver();
    const c = await r.credentials(podIdentity('tagged'), 'us-east-1', signal());
    const s = emu.sessions().find((x) => x.accessKeyId === c.accessKeyId);
    expect(s?.tags).toMatchObject({
      'kubernetes-namespace': 'team-a',
      'kubernetes-service-account': 'reader',
      'kubernetes-pod-name': 'tagged',
    });
  });
});

describe('role chaining (assumeRoleArn)', () => {
  const chained = (externalId = 'ext-1'): IdentityRequest => ({
    ...irsa(),
    assumeRole: { roleArn: CHAIN, externalId },
  });

  it('one web-identity exchange and one AssumeRole per chain; cached together', async () => {
    const r = resolver();
    const req = chained();
    const a = await r.credentials(req, 'us-east-1', signal());
    const b = await r.credentials(req, 'us-east-1', signal());
    expect(b.accessKeyId).toBe(a.accessKeyId);
    expect(stsCalls()).toBe(1);
    expect(stsCalls('AssumeRole')).toBe(1);
    const s = emu.sessions().find((x) => x.accessKeyId === a.accessKeyId);
    expect(s).toMatchObject({ roleArn: CHAIN, sessionName: 'team-a.reader', source: 'AssumeRole' });
  });

  it('another external id is another chain: AssumeRole again (refused here), the base credentials reused', async () => {
    const r = resolver();
    const req = chained();
    await r.credentials(req, 'us-east-1', signal());
    const other = { ...req, assumeRole: { roleArn: CHAIN, externalId: 'wrong' } };
    await expect(r.credentials(other, 'us-east-1', signal())).rejects.toThrow(/AccessDenied/);
    expect(stsCalls()).toBe(1);
    expect(stsCalls('AssumeRole')).toBe(2);
  });

  it('the chain is not served to the same pod without it, nor the base to a chained request', async () => {
    const r = resolver();
    const req = chained();
    const viaChain = await r.credentials(req, 'us-east-1', signal());
    const { assumeRole: _drop, ...plain } = req;
    const base = await r.credentials(plain, 'us-east-1', signal());
    expect(base.accessKeyId).not.toBe(viaChain.accessKeyId);
  });
});

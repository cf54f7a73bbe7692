/**
 * The Pod Identity agent client against the emulator's agent listeners on 127.0.0.1 and ::1 (the
 * two EKS addresses replaced through `addresses`): preference, the IPv4 → IPv6 fallback on a
 * failed request (ASCP's never happens, docs/behaviour.md, "Identity"), retries with backoff for a
 * slow-starting agent, per-attempt timeouts, refusals that are not retried.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type AgentListener, type Emulator } from '../../tools/emulator/index.js';
import { ProviderError } from '../errors.js';
import type { AddressPreference } from '../spc/types.js';
import {
  AGENT_IPV4,
  AGENT_IPV6,
  agentEndpoints,
  podIdentityCredentials,
  type PodIdentityOptions,
} from './pod-identity.js';

const ROLE = 'arn:aws:iam::123456789012:role/pod-identity-reader';
let emu: Emulator;
let v4: AgentListener;
let v6: AgentListener;
let token: string;

beforeAll(async () => {
  emu = await startEmulator();
  emu.addRole({ arn: ROLE, allow: { secretsmanager: ['*'] } });
  emu.addPodIdentityAssociation({ namespace: 'team-a', serviceAccount: 'reader', roleArn: ROLE });
  token = emu.issueToken({
    namespace: 'team-a',
    serviceAccount: 'reader',
    audience: 'pods.eks.amazonaws.com',
    podName: 'p1',
  });
  v4 = await emu.startAgentListener({ host: '127.0.0.1' });
  v6 = await emu.startAgentListener({ host: '::1' });
});
afterAll(async () => emu?.close());

/** Listeners back to answering; request counts are read as deltas. */
afterEach(async () => {
  await v4.setMode('ok');
  await v6.setMode('ok');
  emu.clearFaults();
});

interface Run {
  sleeps: number[];
  v4: number;
  v6: number;
}

/** Calls the agent with fake backoff sleeps; returns the sleeps and the requests each listener received. */
async function run(
  preference: AddressPreference,
  o: Partial<PodIdentityOptions> & { token?: string; signal?: AbortSignal } = {},
): Promise<Run & { result: PromiseSettledResult<Awaited<ReturnType<typeof podIdentityCredentials>>> }> {
  const sleeps: number[] = [];
  const before = { v4: v4.requests, v6: v6.requests };
  const { token: t, signal, ...rest } = o;
  const result = await Promise.allSettled([
    podIdentityCredentials(
      { token: t ?? token, preference, signal: signal ?? new AbortController().signal },
      {
        addresses: { ipv4: v4.url, ipv6: v6.url },
        timeoutMs: 500,
        sleep: async (ms) => {
          sleeps.push(ms);
        },
        ...rest,
      },
    ),
  ]).then((r) => r[0]);
  return { result, sleeps, v4: v4.requests - before.v4, v6: v6.requests - before.v6 };
}

function failure(r: PromiseSettledResult<unknown>): ProviderError {
  if (r.status !== 'rejected') throw new Error('expected the agent call to fail');
  expect(r.reason).toBeInstanceOf(ProviderError);
  return r.reason as ProviderError;
}

describe('agentEndpoints', () => {
  it.each<[AddressPreference, string | undefined, string[]]>([
    ['auto', undefined, [AGENT_IPV4, AGENT_IPV6]],
    ['ipv4', undefined, [AGENT_IPV4]],
    ['ipv6', undefined, [AGENT_IPV6]],
    ['auto', 'http://127.0.0.1:2703/v1/credentials', ['http://127.0.0.1:2703/v1/credentials']],
    ['ipv6', 'http://127.0.0.1:2703/v1/credentials', ['http://127.0.0.1:2703/v1/credentials']],
  ])('%s with endpoint %s → %j', (pref, endpoint, want) => {
    expect(agentEndpoints(pref, endpoint)).toEqual(want);
  });

  it('the EKS addresses are the documented ones', () => {
    expect(AGENT_IPV4).toBe('http://169.254.170.23/v1/credentials');
    expect(AGENT_IPV6).toBe('http://[fd00:ec2::23]/v1/credentials');
  });
});

describe('podIdentityCredentials: preference and fallback', () => {
  it.each<[AddressPreference, number, number]>([
    ['auto', 1, 0],
    ['ipv4', 1, 0],
    ['ipv6', 0, 1],
  ])('%s with both addresses up: IPv4 requests %i, IPv6 requests %i', async (pref, n4, n6) => {
    const r = await run(pref);
    expect(r.result.status).toBe('fulfilled');
    expect({ v4: r.v4, v6: r.v6 }).toEqual({ v4: n4, v6: n6 });
    expect(r.sleeps).toEqual([]);
  });

  it("returns the agent's credentials with their expiration (6 h)", async () => {
    const r = await run('auto');
    if (r.result.status !== 'fulfilled') throw new Error('expected credentials');
    const c = r.result.value;
    expect(c.accessKeyId).toMatch(/^ASIA/);
    expect(c.secretAccessKey).not.toBe('');
    expect(c.sessionToken).not.toBe('');
    expect((c.expiration ?? 0) - Date.now()).toBeGreaterThan(5.9 * 3600_000);
  });

  it.each([
    ['refuses connections', 'refuse', 0],
    ['answers 500', 'error500', 1],
    ['hangs past the per-attempt timeout', 'hang', 1],
  ] as const)(
    'auto: IPv4 %s → IPv6 answers in the same round (the fallback really happens)',
    async (_what, mode, n4) => {
      await v4.setMode(mode);
      const t0 = performance.now();
      const r = await run('auto', { timeoutMs: 200 });
      expect(r.result.status).toBe('fulfilled');
      expect({ v4: r.v4, v6: r.v6 }).toEqual({ v4: n4, v6: 1 });
      expect(r.sleeps).toEqual([]);
      expect(performance.now() - t0).toBeLessThan(2_000);
    },
  );

  it('ipv4 only: never asks IPv6, even when IPv4 is down', async () => {
    await v4.setMode('refuse');
    const r = await run('ipv4', { maxRounds: 3 });
    const e = failure(r.result);
    expect(r.v6).toBe(0);
    expect(e.code).toBe('UNAVAILABLE');
    expect(e.message).toContain(v4.url);
    expect(e.message).not.toContain(v6.url);
  });

  it('ipv6 only: never asks IPv4', async () => {
    await v6.setMode('error500');
    const r = await run('ipv6', { maxRounds: 2 });
    failure(r.result);
    expect({ v4: r.v4, v6: r.v6 }).toEqual({ v4: 0, v6: 2 });
  });

  it("both down: each round tries both, backoff 200·2^n ms up to 3 s, the error names each one's cause", async () => {
    await v4.setMode('refuse');
    await v6.setMode('error500');
    const r = await run('auto');
    const e = failure(r.result);
    expect(r.sleeps).toEqual([200, 400, 800, 1600, 3000]);
    expect(r.v6).toBe(6);
    expect(e.code).toBe('UNAVAILABLE');
    expect(e.reason).toBe('PodIdentityAgent');
    expect(e.message).toContain(`${v4.url}: ECONNREFUSED`);
    expect(e.message).toContain(`${v6.url}: InternalServerException`);
    expect(e.message).toContain('eks-pod-identity-agent');
    expect(e.message).not.toContain(token);
  });
});

describe('podIdentityCredentials: a slow agent (fresh node)', () => {
  it('both addresses refuse until the agent starts during the backoff: the next round succeeds', async () => {
    await v4.setMode('refuse');
    await v6.setMode('refuse');
    const sleeps: number[] = [];
    const c = await podIdentityCredentials(
      { token, preference: 'auto', signal: new AbortController().signal },
      {
        addresses: { ipv4: v4.url, ipv6: v6.url },
        sleep: async (ms) => {
          sleeps.push(ms);
          if (sleeps.length === 2) await v6.setMode('ok'); // the agent comes up on IPv6 first
        },
      },
    );
    expect(c.accessKeyId).toMatch(/^ASIA/);
    expect(sleeps).toEqual([200, 400]);
  });

  it('5xx for the first attempts (agent not ready): retried until it answers', async () => {
    await v4.setMode({ failFirst: 3 });
    const r = await run('ipv4');
    expect(r.result.status).toBe('fulfilled');
    expect(r.v4).toBe(4);
    expect(r.sleeps).toEqual([200, 400, 800]);
  });

  it('429 from the agent is retried', async () => {
    emu.addFault({ service: 'pod-identity', status: 429, times: 1 });
    const r = await run('ipv4');
    expect(r.result.status).toBe('fulfilled');
    expect(r.sleeps).toEqual([200]);
  });

  it('each attempt is bounded by the per-attempt timeout', async () => {
    await v4.setMode('hang');
    const t0 = performance.now();
    const r = await run('ipv4', { timeoutMs: 100, maxRounds: 3 });
    const e = failure(r.result);
    expect(e.message).toContain('no answer within 100 ms');
    expect(r.v4).toBe(3);
    expect(performance.now() - t0).toBeLessThan(2_000);
  });

  it("the mount's deadline stops the retries: DEADLINE_EXCEEDED naming the last failure", async () => {
    await v4.setMode('error500');
    const ac = new AbortController();
    let sleeps = 0;
    const p = podIdentityCredentials(
      { token, preference: 'ipv4', signal: ac.signal },
      {
        addresses: { ipv4: v4.url, ipv6: v6.url },
        sleep: async (_ms, signal) => {
          if (++sleeps === 2) ac.abort(new Error('deadline'));
          if (signal.aborted) throw signal.reason as Error;
        },
      },
    );
    const e = await p.then(
      () => undefined,
      (err: unknown) => err as ProviderError,
    );
    expect(e?.code).toBe('DEADLINE_EXCEEDED');
    expect(e?.message).toContain('InternalServerException');
    expect(sleeps).toBe(2);
  });

  // BUG (reported): attempt() turns an abort during a request into a non-retryable AttemptError
  // ('cancelled'), and podIdentityCredentials() then throws it as the agent *refusing the token*
  // (INTERNAL, "refused the pod's token: cancelled (check the pod identity association …)").
  it('a deadline during an in-flight request is DEADLINE_EXCEEDED, not "the agent refused the token"', async () => {
    await v4.setMode('hang');
    const ac = new AbortController();
    const start = v4.requests;
    const done = podIdentityCredentials(
      { token, preference: 'ipv4', signal: ac.signal },
      { addresses: { ipv4: v4.url, ipv6: v6.url }, timeoutMs: 30_000 },
    ).catch((err: unknown) => err as ProviderError);
    // Abort once the agent has the request (its count moves), not after a sleep.
    await new Promise<void>((resolve) => {
      const poll = (): void => (v4.requests > start ? resolve() : void setImmediate(poll));
      poll();
    });
    ac.abort(Object.assign(new Error('deadline exceeded'), { name: 'TimeoutError', code: 'DEADLINE_EXCEEDED' }));
    const e = await done;
    expect(e).toBeInstanceOf(ProviderError);
    expect((e as ProviderError).message).not.toContain('refused');
    expect((e as ProviderError).code).toBe('DEADLINE_EXCEEDED');
  });
});

describe('podIdentityCredentials: refusals are not retried', () => {
  it.each([
    [
      'a token for another audience',
      'UNAUTHENTICATED',
      'InvalidTokenException',
      () => emu.issueToken({ namespace: 'team-a', serviceAccount: 'reader', audience: 'sts.amazonaws.com' }),
    ],
    [
      'an expired token',
      'UNAUTHENTICATED',
      'ExpiredTokenException',
      () =>
        emu.issueToken({
          namespace: 'team-a',
          serviceAccount: 'reader',
          audience: 'pods.eks.amazonaws.com',
          expiresInSeconds: -60,
        }),
    ],
    [
      'no association for the service account',
      'PERMISSION_DENIED',
      'ResourceNotFoundException',
      () => emu.issueToken({ namespace: 'team-b', serviceAccount: 'other', audience: 'pods.eks.amazonaws.com' }),
    ],
  ])('%s → %s (%s), one request, no backoff', async (_what, code, agentCode, makeToken) => {
    const t = makeToken();
    const r = await run('auto', { token: t });
    const e = failure(r.result);
    expect(e.code).toBe(code);
    expect(e.reason).toBe('PodIdentityRefused');
    expect(e.message).toContain(agentCode);
    expect(e.message).not.toContain(t);
    expect({ v4: r.v4, v6: r.v6, sleeps: r.sleeps }).toEqual({ v4: 1, v6: 0, sleeps: [] });
  });

  it('a token containing a newline is refused before any request', async () => {
    const r = await run('auto', { token: `${token}\r\nX-Injected: 1` });
    const e = failure(r.result);
    expect(e.message).toContain('newline');
    expect({ v4: r.v4, v6: r.v6 }).toEqual({ v4: 0, v6: 0 });
  });

  it('sends the raw token as Authorization (no "Bearer"): the agent sees the service account', async () => {
    emu.resetCalls();
    await run('ipv4');
    const call = emu.calls.find((c) => c.service === 'pod-identity');
    expect(call?.names).toEqual(['team-a/reader']);
    expect(call?.status).toBe(200);
  });
});

describe('podIdentityCredentials: --pod-identity-endpoint', () => {
  it('is used instead of both addresses, whatever the preference', async () => {
    await v4.setMode('refuse');
    await v6.setMode('refuse');
    for (const pref of ['auto', 'ipv4', 'ipv6'] as const) {
      const r = await run(pref, { endpoint: emu.podIdentityUrl });
      expect(r.result.status).toBe('fulfilled');
    }
  });
});

describe('podIdentityCredentials: a broken agent', () => {
  const MARK = 'hunter2-AGENT-MARK';

  it('a trickling body ends at the per-attempt timeout (whole attempt, not just silence) and is retried', async () => {
    emu.addFault({ service: 'pod-identity', trickleMs: 30 });
    const t0 = performance.now();
    const r = await run('ipv4', { timeoutMs: 300, maxRounds: 2 });
    const e = failure(r.result);
    expect(e.code).toBe('UNAVAILABLE');
    expect(e.message).toContain('no complete answer within 300 ms (the answer was still arriving)');
    expect(r.v4).toBe(2);
    expect(performance.now() - t0).toBeLessThan(2_000);
  });

  it.each([
    [
      'an answer over 64 KiB, cut as it arrives',
      { bodyBytes: 10 * 1024 * 1024, chunked: true, rawBody: `{"Token":"${MARK}` },
      'agent answered more than 64 KiB (HTTP 200); the rest was not read',
    ],
    [
      'an answer over 64 KiB by its Content-Length',
      { bodyBytes: 100 * 1024 },
      'agent answered more than 64 KiB (HTTP 200)',
    ],
    ['a Token that is a number', { answerFields: { Token: 5 } }, 'agent answered a Token that is not a string'],
    [
      'a SecretAccessKey that is an object',
      { answerFields: { SecretAccessKey: { k: MARK } } },
      'agent answered a SecretAccessKey that is not a string',
    ],
    [
      'a Token with a newline (it would go into a header)',
      { answerFields: { Token: `abc\r\n${MARK}` } },
      'agent answered a Token that is not 16384 or fewer printable characters',
    ],
    [
      'an Expiration that is not a date',
      { answerFields: { Expiration: MARK } },
      'agent answered an Expiration that is not a date',
    ],
  ])(
    '%s: INTERNAL at once (not retried, not "refused the token"), never quoting the answer',
    async (_name, fault, text) => {
      emu.addFault({ service: 'pod-identity', ...fault });
      const r = await run('auto');
      const e = failure(r.result);
      expect(e.code).toBe('INTERNAL');
      expect(e.reason).toBe('PodIdentityMalformed');
      expect(e.message).toContain(`Pod Identity agent ${v4.url}: ${text}`);
      expect(e.message).not.toContain('hunter2');
      expect(e.message).not.toContain('refused');
      expect([r.v4, r.v6, r.sleeps]).toEqual([1, 0, []]);
    },
  );

  it("an error page that is not JSON is not quoted; the agent's own JSON message still is", async () => {
    emu.addFault({ service: 'pod-identity', status: 503, rawBody: `<html>${MARK}</html>` });
    const page = failure((await run('ipv4', { maxRounds: 2 })).result);
    expect(page.message).toContain('HTTP 503: (an answer that is not JSON; not shown)');
    expect(page.message).not.toContain('hunter2');
    emu.clearFaults();
    emu.addFault({ service: 'pod-identity', status: 503, code: 'ServiceUnavailable', message: 'agent warming up' });
    expect(failure((await run('ipv4', { maxRounds: 2 })).result).message).toContain(
      'ServiceUnavailable: agent warming up',
    );
  });
});

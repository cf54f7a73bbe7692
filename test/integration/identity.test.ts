/**
 * Identity through the real socket: every `usePodIdentity` and
 * `preferredAddressType` value, the Pod Identity agent (via --pod-identity-endpoint) failing,
 * starting late and hanging, role chaining, and the STS session names CloudTrail shows.
 * The IPv4 → IPv6 fallback itself needs `addresses`, which cli/serve.ts does not expose: it is tested
 * in src/identity/pod-identity.test.ts on 127.0.0.1 / ::1 listeners.
 */
import { status } from '@grpc/grpc-js';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { AgentListener } from '../../tools/emulator/index.js';
import { ACCOUNT, REGION, startIdentityHarness, type IdentityHarness } from '../helpers/identity-harness.js';
import { refused } from '../helpers/failure.js';

const SM = (name: string): string => `- {objectName: ${name}, objectType: secretsmanager}`;

describe('identity through the socket (agent at --pod-identity-endpoint)', () => {
  let h: IdentityHarness;
  beforeAll(async () => {
    h = await startIdentityHarness();
    h.emu.putSecret(REGION, 'id-secret', 'value-1');
  });
  afterAll(async () => h?.close());
  beforeEach(() => h.emu.resetCalls());

  const counts = (): Record<string, number> => ({
    agent: h.emu.callCount({ service: 'pod-identity' }),
    sts: h.emu.callCount({ service: 'sts' }),
    serviceAccount: h.emu.callCount({ service: 'k8s', operation: 'GetServiceAccount' }),
  });

  it.each(['true', 'True', 'TRUE', 't', 'T', '1'])(
    'usePodIdentity %j → the agent, no STS, no service-account lookup, no IRSA token needed',
    async (v) => {
      const pod = h.pod({ podIdentity: true, noAnnotation: true });
      const target = await h.target();
      await h.client.mount({
        attributes: pod.attributes(
          { region: REGION, usePodIdentity: v, objects: SM('id-secret') },
          { tokens: 'pod-identity' },
        ),
        targetPath: target,
      });
      expect(await readFile(path.join(target, 'id-secret'), 'utf8')).toBe('value-1');
      expect(counts()).toEqual({ agent: 1, sts: 0, serviceAccount: 0 });
    },
  );

  it.each([['false'], ['False'], ['FALSE'], ['f'], ['F'], ['0'], [undefined]])(
    'usePodIdentity %j → IRSA: one service-account lookup, one STS exchange, no agent call',
    async (v) => {
      const pod = h.pod();
      const params: Record<string, string> = { region: REGION, objects: SM('id-secret') };
      if (v !== undefined) params['usePodIdentity'] = v;
      await h.client.mount({ attributes: pod.attributes(params, { tokens: 'irsa' }), targetPath: await h.target() });
      expect(counts()).toEqual({ agent: 0, sts: 1, serviceAccount: 1 });
    },
  );

  it.each(['yes', 'on', 'enabled', 'tRuE', ' true', 'true '])(
    'usePodIdentity %j is a clear error, before any call',
    async (v) => {
      const pod = h.pod({ podIdentity: true });
      const e = await refused(
        h.client.mount({
          attributes: pod.attributes({ region: REGION, usePodIdentity: v, objects: SM('id-secret') }),
          targetPath: await h.target(),
        }),
      );
      expect(e.code).toBe(status.INVALID_ARGUMENT);
      expect(e.details).toContain(
        `failed to parse usePodIdentity value, error: strconv.ParseBool: parsing ${JSON.stringify(v)}: invalid syntax`,
      );
      expect(h.emu.calls).toHaveLength(0);
    },
  );

  it.each(['', 'auto', 'AUTO', 'ipv4', 'IPv4', 'ipv6', 'IPV6', 'dual', 'ipv5'])(
    'preferredAddressType %j mounts (the endpoint flag replaces both addresses; unknown = auto)',
    async (v) => {
      const pod = h.pod({ podIdentity: true });
      await h.client.mount({
        attributes: pod.attributes({
          region: REGION,
          usePodIdentity: 'true',
          preferredAddressType: v,
          objects: SM('id-secret'),
        }),
        targetPath: await h.target(),
      });
      expect(counts()).toMatchObject({ agent: 1, sts: 0 });
    },
  );

  it('Pod Identity without a token for pods.eks.amazonaws.com: the error names the audience', async () => {
    const pod = h.pod({ podIdentity: true });
    const e = await refused(
      h.client.mount({
        attributes: pod.attributes(
          { region: REGION, usePodIdentity: 'true', objects: SM('id-secret') },
          { tokens: 'irsa' },
        ),
        targetPath: await h.target(),
      }),
    );
    expect(e.details).toContain('token for audience "pods.eks.amazonaws.com" not found');
    expect(counts().agent).toBe(0);
  });

  it("no Pod Identity association: refused at once, not retried; the agent's reason quoted, no token", async () => {
    const pod = h.pod(); // role, but no association
    const e = await refused(
      h.client.mount({
        attributes: pod.attributes({ region: REGION, usePodIdentity: 'true', objects: SM('id-secret') }),
        targetPath: await h.target(),
      }),
    );
    expect(e.code).toBe(status.PERMISSION_DENIED);
    expect(e.details).toContain('ResourceNotFoundException');
    expect(e.details).toContain(pod.serviceAccount);
    expect(e.details).not.toContain(pod.podIdentityToken);
    expect(counts().agent).toBe(1);
  });

  it('agent 5xx on the first two calls (not ready yet): retried, the mount succeeds', async () => {
    const pod = h.pod({ podIdentity: true });
    h.emu.addFault({ service: 'pod-identity', status: 503, code: 'ServiceUnavailable', times: 2 });
    await h.client.mount({
      attributes: pod.attributes({ region: REGION, usePodIdentity: 'true', objects: SM('id-secret') }),
      targetPath: await h.target(),
    });
    expect(counts().agent).toBe(3);
  });

  it('IRSA session name is <namespace>.<service account> on every AWS call (CloudTrail)', async () => {
    const pod = h.pod({ namespace: 'payments', serviceAccount: 'ledger-reader' });
    await h.client.mount({
      attributes: pod.attributes({ region: REGION, objects: SM('id-secret') }),
      targetPath: await h.target(),
    });
    const call = h.emu.calls.find((c) => c.service === 'secretsmanager');
    expect(call).toMatchObject({ roleArn: pod.roleArn, sessionName: 'payments.ledger-reader' });
  });

  it('a 63-character namespace and long service account: the session name fits STS (64, [\\w+=,.@-])', async () => {
    const pod = h.pod({ namespace: 'n'.repeat(63), serviceAccount: 's'.repeat(60) });
    await h.client.mount({
      attributes: pod.attributes({ region: REGION, objects: SM('id-secret') }),
      targetPath: await h.target(),
    });
    const name = h.emu.calls.find((c) => c.service === 'secretsmanager')?.sessionName ?? '';
    expect(name).toMatch(/^[\w+=,.@-]{2,64}$/);
    expect(name.startsWith('n'.repeat(55))).toBe(true);
  });

  it("Pod Identity sessions carry EKS's namespace, service-account and pod tags", async () => {
    const pod = h.pod({ podIdentity: true, namespace: 'shop', serviceAccount: 'cart' });
    await h.client.mount({
      attributes: pod.attributes({ region: REGION, usePodIdentity: 'true', objects: SM('id-secret') }),
      targetPath: await h.target(),
    });
    const key = h.emu.calls.find((c) => c.service === 'secretsmanager')?.sessionName;
    const s = h.emu.sessions().find((x) => x.sessionName === key);
    expect(s?.tags).toMatchObject({
      'kubernetes-namespace': 'shop',
      'kubernetes-service-account': 'cart',
      'kubernetes-pod-name': pod.pod,
    });
  });

  it.each([
    ['IRSA', 'false'],
    ['Pod Identity', 'true'],
  ])(
    'role chaining after %s: AssumeRole with the same session name, reads with the chained role',
    async (_m, usePodIdentity) => {
      const pod = h.pod({ podIdentity: true, namespace: `chain-${usePodIdentity}`, serviceAccount: 'app' });
      const chained = `arn:aws:iam::${ACCOUNT}:role/chained-${usePodIdentity}`;
      h.emu.addRole({
        arn: chained,
        trustedRoles: [pod.roleArn],
        externalId: 'x-1',
        allow: { secretsmanager: ['id-secret'] },
      });
      await h.client.mount({
        attributes: pod.attributes({
          region: REGION,
          usePodIdentity,
          assumeRoleArn: chained,
          assumeRoleExternalId: 'x-1',
          objects: SM('id-secret'),
        }),
        targetPath: await h.target(),
      });
      expect(h.emu.callCount({ service: 'sts', operation: 'AssumeRole' })).toBe(1);
      const call = h.emu.calls.find((c) => c.service === 'secretsmanager');
      expect(call).toMatchObject({ roleArn: chained, sessionName: `chain-${usePodIdentity}.app` });
    },
  );
});

describe('a slow or hanging agent (--pod-identity-endpoint = a listener, --pod-identity-http-timeout=200ms)', () => {
  let h: IdentityHarness;
  let agent: AgentListener;
  beforeAll(async () => {
    h = await startIdentityHarness({
      flags: async (emu) => {
        agent = await emu.startAgentListener({ host: '127.0.0.1' });
        return [`--pod-identity-endpoint=${agent.url}`, '--pod-identity-http-timeout=200ms'];
      },
    });
    h.emu.putSecret(REGION, 'slow-secret', 'v');
  });
  afterAll(async () => h?.close());
  beforeEach(async () => agent.setMode('ok'));

  it('agent not ready for three attempts (500): the mount waits it out and succeeds', async () => {
    const pod = h.pod({ podIdentity: true });
    await agent.setMode({ failFirst: 3 });
    const before = agent.requests;
    await h.client.mount({
      attributes: pod.attributes({ region: REGION, usePodIdentity: 'true', objects: SM('slow-secret') }),
      targetPath: await h.target(),
    });
    expect(agent.requests - before).toBe(4);
  });

  it("a hanging agent: each attempt is cut at 200 ms and the retries stop at the mount's deadline", async () => {
    const pod = h.pod({ podIdentity: true });
    await agent.setMode('hang');
    const before = agent.requests;
    const t0 = performance.now();
    const e = await refused(
      h.client.mount(
        {
          attributes: pod.attributes({ region: REGION, usePodIdentity: 'true', objects: SM('slow-secret') }),
          targetPath: await h.target(),
        },
        { deadlineMs: 1_500 },
      ),
    );
    expect(e.code).toBe(status.DEADLINE_EXCEEDED);
    expect(performance.now() - t0).toBeLessThan(3_000);
    // attempts at 0, 400 and 1000 ms (backoff 200, 400, 800 ms between them)
    expect(agent.requests - before).toBeGreaterThanOrEqual(2);
    expect(agent.requests - before).toBeLessThanOrEqual(4);
  });

  it('after the agent comes back, the next mount succeeds (a failure is not cached)', async () => {
    const pod = h.pod({ podIdentity: true });
    await agent.setMode('error500');
    const attributes = pod.attributes({ region: REGION, usePodIdentity: 'true', objects: SM('slow-secret') });
    await refused(h.client.mount({ attributes, targetPath: await h.target() }, { deadlineMs: 1_000 }));
    await agent.setMode('ok');
    await h.client.mount({ attributes, targetPath: await h.target() });
  });
});

// The Kubernetes API and EKS Pod Identity agent sides of the emulator, plus the extra agent
// listeners (IPv4/IPv6, failure modes) and the kubeconfig it writes.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { startEmulator, type Emulator } from './emulator.js';

const ROLE = 'arn:aws:iam::123456789012:role/pod-role';
const clock = Date.UTC(2026, 0, 1);
let emu: Emulator;

beforeAll(async () => {
  emu = await startEmulator({ now: () => clock });
  emu.addRole({ arn: ROLE, allow: { secretsmanager: ['app/*'] } });
  emu.addServiceAccount('default', 'app', { 'eks.amazonaws.com/role-arn': ROLE });
  emu.addPod('default', 'app-0', 'node-1');
  emu.addNode('node-1', { 'topology.kubernetes.io/region': 'eu-central-1' });
  emu.addPodIdentityAssociation({ namespace: 'default', serviceAccount: 'app', roleArn: ROLE });
  emu.addPodIdentityAssociation({
    namespace: 'default',
    serviceAccount: 'ghost',
    roleArn: 'arn:aws:iam::123456789012:role/not-created',
  });
  emu.putSecret('eu-central-1', 'app/one', 'v');
});
afterAll(async () => {
  await emu.close();
});

const kget = (p: string, token: string | null = emu.apiToken): Promise<Response> =>
  fetch(`${emu.url}${p}`, { headers: token === null ? {} : { authorization: `Bearer ${token}` } });

/** A Kubernetes object as the tests read it. */
type K8sDoc = { metadata: { namespace?: string } } & Record<string, unknown>;

describe('Kubernetes API', () => {
  test('serviceaccount, pod and node in Kubernetes shapes', async () => {
    const sa = (await (await kget('/api/v1/namespaces/default/serviceaccounts/app')).json()) as K8sDoc;
    expect(sa).toMatchObject({
      kind: 'ServiceAccount',
      apiVersion: 'v1',
      metadata: { name: 'app', namespace: 'default', annotations: { 'eks.amazonaws.com/role-arn': ROLE } },
    });
    const pod = (await (await kget('/api/v1/namespaces/default/pods/app-0')).json()) as K8sDoc;
    expect(pod).toMatchObject({
      kind: 'Pod',
      apiVersion: 'v1',
      metadata: { name: 'app-0', namespace: 'default' },
      spec: { nodeName: 'node-1' },
    });
    const node = (await (await kget('/api/v1/nodes/node-1')).json()) as K8sDoc;
    expect(node).toMatchObject({
      kind: 'Node',
      metadata: { name: 'node-1', labels: { 'topology.kubernetes.io/region': 'eu-central-1' } },
    });
    expect(node.metadata.namespace).toBeUndefined();
  });

  test.each([
    ['/api/v1/namespaces/default/serviceaccounts/nope', 'serviceaccounts "nope" not found'],
    ['/api/v1/namespaces/default/pods/nope', 'pods "nope" not found'],
    ['/api/v1/nodes/nope', 'nodes "nope" not found'],
    ['/api/v1/namespaces/other/serviceaccounts/app', 'serviceaccounts "app" not found'],
  ])('404 Status for %s', async (p, message) => {
    const res = await kget(p);
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message,
      reason: 'NotFound',
      code: 404,
    });
  });

  test.each([
    ['no token', null],
    ['a wrong token', 'wrong'],
  ])('401 with %s', async (_, token) => {
    const res = await kget('/api/v1/nodes/node-1', token);
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ kind: 'Status', reason: 'Unauthorized', code: 401 });
  });

  test('calls are logged with ns/name', async () => {
    emu.resetCalls();
    await kget('/api/v1/namespaces/default/pods/app-0');
    expect(emu.calls.map((c) => [c.service, c.operation, c.names, c.status])).toEqual([
      ['k8s', 'GetPod', ['default/app-0'], 200],
    ]);
  });

  test('writeKubeconfig names the server, the token and the current context', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'emu-kc-'));
    try {
      const file = path.join(dir, 'kubeconfig');
      await emu.writeKubeconfig(file);
      const text = await readFile(file, 'utf8');
      expect(text).toContain(`server: "${emu.url}"`);
      expect(text).toContain(`token: "${emu.apiToken}"`);
      expect(text).toContain('current-context: emulator');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

async function agent(
  url: string,
  token: string | undefined,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url, { headers: token === undefined ? {} : { authorization: token } });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe('Pod Identity agent', () => {
  test('answers credentials that Secrets Manager accepts, with EKS session tags', async () => {
    const token = emu.issueToken({
      namespace: 'default',
      serviceAccount: 'app',
      audience: 'pods.eks.amazonaws.com',
      podName: 'app-0',
    });
    const { status, body } = await agent(emu.podIdentityUrl, token);
    expect(status).toBe(200);
    expect(Object.keys(body).sort()).toEqual(['AccessKeyId', 'AccountId', 'Expiration', 'SecretAccessKey', 'Token']);
    expect(body['AccountId']).toBe('123456789012');
    expect(body['Expiration']).toBe(new Date(clock + 6 * 3600_000).toISOString().replace('.000Z', 'Z'));
    const session = emu.sessions().find((s) => s.accessKeyId === body['AccessKeyId']);
    expect(session?.tags).toMatchObject({
      'kubernetes-namespace': 'default',
      'kubernetes-service-account': 'app',
      'kubernetes-pod-name': 'app-0',
      'eks-cluster-name': 'emulator',
    });
    const sm = new SecretsManagerClient({
      region: 'eu-central-1',
      endpoint: emu.url,
      maxAttempts: 1,
      credentials: {
        accessKeyId: String(body['AccessKeyId']),
        secretAccessKey: String(body['SecretAccessKey']),
        sessionToken: String(body['Token']),
      },
    });
    expect((await sm.send(new GetSecretValueCommand({ SecretId: 'app/one' }))).SecretString).toBe('v');
  });

  test.each([
    ['no token', () => undefined, 400, 'InvalidParameterException'],
    [
      'the IRSA audience',
      () => emu.issueToken({ namespace: 'default', serviceAccount: 'app', audience: 'sts.amazonaws.com' }),
      401,
      'InvalidTokenException',
    ],
    [
      'an expired token',
      () =>
        emu.issueToken({
          namespace: 'default',
          serviceAccount: 'app',
          audience: 'pods.eks.amazonaws.com',
          expiresInSeconds: -1,
        }),
      401,
      'ExpiredTokenException',
    ],
    [
      'a forged token',
      () =>
        emu
          .issueToken({ namespace: 'default', serviceAccount: 'app', audience: 'pods.eks.amazonaws.com' })
          .slice(0, -2) + 'xx',
      401,
      'InvalidTokenException',
    ],
    [
      'no association',
      () => emu.issueToken({ namespace: 'default', serviceAccount: 'nobody', audience: 'pods.eks.amazonaws.com' }),
      404,
      'ResourceNotFoundException',
    ],
    [
      'an association to a missing role',
      () => emu.issueToken({ namespace: 'default', serviceAccount: 'ghost', audience: 'pods.eks.amazonaws.com' }),
      403,
      'AccessDeniedException',
    ],
  ])('refuses %s', async (_, token, status, code) => {
    const res = await agent(emu.podIdentityUrl, token());
    expect(res.status).toBe(status);
    expect(res.body['code']).toBe(code);
    expect(typeof res.body['message']).toBe('string');
  });
});

async function ipv6Available(): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(0, '::1', () => s.close(() => resolve(true)));
  });
}

describe('agent listeners', () => {
  const token = (): string =>
    emu.issueToken({ namespace: 'default', serviceAccount: 'app', audience: 'pods.eks.amazonaws.com' });

  test('each mode fails on its own; refuse really closes the port', async () => {
    const l = await emu.startAgentListener({ host: '127.0.0.1' });
    try {
      expect(l.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/v1\/credentials$/);
      expect((await agent(l.url, token())).status).toBe(200);
      await l.setMode('error500');
      expect((await agent(l.url, token())).status).toBe(500);
      expect((await agent(emu.podIdentityUrl, token())).status).toBe(200); // the main agent is unaffected
      await l.setMode({ failFirst: 2 });
      expect([
        (await agent(l.url, token())).status,
        (await agent(l.url, token())).status,
        (await agent(l.url, token())).status,
      ]).toEqual([500, 500, 200]);
      await l.setMode('refuse');
      await expect(fetch(l.url)).rejects.toThrow();
      await l.setMode('ok');
      expect((await agent(l.url, token())).status).toBe(200);
      await l.setMode('hang');
      const hanging = fetch(l.url, { headers: { authorization: token() } });
      await expect.poll(() => l.requests).toBe(7);
      await l.close();
      await expect(hanging).rejects.toThrow();
    } finally {
      await l.close();
    }
  });

  test('an IPv6 listener serves the same agent', async (ctx) => {
    if (!(await ipv6Available())) return ctx.skip();
    const l = await emu.startAgentListener({ host: '::1' });
    try {
      expect(l.url).toMatch(/^http:\/\/\[::1\]:\d+\/v1\/credentials$/);
      expect((await agent(l.url, token())).status).toBe(200);
      expect(l.requests).toBe(1);
    } finally {
      await l.close();
    }
  });
});

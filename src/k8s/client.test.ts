import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import net from 'node:net';
import { ProviderError } from '../errors.js';
import { KubeClient, parseRetryAfter, type KubeClientOptions } from './client.js';
import { loadKubeConfig, type KubeConfig } from './kubeconfig.js';
import type { Sleep } from './rate-limit.js';
import {
  makeTestPki,
  notFound,
  startFakeApiServer,
  type FakeApiServer,
  type TestPki,
} from './testdata/fake-api-server.js';
import { failure } from '../../test/helpers/failure.js';

const TOKEN = 'tok-abc123-do-not-print';
const SA_PATH = '/api/v1/namespaces/team-a/serviceaccounts/app';
const sa = (annotations: Record<string, string>) => ({
  kind: 'ServiceAccount',
  metadata: { name: 'app', namespace: 'team-a', annotations },
});

let servers: FakeApiServer[] = [];
let clients: KubeClient[] = [];
afterEach(async () => {
  for (const c of clients) c.close();
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
  clients = [];
});

async function server(tls?: Parameters<typeof startFakeApiServer>[0]): Promise<FakeApiServer> {
  const s = await startFakeApiServer(tls);
  servers.push(s);
  return s;
}

/** A client with a fake clock: sleeps are recorded and advance the clock instead of waiting. */
function client(config: KubeConfig, opts: Partial<KubeClientOptions> = {}) {
  const clock = { now: 1_000_000 };
  const delays: number[] = [];
  const sleep: Sleep = async (ms, signal) => {
    if (signal.aborted) throw new ProviderError('CANCELLED', 'wait: cancelled');
    delays.push(ms);
    clock.now += ms;
  };
  const c = new KubeClient(config, { qps: 1000, burst: 1000, now: () => clock.now, sleep, ...opts });
  clients.push(c);
  return { c, clock, delays };
}

const signal = () => new AbortController().signal;

describe('KubeClient over http', () => {
  it('reads a service account, a pod and a node with the bearer token', async () => {
    const s = await server();
    s.on(SA_PATH, { body: sa({ 'eks.amazonaws.com/role-arn': 'arn:aws:iam::1:role/r', n: 'x' }) });
    s.on('/api/v1/namespaces/team-a/pods/p1', { body: { spec: { nodeName: 'node-1' } } });
    s.on('/api/v1/nodes/node-1', { body: { metadata: { labels: { 'topology.kubernetes.io/region': 'eu-west-1' } } } });
    const { c } = client({ server: s.url, token: TOKEN });
    expect(await c.getServiceAccount('team-a', 'app', signal())).toEqual({
      annotations: { 'eks.amazonaws.com/role-arn': 'arn:aws:iam::1:role/r', n: 'x' },
    });
    expect(await c.getPod('team-a', 'p1', signal())).toEqual({ nodeName: 'node-1' });
    expect(await c.getNode('node-1', signal())).toEqual({ labels: { 'topology.kubernetes.io/region': 'eu-west-1' } });
    expect(s.requests.map((r) => [r.path, r.authorization])).toEqual([
      [SA_PATH, `Bearer ${TOKEN}`],
      ['/api/v1/namespaces/team-a/pods/p1', `Bearer ${TOKEN}`],
      ['/api/v1/nodes/node-1', `Bearer ${TOKEN}`],
    ]);
  });

  it('answers empty maps for objects without annotations, labels or nodeName', async () => {
    const s = await server();
    s.on(SA_PATH, { body: { metadata: {} } });
    s.on('/api/v1/namespaces/team-a/pods/p1', { body: { spec: {} } });
    s.on('/api/v1/nodes/n', { body: { metadata: { labels: { a: 1, b: 'x' } } } });
    const { c } = client({ server: s.url });
    expect(await c.getServiceAccount('team-a', 'app', signal())).toEqual({ annotations: {} });
    expect(await c.getPod('team-a', 'p1', signal())).toEqual({ nodeName: '' });
    expect(await c.getNode('n', signal())).toEqual({ labels: { b: 'x' } });
    expect(s.requests[0]?.authorization).toBeUndefined();
  });

  it('keeps the server URL path prefix', async () => {
    const s = await server();
    s.on(`/k8s/clusters/c-1${SA_PATH}`, { body: sa({}) });
    const { c } = client({ server: `${s.url}/k8s/clusters/c-1/`, token: TOKEN });
    await c.getServiceAccount('team-a', 'app', signal());
    expect(s.requests[0]?.path).toBe(`/k8s/clusters/c-1${SA_PATH}`);
  });

  it('reuses one keep-alive connection and close() drops it', async () => {
    const s = await server();
    s.on(SA_PATH, { body: sa({}) });
    const { c } = client({ server: s.url });
    for (let i = 0; i < 3; i++) await c.getServiceAccount('team-a', 'app', signal());
    expect(s.requests).toHaveLength(3);
    expect(s.connections()).toBe(1);
    c.close();
    await c.getServiceAccount('team-a', 'app', signal());
    expect(s.connections()).toBe(2);
    expect(s.requests).toHaveLength(4);
  });
});

describe('KubeClient errors', () => {
  // Only the hanging case uses a short timeout: elsewhere a slow machine must not turn into a retry.
  const cases: {
    name: string;
    answers: Parameters<FakeApiServer['on']>[1][];
    code: string;
    message: RegExp;
    requests: number;
    delays?: number[];
    timeoutMs?: number;
  }[] = [
    {
      name: '404 carries the Status message',
      answers: [notFound('serviceaccounts', 'app')],
      code: 'NOT_FOUND',
      message: /^serviceaccounts "app" not found$/,
      requests: 1,
    },
    {
      name: '404 without a Status body',
      answers: [{ status: 404 }],
      code: 'NOT_FOUND',
      message: /serviceaccounts "app" not found/,
      requests: 1,
    },
    {
      name: '401',
      answers: [{ status: 401, body: { kind: 'Status', message: 'Unauthorized' } }],
      code: 'UNAUTHENTICATED',
      message: /401 Unauthorized/,
      requests: 1,
    },
    {
      name: '403 names the missing RBAC rule',
      answers: [
        {
          status: 403,
          body: {
            kind: 'Status',
            message:
              'serviceaccounts "app" is forbidden: User "system:serviceaccount:kube-system:csi" cannot get resource ' +
              '"serviceaccounts"',
          },
        },
      ],
      code: 'PERMISSION_DENIED',
      message: /may not get serviceaccounts in namespace "team-a".*verb "get" on resource "serviceaccounts"/,
      requests: 1,
    },
    {
      name: '429 then success',
      answers: [{ status: 429, headers: { 'retry-after': '2' } }, { body: sa({}) }],
      code: 'OK',
      message: /./,
      requests: 2,
      delays: [2000],
    },
    {
      name: '429 without Retry-After waits 1 s',
      answers: [{ status: 429 }, { body: sa({}) }],
      code: 'OK',
      message: /./,
      requests: 2,
      delays: [1000],
    },
    {
      name: '429 forever → UNAVAILABLE after bounded attempts',
      answers: [{ status: 429, headers: { 'retry-after': '1' } }],
      code: 'UNAVAILABLE',
      message: /429 Too Many Requests after 4 attempts/,
      requests: 4,
      delays: [1000, 1000, 1000],
    },
    {
      name: '429 with a long Retry-After → UNAVAILABLE at once',
      answers: [{ status: 429, headers: { 'retry-after': '120' } }],
      code: 'UNAVAILABLE',
      message: /Retry-After 120 s/,
      requests: 1,
      delays: [],
    },
    {
      name: '500 then success',
      answers: [{ status: 500 }, { body: sa({}) }],
      code: 'OK',
      message: /./,
      requests: 2,
      delays: [200],
    },
    {
      name: '503 forever → UNAVAILABLE after 3 attempts with backoff',
      answers: [{ status: 503, body: { message: 'etcd down' } }],
      code: 'UNAVAILABLE',
      message: /HTTP 503 after 3 attempts: etcd down/,
      requests: 3,
      delays: [200, 400],
    },
    {
      name: 'timeouts → UNAVAILABLE',
      answers: [{ hang: true }],
      code: 'UNAVAILABLE',
      message: /after 3 attempts: no answer within 40 ms/,
      requests: 3,
      delays: [200, 400],
      timeoutMs: 40,
    },
    {
      name: 'other 4xx → INTERNAL',
      answers: [{ status: 400, body: { message: 'bad' } }],
      code: 'INTERNAL',
      message: /unexpected HTTP 400: bad/,
      requests: 1,
    },
    {
      name: 'a non-JSON answer → INTERNAL',
      answers: [{ status: 200, body: undefined }],
      code: 'INTERNAL',
      message: /not JSON/,
      requests: 1,
    },
  ];
  it.each(cases)('$name', async ({ answers, code, message, requests, delays, timeoutMs }) => {
    const s = await server();
    s.on(SA_PATH, ...answers);
    const { c, delays: slept } = client({ server: s.url, token: TOKEN }, { timeoutMs: timeoutMs ?? 10_000 });
    const p = c.getServiceAccount('team-a', 'app', signal());
    if (code === 'OK') {
      await p;
    } else {
      const err = await failure(p);
      expect(err.code).toBe(code);
      expect(err.message).toMatch(message);
      expect(err.message).not.toContain(TOKEN);
    }
    expect(s.requests).toHaveLength(requests);
    if (delays !== undefined) expect(slept).toEqual(delays);
  });

  it('reports every attempt to onRequest (the metrics hook)', async () => {
    const s = await server();
    s.on('/api/v1/nodes/n', { status: 503 }, { hang: true }, { body: { metadata: {} } });
    s.on('/api/v1/namespaces/ns/pods/p', notFound('pods', 'p'));
    const seen: [string, number | string][] = [];
    const { c } = client(
      { server: s.url },
      { timeoutMs: 500, onRequest: (resource, code) => seen.push([resource, code]) },
    );
    await c.getNode('n', signal());
    await failure(c.getPod('ns', 'p', signal()));
    expect(seen).toEqual([
      ['nodes', 503],
      ['nodes', 'timeout'],
      ['nodes', 200],
      ['pods', 404],
    ]);
  });

  it('connection refused → UNAVAILABLE after retries', async () => {
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const { c, delays } = client({ server: `http://127.0.0.1:${port}` });
    const err = await failure(c.getNode('n', signal()));
    expect(err.code).toBe('UNAVAILABLE');
    expect(err.message).toMatch(/GET \/api\/v1\/nodes\/n failed after 3 attempts: connection failed \(ECONNREFUSED\)/);
    expect(delays).toEqual([200, 400]);
  });

  it('the caller cancelling a hanging request → CANCELLED; a timed-out signal → DEADLINE_EXCEEDED', async () => {
    const s = await server();
    s.on('/api/v1/nodes/n', { hang: true });
    const { c } = client({ server: s.url }, { timeoutMs: 60_000 });
    const ac = new AbortController();
    const p = c.getNode('n', ac.signal);
    await new Promise((r) => setImmediate(r));
    while (s.requests.length === 0) await new Promise((r) => setImmediate(r));
    ac.abort();
    expect((await failure(p)).code).toBe('CANCELLED');

    const timedOut = new AbortController();
    timedOut.abort(new DOMException('timed out', 'TimeoutError'));
    expect((await failure(c.getNode('n', timedOut.signal))).code).toBe('DEADLINE_EXCEEDED');
  });

  it('parseRetryAfter reads seconds and HTTP dates', () => {
    const now = Date.parse('2025-01-01T00:00:00Z');
    expect(parseRetryAfter('3', now)).toBe(3000);
    expect(parseRetryAfter(undefined, now)).toBe(1000);
    expect(parseRetryAfter('soon', now)).toBe(1000);
    expect(parseRetryAfter('Wed, 01 Jan 2025 00:00:05 GMT', now)).toBe(5000);
    expect(parseRetryAfter('Tue, 31 Dec 2024 00:00:05 GMT', now)).toBe(0);
  });
});

describe('KubeClient paths', () => {
  it.each([
    ['a/../../nodes', 'x', '/api/v1/namespaces/a%2F..%2F..%2Fnodes/serviceaccounts/x'],
    ['ns', 'x?watch=true#frag', '/api/v1/namespaces/ns/serviceaccounts/x%3Fwatch%3Dtrue%23frag'],
    ['ns', '%2e%2e', '/api/v1/namespaces/ns/serviceaccounts/%252e%252e'],
    ['n s', 'ü', '/api/v1/namespaces/n%20s/serviceaccounts/%C3%BC'],
  ])('encodes hostile names: %j %j', async (ns, name, expected) => {
    const s = await server();
    s.on(expected, { body: sa({}) });
    const { c } = client({ server: s.url });
    await c.getServiceAccount(ns, name, signal());
    expect(s.requests.map((r) => r.path)).toEqual([expected]);
  });

  it.each([
    ['..', 'x'],
    ['.', 'x'],
    ['', 'x'],
    ['ns', '..'],
  ])('refuses names that are not a path segment: %j %j', async (ns, name) => {
    const s = await server();
    const { c } = client({ server: s.url });
    const err = await failure(c.getServiceAccount(ns, name, signal()));
    expect(err.code).toBe('INVALID_ARGUMENT');
    expect(s.requests).toHaveLength(0);
  });
});

describe('KubeClient token file', () => {
  it('re-reads the token at most once a minute, and at once on 401', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'k8s-token-'));
    const tokenFile = path.join(dir, 'token');
    writeFileSync(tokenFile, 'first\n');
    const s = await server();
    s.on('/api/v1/nodes/n', { body: { metadata: { labels: {} } } });
    const { c, clock } = client({ server: s.url, tokenFile, token: 'ignored' });
    await c.getNode('n', signal());
    writeFileSync(tokenFile, 'second');
    clock.now += 59_000;
    await c.getNode('n', signal());
    clock.now += 1_000;
    await c.getNode('n', signal());
    expect(s.requests.map((r) => r.authorization)).toEqual(['Bearer first', 'Bearer first', 'Bearer second']);

    // Rotated early: the server refuses the old token; the client re-reads and retries once.
    writeFileSync(tokenFile, 'third');
    s.on('/api/v1/nodes/n', { status: 401 }, { body: { metadata: { labels: {} } } });
    await c.getNode('n', signal());
    expect(s.requests.slice(3).map((r) => r.authorization)).toEqual(['Bearer second', 'Bearer third']);
  });

  it('401 with an unchanged token file → UNAUTHENTICATED after one attempt', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'k8s-token-'));
    const tokenFile = path.join(dir, 'token');
    writeFileSync(tokenFile, TOKEN);
    const s = await server();
    s.on('/api/v1/nodes/n', { status: 401 });
    const { c } = client({ server: s.url, tokenFile });
    const err = await failure(c.getNode('n', signal()));
    expect(err.code).toBe('UNAUTHENTICATED');
    expect(err.message).not.toContain(TOKEN);
    expect(s.requests).toHaveLength(1);
  });

  it('a missing token file fails with its path', async () => {
    const s = await server();
    const { c } = client({ server: s.url, tokenFile: '/nonexistent/token' });
    const err = await failure(c.getNode('n', signal()));
    expect(err.code).toBe('FAILED_PRECONDITION');
    expect(err.message).toContain('/nonexistent/token: ENOENT');
  });
});

describe('KubeClient rate limit', () => {
  it('waits for tokens (qps 1, burst 2) instead of failing', async () => {
    const s = await server();
    s.on('/api/v1/nodes/n', { body: { metadata: {} } });
    const { c, delays } = client({ server: s.url }, { qps: 1, burst: 2 });
    for (let i = 0; i < 4; i++) await c.getNode('n', signal());
    expect(s.requests).toHaveLength(4);
    expect(delays).toEqual([1000, 1000]);
  });

  it('a cancelled wait makes no request', async () => {
    const s = await server();
    s.on('/api/v1/nodes/n', { body: { metadata: {} } });
    const ac = new AbortController();
    let started = 0;
    const { c } = client(
      { server: s.url },
      {
        qps: 0.001,
        burst: 1,
        sleep: (_ms, sig) =>
          new Promise((_resolve, reject) => {
            started++;
            sig.addEventListener('abort', () => reject(new Error('aborted')));
          }),
      },
    );
    await c.getNode('n', signal());
    const p = c.getNode('n', ac.signal);
    await new Promise((r) => setImmediate(r));
    expect(started).toBe(1);
    ac.abort();
    expect((await failure(p)).code).toBe('CANCELLED');
    expect(s.requests).toHaveLength(1);
  });

  it('refuses a bad qps or burst when built', () => {
    expect(() => new KubeClient({ server: 'http://127.0.0.1:1' }, { qps: 0, burst: 1 })).toThrow(/qps/);
    expect(() => new KubeClient({ server: 'http://127.0.0.1:1' }, { qps: 1, burst: 0 })).toThrow(/burst/);
  });
});

describe('KubeClient over https', () => {
  let pki: TestPki;
  beforeAll(() => {
    pki = makeTestPki();
  });

  it('verifies the server against the CA and presents the client certificate', async () => {
    const s = await server({
      key: pki.serverKey,
      cert: pki.serverCert,
      ca: pki.ca,
      requestCert: true,
      rejectUnauthorized: true,
    });
    s.on('/api/v1/nodes/n', { body: { metadata: { labels: { a: 'b' } } } });
    const { c } = client({ server: s.url, ca: pki.ca, cert: pki.clientCert, key: pki.clientKey });
    expect(await c.getNode('n', signal())).toEqual({ labels: { a: 'b' } });
    expect(s.requests[0]?.clientCn).toBe('provider');
  });

  it('a server certificate from another CA is refused with a fix; insecure-skip-tls-verify accepts it', async () => {
    const s = await server({ key: pki.serverKey, cert: pki.serverCert });
    s.on('/api/v1/nodes/n', { body: { metadata: {} } });
    const err = await failure(client({ server: s.url, ca: pki.otherCa, token: TOKEN }).c.getNode('n', signal()));
    expect(err.code).toBe('FAILED_PRECONDITION');
    expect(err.message).toMatch(/TLS verification .* check the cluster CA/);
    expect(s.requests).toHaveLength(0);
    await client({ server: s.url, insecureSkipTlsVerify: true }).c.getNode('n', signal());
    expect(s.requests).toHaveLength(1);
  });

  it('end to end from a kubeconfig file: CA and client certificate files, token file', async () => {
    const s = await server({
      key: pki.serverKey,
      cert: pki.serverCert,
      ca: pki.ca,
      requestCert: true,
      rejectUnauthorized: true,
    });
    s.on('/api/v1/nodes/n', { body: { metadata: { labels: { r: 'x' } } } });
    const dir = mkdtempSync(path.join(tmpdir(), 'kc-e2e-'));
    writeFileSync(path.join(dir, 'token'), 'kc-token');
    const kc = path.join(dir, 'config');
    writeFileSync(
      kc,
      [
        'apiVersion: v1',
        'kind: Config',
        'current-context: test',
        'contexts: [{name: test, context: {cluster: c, user: u}}]',
        `clusters: [{name: c, cluster: {server: "${s.url}", ` +
          `certificate-authority: ${path.relative(dir, path.join(pki.dir, 'ca.crt'))}}}]`,
        `users: [{name: u, user: {client-certificate: ${path.join(pki.dir, 'client.crt')}, ` +
          `client-key: ${path.join(pki.dir, 'client.key')}, tokenFile: token}}]`,
      ].join('\n'),
    );
    const { c } = client(await loadKubeConfig({ KUBECONFIG: kc }));
    expect(await c.getNode('n', signal())).toEqual({ labels: { r: 'x' } });
    expect(s.requests[0]).toMatchObject({ clientCn: 'provider', authorization: 'Bearer kc-token' });
  });
});

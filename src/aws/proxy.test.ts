// Proxy routing as Go's httpproxy (table), then for real: a local CONNECT proxy in front of a local
// HTTPS server, and the real SecretsManagerClient reaching the emulator through the proxy.
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type Emulator } from '../../tools/emulator/index.js';
import { parseProxyUrl, proxyAgentsFromEnv, proxyConfigFromEnv, proxyFor, type ProxyAgents } from './proxy.js';

describe('proxyFor (Go httpproxy rules)', () => {
  const P = 'http://proxy.corp:3128/';
  const env = (noProxy: string): Record<string, string> => ({
    HTTPS_PROXY: 'proxy.corp:3128',
    HTTP_PROXY: 'proxy.corp:3128',
    NO_PROXY: noProxy,
  });
  it.each<[string, 'http:' | 'https:', string, number | undefined, string | undefined]>([
    // [NO_PROXY, scheme, host, port, expected proxy]
    ['', 'https:', 'secretsmanager.us-east-1.amazonaws.com', 443, P],
    ['', 'http:', 'example.com', undefined, P],
    ['*', 'https:', 'secretsmanager.us-east-1.amazonaws.com', 443, undefined],
    ['amazonaws.com', 'https:', 'secretsmanager.us-east-1.amazonaws.com', 443, undefined],
    ['amazonaws.com', 'https:', 'amazonaws.com', 443, undefined],
    ['amazonaws.com', 'https:', 'notamazonaws.com', 443, P],
    ['.amazonaws.com', 'https:', 'amazonaws.com', 443, P],
    ['.amazonaws.com', 'https:', 'ssm.eu-west-1.amazonaws.com', 443, undefined],
    ['*.amazonaws.com', 'https:', 'ssm.eu-west-1.amazonaws.com', 443, undefined],
    ['*.amazonaws.com', 'https:', 'amazonaws.com', 443, P],
    [' AMAZONAWS.com ,other', 'https:', 'SSM.amazonaws.com', 443, undefined],
    ['amazonaws.com:443', 'https:', 'sts.amazonaws.com', 443, undefined],
    ['amazonaws.com:443', 'https:', 'sts.amazonaws.com', 8443, P],
    ['amazonaws.com:80', 'https:', 'sts.amazonaws.com', undefined, P],
    ['amazonaws.com:443', 'https:', 'sts.amazonaws.com', undefined, undefined],
    ['10.0.0.0/8', 'https:', '10.1.2.3', 443, undefined],
    ['10.0.0.0/8', 'https:', '11.1.2.3', 443, P],
    ['10.0.0.0/8', 'https:', 'ten.example', 443, P],
    ['192.168.1.1', 'https:', '192.168.1.1', 443, undefined],
    ['192.168.1.1', 'https:', '192.168.1.2', 443, P],
    ['192.168.1.1:443', 'https:', '192.168.1.1', 443, undefined],
    ['192.168.1.1:443', 'https:', '192.168.1.1', 8443, P],
    ['2001:db8::/32', 'https:', '2001:db8::1', 443, undefined],
    ['[2001:db8::1]:443', 'https:', '[2001:db8::1]', 443, undefined],
    ['2001:db8::1', 'https:', '2001:db8:0::1', 443, undefined],
    ['vpce.internal,10.0.0.0/8', 'https:', 'api.vpce.internal', 443, undefined],
    // Go never proxies localhost and loopback; we also keep link-local (IMDS, Pod Identity) direct.
    ['', 'https:', 'localhost', 443, undefined],
    ['', 'http:', '127.0.0.1', 8080, undefined],
    ['', 'http:', '127.9.9.9', 8080, undefined],
    ['', 'http:', '::1', 8080, undefined],
    ['', 'http:', '[::1]', 8080, undefined],
    ['', 'http:', '::ffff:127.0.0.1', 8080, undefined],
    ['', 'http:', 'localhost.example.com', 80, P],
    ['', 'http:', '169.254.170.23', 80, undefined],
    ['', 'http:', '169.254.169.254', 80, undefined],
    ['', 'http:', 'fd00:ec2::23', 80, undefined],
    ['', 'http:', 'fd00:ec2::24', 80, P],
  ])('NO_PROXY=%j %s//%s:%s → %s', (noProxy, scheme, host, port, want) => {
    expect(proxyFor(proxyConfigFromEnv(env(noProxy)), scheme, host, port)?.href).toBe(want);
  });

  it('bypassLoopback: false proxies loopback (tests only), never link-local', () => {
    const cfg = proxyConfigFromEnv(env(''), { bypassLoopback: false });
    expect(proxyFor(cfg, 'http:', '127.0.0.1', 80)?.href).toBe(P);
    expect(proxyFor(cfg, 'https:', 'localhost', 443)?.href).toBe(P);
    expect(proxyFor(cfg, 'http:', '169.254.170.23', 80)).toBeUndefined();
    expect(
      proxyFor(proxyConfigFromEnv(env('localhost'), { bypassLoopback: false }), 'https:', 'localhost', 443),
    ).toBeUndefined();
  });

  it.each<[Record<string, string>, string | undefined, string | undefined]>([
    // [env, https proxy, http proxy]
    [{}, undefined, undefined],
    [{ HTTPS_PROXY: 'http://a:1' }, 'http://a:1/', undefined],
    [{ HTTP_PROXY: 'http://b:2' }, undefined, 'http://b:2/'],
    [{ HTTPS_PROXY: 'http://upper:1', https_proxy: 'http://lower:1' }, 'http://upper:1/', undefined],
    [{ HTTPS_PROXY: '', https_proxy: 'http://lower:1' }, 'http://lower:1/', undefined],
    [{ http_proxy: 'b:2' }, undefined, 'http://b:2/'],
    [{ HTTPS_PROXY: 'https://secure.proxy' }, 'https://secure.proxy/', undefined],
    [{ HTTPS_PROXY: 'user:pw@proxy:3128' }, 'http://user:pw@proxy:3128/', undefined],
  ])('env %j → https %s, http %s (no fallback between schemes)', (e, httpsProxy, httpProxy) => {
    const cfg = proxyConfigFromEnv(e);
    expect(cfg.httpsProxy?.href).toBe(httpsProxy);
    expect(cfg.httpProxy?.href).toBe(httpProxy);
  });

  it('no proxy variable → no agents (the factory keeps its plain ones)', () => {
    expect(proxyAgentsFromEnv({})).toBeUndefined();
    expect(proxyAgentsFromEnv({ NO_PROXY: '*' })).toBeUndefined();
  });

  it('refuses socks5 and nonsense at start, naming the variable and never the password', () => {
    expect(() => parseProxyUrl('socks5://u:hunter2@p:1080', 'HTTPS_PROXY')).toThrow(
      /unsupported proxy scheme "socks5" in HTTPS_PROXY/,
    );
    expect(() => parseProxyUrl('socks5://u:hunter2@p:1080', 'HTTPS_PROXY')).not.toThrow(/hunter2/);
    expect(() => proxyAgentsFromEnv({ HTTP_PROXY: 'http://[bad' })).toThrow(/invalid proxy address in HTTP_PROXY/);
  });
});

// ---- live: a CONNECT proxy on 127.0.0.1 in front of an HTTPS server on 127.0.0.1 ----

interface Seen {
  connects: { target: string; auth: string | undefined }[];
  requests: { method: string; url: string; auth: string | undefined }[];
}

interface TestProxy extends Seen {
  url: string;
  close(): Promise<void>;
}

/** The proxy resolves every name to `route(host)`, so unresolvable `.test` names prove the detour. */
async function startProxy(
  route: (host: string, port: number) => { host: string; port: number },
  o: { auth?: string; tls?: { cert: string; key: string } } = {},
): Promise<TestProxy> {
  const seen: Seen = { connects: [], requests: [] };
  const sockets = new Set<net.Socket>();
  const denied = (auth: string | undefined): boolean => o.auth !== undefined && auth !== o.auth;
  const handle = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const auth = req.headers['proxy-authorization'];
    seen.requests.push({ method: req.method ?? '', url: req.url ?? '', auth });
    if (denied(auth)) {
      res.writeHead(407).end();
      return;
    }
    const u = new URL(req.url ?? '');
    const to = route(u.hostname, Number(u.port || 80));
    const headers = { ...req.headers };
    delete headers['proxy-authorization'];
    const up = http.request(
      { host: to.host, port: to.port, method: req.method, path: `${u.pathname}${u.search}`, headers, agent: false },
      (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      },
    );
    up.on('error', () => res.writeHead(502).end());
    req.pipe(up);
  };
  const server = o.tls !== undefined ? https.createServer(o.tls, handle) : http.createServer(handle);
  server.on(o.tls !== undefined ? 'secureConnection' : 'connection', (s: net.Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.on('connect', (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
    const auth = req.headers['proxy-authorization'];
    seen.connects.push({ target: req.url ?? '', auth });
    if (denied(auth)) {
      client.end(
        'HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\ncontent-length: 0\r\n\r\n',
      );
      return;
    }
    const { hostname, port } = new URL(`http://${req.url ?? ''}`);
    const to = route(hostname, Number(port));
    const up = net.connect(to.port, to.host, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length > 0) up.write(head);
      up.pipe(client).pipe(up);
    });
    up.on('error', () => client.destroy());
    client.on('error', () => up.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    ...seen,
    url: `${o.tls !== undefined ? 'https' : 'http'}://127.0.0.1:${port}`,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

let dir: string;
let cert: string;
let key: string;
let target: https.Server;
let targetPort: number;
let plain: http.Server;
let plainPort: number;
const agents: ProxyAgents[] = [];
const proxies: TestProxy[] = [];

/** Self-signed for localhost, 127.0.0.1, aws.proxy.test and other.proxy.test (openssl at test time). */
async function makeCert(): Promise<{ cert: string; key: string }> {
  try {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-days',
        '2',
        '-subj',
        '/CN=localhost',
        '-addext',
        'subjectAltName=DNS:localhost,DNS:aws.proxy.test,DNS:other.proxy.test,IP:127.0.0.1',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
      ],
      { stdio: 'ignore' },
    );
    return { cert: await readFile(join(dir, 'cert.pem'), 'utf8'), key: await readFile(join(dir, 'key.pem'), 'utf8') };
  } catch {
    return FIXTURE;
  }
}

function agentsFor(env: Record<string, string>, bypassLoopback = true): ProxyAgents {
  const a = proxyAgentsFromEnv(env, { bypassLoopback, agentOptions: { ca: cert }, proxyCa: cert });
  if (a === undefined) throw new Error('expected proxy agents');
  agents.push(a);
  return a;
}

async function proxy(o: { auth?: string; tls?: { cert: string; key: string } } = {}): Promise<TestProxy> {
  const p = await startProxy((_host, port) => ({ host: '127.0.0.1', port: port === 80 ? plainPort : targetPort }), o);
  proxies.push(p);
  return p;
}

/** One request; the body is what the server saw (`METHOD path host`). */
function get(url: string, agent: http.Agent): Promise<{ status: number; body: string }> {
  const u = new URL(url);
  const mod = u.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = mod.request(u, { agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

const echo =
  (scheme: string) =>
  (req: http.IncomingMessage, res: http.ServerResponse): void => {
    res.end(`${scheme} ${req.method} ${req.url} ${req.headers.host} ${req.headers['proxy-authorization'] ?? '-'}`);
  };

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'proxy-test-'));
  ({ cert, key } = await makeCert());
  target = https.createServer({ cert, key }, echo('https'));
  plain = http.createServer(echo('http'));
  await new Promise<void>((resolve) => target.listen(0, '127.0.0.1', resolve));
  await new Promise<void>((resolve) => plain.listen(0, '127.0.0.1', resolve));
  targetPort = (target.address() as AddressInfo).port;
  plainPort = (plain.address() as AddressInfo).port;
});

afterEach(async () => {
  for (const a of agents.splice(0)) {
    a.http.destroy();
    a.https.destroy();
  }
  for (const p of proxies.splice(0)) await p.close();
});

afterAll(async () => {
  target.closeAllConnections();
  plain.closeAllConnections();
  await new Promise<void>((resolve) => target.close(() => resolve()));
  await new Promise<void>((resolve) => plain.close(() => resolve()));
  await rm(dir, { recursive: true, force: true });
});

describe('https through a CONNECT proxy', () => {
  it('tunnels to names only the proxy resolves; TLS checks the target; one tunnel per target, kept alive', async () => {
    const p = await proxy();
    const a = agentsFor({ HTTPS_PROXY: p.url });
    const first = await get(`https://aws.proxy.test:${targetPort}/one`, a.https);
    const second = await get(`https://aws.proxy.test:${targetPort}/two`, a.https);
    expect(first).toEqual({ status: 200, body: `https GET /one aws.proxy.test:${targetPort} -` });
    expect(second.body).toBe(`https GET /two aws.proxy.test:${targetPort} -`);
    expect(p.connects).toEqual([{ target: `aws.proxy.test:${targetPort}`, auth: undefined }]);
    await get(`https://other.proxy.test:${targetPort}/three`, a.https);
    expect(p.connects.map((c) => c.target)).toEqual([`aws.proxy.test:${targetPort}`, `other.proxy.test:${targetPort}`]);
  });

  it('NO_PROXY sends a listed host direct, the others through the tunnel', async () => {
    const p = await proxy();
    const a = agentsFor({ HTTPS_PROXY: p.url, NO_PROXY: 'localhost' }, false);
    expect((await get(`https://localhost:${targetPort}/direct`, a.https)).body).toBe(
      `https GET /direct localhost:${targetPort} -`,
    );
    expect(p.connects).toEqual([]);
    await get(`https://127.0.0.1:${targetPort}/tunnelled`, a.https);
    expect(p.connects.map((c) => c.target)).toEqual([`127.0.0.1:${targetPort}`]);
  });

  it('loopback is never proxied by default (Go)', async () => {
    const p = await proxy();
    const a = agentsFor({ HTTPS_PROXY: p.url, HTTP_PROXY: p.url });
    expect((await get(`https://127.0.0.1:${targetPort}/x`, a.https)).status).toBe(200);
    expect((await get(`https://localhost:${targetPort}/x`, a.https)).status).toBe(200);
    expect((await get(`http://127.0.0.1:${plainPort}/x`, a.http)).body).toBe(`http GET /x 127.0.0.1:${plainPort} -`);
    expect(p.connects).toEqual([]);
    expect(p.requests).toEqual([]);
  });

  it('sends Basic credentials from the proxy URL (percent-decoded); a 407 error message omits them', async () => {
    const p = await proxy({ auth: `Basic ${Buffer.from('svc:p@ss:word').toString('base64')}` });
    const good = agentsFor({ HTTPS_PROXY: `http://svc:p%40ss%3Aword@127.0.0.1:${new URL(p.url).port}` });
    expect((await get(`https://aws.proxy.test:${targetPort}/auth`, good.https)).status).toBe(200);
    expect(p.connects[0]?.auth).toBe(`Basic ${Buffer.from('svc:p@ss:word').toString('base64')}`);

    const bad = agentsFor({ HTTPS_PROXY: `http://svc:hunter2@127.0.0.1:${new URL(p.url).port}` });
    const err = await get(`https://aws.proxy.test:${targetPort}/auth`, bad.https).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err?.message).toMatch(/refused CONNECT aws\.proxy\.test:\d+: HTTP 407/);
    expect(err?.message).not.toMatch(/hunter2|svc/);
  });

  it('an https:// proxy: TLS to it, CONNECT and TLS to the target inside; http in absolute form over TLS', async () => {
    const p = await proxy({ tls: { cert, key } });
    const a = agentsFor({ HTTPS_PROXY: p.url, HTTP_PROXY: p.url });
    expect((await get(`https://aws.proxy.test:${targetPort}/tls-in-tls`, a.https)).body).toBe(
      `https GET /tls-in-tls aws.proxy.test:${targetPort} -`,
    );
    expect(p.connects.map((c) => c.target)).toEqual([`aws.proxy.test:${targetPort}`]);
    expect((await get('http://aws.proxy.test/plain', a.http)).body).toBe('http GET /plain aws.proxy.test -');
    expect(p.requests.map((r) => r.url)).toEqual(['http://aws.proxy.test/plain']);
  });

  it('a proxy that is not there fails the request, naming the proxy', async () => {
    const closed = await proxy();
    const url = closed.url;
    await closed.close();
    proxies.splice(0);
    const a = agentsFor({ HTTPS_PROXY: url });
    await expect(get(`https://aws.proxy.test:${targetPort}/`, a.https)).rejects.toThrow(
      /proxy 127\.0\.0\.1:\d+: CONNECT aws\.proxy\.test:\d+ failed/,
    );
  });
});

describe('http through the proxy', () => {
  it('sends the request line in absolute form, with the proxy credentials', async () => {
    const auth = `Basic ${Buffer.from('u:p').toString('base64')}`;
    const p = await proxy({ auth });
    const a = agentsFor({ HTTP_PROXY: `http://u:p@127.0.0.1:${new URL(p.url).port}` });
    const res = await get('http://aws.proxy.test/path?q=1', a.http);
    expect(res).toEqual({ status: 200, body: 'http GET /path?q=1 aws.proxy.test -' });
    expect(p.requests).toEqual([{ method: 'GET', url: 'http://aws.proxy.test/path?q=1', auth }]);
    expect(p.connects).toEqual([]);
  });

  it('HTTPS_PROXY alone leaves http direct (no fallback between schemes)', async () => {
    const p = await proxy();
    const a = agentsFor({ HTTPS_PROXY: p.url }, false);
    expect((await get(`http://127.0.0.1:${plainPort}/d`, a.http)).status).toBe(200);
    expect(p.requests).toEqual([]);
  });
});

describe('end to end: SecretsManagerClient → proxy → emulator', () => {
  let emu: Emulator;
  beforeAll(async () => {
    emu = await startEmulator();
  });
  afterAll(async () => emu?.close());

  it('GetSecretValue goes through the proxy as an absolute-form POST (loopback emulator, bypass off)', async () => {
    const role = 'arn:aws:iam::123456789012:role/proxy-reader';
    emu.addRole({ arn: role, allow: { secretsmanager: ['*'] } });
    emu.putSecret('us-east-1', 'via/proxy', 'proxied-value');
    const creds = emu.issueCredentials(role);
    const emuPort = Number(new URL(emu.url).port);
    const p = await startProxy(() => ({ host: '127.0.0.1', port: emuPort }));
    proxies.push(p);
    const a = agentsFor({ HTTPS_PROXY: p.url, HTTP_PROXY: p.url }, false);
    const client = new SecretsManagerClient({
      region: 'us-east-1',
      endpoint: emu.url,
      credentials: {
        accessKeyId: creds.accessKeyId,
        secretAccessKey: creds.secretAccessKey,
        sessionToken: creds.sessionToken,
      },
      maxAttempts: 1,
      requestHandler: new NodeHttpHandler({ httpAgent: a.http, httpsAgent: a.https }),
    });
    try {
      const out = await client.send(new GetSecretValueCommand({ SecretId: 'via/proxy' }));
      expect(out.SecretString).toBe('proxied-value');
      expect(p.requests).toEqual([{ method: 'POST', url: `${emu.url}/`, auth: undefined }]);
      expect(p.connects).toEqual([]);
      expect(emu.callCount({ service: 'secretsmanager', operation: 'GetSecretValue' })).toBe(1);
    } finally {
      client.destroy();
    }
  });
});

// Used only where openssl is missing. Valid until 2126.
const FIXTURE = {
  key: `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg2ECqJL/vHGfjA7+K
Khe/9wIpP4LEBwQ7CR3zvUNcVQGhRANCAASvrl/Cv74ak1Uj68cQPtBPPIPR13+4
/NVJvu+Cw1i+dBxiJP9OQa0jwpp6Nvmp6xEID2OyQqMQXsUe1Y1+ib6W
-----END PRIVATE KEY-----
`,
  cert: `-----BEGIN CERTIFICATE-----
MIIBvzCCAWWgAwIBAgIUK/p+xOrLZFmy1W9vGrN59SUBdhkwCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTI2MTEyNjAzMDYzNloYDzIxMjYxMTAy
MDMwNjM2WjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAASvrl/Cv74ak1Uj68cQPtBPPIPR13+4/NVJvu+Cw1i+dBxiJP9OQa0j
wpp6Nvmp6xEID2OyQqMQXsUe1Y1+ib6Wo4GSMIGPMB0GA1UdDgQWBBQBdwFbAGa0
raTPJoN0ZbGzFKZQpjAfBgNVHSMEGDAWgBQBdwFbAGa0raTPJoN0ZbGzFKZQpjAP
BgNVHRMBAf8EBTADAQH/MDwGA1UdEQQ1MDOCCWxvY2FsaG9zdIIOYXdzLnByb3h5
LnRlc3SCEG90aGVyLnByb3h5LnRlc3SHBH8AAAEwCgYIKoZIzj0EAwIDSAAwRQIg
CrcJ13NjAYElQq7iMBLeUe5wXzJiugNAVr5dmI+CQxkCIQCcA0lZebBQKqk1iN51
F3r250umdmAkkYKRlBrsaaI9rw==
-----END CERTIFICATE-----
`,
};

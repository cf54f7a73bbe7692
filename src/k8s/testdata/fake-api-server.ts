/**
 * @module k8s/testdata/fake-api-server
 * Test-only: a tiny Kubernetes API server on 127.0.0.1 port 0 (http or https) whose answers the
 * test scripts per path, recording every request; and throwaway certificates made with `openssl`.
 */
import http from 'node:http';
import https from 'node:https';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';

export interface Answer {
  status?: number;
  body?: unknown;
  headers?: Record<string, string>;
  /** Never answer (the client's timeout must fire). */
  hang?: boolean;
}

export interface Recorded {
  path: string;
  authorization: string | undefined;
  /** Subject CN of the client certificate, when one was presented. */
  clientCn: string | undefined;
}

export interface FakeApiServer {
  url: string;
  requests: Recorded[];
  /** TCP connections accepted so far. */
  connections(): number;
  /** Answers for a path, consumed in order; the last one repeats. */
  on(path: string, ...answers: Answer[]): void;
  close(): Promise<void>;
}

export function notFound(resource: string, name: string): Answer {
  return {
    status: 404,
    body: {
      kind: 'Status',
      apiVersion: 'v1',
      status: 'Failure',
      message: `${resource} "${name}" not found`,
      reason: 'NotFound',
      code: 404,
    },
  };
}

export async function startFakeApiServer(tls?: https.ServerOptions): Promise<FakeApiServer> {
  const routes = new Map<string, Answer[]>();
  const requests: Recorded[] = [];
  const hanging = new Set<http.ServerResponse>();
  const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const peer = (req.socket as { getPeerCertificate?: () => { subject?: { CN?: string } } }).getPeerCertificate?.();
    requests.push({ path: req.url ?? '', authorization: req.headers.authorization, clientCn: peer?.subject?.CN });
    const list = routes.get(req.url ?? '');
    const answer: Answer =
      list === undefined
        ? { status: 404, body: { kind: 'Status', message: 'the server could not find the requested resource' } }
        : list.length > 1
          ? (list.shift() as Answer)
          : (list[0] as Answer);
    if (answer.hang === true) {
      hanging.add(res);
      return;
    }
    res.writeHead(answer.status ?? 200, { 'content-type': 'application/json', ...answer.headers });
    res.end(answer.body === undefined ? '' : JSON.stringify(answer.body));
  };
  const server = tls === undefined ? http.createServer(handler) : https.createServer(tls, handler);
  let connections = 0;
  server.on('connection', () => connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `${tls === undefined ? 'http' : 'https'}://127.0.0.1:${port}`,
    requests,
    connections: () => connections,
    on(p, ...answers) {
      routes.set(p, answers);
    },
    async close() {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export interface TestPki {
  dir: string;
  ca: Buffer;
  serverCert: Buffer;
  serverKey: Buffer;
  clientCert: Buffer;
  clientKey: Buffer;
  /** A CA that signed nothing here: verification against it must fail. */
  otherCa: Buffer;
}

/** Throwaway CA, server certificate for 127.0.0.1, and client certificate (CN `provider`), via openssl. */
export function makeTestPki(): TestPki {
  const dir = mkdtempSync(path.join(tmpdir(), 'k8s-pki-'));
  const f = (n: string): string => path.join(dir, n);
  const ossl = (...args: string[]): void => {
    execFileSync('openssl', args, { stdio: 'pipe' });
  };
  const ca = (name: string): void =>
    ossl(
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      f(`${name}.key`),
      '-out',
      f(`${name}.crt`),
      '-days',
      '2',
      '-subj',
      `/CN=${name}`,
    );
  ca('ca');
  ca('other-ca');
  const leaf = (name: string, cn: string, ext: string): void => {
    ossl(
      'req',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      f(`${name}.key`),
      '-out',
      f(`${name}.csr`),
      '-subj',
      `/CN=${cn}`,
    );
    writeFileSync(f(`${name}.ext`), ext);
    ossl(
      'x509',
      '-req',
      '-in',
      f(`${name}.csr`),
      '-CA',
      f('ca.crt'),
      '-CAkey',
      f('ca.key'),
      '-CAcreateserial',
      '-out',
      f(`${name}.crt`),
      '-days',
      '2',
      '-extfile',
      f(`${name}.ext`),
    );
  };
  leaf('server', 'kube-apiserver', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  leaf('client', 'provider', 'extendedKeyUsage=clientAuth\n');
  const read = (n: string): Buffer => readFileSync(f(n));
  return {
    dir,
    ca: read('ca.crt'),
    serverCert: read('server.crt'),
    serverKey: read('server.key'),
    clientCert: read('client.crt'),
    clientKey: read('client.key'),
    otherCa: read('other-ca.crt'),
  };
}

import { beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { loadKubeConfig } from './kubeconfig.js';
import { failure } from '../../test/helpers/failure.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'kubeconfig-'));
  mkdirSync(path.join(dir, 'certs'));
  writeFileSync(path.join(dir, 'certs', 'ca.pem'), 'CA-PEM');
  writeFileSync(path.join(dir, 'certs', 'client.pem'), 'CERT-PEM');
  writeFileSync(path.join(dir, 'certs', 'client-key.pem'), 'KEY-PEM');
  writeFileSync(path.join(dir, 'certs', 'token'), 'file-token');
});

const b64 = (s: string) => Buffer.from(s).toString('base64');

function kubeconfig(
  name: string,
  cluster: Record<string, unknown>,
  user: Record<string, unknown>,
  extra: Record<string, unknown> = {},
): string {
  const file = path.join(dir, name);
  writeFileSync(
    file,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      'current-context': 'ctx',
      contexts: [
        { name: 'other', context: { cluster: 'nope', user: 'nope' } },
        { name: 'ctx', context: { cluster: 'c1', user: 'u1' } },
      ],
      clusters: [
        { name: 'c0', cluster: { server: 'https://wrong:1' } },
        { name: 'c1', cluster },
      ],
      users: [{ name: 'u1', user }],
      ...extra,
    }),
  );
  return file;
}

describe('loadKubeConfig from KUBECONFIG', () => {
  it.each([
    {
      name: 'token and inline CA',
      cluster: { server: 'https://10.0.0.1:6443', 'certificate-authority-data': b64('CA-DATA') },
      user: { token: 'inline-token' },
      want: { server: 'https://10.0.0.1:6443', ca: Buffer.from('CA-DATA'), token: 'inline-token' },
    },
    {
      name: 'relative file paths resolve against the kubeconfig directory',
      cluster: { server: 'https://api:6443', 'certificate-authority': 'certs/ca.pem' },
      user: {
        'client-certificate': 'certs/client.pem',
        'client-key': 'certs/client-key.pem',
        tokenFile: 'certs/token',
      },
      want: {
        server: 'https://api:6443',
        ca: Buffer.from('CA-PEM'),
        cert: Buffer.from('CERT-PEM'),
        key: Buffer.from('KEY-PEM'),
        tokenFile: '<dir>/certs/token',
      },
    },
    {
      name: 'client certificate data, insecure skip verify',
      cluster: { server: 'https://api:6443', 'insecure-skip-tls-verify': true },
      user: { 'client-certificate-data': b64('C'), 'client-key-data': b64('K') },
      want: { server: 'https://api:6443', insecureSkipTlsVerify: true, cert: Buffer.from('C'), key: Buffer.from('K') },
    },
    {
      name: 'plain http, no credentials',
      cluster: { server: 'http://127.0.0.1:8080' },
      user: {},
      want: { server: 'http://127.0.0.1:8080' },
    },
  ])('$name', async ({ name, cluster, user, want }) => {
    const file = kubeconfig(`${name.replace(/\W+/g, '-')}.yaml`, cluster, user);
    const got = await loadKubeConfig({ KUBECONFIG: file });
    const expected = { ...want } as Record<string, unknown>;
    if (typeof expected['tokenFile'] === 'string') expected['tokenFile'] = expected['tokenFile'].replace('<dir>', dir);
    expect(got).toEqual(expected);
  });

  it('uses the first file of the list that exists', async () => {
    const file = kubeconfig('second.yaml', { server: 'https://second:1' }, { token: 't' });
    const got = await loadKubeConfig({ KUBECONFIG: [path.join(dir, 'missing.yaml'), file].join(path.delimiter) });
    expect(got.server).toBe('https://second:1');
  });

  it.each([
    {
      name: 'no file of the list exists',
      setup: () => path.join(dir, 'nope.yaml'),
      message: /none of its files can be read/,
    },
    {
      name: 'no current-context',
      setup: () => kubeconfig('nocontext.yaml', { server: 'https://a:1' }, {}, { 'current-context': '' }),
      message: /no current-context: run `kubectl config use-context/,
    },
    {
      name: 'current-context names a missing cluster',
      setup: () => kubeconfig('missingcluster.yaml', { server: 'https://a:1' }, {}, { 'current-context': 'other' }),
      message: /no cluster named "nope"/,
    },
    {
      name: 'cluster without a server',
      setup: () => kubeconfig('noserver.yaml', {}, {}),
      message: /cluster "c1" has no server/,
    },
    {
      name: 'unsupported scheme',
      setup: () => kubeconfig('scheme.yaml', { server: 'ftp://a' }, {}),
      message: /https:\/\/ or http:\/\//,
    },
    {
      name: 'exec plugin (the server runs none)',
      setup: () => kubeconfig('exec.yaml', { server: 'https://a:1' }, { exec: { command: 'aws' } }),
      message: /exec plugin, which the provider server does not run.*use a token/,
    },
    {
      name: 'auth-provider plugin',
      setup: () => kubeconfig('authp.yaml', { server: 'https://a:1' }, { 'auth-provider': { name: 'gcp' } }),
      message: /auth-provider plugin, which Kubernetes no longer supports/,
    },
    {
      name: 'certificate without key',
      setup: () => kubeconfig('halfcert.yaml', { server: 'https://a:1' }, { 'client-certificate-data': b64('C') }),
      message: /both a client certificate and a client key/,
    },
    {
      name: 'a referenced file is missing',
      setup: () =>
        kubeconfig('missingca.yaml', { server: 'https://a:1', 'certificate-authority': 'certs/nope.pem' }, {}),
      message: /cannot read certificate-authority .*certs\/nope\.pem: ENOENT/,
    },
    {
      name: 'not YAML',
      setup: () => {
        const f = path.join(dir, 'bad.yaml');
        writeFileSync(f, 'a: [b');
        return f;
      },
      message: /not valid YAML/,
    },
  ])('refuses: $name', async ({ setup, message }) => {
    const err = await failure(loadKubeConfig({ KUBECONFIG: setup() }));
    expect(err.code).toBe('FAILED_PRECONDITION');
    expect(err.message).toMatch(message);
  });
});

describe('loadKubeConfig in-cluster', () => {
  function saDir(files: Record<string, string>): string {
    const d = mkdtempSync(path.join(tmpdir(), 'sa-'));
    for (const [n, v] of Object.entries(files)) writeFileSync(path.join(d, n), v);
    return d;
  }

  it.each([
    ['10.96.0.1', '443', 'https://10.96.0.1:443'],
    ['fd00::1', '443', 'https://[fd00::1]:443'],
    ['kubernetes.default.svc', '6443', 'https://kubernetes.default.svc:6443'],
  ])('host %s port %s → %s, token file and CA', async (host, port, server) => {
    const d = saDir({ token: 'sa-token\n', 'ca.crt': 'CLUSTER-CA' });
    const got = await loadKubeConfig(
      { KUBERNETES_SERVICE_HOST: host, KUBERNETES_SERVICE_PORT: port },
      { serviceAccountDir: d },
    );
    expect(got).toEqual({ server, tokenFile: path.join(d, 'token'), ca: Buffer.from('CLUSTER-CA') });
  });

  it('an empty KUBECONFIG means in-cluster', async () => {
    const d = saDir({ token: 't' });
    const got = await loadKubeConfig(
      { KUBECONFIG: '', KUBERNETES_SERVICE_HOST: 'h', KUBERNETES_SERVICE_PORT: '1' },
      { serviceAccountDir: d },
    );
    expect(got).toEqual({ server: 'https://h:1', tokenFile: path.join(d, 'token') });
  });

  it.each([
    {
      name: 'no service env',
      env: {},
      files: { token: 't' },
      message: /KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set.*set KUBECONFIG/,
    },
    {
      name: 'no token',
      env: { KUBERNETES_SERVICE_HOST: 'h', KUBERNETES_SERVICE_PORT: '1' },
      files: {},
      message: /cannot read the service-account token .*token: ENOENT/,
    },
    {
      name: 'empty token',
      env: { KUBERNETES_SERVICE_HOST: 'h', KUBERNETES_SERVICE_PORT: '1' },
      files: { token: '\n' },
      message: /is empty: check automountServiceAccountToken/,
    },
  ])('refuses: $name', async ({ env, files, message }) => {
    const err = await failure(loadKubeConfig(env, { serviceAccountDir: saDir(files) }));
    expect(err.code).toBe('FAILED_PRECONDITION');
    expect(err.message).toMatch(message);
  });
});

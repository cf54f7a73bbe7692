import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { KubeClient } from './client.js';
import { parseExecConfig, runExecCredential, type ExecCredentialConfig } from './exec-credential.js';
import { loadKubeConfig } from './kubeconfig.js';
import { startFakeApiServer, type FakeApiServer } from './testdata/fake-api-server.js';
import { failure } from '../../test/helpers/failure.js';

const TOKEN = 'k8s-aws-v1.exec-token-do-not-print';

/**
 * A plugin as `aws eks get-token` behaves: prints an ExecCredential, its token and expiry from the
 * environment the kubeconfig gives it; counts its runs in a file; can fail with a reason on stderr.
 */
const PLUGIN = `
const fs = require('node:fs');
fs.appendFileSync(process.env.RUNS, process.env.KUBERNETES_EXEC_INFO + '\\n');
if (process.env.FAIL) {
  process.stdout.write(process.env.TOKEN);
  process.stderr.write('line one\\n' + process.env.FAIL + '\\n');
  process.exit(3);
}
const read = (name) => (process.env[name] ? fs.readFileSync(process.env[name], 'utf8') : '');
const status = { token: process.env.TOKEN + read('SUFFIX') };
const expiry = process.env.EXPIRY ?? read('EXPIRY_FILE');
if (expiry) status.expirationTimestamp = expiry;
process.stdout.write(JSON.stringify({ apiVersion: 'client.authentication.k8s.io/v1', kind: 'ExecCredential', status }));
`;

function plugin(env: Record<string, string> = {}): { cfg: ExecCredentialConfig; runs: () => string[]; dir: string } {
  const dir = mkdtempSync(path.join(tmpdir(), 'exec-plugin-'));
  const script = path.join(dir, 'plugin.cjs');
  const runs = path.join(dir, 'runs');
  writeFileSync(script, PLUGIN);
  writeFileSync(runs, '');
  const cfg = parseExecConfig(
    {
      apiVersion: 'client.authentication.k8s.io/v1beta1',
      command: process.execPath,
      args: [script],
      env: Object.entries({ RUNS: runs, TOKEN, ...env }).map(([name, value]) => ({ name, value })),
    },
    path.join(dir, 'kubeconfig'),
    'me',
  );
  return {
    cfg,
    dir,
    runs: () =>
      readFileSync(runs, 'utf8')
        .split('\n')
        .filter((l) => l !== ''),
  };
}

describe('exec credential plugins', () => {
  it('runs the command with its args and env, tells it the ExecCredential version, and reads the token', async () => {
    const p = plugin({ EXPIRY: '2030-01-02T03:04:05Z' });
    const got = await runExecCredential(p.cfg, { PATH: process.env['PATH'] });
    expect(got).toEqual({ token: TOKEN, expiresAt: Date.parse('2030-01-02T03:04:05Z') });
    expect(p.runs().map((l) => JSON.parse(l) as unknown)).toEqual([
      { apiVersion: 'client.authentication.k8s.io/v1beta1', kind: 'ExecCredential', spec: { interactive: false } },
    ]);
  });

  it('a failing plugin: its reason from stderr, never its output (which may hold a token)', async () => {
    const p = plugin({ FAIL: 'Unable to locate credentials. You can configure credentials by running "aws login".' });
    const err = await failure(runExecCredential(p.cfg, {}));
    expect(err.code).toBe('FAILED_PRECONDITION');
    expect(err.message).toMatch(/exec plugin ".*" \(.*kubeconfig\) failed \(exit 3\): Unable to locate credentials/);
    expect(err.message).not.toContain('line one');
    expect(err.message).not.toContain(TOKEN);
    expect(JSON.stringify(err.cause ?? null)).not.toContain(TOKEN);
  });

  it('a missing command names it and prints the install hint', async () => {
    const err = await failure(
      runExecCredential(
        parseExecConfig(
          {
            apiVersion: 'client.authentication.k8s.io/v1',
            command: 'no-such-aws-cli-here',
            installHint: 'Install the AWS CLI: https://aws.amazon.com/cli/',
          },
          '/home/me/.kube/config',
          'me',
        ),
        { PATH: '/nonexistent' },
      ),
    );
    expect(err.message).toBe(
      'the kubeconfig\'s exec plugin "no-such-aws-cli-here" (/home/me/.kube/config) was not found: ' +
        'Install the AWS CLI: https://aws.amazon.com/cli/',
    );
  });

  it('refuses an exec stanza that is not one: no command, an unknown version, a terminal wanted', () => {
    const bad = (exec: Record<string, unknown>): string => {
      try {
        parseExecConfig(exec, 'kc', 'u');
        return 'parsed';
      } catch (e) {
        return (e as Error).message;
      }
    };
    expect(bad({ apiVersion: 'client.authentication.k8s.io/v1' })).toMatch(/exec has no command/);
    expect(bad({ command: 'x', apiVersion: 'client.authentication.k8s.io/v1alpha1' })).toMatch(/apiVersion/);
    expect(bad({ command: 'x', apiVersion: 'client.authentication.k8s.io/v1', interactiveMode: 'Always' })).toMatch(
      /wants a terminal/,
    );
    expect(bad({ command: 'x', apiVersion: 'client.authentication.k8s.io/v1', env: [{ name: 'A' }] })).toMatch(
      /env must be a list of \{name, value\}/,
    );
  });
});

describe('KubeClient with an exec plugin', () => {
  let api: FakeApiServer | undefined;
  let kube: KubeClient | undefined;
  afterEach(async () => {
    kube?.close();
    await api?.close();
  });

  it('one run for concurrent requests, reused until a minute before its expiry, run again on a 401', async () => {
    api = await startFakeApiServer();
    api.on('/api/v1/nodes/n', { body: { metadata: { labels: {} } } });
    const state = mkdtempSync(path.join(tmpdir(), 'exec-state-'));
    const suffix = path.join(state, 'suffix');
    const expiry = path.join(state, 'expiry');
    const clock = { now: 1_000_000 };
    /** What the plugin prints next: its token's suffix, and an expiry 15 minutes after the clock's now. */
    const next = (s: string): void => {
      writeFileSync(suffix, s);
      writeFileSync(expiry, new Date(clock.now + 15 * 60_000).toISOString());
    };
    next('-1');
    const p = plugin({ SUFFIX: suffix, EXPIRY_FILE: expiry });
    kube = new KubeClient(
      { server: api.url, exec: { config: p.cfg, env: {} } },
      { qps: 1000, burst: 1000, now: () => clock.now },
    );
    const signal = new AbortController().signal;
    await Promise.all([kube.getNode('n', signal), kube.getNode('n', signal), kube.getNode('n', signal)]);
    expect(p.runs()).toHaveLength(1);
    clock.now += 13 * 60_000;
    await kube.getNode('n', signal);
    expect(p.runs()).toHaveLength(1);
    clock.now += 60_000 + 1; // within a minute of the expiry
    next('-2');
    await kube.getNode('n', signal);
    expect(p.runs()).toHaveLength(2);
    // Refused before its time (revoked): run again once, and retry with the new token.
    next('-3');
    api.on('/api/v1/nodes/n', { status: 401 }, { body: { metadata: { labels: {} } } });
    await kube.getNode('n', signal);
    expect(p.runs()).toHaveLength(3);
    expect(api.requests.map((r) => r.authorization)).toEqual([
      ...Array<string>(4).fill(`Bearer ${TOKEN}-1`),
      `Bearer ${TOKEN}-2`,
      `Bearer ${TOKEN}-2`,
      `Bearer ${TOKEN}-3`,
    ]);
  });

  it('a token still refused after a fresh run: UNAUTHENTICATED, naming the plugin, not the token', async () => {
    api = await startFakeApiServer();
    api.on('/api/v1/nodes/n', { status: 401 });
    const p = plugin();
    kube = new KubeClient({ server: api.url, exec: { config: p.cfg, env: {} } }, { qps: 1000, burst: 1000 });
    const err = await failure(kube.getNode('n', new AbortController().signal));
    expect(err.code).toBe('UNAUTHENTICATED');
    expect(err.message).toMatch(/token of the kubeconfig's exec plugin ".*" was refused/);
    expect(err.message).not.toContain(TOKEN);
    expect(p.runs()).toHaveLength(2);
  });
});

describe('loadKubeConfig and exec plugins', () => {
  function kubeconfigWithExec(): { file: string } {
    const dir = mkdtempSync(path.join(tmpdir(), 'exec-kc-'));
    const file = path.join(dir, 'config');
    writeFileSync(
      file,
      [
        'apiVersion: v1',
        'kind: Config',
        'current-context: eks',
        'contexts: [{name: eks, context: {cluster: c, user: u}}]',
        'clusters: [{name: c, cluster: {server: "https://example.eks.amazonaws.com"}}]',
        'users:',
        '- name: u',
        '  user:',
        '    exec:',
        '      apiVersion: client.authentication.k8s.io/v1beta1',
        '      command: ./bin/aws',
        '      args: [--region, us-east-1, eks, get-token, --cluster-name, prod]',
        '      env: [{name: AWS_PROFILE, value: ops}]',
        '      interactiveMode: IfAvailable',
      ].join('\n'),
    );
    return { file };
  }

  it('the server refuses an exec plugin, saying why; operator commands take it, relative paths resolved', async () => {
    const { file } = kubeconfigWithExec();
    const env = { KUBECONFIG: file, HOME: '/home/me' };
    const err = await failure(loadKubeConfig(env));
    expect(err.message).toMatch(/uses an exec plugin, which the provider server does not run/);
    const cfg = await loadKubeConfig(env, { allowExec: true });
    expect(cfg.exec?.config).toEqual({
      command: path.join(path.dirname(file), 'bin/aws'),
      args: ['--region', 'us-east-1', 'eks', 'get-token', '--cluster-name', 'prod'],
      env: { AWS_PROFILE: 'ops' },
      apiVersion: 'client.authentication.k8s.io/v1beta1',
      file,
    });
    expect(cfg.exec?.env).toBe(env);
  });
});

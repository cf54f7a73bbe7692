/**
 * The demo end to end: emulator, the real provider, two mounts around a rotation, the call log and a
 * clean shutdown. Checks exit codes and the lines that matter, never volatile values (ports, ids).
 */
import { stat } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { wantsColor, type CommandIO } from '../../src/cli/index.js';
import { DEMO_WIDTH, fitLine, run, runDemo } from './demo.js';

function capture(): CommandIO & { out: () => string; err: () => string } {
  let out = '';
  let err = '';
  return {
    stdout: (t) => {
      out += t;
    },
    stderr: (t) => {
      err += t;
    },
    env: {},
    cwd: process.cwd(),
    out: () => out,
    err: () => err,
  };
}

describe('demo', () => {
  it('mounts, rotates, mounts again from the caches, shuts down, exit 0', async () => {
    const io = capture();
    const code = await run([], io);
    expect(io.err()).toBe('');
    expect(code).toBe(0);
    const out = io.out();
    for (const n of [1, 2, 3, 4, 5, 6, 7, 8, 9]) expect(out).toMatch(new RegExp(`^${n}\\. `, 'm'));
    // doctor: the healthy service account passes; the other fails on the trust policy, with the fix.
    expect(out).toMatch(/--service-account app {3}\(exit 0\)/);
    expect(out).toMatch(/--service-account web {3}\(exit 1\)/);
    expect(out).toMatch(/^ {3}FAIL +trust-policy +app-reader +does not let\s+system:serviceaccount:default:web\s+in/m);
    expect(out).toContain('fix: the trust policy needs');
    // The tree: every file, its mode; shown values are fake non-sensitive ones only.
    for (const [file, mode] of [
      ['db-creds.json', '0640'],
      ['db-username', '0640'],
      ['db-password', '0600'],
      ['api-key', '0600'],
      ['tls-cert.der', '0644'],
      ['db-host', '0644'],
      ['feature-flag', '0644'],
    ] as const) {
      expect(out).toMatch(new RegExp(`── ${file.replace('.', '\\.')} +${mode} `));
    }
    expect(out).toContain('"enabled"');
    expect(out).toContain('<binary, masked>');
    for (const secret of ['s3cr3t-demo', 'r0tated-demo', 'demo-api-key-0123456789']) expect(out).not.toContain(secret);
    // Rotation: the secret and its password file change; the username (same content) and the others stay.
    expect(out).toMatch(/^ {3}rewritten \(new inode\/mtime\): db-creds\.json, db-password$/m);
    expect(out).toMatch(
      /^ {3}untouched \(same inode and mtime\): api-key, db-host, db-username, feature-flag, tls-cert\.der$/m,
    );
    expect(out).toMatch(/new versions: .*db-creds\.json/);
    // The call log: the first mount exchanges and looks up; the second is served from the caches.
    expect(out).toMatch(/first mount: +STS 1, Secrets Manager [34], SSM 1, Kubernetes 1$/m);
    expect(out).toMatch(/second mount: +STS 0, Secrets Manager 3, SSM 1, Kubernetes 0$/m);
    expect(out).not.toContain('UNEXPECTED');
    expect(out).toMatch(/csi_provider_aws_mounts_total\{/);
    expect(out).toContain('temp directory removed');
    expect(out).toMatch(/Done in \d+\.\d s\.\n$/);
    // The class it mounts is shown, as a user would apply it.
    expect(out).toMatch(/^ +kind: SecretProviderClass$/m);
    expect(out).toMatch(/^ +provider: aws$/m);
    expect(out).toMatch(/^ +- objectName: prod\/db-creds$/m);
    // The batch probe's AccessDenied is explained where it shows (the demo role may not batch).
    expect(out).toContain('BatchGetSecretValue (AccessDeniedException)');
    expect(out).toMatch(/expected: BatchGetSecretValue \(AccessDeniedException\) is the provider asking once/);
    // --keep is offered; every line fits the width; no colour when not asked.
    expect(out).toContain('npm run demo -- --keep');
    const widest = Math.max(...out.split('\n').map((l) => l.length));
    expect(
      widest,
      out.split('\n').find((l) => l.length === widest),
    ).toBeLessThanOrEqual(DEMO_WIDTH);
    expect(out).not.toContain('\x1b[');
    // The SDK variables the demo set are put back.
    expect(process.env['AWS_ENDPOINT_URL']).toBeUndefined();
  });

  it('colours step headings and verdicts when asked (a terminal), the text unchanged', async () => {
    const io = { ...capture(), color: true };
    const plain = capture();
    expect(await run([], io)).toBe(0);
    expect(await run([], plain)).toBe(0);
    // eslint-disable-next-line no-control-regex -- the colours are what is checked
    expect(io.out()).toMatch(/\x1b\[1;36m1\. Starting/);
    // eslint-disable-next-line no-control-regex -- the colours are what is checked
    expect(io.out()).toMatch(/\x1b\[32mDone in/);
    // eslint-disable-next-line no-control-regex
    const stripped = io.out().replace(/\x1b\[[0-9;]*m/g, '');
    const volatile = (t: string): string =>
      t.replace(
        /\d+\.\d+\.\d+\.\d+:\d+|csi-aws-demo-\w+|[0-9a-f]{8}…|[0-9a-f-]{36}|Done in [\d.]+ s|version \S+/g,
        'X',
      );
    expect(volatile(stripped)).toBe(volatile(plain.out()));
  });

  it('--keep keeps the temp directory and prints its path', async () => {
    const io = capture();
    expect(await run(['--keep'], io)).toBe(0);
    const m = /kept (\S+) /.exec(io.out());
    expect(m).not.toBeNull();
    const dir = m?.[1] as string;
    expect((await stat(`${dir}/provider.log`)).isFile()).toBe(true);
    const { rm } = await import('node:fs/promises');
    await rm(dir, { recursive: true, force: true });
  });

  it('a failing mount: a clear message naming the step and the object, everything shut down, exit 1', async () => {
    const io = capture();
    const code = await runDemo([], io, {
      prepare: (emu) =>
        void emu.addFault({
          service: 'secretsmanager',
          target: 'prod/api-key',
          status: 400,
          code: 'AccessDeniedException',
          message: 'not allowed',
        }),
    });
    expect(code).toBe(1);
    expect(io.err()).toMatch(/^demo failed at step 3\. first mount: gRPC status 7: .*prod\/api-key/m);
    expect(io.err()).toContain('us-east-1');
    expect(io.out()).toContain('temp directory removed');
    expect(io.out()).toMatch(/Demo failed\.\n$/);
    expect(process.env['AWS_ENDPOINT_URL']).toBeUndefined();
  });

  it('fitLine: long lines wrap at spaces or commas with an indent, short ones stay', () => {
    expect(fitLine('   short')).toEqual(['   short']);
    const long = `   ${'word '.repeat(40).trim()}`;
    const lines = fitLine(long, 50);
    expect(lines.every((l) => l.length <= 50)).toBe(true);
    expect(lines[1]?.startsWith('     word')).toBe(true);
    expect(lines.join(' ').replace(/\s+/g, ' ').trim()).toBe(long.trim());
    expect(fitLine('a{x="1",y="2",z="3"} 1', 12)).toEqual(['a{x="1",', '  y="2",', '  z="3"} 1']);
  });

  it('wantsColor: a terminal, unless NO_COLOR or TERM=dumb; FORCE_COLOR forces it', () => {
    expect(wantsColor(true, {})).toBe(true);
    expect(wantsColor(false, {})).toBe(false);
    expect(wantsColor(undefined, {})).toBe(false);
    expect(wantsColor(true, { NO_COLOR: '1' })).toBe(false);
    expect(wantsColor(true, { TERM: 'dumb' })).toBe(false);
    expect(wantsColor(false, { FORCE_COLOR: '1' })).toBe(true);
    expect(wantsColor(true, { NO_COLOR: '' })).toBe(true);
  });

  it.each([
    [['--help'], 0, 'Usage:'],
    [['--nope'], 2, 'unknown argument "--nope"'],
  ] as const)('%j → exit %i', async (argv, want, text) => {
    const io = capture();
    expect(await run(argv, io)).toBe(want);
    expect(io.out() + io.err()).toContain(text);
  });
});

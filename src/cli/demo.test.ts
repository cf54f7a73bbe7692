/**
 * The demo end to end: emulator, the real provider, two mounts around a rotation, the call log and a
 * clean shutdown. Checks exit codes and the lines that matter, never volatile values (ports, ids).
 */
import { stat } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import type { CommandIO } from './bin.js';
import { run, runDemo } from './demo.js';

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
    for (const n of [1, 2, 3, 4, 5, 6, 7, 8]) expect(out).toMatch(new RegExp(`^${n}\\. `, 'm'));
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
    expect(out).toMatch(/^ {3}untouched \(same inode and mtime\): api-key, db-host, db-username, feature-flag, tls-cert\.der$/m);
    expect(out).toMatch(/new versions: .*db-creds\.json/);
    // The call log: the first mount exchanges and looks up; the second is served from the caches.
    expect(out).toMatch(/first mount: +STS 1, Secrets Manager [34], SSM 1, Kubernetes 1 /);
    expect(out).toMatch(/second mount: +STS 0, Secrets Manager 3, SSM 1, Kubernetes 0 /);
    expect(out).not.toContain('UNEXPECTED');
    expect(out).toMatch(/csi_provider_aws_mounts_total\{/);
    expect(out).toContain('temp directory removed');
    expect(out).toMatch(/Done in \d+\.\d s\.\n$/);
    // The SDK variables the demo set are put back.
    expect(process.env['AWS_ENDPOINT_URL']).toBeUndefined();
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
    const code = await runDemo([], io, { prepare: (emu) => void emu.addFault({ service: 'secretsmanager', target: 'prod/api-key', status: 400, code: 'AccessDeniedException', message: 'not allowed' }) });
    expect(code).toBe(1);
    expect(io.err()).toMatch(/^demo failed at step 3\. first mount: gRPC status 7: .*prod\/api-key/m);
    expect(io.err()).toContain('us-east-1');
    expect(io.out()).toContain('temp directory removed');
    expect(io.out()).toMatch(/Demo failed\.\n$/);
    expect(process.env['AWS_ENDPOINT_URL']).toBeUndefined();
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

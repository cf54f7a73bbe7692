// `mount` end to end against the emulator: the command's files, modes and versions are exactly what
// the provider, started as main starts it, answers over its socket for the same class; --out writes
// them; --role-arn chains; values stay hidden unless asked; the synced Secrets are rendered.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CommandIO } from '../../src/cli/index.js';
import { parseManifests, spcFields } from '../../src/cli/manifests.js';
import { mountClass, run, type MountOptions } from '../../src/cli/mount-command.js';
import { REGION, startHarness, type Harness, type Pod } from '../helpers/harness.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const IRSA = 'manifests/examples/irsa.yaml';
const GOLDEN = new URL('./testdata/', import.meta.url);
const DB = { username: 'app', password: 'pa55-w0rd-not-shown', 'db-host': 'db.internal' };
const FLAG = 'flag-value-not-shown';

let h: Harness;
let pod: Pod;
let creds: Record<string, string>;
let tmp: string;

beforeAll(async () => {
  h = await startHarness({ flags: ['--driver-writes-secrets'] });
  tmp = await mkdtemp(path.join(os.tmpdir(), 'mount-cli-'));
  h.emu.putSecret(REGION, 'prod/db-creds', JSON.stringify(DB), { versionId: 'a1b2c3d4-0000-4000-8000-000000000001' });
  h.emu.putParameter(REGION, '/app/feature-flag', FLAG);
  pod = h.pod({ namespace: 'default', serviceAccount: 'app-irsa' });
  const c = h.emu.issueCredentials(pod.roleArn);
  creds = {
    AWS_ACCESS_KEY_ID: c.accessKeyId,
    AWS_SECRET_ACCESS_KEY: c.secretAccessKey,
    AWS_SESSION_TOKEN: c.sessionToken,
  };
}, 60_000);
afterAll(async () => {
  await h?.close();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

function io(env: Record<string, string | undefined>): CommandIO & { out: () => string; err: () => string } {
  let stdout = '';
  let stderr = '';
  return {
    stdout: (t) => (stdout += t),
    stderr: (t) => (stderr += t),
    env,
    cwd: ROOT,
    out: () => stdout,
    err: () => stderr,
  };
}

function options(o: Partial<MountOptions> = {}): MountOptions {
  return {
    classFile: IRSA,
    name: undefined,
    podNamespace: 'default',
    serviceAccount: 'app-irsa',
    pod: 'mount-cli',
    out: undefined,
    showValues: false,
    roleArn: undefined,
    region: REGION,
    driverWritesSecrets: false,
    timeoutMs: 30_000,
    ...o,
  };
}

function golden(name: string, actual: string): void {
  const file = new URL(name, GOLDEN);
  if (process.env['UPDATE_GOLDEN'] === '1' || !existsSync(file)) writeFileSync(file, actual);
  expect(actual).toBe(readFileSync(file, 'utf8'));
}

const byPath = <T extends { path: string }>(a: T[]): T[] => [...a].sort((x, y) => x.path.localeCompare(y.path));
const byId = <T extends { id: string }>(a: T[]): T[] => [...a].sort((x, y) => x.id.localeCompare(y.id));

async function providerMount() {
  const spc = parseManifests(readFileSync(path.join(ROOT, IRSA), 'utf8'), IRSA).objects.find(
    (o) => o.kind === 'SecretProviderClass',
  );
  if (!spc) throw new Error('no class in the example');
  return h.client.mount({ attributes: pod.attributes(spcFields(spc).parameters), targetPath: await h.target() });
}

describe('mount against the emulator', () => {
  it('gives the same files, modes, contents and versions as the provider over its socket', async () => {
    const server = await providerMount();
    expect(server.files.length).toBe(5);
    for (const driverWritesSecrets of [false, true]) {
      const got = await mountClass(options({ driverWritesSecrets }), io(creds), AbortSignal.timeout(30_000));
      expect(byPath(got.files.map((f) => ({ path: f.path, mode: f.mode, contents: Buffer.from(f.contents) })))).toEqual(
        byPath(server.files),
      );
      expect(byId(got.objectVersions)).toEqual(byId(server.objectVersion));
      expect(got.region).toBe(REGION);
    }
  });

  it('--out writes the files as the provider writes them; the listing hides values', async () => {
    const out = path.join(tmp, 'out');
    const cmd = io(creds);
    expect(
      await run(
        [
          '--class',
          IRSA,
          '--pod-namespace',
          'default',
          '--service-account',
          'app-irsa',
          '--region',
          REGION,
          '--out',
          out,
        ],
        cmd,
      ),
    ).toBe(0);
    const server = await providerMount();
    expect((await readdir(out)).sort()).toEqual(server.files.map((f) => f.path).sort());
    for (const f of server.files) {
      expect(await readFile(path.join(out, f.path))).toEqual(f.contents);
      expect((await stat(path.join(out, f.path))).mode & 0o777).toBe(f.mode);
    }
    expect(cmd.err()).toBe('');
    expect(cmd.out()).not.toContain(DB.password);
    expect(cmd.out()).not.toContain(FLAG);
    expect(cmd.out()).not.toContain(Buffer.from(DB.password).toString('base64'));
    golden('irsa-out.txt', cmd.out().replace(out, '<out>'));
  });

  it('without --out lists the files and renders the Secret, values hidden', async () => {
    const cmd = io(creds);
    expect(
      await run(
        ['--class', IRSA, '--pod-namespace', 'default', '--service-account', 'app-irsa', '--region', REGION],
        cmd,
      ),
    ).toBe(0);
    expect(cmd.out()).not.toContain(DB.password);
    expect(cmd.out()).toContain('secrets-store.csi.k8s.io/managed: "true"');
    golden('irsa-list.txt', cmd.out());
  });

  it('--show-values prints contents and the Secret data base64', async () => {
    const cmd = io(creds);
    expect(
      await run(
        [
          '--class',
          IRSA,
          '--pod-namespace',
          'default',
          '--service-account',
          'app-irsa',
          '--region',
          REGION,
          '--show-values',
        ],
        cmd,
      ),
    ).toBe(0);
    expect(cmd.out()).toContain(`==> db-password <==\n${DB.password}\n`);
    expect(cmd.out()).toContain(`password: ${Buffer.from(DB.password).toString('base64')}`);
  });

  it('--role-arn assumes a role with the operator credentials first (session names the workload)', async () => {
    const operator = `arn:aws:iam::${h.emu.accountId}:role/operator`;
    const reader = `arn:aws:iam::${h.emu.accountId}:role/cli-reader`;
    h.emu.addRole({ arn: operator, allow: { secretsmanager: [], ssm: [] } });
    h.emu.addRole({ arn: reader, trustedRoles: [operator], allow: { secretsmanager: ['*'], ssm: ['*'] } });
    const c = h.emu.issueCredentials(operator);
    const env = {
      AWS_ACCESS_KEY_ID: c.accessKeyId,
      AWS_SECRET_ACCESS_KEY: c.secretAccessKey,
      AWS_SESSION_TOKEN: c.sessionToken,
    };
    const args = ['--class', IRSA, '--pod-namespace', 'default', '--service-account', 'app-irsa', '--region', REGION];
    const denied = io(env);
    expect(await run(args, denied)).toBe(1);
    expect(denied.err()).toMatch(/AccessDenied|not authorized/);
    const ok = io(env);
    expect(await run([...args, '--role-arn', reader], ok)).toBe(0);
    const session = h.emu
      .sessions()
      .filter((s) => s.roleArn === reader)
      .at(-1);
    expect(session?.source).toBe('AssumeRole');
    expect(session?.sessionName).toContain('app-irsa');
  });

  it('refuses a class that the provider refuses, naming the problems, before any AWS call', async () => {
    h.emu.resetCalls();
    const cmd = io(creds);
    expect(
      await run(
        [
          '--class',
          'manifests/examples/broken-class.yaml',
          '--pod-namespace',
          'default',
          '--service-account',
          'app-irsa',
          '--region',
          REGION,
        ],
        cmd,
      ),
    ).toBe(1);
    expect(cmd.err()).toContain('Invalid File Permission: 420');
    expect(cmd.err()).toContain('found duplicate object alias creds');
    expect(h.emu.calls.length).toBe(0);
  });

  it('with no region anywhere, says where to give one', async () => {
    const cmd = io(creds);
    expect(await run(['--class', IRSA, '--pod-namespace', 'default', '--service-account', 'app-irsa'], cmd)).toBe(1);
    expect(cmd.err()).toContain('pass --region');
  });

  it('a secretObjects file that is not mounted fails like the driver sync', async () => {
    const file = path.join(tmp, 'missing-file.yaml');
    writeFileSync(
      file,
      'apiVersion: secrets-store.csi.x-k8s.io/v1\nkind: SecretProviderClass\nmetadata: {name: m}\nspec:\n  ' +
        'provider: aws\n  parameters:\n    region: us-east-1\n    objects: "- {objectName: prod/db-creds, ' +
        'objectType: secretsmanager}"\n  secretObjects:\n  - {secretName: s, type: Opaque, data: [{objectName: ' +
        'db-creds, key: k}]}\n',
    );
    const cmd = io(creds);
    expect(await run(['--class', file, '--pod-namespace', 'default', '--service-account', 'app-irsa'], cmd)).toBe(1);
    expect(cmd.err()).toContain('file matching objectName db-creds not found in the pod');
  });
});

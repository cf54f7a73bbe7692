/**
 * Mounts through the real socket, as the driver makes them, against the emulator: ASCP's mount
 * tests (docs/behaviour.md, "ASCP's test cases") where we keep its behaviour, and our own cases.
 */
import { lstat, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACCOUNT, REGION, startHarness, type Harness } from '../helpers/harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => h?.close());

const DB_JSON = '{"dbUser": {"username": "SecretsManagerUser", "password": "SecretsManagerPassword"}}';

async function modeOf(p: string): Promise<number> {
  return (await stat(p)).mode & 0o7777;
}

describe('first mounts (provider writes)', () => {
  it('S01/S03: object and jmesPath modes, files, one version per file', async () => {
    const { versionId } = h.emu.putSecret(REGION, 's01/TestSecret1', DB_JSON);
    const pod = h.pod();
    const target = await h.target();
    const objects = `
- objectName: s01/TestSecret1
  objectType: secretsmanager
  objectAlias: TestSecret1
  filePermission: "0600"
  jmesPath:
    - path: dbUser.username
      objectAlias: username
      filePermission: "0777"
    - path: dbUser.password
      objectAlias: password
`;
    const res = await h.client.mount({ attributes: pod.attributes({ region: REGION, objects }), targetPath: target });
    expect(res.files).toEqual([]);
    expect(await readFile(path.join(target, 'TestSecret1'), 'utf8')).toBe(DB_JSON);
    expect(await readFile(path.join(target, 'username'), 'utf8')).toBe('SecretsManagerUser');
    expect(await readFile(path.join(target, 'password'), 'utf8')).toBe('SecretsManagerPassword');
    expect(await modeOf(path.join(target, 'TestSecret1'))).toBe(0o600);
    expect(await modeOf(path.join(target, 'username'))).toBe(0o777);
    expect(await modeOf(path.join(target, 'password'))).toBe(0o600);
    expect(res.objectVersion.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))).toEqual([
      { id: 'TestSecret1', version: versionId },
      { id: 'password', version: versionId },
      { id: 'username', version: versionId },
    ]);
  });

  it('S05/S10: Secrets Manager (string and binary) and SSM together, default mode 0644', async () => {
    h.emu.putSecret(REGION, 's05-secret', 'secret1');
    h.emu.putSecret(REGION, 's05-binary', Buffer.from([0, 1, 2, 255, 66]));
    const { version } = h.emu.putParameter(REGION, 's05-parm', 'parm1');
    const pod = h.pod();
    const target = await h.target();
    const objects = `
- {objectName: s05-secret, objectType: secretsmanager}
- {objectName: s05-binary, objectType: secretsmanager}
- {objectName: s05-parm, objectType: ssmparameter}
`;
    const res = await h.client.mount({ attributes: pod.attributes({ region: REGION, objects }), targetPath: target });
    expect(await readFile(path.join(target, 's05-secret'), 'utf8')).toBe('secret1');
    expect([...(await readFile(path.join(target, 's05-binary')))]).toEqual([0, 1, 2, 255, 66]);
    expect(await readFile(path.join(target, 's05-parm'), 'utf8')).toBe('parm1');
    expect(await modeOf(path.join(target, 's05-parm'))).toBe(0o644);
    expect(res.objectVersion.find((v) => v.id === 's05-parm')?.version).toBe(String(version));
  });

  it('S09: a full ARN needs no objectType; alias names the file', async () => {
    const { arn } = h.emu.putSecret(REGION, 'geheimnis', '{"dbUser": {"username": "SecretsManagerUser"}}');
    const pod = h.pod();
    const target = await h.target();
    const objects = `
- objectName: "${arn}"
  objectAlias: TestSecret1
  jmesPath:
    - {path: dbUser.username, objectAlias: username}
`;
    await h.client.mount({ attributes: pod.attributes({ region: REGION, objects }), targetPath: target });
    expect(await readFile(path.join(target, 'username'), 'utf8')).toBe('SecretsManagerUser');
  });

  it('S11: 2 secrets and 11 parameters: 2 GetParameters calls (10 + 1)', async () => {
    const names = Array.from({ length: 11 }, (_, i) => `s11-TestParm${i + 1}`);
    for (const [i, n] of names.entries()) h.emu.putParameter(REGION, n, `parm${i + 1}`);
    h.emu.putSecret(REGION, 's11-a', 'a');
    h.emu.putSecret(REGION, 's11-b', 'b');
    const pod = h.pod();
    const target = await h.target();
    const objects = [
      '- {objectName: s11-a, objectType: secretsmanager}',
      '- {objectName: s11-b, objectType: secretsmanager}',
      ...names.map((n) => `- {objectName: ${n}, objectType: ssmparameter}`),
    ].join('\n');
    h.emu.resetCalls();
    const res = await h.client.mount({ attributes: pod.attributes({ region: REGION, objects }), targetPath: target });
    expect(res.objectVersion).toHaveLength(13);
    expect(h.emu.callCount({ service: 'ssm', operation: 'GetParameters' })).toBe(2);
    expect(h.emu.callCount({ service: 'secretsmanager', operation: 'GetSecretValue' })).toBe(2);
    for (const [i, n] of names.entries()) expect(await readFile(path.join(target, n), 'utf8')).toBe(`parm${i + 1}`);
  });

  it('S24/S25/S27: slash translation: default _, custom -, off strips the leading slash', async () => {
    h.emu.putSecret(REGION, 'mypath/TestSecret1', 'secret1');
    h.emu.putParameter(REGION, '/TestParm1', 'parm1');
    const pod = h.pod();
    const objs =
      '- {objectName: mypath/TestSecret1, objectType: secretsmanager}\n- {objectName: /TestParm1, objectType: ' +
      'ssmparameter}';
    const t1 = await h.target();
    await h.client.mount({ attributes: pod.attributes({ region: REGION, objects: objs }), targetPath: t1 });
    expect(await readFile(path.join(t1, 'mypath_TestSecret1'), 'utf8')).toBe('secret1');
    expect(await readFile(path.join(t1, '_TestParm1'), 'utf8')).toBe('parm1');
    const t2 = await h.target();
    await h.client.mount({
      attributes: pod.attributes({ region: REGION, objects: objs, pathTranslation: '-' }),
      targetPath: t2,
    });
    expect(await readFile(path.join(t2, 'mypath-TestSecret1'), 'utf8')).toBe('secret1');
    const t3 = await h.target();
    await h.client.mount({
      attributes: pod.attributes({ region: REGION, objects: objs, pathTranslation: 'False' }),
      targetPath: t3,
    });
    // better than ASCP (W01): nested paths create directories instead of failing.
    expect(await readFile(path.join(t3, 'mypath', 'TestSecret1'), 'utf8')).toBe('secret1');
    expect((await stat(path.join(t3, 'mypath'))).mode & 0o777).toBe(0o755);
    expect(await readFile(path.join(t3, 'TestParm1'), 'utf8')).toBe('parm1');
  });

  it('keeps the same parameter at two versions apart (better than ASCP)', async () => {
    h.emu.putParameter(REGION, 'twice', 'v1');
    h.emu.putParameter(REGION, 'twice', 'v2');
    const pod = h.pod();
    const target = await h.target();
    const objects = `
- {objectName: twice, objectType: ssmparameter, objectVersion: "1", objectAlias: old}
- {objectName: twice, objectType: ssmparameter, objectAlias: new}
`;
    const res = await h.client.mount({ attributes: pod.attributes({ region: REGION, objects }), targetPath: target });
    expect(await readFile(path.join(target, 'old'), 'utf8')).toBe('v1');
    expect(await readFile(path.join(target, 'new'), 'utf8')).toBe('v2');
    expect(res.objectVersion.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))).toEqual([
      { id: 'new', version: '2' },
      { id: 'old', version: '1' },
    ]);
  });

  it('SM version stage and version id select the version', async () => {
    const v1 = h.emu.putSecret(REGION, 'staged', 'one');
    h.emu.putSecret(REGION, 'staged', 'two');
    const pod = h.pod();
    const target = await h.target();
    const objects = `
- {objectName: staged, objectType: secretsmanager, objectVersionLabel: AWSPREVIOUS, objectAlias: previous}
- {objectName: staged, objectType: secretsmanager, objectVersion: "${v1.versionId}", objectAlias: pinned}
- {objectName: staged, objectType: secretsmanager, objectAlias: current}
`;
    await h.client.mount({ attributes: pod.attributes({ region: REGION, objects }), targetPath: target });
    expect(await readFile(path.join(target, 'previous'), 'utf8')).toBe('one');
    expect(await readFile(path.join(target, 'pinned'), 'utf8')).toBe('one');
    expect(await readFile(path.join(target, 'current'), 'utf8')).toBe('two');
  });

  it("region from the pod's node when neither the class nor AWS_REGION sets it", async () => {
    h.emu.putSecret(REGION, 'noderegion', 'x');
    const pod = h.pod();
    const target = await h.target();
    await h.client.mount({
      attributes: pod.attributes({ objects: '- {objectName: noderegion, objectType: secretsmanager}' }),
      targetPath: target,
    });
    expect(await readFile(path.join(target, 'noderegion'), 'utf8')).toBe('x');
  });

  it('sets the target directory mtime after every successful mount (driver v1.6 times rotation from it)', async () => {
    h.emu.putSecret(REGION, 'mtime', 'x');
    const pod = h.pod();
    const target = await h.target();
    const attributes = pod.attributes({ region: REGION, objects: '- {objectName: mtime, objectType: secretsmanager}' });
    await h.client.mount({ attributes, targetPath: target });
    const { utimes } = await import('node:fs/promises');
    const old = new Date(Date.now() - 3600_000);
    await utimes(target, old, old);
    await h.client.mount({ attributes, targetPath: target });
    expect((await stat(target)).mtimeMs).toBeGreaterThan(Date.now() - 60_000);
  });

  it('Version answers v1alpha1 with our name and semver', async () => {
    const v = await h.client.version();
    expect(v.version).toBe('v1alpha1');
    expect(v.runtime_name).toBe('csi-secrets-provider-aws');
    expect(v.runtime_version).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('sends the user agent app id to AWS', async () => {
    h.emu.putSecret(REGION, 'ua', 'x');
    const pod = h.pod();
    h.emu.resetCalls();
    await h.client.mount({
      attributes: pod.attributes({ region: REGION, objects: '- {objectName: ua, objectType: secretsmanager}' }),
      targetPath: await h.target(),
    });
    const call = h.emu.calls.find((c) => c.service === 'secretsmanager');
    expect(call?.userAgent).toContain('app/csi-secrets-provider-aws-');
  });

  it('socket is owner-only', async () => {
    expect((await lstat(h.socketPath)).mode & 0o777).toBe(0o600);
  });

  it('an unknown error status is never used for our refusals', async () => {
    const pod = h.pod();
    const err = await h.client
      .mount({
        attributes: pod.attributes({ region: REGION, objects: '- {objectType: secretsmanager}' }),
        targetPath: await h.target(),
      })
      .catch((e: { code: number }) => e);
    expect((err as { code: number }).code).toBe(status.INVALID_ARGUMENT);
  });
});

export { ACCOUNT };

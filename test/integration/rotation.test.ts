/**
 * Rotation in both forms (docs/behaviour.md, "Rotation"): driver v1.6 sends no versions, driver ≤1.5 sends
 * the last ones; both get the same files and versions back. Unchanged files are not rewritten
 * (same inode, same mtime); rotated ones are replaced. Both write modes.
 */
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFilesLikeDriver } from '../../tools/emulator/driver-client.js';
import { REGION, startHarness, type Harness } from '../helpers/harness.js';

const OBJECTS = (p: string): string => `
- objectName: ${p}-secret
  objectType: secretsmanager
  jmesPath:
    - {path: username, objectAlias: ${p}-username}
- {objectName: ${p}-label, objectType: secretsmanager, objectVersionLabel: custom}
- {objectName: ${p}-parm, objectType: ssmparameter}
- {objectName: ${p}-pinned, objectType: ssmparameter, objectVersion: "1"}
`;

function seed(h: Harness, p: string): void {
  h.emu.putSecret(REGION, `${p}-secret`, '{"username":"u1"}');
  h.emu.putSecret(REGION, `${p}-label`, 'label v1', { stages: ['AWSCURRENT', 'custom'] });
  h.emu.putParameter(REGION, `${p}-parm`, 'parm v1');
  h.emu.putParameter(REGION, `${p}-pinned`, 'pinned v1');
}

const byId = (v: { id: string; version: string }[]): Record<string, string> =>
  Object.fromEntries(v.map((x) => [x.id, x.version]));

describe('rotation, provider writes', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => h?.close());

  for (const form of ['v1.6 (no versions sent)', 'v1.5 (versions sent)'] as const) {
    it(`nothing changed → same files, same versions, no rewrite; rotated → new ones [${form}]`, async () => {
      const p = form.startsWith('v1.6') ? 'r16' : 'r15';
      seed(h, p);
      const pod = h.pod();
      const target = await h.target();
      const attributes = pod.attributes({ region: REGION, objects: OBJECTS(p) });
      const first = await h.client.mount({ attributes, targetPath: target });
      const sent = (prev: { id: string; version: string }[]) => (form.startsWith('v1.5') ? prev : []);
      const before = await stat(path.join(target, `${p}-secret`));

      const second = await h.client.mount({
        attributes,
        targetPath: target,
        currentObjectVersion: sent(first.objectVersion),
      });
      expect(byId(second.objectVersion)).toEqual(byId(first.objectVersion));
      const after = await stat(path.join(target, `${p}-secret`));
      expect(after.ino).toBe(before.ino);
      expect(after.mtimeMs).toBe(before.mtimeMs);

      // Rotate the secret and the parameter; move the label; the pinned parameter stays.
      h.emu.putSecret(REGION, `${p}-secret`, '{"username":"u2"}');
      h.emu.putSecret(REGION, `${p}-label`, 'label v2 (not custom yet)');
      h.emu.putParameter(REGION, `${p}-parm`, 'parm v2');
      h.emu.putParameter(REGION, `${p}-pinned`, 'pinned v2');
      const third = await h.client.mount({
        attributes,
        targetPath: target,
        currentObjectVersion: sent(second.objectVersion),
      });
      expect(await readFile(path.join(target, `${p}-secret`), 'utf8')).toBe('{"username":"u2"}');
      expect(await readFile(path.join(target, `${p}-username`), 'utf8')).toBe('u2');
      expect(await readFile(path.join(target, `${p}-label`), 'utf8')).toBe('label v1');
      expect(await readFile(path.join(target, `${p}-parm`), 'utf8')).toBe('parm v2');
      expect(await readFile(path.join(target, `${p}-pinned`), 'utf8')).toBe('pinned v1');
      const v = byId(third.objectVersion);
      expect(v[`${p}-secret`]).not.toBe(byId(first.objectVersion)[`${p}-secret`]);
      expect(v[`${p}-username`]).toBe(v[`${p}-secret`]);
      expect(v[`${p}-parm`]).toBe('2');
      expect(v[`${p}-pinned`]).toBe('1');
      expect((await stat(path.join(target, `${p}-secret`))).ino).not.toBe(before.ino);
    });
  }

  it('a failed rotation leaves the mounted files as they were', async () => {
    seed(h, 'rf');
    const pod = h.pod();
    const target = await h.target();
    const attributes = pod.attributes({ region: REGION, objects: OBJECTS('rf') });
    await h.client.mount({ attributes, targetPath: target });
    h.emu.putSecret(REGION, 'rf-secret', '{"username":"u2"}');
    h.emu.deleteParameter(REGION, 'rf-parm');
    await expect(h.client.mount({ attributes, targetPath: target })).rejects.toMatchObject({
      details: expect.stringContaining('rf-parm'),
    });
    expect(await readFile(path.join(target, 'rf-secret'), 'utf8')).toBe('{"username":"u1"}');
    expect(await readFile(path.join(target, 'rf-parm'), 'utf8')).toBe('parm v1');
  });
});

describe('driver writes (--driver-writes-secrets)', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ flags: ['--driver-writes-secrets'] });
  });
  afterAll(async () => h?.close());

  it('returns every file with path, mode and contents; writes nothing itself', async () => {
    seed(h, 'dw');
    h.emu.putSecret(REGION, '/mypath/TestSecret1', 'secret1');
    const pod = h.pod();
    const target = await h.target();
    const objects =
      `${OBJECTS('dw')}\n- {objectName: /mypath/TestSecret1, objectType: secretsmanager, ` + `filePermission: "0600"}`;
    const res = await h.client.mount({
      attributes: pod.attributes({ region: REGION, objects, pathTranslation: 'False' }),
      targetPath: target,
    });
    const files = Object.fromEntries(res.files.map((f) => [f.path, f]));
    expect(Object.keys(files).sort()).toEqual([
      'dw-label',
      'dw-parm',
      'dw-pinned',
      'dw-secret',
      'dw-username',
      'mypath/TestSecret1',
    ]);
    expect(files['mypath/TestSecret1']?.mode).toBe(0o600);
    expect(files['dw-parm']?.mode).toBe(420);
    expect(files['dw-username']?.contents.toString()).toBe('u1');
    const { readdir } = await import('node:fs/promises');
    expect(await readdir(target)).toEqual([]);
    expect(res.objectVersion).toHaveLength(6);
  });

  it('rotation: the driver rewrites from our answer (remount tests in driver-writes mode)', async () => {
    seed(h, 'dr');
    const pod = h.pod();
    const target = await h.target();
    const attributes = pod.attributes({ region: REGION, objects: OBJECTS('dr') });
    const first = await h.client.mount({ attributes, targetPath: target });
    await writeFilesLikeDriver(target, first.files);
    h.emu.putSecret(REGION, 'dr-secret', '{"username":"u2"}');
    const second = await h.client.mount({ attributes, targetPath: target, currentObjectVersion: first.objectVersion });
    await writeFilesLikeDriver(target, second.files);
    expect(await readFile(path.join(target, 'dr-username'), 'utf8')).toBe('u2');
    expect(await readFile(path.join(target, 'dr-parm'), 'utf8')).toBe('parm v1');
  });
});

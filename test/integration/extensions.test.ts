/**
 * Our extension `optional: true` (docs/extensions.md) through the real socket against the
 * emulator, in both write modes and both rotation forms: a missing object is skipped (file absent,
 * version `absent`, one log line per pod), every other failure still fails the mount, and an object
 * that disappears after a mount loses its files. The other extensions have their own files:
 * ext-all-keys, ext-render-json, ext-assume-role.
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FAILOVER_REGION, REGION, startHarness, type Harness } from '../helpers/harness.js';
import { refused } from '../helpers/failure.js';

type Versions = { id: string; version: string }[];
const byId = (v: Versions): Record<string, string> => Object.fromEntries(v.map((x) => [x.id, x.version]));

async function exists(p: string): Promise<boolean> {
  return readFile(p).then(
    () => true,
    () => false,
  );
}

/** Log lines saying an optional object was skipped, for one pod and object. */
function skipLines(h: Harness, pod: string, object: string): string[] {
  return h.logs.filter(
    (l) => l.includes('optional object not found') && l.includes(`"${pod}"`) && l.includes(`"${object}"`),
  );
}

for (const mode of ['provider writes', 'driver writes'] as const) {
  const driverWrites = mode === 'driver writes';

  describe(`optional: true (${mode})`, () => {
    let h: Harness;
    beforeAll(async () => {
      h = await startHarness(driverWrites ? { flags: ['--driver-writes-secrets'] } : {});
    });
    afterAll(async () => h?.close());

    const mount = (attributes: Record<string, string>, target: string, current: Versions = []) =>
      h.mountAndWrite(attributes, target, current);

    it('a missing Secrets Manager secret and SSM parameter are skipped; the rest is mounted', async () => {
      const p = driverWrites ? 'od1' : 'op1';
      const present = h.emu.putSecret(REGION, `${p}-present`, 'here');
      h.emu.putParameter(REGION, `${p}-parm`, 'parm');
      const pod = h.pod();
      const target = await h.target();
      const objects = `
- {objectName: ${p}-present, objectType: secretsmanager}
- {objectName: ${p}-gone, objectType: secretsmanager, optional: true, jmesPath: [{path: a, objectAlias: ${p}-gone-a}]}
- {objectName: ${p}-parm, objectType: ssmparameter}
- {objectName: /${p}/gone-parm, objectType: ssmparameter, optional: true}
`;
      const res = await mount(pod.attributes({ region: REGION, objects }), target);
      expect(byId(res.objectVersion)).toEqual({
        [`${p}-present`]: present.versionId,
        [`${p}-parm`]: '1',
        [`${p}-gone`]: 'absent',
        [`_${p}_gone-parm`]: 'absent',
      });
      expect((await readdir(target)).filter((e) => !e.startsWith('..')).sort()).toEqual([`${p}-parm`, `${p}-present`]);
      if (driverWrites) expect(res.files.map((f) => f.path).sort()).toEqual([`${p}-parm`, `${p}-present`]);
      expect(skipLines(h, pod.pod, `${p}-gone`)).toHaveLength(1);
      expect(skipLines(h, pod.pod, `/${p}/gone-parm`)).toHaveLength(1);
    });

    it('without optional, the same missing object fails the whole mount (default stays all-or-nothing)', async () => {
      const p = driverWrites ? 'od2' : 'op2';
      h.emu.putSecret(REGION, `${p}-present`, 'here');
      const pod = h.pod();
      const target = await h.target();
      const objects = `
- {objectName: ${p}-present, objectType: secretsmanager}
- {objectName: ${p}-gone, objectType: secretsmanager}
`;
      const e = await refused(
        h.client.mount({ attributes: pod.attributes({ region: REGION, objects }), targetPath: target }),
      );
      expect(e.code).toBe(status.NOT_FOUND);
      expect(e.details).toContain(`${p}-gone`);
      expect(await readdir(target)).toEqual([]);
    });

    it('an SSM batch with one missing optional name still delivers the other nine', async () => {
      const p = driverWrites ? 'od3' : 'op3';
      const names = Array.from({ length: 9 }, (_, i) => `${p}-n${i}`);
      for (const n of names) h.emu.putParameter(REGION, n, `v-${n}`);
      const pod = h.pod();
      const target = await h.target();
      const objects = [
        ...names.map((n) => `- {objectName: ${n}, objectType: ssmparameter}`),
        `- {objectName: ${p}-missing, objectType: ssmparameter, optional: "true"}`,
      ].join('\n');
      h.emu.resetCalls();
      const res = await mount(pod.attributes({ region: REGION, objects }), target);
      expect(h.emu.callCount({ service: 'ssm', operation: 'GetParameters' })).toBe(1);
      expect(byId(res.objectVersion)[`${p}-missing`]).toBe('absent');
      for (const n of names) expect(await readFile(path.join(target, n), 'utf8')).toBe(`v-${n}`);
      expect(await exists(path.join(target, `${p}-missing`))).toBe(false);
    });

    // Every failure other than "does not exist" still fails the mount, optional or not.
    const failures: {
      name: string;
      setup: (h: Harness, n: string) => void;
      pod?: { allowSecrets?: string[]; allowParameters?: string[] };
      type: 'secretsmanager' | 'ssmparameter';
      code: number;
      detail: string;
    }[] = [
      {
        name: 'access denied (secret the role may not read)',
        setup: () => {},
        pod: { allowSecrets: ['someone-else-*'] },
        type: 'secretsmanager',
        code: status.PERMISSION_DENIED,
        detail: 'AccessDenied',
      },
      {
        name: 'access denied (parameter the role may not read)',
        setup: () => {},
        pod: { allowParameters: ['someone-else-*'] },
        type: 'ssmparameter',
        code: status.PERMISSION_DENIED,
        detail: 'AccessDenied',
      },
      {
        name: 'KMS decryption failure (secret)',
        setup: (h, n) => h.emu.putSecret(REGION, n, 'x', { kmsFails: true }),
        type: 'secretsmanager',
        code: status.PERMISSION_DENIED,
        detail: 'Decrypt',
      },
      {
        name: 'KMS decryption failure (parameter)',
        setup: (h, n) => h.emu.putParameter(REGION, n, 'x', { type: 'SecureString', kmsFails: true }),
        type: 'ssmparameter',
        code: status.PERMISSION_DENIED,
        detail: 'KMS',
      },
      {
        name: 'throttling after retries',
        setup: (h, n) =>
          void h.emu.addFault({
            service: 'secretsmanager',
            target: n,
            status: 400,
            code: 'ThrottlingException',
            message: 'Rate exceeded',
          }),
        type: 'secretsmanager',
        code: status.UNAVAILABLE,
        detail: 'ThrottlingException',
      },
    ];
    for (const [i, f] of failures.entries()) {
      it(`optional does not hide: ${f.name}`, async () => {
        const n = `${driverWrites ? 'od' : 'op'}-fail${i}`;
        f.setup(h, n);
        h.emu.putSecret(REGION, `${n}-ok`, 'ok');
        const pod = h.pod(f.pod ?? {});
        if (f.pod?.allowSecrets)
          h.emu.addRole({
            arn: pod.roleArn,
            trust: { subjects: [`system:serviceaccount:${pod.namespace}:${pod.serviceAccount}`] },
            allow: { secretsmanager: [`${n}-ok`, ...f.pod.allowSecrets], ssm: ['*'] },
          });
        const target = await h.target();
        const objects = `
- {objectName: ${n}-ok, objectType: secretsmanager}
- {objectName: ${n}, objectType: ${f.type}, optional: true}
`;
        try {
          const e = await refused(
            h.client.mount({ attributes: pod.attributes({ region: REGION, objects }), targetPath: target }),
          );
          expect(e.code).toBe(f.code);
          expect(e.details).toContain(n);
          expect(e.details).toContain(f.detail);
          expect(await readdir(target)).toEqual([]);
        } finally {
          h.emu.clearFaults();
        }
      });
    }

    for (const form of ['v1.6 (no versions sent)', 'v1.5 (versions sent)'] as const) {
      it(`an optional object that appears, rotates, disappears and comes back [${form}]`, async () => {
        const p = `${driverWrites ? 'od' : 'op'}-cycle-${form.slice(0, 4)}`;
        h.emu.putSecret(REGION, `${p}-base`, 'base');
        const pod = h.pod();
        const target = await h.target();
        const objects = `
- {objectName: ${p}-base, objectType: secretsmanager}
- objectName: ${p}-opt
  objectType: secretsmanager
  optional: true
  filePermission: "0600"
  jmesPath:
    - {path: user, objectAlias: ${p}-user}
- {objectName: ${p}-optparm, objectType: ssmparameter, optional: true}
`;
        const attributes = pod.attributes({ region: REGION, objects });
        const sent = (v: Versions): Versions => (form.startsWith('v1.5') ? v : []);
        const files = async (): Promise<string[]> => (await readdir(target)).filter((e) => !e.startsWith('..')).sort();

        // 1. Absent.
        const r1 = await mount(attributes, target);
        expect(await files()).toEqual([`${p}-base`]);
        expect(byId(r1.objectVersion)[`${p}-opt`]).toBe('absent');

        // 2. Appears: its files come, with its version.
        const v1 = h.emu.putSecret(REGION, `${p}-opt`, '{"user":"u1"}');
        h.emu.putParameter(REGION, `${p}-optparm`, 'p1');
        const r2 = await mount(attributes, target, sent(r1.objectVersion));
        expect(await files()).toEqual([`${p}-base`, `${p}-opt`, `${p}-optparm`, `${p}-user`]);
        expect(await readFile(path.join(target, `${p}-user`), 'utf8')).toBe('u1');
        expect(byId(r2.objectVersion)).toMatchObject({
          [`${p}-opt`]: v1.versionId,
          [`${p}-user`]: v1.versionId,
          [`${p}-optparm`]: '1',
        });

        // 3. Rotates.
        const v2 = h.emu.putSecret(REGION, `${p}-opt`, '{"user":"u2"}');
        const r3 = await mount(attributes, target, sent(r2.objectVersion));
        expect(await readFile(path.join(target, `${p}-user`), 'utf8')).toBe('u2');
        expect(byId(r3.objectVersion)[`${p}-user`]).toBe(v2.versionId);

        // 4. Disappears: its file and its jmesPath file go, in both write modes.
        h.emu.deleteSecret(REGION, `${p}-opt`);
        h.emu.deleteParameter(REGION, `${p}-optparm`);
        const r4 = await mount(attributes, target, sent(r3.objectVersion));
        expect(await files()).toEqual([`${p}-base`]);
        expect(byId(r4.objectVersion)).toMatchObject({ [`${p}-opt`]: 'absent', [`${p}-optparm`]: 'absent' });
        expect(await readFile(path.join(target, `${p}-base`), 'utf8')).toBe('base');

        // 5. Comes back.
        h.emu.putSecret(REGION, `${p}-opt`, '{"user":"u3"}');
        await mount(attributes, target, sent(r4.objectVersion));
        expect(await readFile(path.join(target, `${p}-user`), 'utf8')).toBe('u3');
      });
    }

    it('a class whose objects are all optional and all missing mounts empty and still answers versions', async () => {
      const pod = h.pod();
      const target = await h.target();
      const p = driverWrites ? 'od-none' : 'op-none';
      const objects = `
- {objectName: ${p}-a, objectType: secretsmanager, optional: true}
- {objectName: ${p}-b, objectType: ssmparameter, optional: true}
`;
      const res = await mount(pod.attributes({ region: REGION, objects }), target);
      expect(res.objectVersion.length).toBeGreaterThanOrEqual(1);
      expect(byId(res.objectVersion)).toEqual({ [`${p}-a`]: 'absent', [`${p}-b`]: 'absent' });
      expect(res.files).toEqual([]);
      expect((await readdir(target)).filter((e) => !e.startsWith('..'))).toEqual([]);
    });

    it('with a failover region: "not found" in the primary is final: skipped, failover never asked', async () => {
      const p = driverWrites ? 'od-fo' : 'op-fo';
      h.emu.putSecret(FAILOVER_REGION, `${p}-only-west`, 'from west');
      const pod = h.pod();
      const target = await h.target();
      const objects = `
- {objectName: ${p}-only-west, objectType: secretsmanager, optional: true}
- {objectName: ${p}-nowhere, objectType: secretsmanager, optional: true}
`;
      h.emu.resetCalls();
      const res = await mount(pod.attributes({ region: REGION, failoverRegion: FAILOVER_REGION, objects }), target);
      expect(byId(res.objectVersion)).toEqual({ [`${p}-only-west`]: 'absent', [`${p}-nowhere`]: 'absent' });
      expect(h.emu.callCount({ service: 'secretsmanager', region: FAILOVER_REGION })).toBe(0);
    });

    it('primary 5xx: mounted from the failover region, or if missing there, fails naming both causes', async () => {
      const p = driverWrites ? 'od-fo5' : 'op-fo5';
      h.emu.putSecret(REGION, `${p}-a`, 'east a');
      h.emu.putSecret(FAILOVER_REGION, `${p}-a`, 'west a');
      h.emu.putSecret(REGION, `${p}-b`, 'east b');
      const pod = h.pod();
      const fault = h.emu.addFault({
        service: 'secretsmanager',
        region: REGION,
        status: 500,
        code: 'InternalServiceError',
        message: 'injected',
      });
      try {
        const t1 = await h.target();
        await mount(
          pod.attributes({
            region: REGION,
            failoverRegion: FAILOVER_REGION,
            objects: `- {objectName: ${p}-a, objectType: secretsmanager, optional: true}`,
          }),
          t1,
        );
        expect(await readFile(path.join(t1, `${p}-a`), 'utf8')).toBe('west a');
        const t2 = await h.target();
        const e = await refused(
          h.client.mount({
            attributes: pod.attributes({
              region: REGION,
              failoverRegion: FAILOVER_REGION,
              objects: `- {objectName: ${p}-b, objectType: secretsmanager, optional: true}`,
            }),
            targetPath: t2,
          }),
        );
        expect(e.details).toContain(`${p}-b`);
        expect(e.details).toContain('InternalServiceError');
        expect(e.details).toContain('ResourceNotFound');
        expect(await readdir(t2)).toEqual([]);
      } finally {
        h.emu.removeFault(fault);
      }
    });

    it('`optional` must be a boolean: the class is refused with the field named', async () => {
      const pod = h.pod();
      const e = await refused(
        h.client.mount({
          attributes: pod.attributes({
            region: REGION,
            objects: '- {objectName: x, objectType: secretsmanager, optional: perhaps}',
          }),
          targetPath: await h.target(),
        }),
      );
      expect(e.code).toBe(status.INVALID_ARGUMENT);
      expect(e.details).toContain('optional');
      expect(e.details).toContain('true or false');
    });

    // Known gap (brief): the log says so once per pod, not on every mount (rotation polls every few minutes).
    it('the skip is logged once per pod, not on every mount', async () => {
      const p = driverWrites ? 'od-log' : 'op-log';
      h.emu.putSecret(REGION, `${p}-present`, 'x');
      const objects =
        `- {objectName: ${p}-present, objectType: secretsmanager}\n- {objectName: ${p}-gone, ` +
        `objectType: secretsmanager, optional: true}`;
      const a = h.pod();
      const b = h.pod();
      const ta = await h.target();
      for (let i = 0; i < 3; i++) await mount(a.attributes({ region: REGION, objects }), ta);
      await mount(b.attributes({ region: REGION, objects }), await h.target());
      expect(skipLines(h, a.pod, `${p}-gone`)).toHaveLength(1);
      expect(skipLines(h, b.pod, `${p}-gone`)).toHaveLength(1);
    });
  });
}

describe('optional: true with allKeys, provider writes', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => h?.close());

  // Known gap (brief): mount.ts removes only the object's file and its jmesPath files; the allKeys
  // files of the last mount stay in the pod after the secret is deleted.
  for (const form of ['v1.6 (no versions sent)', 'v1.5 (versions sent)'] as const) {
    it(`an optional allKeys object that disappears takes its key files with it [${form}]`, async () => {
      const p = `oak-${form.slice(0, 4)}`;
      h.emu.putSecret(REGION, `${p}-keep`, 'keep');
      h.emu.putSecret(REGION, `${p}-opt`, '{"host":"db","port":5432}');
      const pod = h.pod();
      const target = await h.target();
      const objects = `
- {objectName: ${p}-keep, objectType: secretsmanager}
- {objectName: ${p}-opt, objectType: secretsmanager, optional: true, allKeys: true}
`;
      const attributes = pod.attributes({ region: REGION, objects });
      const r1 = await h.client.mount({ attributes, targetPath: target });
      expect((await readdir(target)).sort()).toEqual(['host', `${p}-keep`, `${p}-opt`, 'port'].sort());
      h.emu.deleteSecret(REGION, `${p}-opt`);
      await h.client.mount({
        attributes,
        targetPath: target,
        currentObjectVersion: form.startsWith('v1.5') ? r1.objectVersion : [],
      });
      expect((await readdir(target)).sort()).toEqual([`${p}-keep`]);
    });
  }
});

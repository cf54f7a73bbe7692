/**
 * Our extension `allKeys: true` (docs/extensions.md) through the real socket: each top-level
 * key of a JSON secret becomes a file with the object's mode and version, beside the whole secret;
 * keys pass path translation and every file-name rule; hostile keys are refused naming the key and
 * nothing is written. Both write modes, and rotation.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { status } from '@grpc/grpc-js';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFilesLikeDriver } from '../../tools/emulator/driver-client.js';
import { REGION, startHarness, type Harness } from '../helpers/harness.js';
import { refused, type GrpcError } from '../helpers/failure.js';

type Versions = { id: string; version: string }[];
const byId = (v: Versions): Record<string, string> => Object.fromEntries(v.map((x) => [x.id, x.version]));
const visible = async (dir: string): Promise<string[]> =>
  (await readdir(dir)).filter((e) => !e.startsWith('..')).sort();

const CONFIG = {
  host: 'db.internal',
  port: 5432,
  ratio: 0.25,
  tls: true,
  debug: false,
  opts: { pool: { max: 10 }, on: true },
  hosts: ['a', 'b', 1],
  nothing: null,
  empty: '',
};
const CONFIG_TEXT = JSON.stringify(CONFIG);
/** What each key's file holds: strings as they are, everything else as JSON text. */
const CONFIG_FILES: Record<string, string> = {
  host: 'db.internal',
  port: '5432',
  ratio: '0.25',
  tls: 'true',
  debug: 'false',
  opts: '{"pool":{"max":10},"on":true}',
  hosts: '["a","b",1]',
  nothing: 'null',
  empty: '',
};

for (const mode of ['provider writes', 'driver writes'] as const) {
  const driverWrites = mode === 'driver writes';

  describe(`allKeys: true (${mode})`, () => {
    let h: Harness;
    beforeAll(async () => {
      h = await startHarness(driverWrites ? { flags: ['--driver-writes-secrets'] } : {});
    });
    afterAll(async () => h?.close());

    const mount = (attributes: Record<string, string>, target: string, current: Versions = []) =>
      h.mountAndWrite(attributes, target, current);

    it("top-level keys as files (non-strings as JSON), with the object's mode and version; own file kept", async () => {
      const p = driverWrites ? 'kd1' : 'kp1';
      const { versionId } = h.emu.putSecret(REGION, `${p}/config`, CONFIG_TEXT);
      const pod = h.pod();
      const target = await h.target();
      const objects = `- {objectName: ${p}/config, objectType: secretsmanager, allKeys: true, filePermission: "0640"}`;
      const res = await mount(pod.attributes({ region: REGION, objects }), target);
      expect(await visible(target)).toEqual([`${p}_config`, ...Object.keys(CONFIG_FILES)].sort());
      expect(await readFile(path.join(target, `${p}_config`), 'utf8')).toBe(CONFIG_TEXT);
      for (const [k, text] of Object.entries(CONFIG_FILES)) {
        expect(await readFile(path.join(target, k), 'utf8')).toBe(text);
        expect((await stat(path.join(target, k))).mode & 0o777).toBe(0o640);
      }
      expect(byId(res.objectVersion)).toEqual(
        Object.fromEntries([`${p}_config`, ...Object.keys(CONFIG_FILES)].map((id) => [id, versionId])),
      );
      if (driverWrites) expect(new Set(res.files.map((f) => f.mode))).toEqual(new Set([0o640]));
    });

    it("without allKeys only the object's own file is written", async () => {
      const p = driverWrites ? 'kd2' : 'kp2';
      h.emu.putSecret(REGION, `${p}-config`, CONFIG_TEXT);
      const pod = h.pod();
      const target = await h.target();
      for (const flag of ['', ', allKeys: false', ', allKeys: "false"']) {
        const res = await mount(
          pod.attributes({ region: REGION, objects: `- {objectName: ${p}-config, objectType: secretsmanager${flag}}` }),
          target,
        );
        expect(await visible(target)).toEqual([`${p}-config`]);
        expect(res.objectVersion.map((v) => v.id)).toEqual([`${p}-config`]);
      }
    });

    it('works with jmesPath on the same object, and on an SSM parameter', async () => {
      const p = driverWrites ? 'kd3' : 'kp3';
      h.emu.putSecret(REGION, `${p}-db`, '{"user":"u","password":"pw","nested":{"x":"deep"}}');
      h.emu.putParameter(REGION, `${p}-flags`, '{"featureA":"on","limit":3}');
      const pod = h.pod();
      const target = await h.target();
      const objects = `
- objectName: ${p}-db
  objectType: secretsmanager
  objectAlias: db.json
  allKeys: true
  jmesPath:
    - {path: nested.x, objectAlias: deep-x}
- {objectName: ${p}-flags, objectType: ssmparameter, allKeys: true}
`;
      const res = await mount(pod.attributes({ region: REGION, objects }), target);
      expect(await visible(target)).toEqual(
        ['db.json', 'deep-x', 'featureA', 'limit', 'nested', 'password', `${p}-flags`, 'user'].sort(),
      );
      expect(await readFile(path.join(target, 'deep-x'), 'utf8')).toBe('deep');
      expect(await readFile(path.join(target, 'nested'), 'utf8')).toBe('{"x":"deep"}');
      expect(await readFile(path.join(target, 'limit'), 'utf8')).toBe('3');
      expect(byId(res.objectVersion)['limit']).toBe('1');
    });

    it('keys pass path translation: "/" becomes the translation character, or a directory if it is off', async () => {
      const p = driverWrites ? 'kd4' : 'kp4';
      h.emu.putSecret(REGION, `${p}-s`, '{"db/user":"u","/lead":"l","пароль":"п","🔑":"k"}');
      const pod = h.pod();
      const objects = `- {objectName: ${p}-s, objectType: secretsmanager, allKeys: true}`;
      const t1 = await h.target();
      await mount(pod.attributes({ region: REGION, objects }), t1);
      expect(await visible(t1)).toEqual(['_lead', 'db_user', `${p}-s`, 'пароль', '🔑'].sort());
      expect(await readFile(path.join(t1, 'пароль'), 'utf8')).toBe('п');
      const t2 = await h.target();
      await mount(pod.attributes({ region: REGION, objects, pathTranslation: '-' }), t2);
      expect(await readFile(path.join(t2, 'db-user'), 'utf8')).toBe('u');
      expect(await readFile(path.join(t2, '-lead'), 'utf8')).toBe('l');
      const t3 = await h.target();
      await mount(pod.attributes({ region: REGION, objects, pathTranslation: 'False' }), t3);
      expect(await readFile(path.join(t3, 'db', 'user'), 'utf8')).toBe('u');
      expect(await readFile(path.join(t3, 'lead'), 'utf8')).toBe('l');
    });

    // Hostile keys: refused with the key named, nothing written, the secret's values never in the message.
    const hostile: { name: string; key: string; translation?: string; shown: string }[] = [
      { name: '".."', key: '..', shown: '".."' },
      { name: '"." (the mount itself)', key: '.', shown: '"."' },
      { name: 'empty key', key: '', shown: '""' },
      { name: '"/" with translation off (empty after stripping)', key: '/', translation: 'False', shown: '"/"' },
      { name: '"../escape" with translation off', key: '../escape', translation: 'False', shown: '"../escape"' },
      { name: '"a/../../b" with translation off', key: 'a/../../b', translation: 'False', shown: '"a/../../b"' },
      { name: '"a//b" with translation off', key: 'a//b', translation: 'False', shown: '"a//b"' },
      { name: '300-byte key', key: 'k'.repeat(300), shown: `"${'k'.repeat(60)}…"` },
      { name: '150 two-byte characters (300 bytes)', key: 'é'.repeat(150), shown: `"${'é'.repeat(60)}…"` },
      { name: 'NUL in a key', key: 'a\u0000b', shown: '"a\\u0000b"' },
    ];
    for (const [i, c] of hostile.entries()) {
      it(`hostile key refused: ${c.name}`, async () => {
        const n = `${driverWrites ? 'kd' : 'kp'}-hostile${i}`;
        h.emu.putSecret(REGION, n, JSON.stringify({ fine: 'SECRET-VALUE-1', [c.key]: 'SECRET-VALUE-2' }));
        const pod = h.pod();
        const target = await h.target();
        const objects = `- {objectName: ${n}, objectType: secretsmanager, allKeys: true}`;
        const e = await refused(
          h.client.mount({
            attributes: pod.attributes({
              region: REGION,
              objects,
              ...(c.translation ? { pathTranslation: c.translation } : {}),
            }),
            targetPath: target,
          }),
        );
        expect(e.code).toBe(status.INVALID_ARGUMENT);
        expect(e.details).toContain(`allKeys on ${n}`);
        expect(e.details).toContain(`key ${c.shown}`);
        expect(e.details).not.toContain('SECRET-VALUE');
        expect(await readdir(target)).toEqual([]);
      });
    }

    const collisions: {
      name: string;
      value: Record<string, unknown>;
      extra?: string;
      objectAlias?: string;
      key: string;
    }[] = [
      { name: "a key named like the object's own file", value: { own: 'x' }, objectAlias: 'own', key: 'own' },
      { name: 'two keys that translate to the same file', value: { 'a/b': 1, a_b: 2 }, key: 'a_b' },
      {
        name: 'a key named like a jmesPath alias of the same object',
        value: { user: 'u', login: 'x' },
        extra: '\n  jmesPath: [{path: user, objectAlias: login}]',
        key: 'login',
      },
    ];
    for (const [i, c] of collisions.entries()) {
      it(`colliding key refused: ${c.name}`, async () => {
        const n = `${driverWrites ? 'kd' : 'kp'}-coll${i}`;
        h.emu.putSecret(REGION, n, JSON.stringify(c.value));
        const pod = h.pod();
        const target = await h.target();
        const objects =
          `- objectName: ${n}\n  objectType: secretsmanager\n  allKeys: ` +
          `true${c.objectAlias ? `\n  objectAlias: ${c.objectAlias}` : ''}${c.extra ?? ''}`;
        const e = await refused(
          h.client.mount({ attributes: pod.attributes({ region: REGION, objects }), targetPath: target }),
        );
        expect(e.code).toBe(status.INVALID_ARGUMENT);
        expect(e.details).toContain(`key "${c.key}"`);
        expect(await readdir(target)).toEqual([]);
      });
    }

    it("a key that collides with another object's file is refused, naming the key", async () => {
      const p = driverWrites ? 'kd5' : 'kp5';
      h.emu.putSecret(REGION, `${p}-a`, '{"db/user":"from a"}');
      h.emu.putSecret(REGION, `${p}-b`, 'b');
      const pod = h.pod();
      const target = await h.target();
      const objects = `
- {objectName: ${p}-a, objectType: secretsmanager, allKeys: true}
- {objectName: ${p}-b, objectType: secretsmanager, objectAlias: db_user}
`;
      const e = await refused(
        h.client.mount({ attributes: pod.attributes({ region: REGION, objects }), targetPath: target }),
      );
      expect(e.code).toBe(status.INVALID_ARGUMENT);
      expect(e.details).toContain('db_user');
      // A refused key is named in the error (docs/extensions.md): the key is "db/user"; its file is db_user.
      expect(e.details).toContain('"db/user"');
      expect(await readdir(target)).toEqual([]);
    });

    it('a value that is not a JSON object is refused (array, string, not JSON), without the value', async () => {
      const p = driverWrites ? 'kd6' : 'kp6';
      const cases: [string, string, string][] = [
        ['arr', '["SECRET-VALUE"]', 'JSON array'],
        ['str', '"SECRET-VALUE"', 'JSON string'],
        ['raw', 'SECRET-VALUE not json', 'Invalid JSON used with allKeys'],
      ];
      for (const [suffix, value, expected] of cases) {
        h.emu.putSecret(REGION, `${p}-${suffix}`, value);
        const pod = h.pod();
        const target = await h.target();
        const e = await refused(
          h.client.mount({
            attributes: pod.attributes({
              region: REGION,
              objects: `- {objectName: ${p}-${suffix}, objectType: secretsmanager, allKeys: true}`,
            }),
            targetPath: target,
          }),
        );
        expect(e.code).toBe(status.FAILED_PRECONDITION);
        expect(e.details).toContain(expected);
        expect(e.details).toContain(`${p}-${suffix}`);
        expect(e.details).not.toContain('SECRET-VALUE');
        expect(await readdir(target)).toEqual([]);
      }
    });

    // Non-string values are JSON text of the secret's own number, not a float64 round trip of it.
    it('a large integer value is written exactly as the secret holds it', async () => {
      const p = driverWrites ? 'kd-big' : 'kp-big';
      h.emu.putSecret(REGION, p, '{"accountId":12345678901234567890,"ids":[9007199254740993]}');
      const pod = h.pod();
      const target = await h.target();
      await mount(
        pod.attributes({ region: REGION, objects: `- {objectName: ${p}, objectType: secretsmanager, allKeys: true}` }),
        target,
      );
      expect(await readFile(path.join(target, 'accountId'), 'utf8')).toBe('12345678901234567890');
      expect(await readFile(path.join(target, 'ids'), 'utf8')).toBe('[9007199254740993]');
    });

    it('`allKeys` must be a boolean: the class is refused with the field named', async () => {
      const pod = h.pod();
      const e = await refused(
        h.client.mount({
          attributes: pod.attributes({
            region: REGION,
            objects: '- {objectName: x, objectType: secretsmanager, allKeys: 2}',
          }),
          targetPath: await h.target(),
        }),
      );
      expect(e.code).toBe(status.INVALID_ARGUMENT);
      expect(e.details).toContain('allKeys must be true or false');
    });

    for (const form of ['v1.6 (no versions sent)', 'v1.5 (versions sent)'] as const) {
      it(`rotation: changed keys are rewritten, new keys appear, a removed key's file goes [${form}]`, async () => {
        const p = `${driverWrites ? 'kd' : 'kp'}-rot-${form.slice(0, 4)}`;
        h.emu.putSecret(REGION, p, '{"keep":"same","change":"v1","drop":"old"}');
        const pod = h.pod();
        const target = await h.target();
        const attributes = pod.attributes({
          region: REGION,
          objects: `- {objectName: ${p}, objectType: secretsmanager, allKeys: true}`,
        });
        const sent = (v: Versions): Versions => (form.startsWith('v1.5') ? v : []);
        const r1 = await mount(attributes, target);
        expect(await visible(target)).toEqual(['change', 'drop', 'keep', p].sort());

        const r2 = await mount(attributes, target, sent(r1.objectVersion));
        expect(byId(r2.objectVersion)).toEqual(byId(r1.objectVersion));

        const v2 = h.emu.putSecret(REGION, p, '{"keep":"same","change":"v2","added":"new"}');
        const r3 = await mount(attributes, target, sent(r2.objectVersion));
        expect(await readFile(path.join(target, 'change'), 'utf8')).toBe('v2');
        expect(await readFile(path.join(target, 'added'), 'utf8')).toBe('new');
        expect(byId(r3.objectVersion)).toEqual(
          Object.fromEntries([p, 'keep', 'change', 'added'].map((id) => [id, v2.versionId])),
        );
        // The key is gone from the secret, so its file must go too (the driver's writer already does
        // this in driver-writes mode; a pod must not keep reading a credential that was removed).
        expect(await visible(target)).toEqual(['added', 'change', 'keep', p].sort());
      });
    }

    if (driverWrites) {
      it('a key starting with ".." is refused before the driver, which would reject the whole answer', async () => {
        h.emu.putSecret(REGION, 'kd-dotdot', '{"..data":"x","ok":"y"}');
        const pod = h.pod();
        const e = await refused(
          h.client.mount({
            attributes: pod.attributes({
              region: REGION,
              objects: '- {objectName: kd-dotdot, objectType: secretsmanager, allKeys: true}',
            }),
            targetPath: await h.target(),
          }),
        );
        expect(e.code).toBe(status.INVALID_ARGUMENT);
        expect(e.details).toContain('..data');
        expect(e.details).toContain('--driver-writes-secrets');
      });
    }
  });
}

/** Every file under `dir`, relative (in driver-writes mode the driver's own `..` entries excluded). */
async function walk(dir: string, driverWrites: boolean, rel = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(path.join(dir, rel), { withFileTypes: true })) {
    if (driverWrites && rel === '' && e.name.startsWith('..')) continue;
    const r = rel === '' ? e.name : `${rel}/${e.name}`;
    // The driver's entries are symlinks into ..data: follow them.
    if ((await stat(path.join(dir, r))).isDirectory()) out.push(...(await walk(dir, driverWrites, r)));
    else out.push(r);
  }
  return out.sort();
}

describe('allKeys with arbitrary keys (fast-check against the running server)', () => {
  const hostileKey = fc.oneof(
    fc.string({ unit: 'grapheme', maxLength: 12 }),
    fc.constantFrom(
      '..',
      '.',
      '',
      '/',
      '//',
      '../x',
      'a/../../b',
      'a/',
      '..data',
      'x'.repeat(256),
      'é'.repeat(128),
      'a\u0000b',
      'k',
    ),
    fc.array(fc.constantFrom('a', '..', '.', '', 'b'), { minLength: 1, maxLength: 4 }).map((s) => s.join('/')),
  );

  for (const mode of ['provider writes', 'driver writes'] as const) {
    const driverWrites = mode === 'driver writes';
    // One harness at a time: each sets the process's AWS_ENDPOINT_URL to its own emulator.
    describe(mode, () => {
      let h: Harness;
      beforeAll(async () => {
        h = await startHarness(driverWrites ? { flags: ['--driver-writes-secrets'] } : {});
      });
      afterAll(async () => h?.close());

      it(`[${mode}] every key a file in the mount with its value, or refused, nothing written anywhere`, async () => {
        let n = 0;
        await fc.assert(
          fc.asyncProperty(
            fc.dictionary(hostileKey, fc.string({ maxLength: 8 }), { maxKeys: 5 }),
            fc.constantFrom('_', 'False'),
            async (value, translation) => {
              const name = `fuzz-${driverWrites ? 'd' : 'p'}-${++n}`;
              h.emu.putSecret(REGION, name, JSON.stringify(value));
              const pod = h.pod();
              const target = await h.target();
              const parent = path.dirname(target);
              const attributes = pod.attributes({
                region: REGION,
                objects: `- {objectName: ${name}, objectType: secretsmanager, allKeys: true}`,
                pathTranslation: translation,
              });
              let res;
              try {
                res = await h.client.mount({ attributes, targetPath: target });
              } catch (err) {
                const e = err as GrpcError;
                expect([status.INVALID_ARGUMENT, status.FAILED_PRECONDITION]).toContain(e.code);
                expect(await readdir(target)).toEqual([]);
                expect(await readdir(parent)).toEqual(['mount']);
                return;
              }
              // The driver must never reject what we answer.
              if (driverWrites) await writeFilesLikeDriver(target, res.files);
              const expected = new Map<string, string>([[name, JSON.stringify(value)]]);
              for (const [k, v] of Object.entries(value))
                expected.set(translation === 'False' ? k.replace(/^\/+/, '') : k.replaceAll('/', translation), v);
              expect(await walk(target, driverWrites)).toEqual([...expected.keys()].sort());
              for (const [p, v] of expected) expect(await readFile(path.join(target, p), 'utf8')).toBe(v);
              expect(await readdir(parent)).toEqual(['mount']);
            },
          ),
          { numRuns: 40 },
        );
      }, 90_000);
    });
  }
});

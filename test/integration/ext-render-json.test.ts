/**
 * Our extension `render: json` on a jmesPath entry (docs/extensions.md) through the real
 * socket: every JSON type a JMESPath result can have, with and without the option, both write modes
 * and rotation. Without it ASCP's refusal stands, naming the path, the JSON type and the option.
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFilesLikeDriver } from '../../tools/emulator/driver-client.js';
import { REGION, startHarness, type Harness } from '../helpers/harness.js';
import { refused } from '../helpers/failure.js';

const SECRET = JSON.stringify({
  str: 'text',
  int: 5432,
  float: 1.5,
  neg: -2,
  tls: true,
  off: false,
  obj: { on: true },
  arr: [1, 'two', null],
  emptyObj: {},
  emptyArr: [],
  none: null,
  uni: { ключ: 'ü€🔑' },
  deep: { a: [{ b: 'x' }] },
});

/** path → [alias, file contents with render: json, JSON type ASCP refuses without it (undefined = a string, always
 * fine)]. */
const TYPES: [string, string, string, string | undefined][] = [
  ['str', 'str', 'text', undefined],
  ['int', 'int', '5432', 'number'],
  ['float', 'float', '1.5', 'number'],
  ['neg', 'neg', '-2', 'number'],
  ['tls', 'tls', 'true', 'boolean'],
  ['off', 'off', 'false', 'boolean'],
  ['obj', 'obj', '{"on":true}', 'object'],
  ['arr', 'arr', '[1,"two",null]', 'array'],
  ['emptyObj', 'emptyObj', '{}', 'object'],
  ['emptyArr', 'emptyArr', '[]', 'array'],
  ['uni', 'uni', '{"ключ":"ü€🔑"}', 'object'],
  ['deep.a[0]', 'deep-a0', '{"b":"x"}', 'object'],
  ['length(arr)', 'arr-len', '3', 'number'],
  ['obj.on', 'obj-on', 'true', 'boolean'],
  ['keys(obj)', 'obj-keys', '["on"]', 'array'],
  ['{i: int, t: tls}', 'multi', '{"i":5432,"t":true}', 'object'],
];

const entries = (render: boolean): string =>
  TYPES.map(
    ([p, alias]) =>
      `    - {path: ${JSON.stringify(p)}, objectAlias: ${JSON.stringify(alias)}${render ? ', render: json' : ''}}`,
  ).join('\n');

for (const mode of ['provider writes', 'driver writes'] as const) {
  const driverWrites = mode === 'driver writes';

  describe(`render: json (${mode})`, () => {
    let h: Harness;
    beforeAll(async () => {
      h = await startHarness(driverWrites ? { flags: ['--driver-writes-secrets'] } : {});
    });
    afterAll(async () => h?.close());

    const mount = (attributes: Record<string, string>, target: string) => h.mountAndWrite(attributes, target);

    it('every JSON type a result can have is written as JSON text; strings stay raw', async () => {
      const p = driverWrites ? 'rd1' : 'rp1';
      const { versionId } = h.emu.putSecret(REGION, p, SECRET);
      const pod = h.pod();
      const target = await h.target();
      const objects = `- objectName: ${p}\n  objectType: secretsmanager\n  jmesPath:\n${entries(true)}`;
      const res = await mount(pod.attributes({ region: REGION, objects }), target);
      for (const [, alias, text] of TYPES) expect(await readFile(path.join(target, alias), 'utf8'), alias).toBe(text);
      expect(res.objectVersion).toHaveLength(TYPES.length + 1);
      expect(new Set(res.objectVersion.map((v) => v.version))).toEqual(new Set([versionId]));
    });

    for (const [p, alias, , type] of TYPES.filter((t) => t[3] !== undefined)) {
      it(`without render: a ${type} at ${p} is refused naming the path, the type and the option`, async () => {
        const n = `${driverWrites ? 'rd' : 'rp'}-no-${alias}`;
        h.emu.putSecret(REGION, n, SECRET);
        const pod = h.pod();
        const target = await h.target();
        const objects =
          `- objectName: ${n}\n  objectType: secretsmanager\n  jmesPath:\n    - ` +
          `{path: ${JSON.stringify(p)}, objectAlias: ${JSON.stringify(alias)}}`;
        const e = await refused(
          h.client.mount({ attributes: pod.attributes({ region: REGION, objects }), targetPath: target }),
        );
        expect(e.code).toBe(status.FAILED_PRECONDITION);
        expect(e.details).toContain(`Invalid JMES search result type for path:${p}`);
        expect(e.details).toContain(`Found ${type}`);
        expect(e.details).toContain('render: json');
        expect(e.details).toContain(n);
        expect(await readdir(target)).toEqual([]);
      });
    }

    it('a null result (or a path that matches nothing) is refused with or without render: json', async () => {
      const p = driverWrites ? 'rd-null' : 'rp-null';
      h.emu.putSecret(REGION, p, SECRET);
      const pod = h.pod();
      for (const expr of ['none', 'missing.key']) {
        const target = await h.target();
        const objects =
          `- objectName: ${p}\n  objectType: secretsmanager\n  jmesPath:\n    - ` +
          `{path: ${expr}, objectAlias: out, render: json}`;
        const e = await refused(
          h.client.mount({ attributes: pod.attributes({ region: REGION, objects }), targetPath: target }),
        );
        expect(e.code).toBe(status.FAILED_PRECONDITION);
        expect(e.details).toContain(`JMES Path - ${expr} for object alias - out does not point to a valid object`);
        expect(await readdir(target)).toEqual([]);
      }
    });

    it('render takes only "json"; anything else is refused with the field named, before any AWS call', async () => {
      const pod = h.pod();
      h.emu.resetCalls();
      const objects =
        '- objectName: rx\n  objectType: secretsmanager\n  jmesPath:\n    - {path: a, objectAlias: a, render: yaml}';
      const e = await refused(
        h.client.mount({ attributes: pod.attributes({ region: REGION, objects }), targetPath: await h.target() }),
      );
      expect(e.code).toBe(status.INVALID_ARGUMENT);
      expect(e.details).toContain('render must be "json"');
      expect(e.details).toContain('jmesPath[0].render');
      expect(h.emu.callCount({ service: 'secretsmanager' })).toBe(0);
    });

    it('render: json on one entry does not change its neighbours (a number without it still fails)', async () => {
      const p = driverWrites ? 'rd-mix' : 'rp-mix';
      h.emu.putSecret(REGION, p, SECRET);
      const pod = h.pod();
      const target = await h.target();
      const objects =
        `- objectName: ${p}\n  objectType: secretsmanager\n  jmesPath:\n    - {path: int, ` +
        `objectAlias: a, render: json}\n    - {path: float, objectAlias: b}`;
      const e = await refused(
        h.client.mount({ attributes: pod.attributes({ region: REGION, objects }), targetPath: target }),
      );
      expect(e.details).toContain('path:float');
      expect(e.details).not.toContain('path:int');
    });

    for (const form of ['v1.6 (no versions sent)', 'v1.5 (versions sent)'] as const) {
      it(`rotation: a rendered number and object follow the secret [${form}]`, async () => {
        const p = `${driverWrites ? 'rd' : 'rp'}-rot-${form.slice(0, 4)}`;
        h.emu.putSecret(REGION, p, '{"port":5432,"opts":{"ssl":true}}');
        const pod = h.pod();
        const target = await h.target();
        const attributes = pod.attributes({
          region: REGION,
          objects:
            `- objectName: ${p}\n  objectType: secretsmanager\n  jmesPath:\n    - {path: port, objectAlias: ` +
            `port, render: json}\n    - {path: opts, objectAlias: opts, render: json}`,
        });
        const first = await mount(attributes, target);
        expect(await readFile(path.join(target, 'port'), 'utf8')).toBe('5432');
        const v2 = h.emu.putSecret(REGION, p, '{"port":6543,"opts":{"ssl":false,"ca":"x"}}');
        const res = await h.client.mount({
          attributes,
          targetPath: target,
          currentObjectVersion: form.startsWith('v1.5') ? first.objectVersion : [],
        });
        if (driverWrites) await writeFilesLikeDriver(target, res.files);
        expect(await readFile(path.join(target, 'port'), 'utf8')).toBe('6543');
        expect(await readFile(path.join(target, 'opts'), 'utf8')).toBe('{"ssl":false,"ca":"x"}');
        expect(res.objectVersion.find((v) => v.id === 'port')?.version).toBe(v2.versionId);
      });
    }

    it('rotation to a non-string value without render fails and leaves the mounted files as they were', async () => {
      const p = driverWrites ? 'rd-rotfail' : 'rp-rotfail';
      h.emu.putSecret(REGION, p, '{"port":"5432"}');
      const pod = h.pod();
      const target = await h.target();
      const attributes = pod.attributes({
        region: REGION,
        objects: `- objectName: ${p}\n  objectType: secretsmanager\n  jmesPath:\n    - {path: port, objectAlias: port}`,
      });
      await mount(attributes, target);
      h.emu.putSecret(REGION, p, '{"port":5432}');
      const e = await refused(h.client.mount({ attributes, targetPath: target }));
      expect(e.details).toContain('Found number');
      expect(await readFile(path.join(target, 'port'), 'utf8')).toBe('5432');
    });

    // JSON text must be the secret's own number, not a float64 round trip of it: ids and account
    // numbers above 2^53 are common in configuration.
    it('a large integer is written exactly as the secret holds it', async () => {
      const p = driverWrites ? 'rd-big' : 'rp-big';
      h.emu.putSecret(REGION, p, '{"id":12345678901234567890,"nested":{"id":9007199254740993}}');
      const pod = h.pod();
      const target = await h.target();
      const objects =
        `- objectName: ${p}\n  objectType: secretsmanager\n  jmesPath:\n    - {path: id, objectAlias: ` +
        `id, render: json}\n    - {path: nested, objectAlias: nested, render: json}`;
      await mount(pod.attributes({ region: REGION, objects }), target);
      expect(await readFile(path.join(target, 'id'), 'utf8')).toBe('12345678901234567890');
      expect(await readFile(path.join(target, 'nested'), 'utf8')).toBe('{"id":9007199254740993}');
    });

    it('JMESPath functions and filters still see large integers as numbers', async () => {
      const p = driverWrites ? 'rd-bigfn' : 'rp-bigfn';
      h.emu.putSecret(
        REGION,
        p,
        '{"ids":[12345678901234567890,1],"accounts":[{"id":12345678901234567890,"name":"big"},{"id":1,"name":"one"}]}',
      );
      const pod = h.pod();
      const target = await h.target();
      const objects = `- objectName: ${p}
  objectType: secretsmanager
  jmesPath:
    - {path: "sort(ids)", objectAlias: sorted, render: json}
    - {path: "type(ids[0])", objectAlias: type}
    - {path: "accounts[?id > \`5\`].name | [0]", objectAlias: filtered}`;
      await mount(pod.attributes({ region: REGION, objects }), target);
      expect(await readFile(path.join(target, 'sorted'), 'utf8')).toBe('[1,12345678901234567890]');
      expect(await readFile(path.join(target, 'type'), 'utf8')).toBe('number');
      expect(await readFile(path.join(target, 'filtered'), 'utf8')).toBe('big');
    });
  });
}

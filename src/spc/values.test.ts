import { Buffer } from 'node:buffer';
import { describe, expect, test } from 'vitest';
import { ProviderError } from '../errors.js';
import { parseObjects } from './objects.js';
import type { SecretDescriptor } from './types.js';
import { deriveFiles } from './values.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

function descriptor(yaml: string, pathTranslation: string | false = '_'): SecretDescriptor {
  const d = parseObjects(yaml, { pathTranslation, defaultMode: 0o644, region: 'us-west-2', failoverRegion: '' })[0];
  if (d === undefined) throw new Error('no descriptor');
  return d;
}

const jsonObject = (path: string, alias = 'testAlias', extra = ''): SecretDescriptor =>
  descriptor(
    `- objectName: jsonObject\n  objectType: secretsmanager\n  jmesPath:\n    - path: '${path}'\n      ` +
      `objectAlias: ${alias}\n${extra}`,
  );

async function failure(fn: () => Promise<unknown>): Promise<ProviderError> {
  try {
    await fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ProviderError);
    return err as ProviderError;
  }
  throw new Error('expected a ProviderError');
}

const CREDS = '{"username": "ParameterStoreUser", "password": "PasswordForParameterStore"}';

describe('deriveFiles: ASCP secret_value_test.go', () => {
  test('V01 not JSON', async () => {
    const e = await failure(() => deriveFiles(jsonObject('username'), enc('NotValidJson'), 'v1', 'us-west-2'));
    expect(e.message).toBe('us-west-2: Invalid JSON used with jmesPath in secret: jsonObject.');
    expect(e).toMatchObject({ code: 'FAILED_PRECONDITION', object: 'jsonObject', region: 'us-west-2' });
  });

  test('a name that differs only in case: the key the JSON has is named, nothing else of the secret', async () => {
    const value = enc('{"db_ai_hive_url": "jdbc:hive2://secret-host", "other": "x"}');
    const e = await failure(() =>
      deriveFiles(jsonObject('DB_AI_HIVE_URL', 'DB_AI_HIVE_URL'), value, 'v1', 'eu-west-1'),
    );
    expect(e.message).toBe(
      'eu-west-1: JMES Path - DB_AI_HIVE_URL for object alias - DB_AI_HIVE_URL does not point to a valid object. ' +
        '(in the JSON of jsonObject; names are case-sensitive, and the JSON has "db_ai_hive_url" where the path ' +
        'says "DB_AI_HIVE_URL")',
    );
    expect(e.message).not.toContain('secret-host');
    expect(e.message).not.toContain('other');
    // Nested and quoted names are followed; two keys that match but for case name neither.
    const nested = enc('{"db": {"Host-Name": "h"}}');
    expect((await failure(() => deriveFiles(jsonObject('db."host-name"', 'h'), nested, 'v1', 'r'))).message).toContain(
      'the JSON has "Host-Name" where the path says "host-name"',
    );
    const twice = enc('{"Key": "a", "KEY": "b"}');
    expect((await failure(() => deriveFiles(jsonObject('key', 'k'), twice, 'v1', 'r'))).message).toMatch(
      /\(in the JSON of jsonObject\)$/,
    );
  });

  test('V02 path matches nothing', async () => {
    const e = await failure(() => deriveFiles(jsonObject('testpath'), enc(CREDS), 'v1', 'r'));
    expect(e.message).toBe(
      'r: JMES Path - testpath for object alias - testAlias does not point to a valid object. (in the JSON of ' +
        'jsonObject)',
    );
  });

  test('V03 invalid expression (refused at parse time)', () => {
    expect(() => jsonObject('.testpath')).toThrow('Invalid JMES Path: .testpath.');
  });

  test('V04 non-string result: ASCP text + type + hint, no value', async () => {
    const e = await failure(() => deriveFiles(jsonObject('username'), enc('{"username": 31337}'), 'v1', 'r'));
    expect(e.message).toContain('Invalid JMES search result type for path:username. Only string is allowed.');
    expect(e.message).toContain('Found number');
    expect(e.message).toContain('set render: json on this jmesPath entry to write it as JSON text');
    expect(e.message).not.toContain('31337');
  });
});

describe('deriveFiles', () => {
  test('own file then jmesPath files, all with the version', async () => {
    const d = descriptor(
      "- objectName: creds\n  objectType: ssmparameter\n  filePermission: '0600'\n  jmesPath:\n    - {path: " +
        "username, objectAlias: user}\n    - {path: password, objectAlias: pass, filePermission: '0400'}\n",
    );
    const files = await deriveFiles(d, enc(CREDS), '3', 'r');
    expect(files.map((f) => [f.path, f.mode, dec(f.contents), f.version])).toEqual([
      ['creds', 0o600, CREDS, '3'],
      ['user', 0o600, 'ParameterStoreUser', '3'],
      ['pass', 0o400, 'PasswordForParameterStore', '3'],
    ]);
  });

  test('no jmesPath: value need not be JSON', async () => {
    const d = descriptor('- objectName: plain\n  objectType: secretsmanager\n');
    expect(await deriveFiles(d, enc('not json'), 'v', 'r')).toHaveLength(1);
  });

  test('render: json writes non-strings as JSON text, strings raw', async () => {
    const d = descriptor(
      '- objectName: cfg\n  objectType: secretsmanager\n  jmesPath:\n    - {path: port, objectAlias: port, render: ' +
        'json}\n    - {path: tags, objectAlias: tags, render: json}\n    - {path: name, objectAlias: name, render: ' +
        'json}\n',
    );
    const files = await deriveFiles(d, enc('{"port": 5432, "tags": {"a": [1, true]}, "name": "db"}'), 'v', 'r');
    expect(files.slice(1).map((f) => dec(f.contents))).toEqual(['5432', '{"a":[1,true]}', 'db']);
  });

  test('JSON null value counts as missing', async () => {
    const e = await failure(() => deriveFiles(jsonObject('username'), enc('{"username": null}'), 'v', 'r'));
    expect(e.message).toContain('does not point to a valid object');
  });

  test('a failing evaluation does not leak the value', async () => {
    const e = await failure(() => deriveFiles(jsonObject('length(username)'), enc('{"username": 987654}'), 'v', 'r'));
    expect(e.message).toContain('Invalid JMES Path: length(username).');
    expect(e.message).not.toContain('987654');
  });

  test('invalid JSON error does not leak the value', async () => {
    const e = await failure(() => deriveFiles(jsonObject('a'), enc('{"a": "hunter2-secret"'), 'v', 'r'));
    expect(e.message).not.toContain('hunter2');
  });
});

describe('deriveFiles: allKeys', () => {
  const all = (t: string | false = '_'): SecretDescriptor =>
    descriptor('- objectName: app/db\n  objectType: secretsmanager\n  allKeys: true\n', t);

  test('one file per top-level key, non-strings as JSON, translated names', async () => {
    const files = await deriveFiles(all(), enc('{"user": "u", "port": 5432, "nested/key": {"x": 1}}'), 'v9', 'r');
    expect(files.map((f) => [f.path, dec(f.contents), f.mode, f.version])).toEqual([
      ['app_db', '{"user": "u", "port": 5432, "nested/key": {"x": 1}}', 0o644, 'v9'],
      ['user', 'u', 0o644, 'v9'],
      ['port', '5432', 0o644, 'v9'],
      ['nested_key', '{"x":1}', 0o644, 'v9'],
    ]);
  });

  test.each([
    ['[1, 2]', 'array'],
    ['"text"', 'string'],
    ['null', 'null'],
  ])('value %s is not an object', async (json, type) => {
    const e = await failure(() => deriveFiles(all(), enc(json), 'v', 'r'));
    expect(e.message).toBe(`r: allKeys is set on app/db but its value is a JSON ${type}, not a JSON object`);
  });

  test('not JSON', async () => {
    expect((await failure(() => deriveFiles(all(), enc('x=1'), 'v', 'r'))).message).toBe(
      'r: Invalid JSON used with allKeys in secret: app/db.',
    );
  });

  test.each([
    ['{"..": "x"}', false, 'path can not contain ../'],
    ['{"": "x"}', '_', 'file path is empty'],
    ['{"a\\u0000b": "x"}', '_', 'NUL'],
    [`{"${'k'.repeat(256)}": "x"}`, '_', 'longer than 255 bytes'],
    ['{"app_db": "x"}', '_', 'same file "app_db"'],
    ['{"app": "x"}', false, '"app" is written as a file but "app/db" needs it to be a directory'],
  ] as const)('bad key in %s', async (json, t, text) => {
    const e = await failure(() => deriveFiles(all(t), enc(json), 'v', 'r'));
    expect(e.code).toBe('INVALID_ARGUMENT');
    expect(e.message).toContain(text);
    expect(e.message).not.toContain('"x"');
  });
});

describe("deriveFiles: the mount's file bound", () => {
  const all = descriptor('- objectName: app/keys\n  objectType: secretsmanager\n  allKeys: true\n');
  const keys = (n: number): Uint8Array =>
    enc(JSON.stringify(Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, 'v']))));

  test('allKeys that fit exactly what is left: own file + 7 keys with 2 of 10 used', async () => {
    expect(await deriveFiles(all, keys(7), 'v', 'r', { files: { max: 10, used: 2 } })).toHaveLength(8);
  });

  test('one key too many: RESOURCE_EXHAUSTED naming the bound and object, before any key becomes a file', async () => {
    // A key that cannot be a file would be refused as INVALID_ARGUMENT if the keys were turned into files first.
    const value = enc(
      JSON.stringify({ ...Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`k${i}`, 'v'])), '..': 'x' }),
    );
    const e = await failure(() => deriveFiles(all, value, 'v', 'r', { files: { max: 10, used: 2 } }));
    expect(e.code).toBe('RESOURCE_EXHAUSTED');
    expect(e.reason).toBe('TooLarge');
    expect(e.message).toBe(
      'this class makes more than 10 files (reached at object app/keys): name fewer objects, keys or aliases',
    );
  });

  test('a plain object counts its own file', async () => {
    const plain = descriptor('- objectName: app/one\n  objectType: secretsmanager\n');
    expect(await deriveFiles(plain, enc('v'), 'v', 'r', { files: { max: 3, used: 2 } })).toHaveLength(1);
    const e = await failure(() => deriveFiles(plain, enc('v'), 'v', 'r', { files: { max: 3, used: 3 } }));
    expect(e.message).toBe(
      'this class makes more than 3 files (reached at object app/one): name fewer objects, keys or aliases',
    );
  });

  test('jmesPath entries count too, before any is evaluated', async () => {
    const d = jsonObject('username', 'a');
    expect(await deriveFiles(d, enc(CREDS), 'v', 'r', { files: { max: 2, used: 0 } })).toHaveLength(2);
    const e = await failure(() => deriveFiles(d, enc(CREDS), 'v', 'r', { files: { max: 2, used: 1 } }));
    expect(e.message).toBe(
      'this class makes more than 2 files (reached at object jsonObject): name fewer objects, keys or aliases',
    );
  });
});

describe('deriveFiles: objectEncoding', () => {
  const b64 = (s: string | Uint8Array): string => Buffer.from(s).toString('base64');
  const CERT = new Uint8Array([0x30, 0x82, 0x01, 0x0a, 0x02, 0x82, 0x01, 0x01, 0x00, 0xff]);

  test('an object: the file holds the decoded bytes (binary too), whatever the case of key and value', async () => {
    const d = descriptor('- objectName: prod/cert\n  objectType: secretsmanager\n  ObjectEncoding: Base64\n');
    const files = await deriveFiles(d, enc(b64(CERT)), 'v1', 'r');
    expect(files).toHaveLength(1);
    expect(Buffer.from(files[0]?.contents ?? [])).toEqual(Buffer.from(CERT));
    expect(files[0]).toMatchObject({ path: 'prod_cert', version: 'v1' });
    const hex = descriptor('- objectName: k\n  objectType: ssmparameter\n  objectEncoding: HEX\n');
    expect(Buffer.from((await deriveFiles(hex, enc('0001FF'), 'v', 'r'))[0]?.contents ?? [])).toEqual(
      Buffer.from([0, 1, 0xff]),
    );
  });

  test('utf-8 (the default) is the value as stored, byte for byte', async () => {
    const raw = new Uint8Array([0xff, 0xfe, 0x41]);
    for (const yaml of [
      '- {objectName: k, objectType: secretsmanager}\n',
      '- {objectName: k, objectType: secretsmanager, objectEncoding: utf-8}\n',
    ]) {
      expect((await deriveFiles(descriptor(yaml), raw, 'v', 'r'))[0]?.contents).toBe(raw);
    }
  });

  test('a jmesPath entry decodes its own result; the object keeps its text', async () => {
    const value = enc(JSON.stringify({ cert: b64(CERT), key: 'c0ffee', name: 'plain' }));
    const d = descriptor(
      '- objectName: tls\n  objectType: secretsmanager\n  jmesPath:\n    - {path: cert, objectAlias: tls.crt, ' +
        'objectEncoding: base64}\n' +
        '    - {path: key, objectAlias: tls.key, objectEncoding: hex}\n    - {path: name, objectAlias: name}\n',
    );
    const files = await deriveFiles(d, value, 'v', 'r');
    expect(files.map((f) => f.path)).toEqual(['tls', 'tls.crt', 'tls.key', 'name']);
    expect(files[0]?.contents).toBe(value);
    expect(Buffer.from(files[1]?.contents ?? [])).toEqual(Buffer.from(CERT));
    expect(Buffer.from(files[2]?.contents ?? [])).toEqual(Buffer.from([0xc0, 0xff, 0xee]));
    expect(dec(files[3]?.contents ?? new Uint8Array())).toBe('plain');
  });

  test('an encoded object: its jmesPath entries read the decoded JSON, decoded again only if they say so', async () => {
    const inner = JSON.stringify({ user: 'app', blob: b64('bytes') });
    const d = descriptor(
      '- objectName: wrapped\n  objectType: secretsmanager\n  objectEncoding: base64\n  jmesPath:\n    - {path: ' +
        'user, objectAlias: user}\n' +
        '    - {path: blob, objectAlias: blob, objectEncoding: base64}\n',
    );
    const files = await deriveFiles(d, enc(b64(inner)), 'v', 'r');
    expect(files.map((f) => dec(f.contents))).toEqual([inner, 'app', 'bytes']);
  });

  test('a value not valid in its encoding fails naming the object, region and encoding, never the value', async () => {
    const secret = 'hunter2-Secret Value!';
    const d = descriptor('- objectName: prod/cert\n  objectType: secretsmanager\n  objectEncoding: base64\n');
    const e = await failure(() => deriveFiles(d, enc(secret), 'v', 'eu-west-1'));
    expect(e).toMatchObject({
      code: 'FAILED_PRECONDITION',
      object: 'prod/cert',
      region: 'eu-west-1',
      field: 'objects[0].objectEncoding',
      reason: 'SecretValue',
    });
    expect(e.message).toBe(
      'eu-west-1: the value of prod/cert is not valid base64 (objectEncoding: base64): a byte outside the base64 ' +
        'alphabet at byte offset 14',
    );
    const h = await failure(() =>
      deriveFiles(
        descriptor('- {objectName: k, objectType: secretsmanager, objectEncoding: hex}\n'),
        enc('abc'),
        'v',
        'r',
      ),
    );
    expect(h.message).toBe('r: the value of k is not valid hex (objectEncoding: hex): an odd number of hex digits');
    for (const part of ['hunter', 'Secret', 'Value', '!', 'abc']) {
      expect(e.message).not.toContain(part);
      expect(h.message).not.toContain(part);
    }
  });

  test('a jmesPath result invalid in its encoding fails naming the alias and the object, never the value', async () => {
    const d = descriptor(
      '- objectName: tls\n  objectType: secretsmanager\n  jmesPath:\n    - {path: cert, objectAlias: tls.crt, ' +
        'objectEncoding: base64}\n',
    );
    const e = await failure(() => deriveFiles(d, enc('{"cert":"not base64 at all"}'), 'v', 'us-east-2'));
    expect(e).toMatchObject({
      code: 'FAILED_PRECONDITION',
      object: 'tls',
      region: 'us-east-2',
      field: 'objects[0].jmesPath[0].objectEncoding',
    });
    expect(e.message).toBe(
      'us-east-2: the jmesPath result of tls.crt in tls is not valid base64 (objectEncoding: base64 on this ' +
        'jmesPath entry): a byte outside the base64 alphabet at byte offset 3',
    );
    expect(e.message).not.toContain('not base64 at all');
  });

  test('the decoded bytes are what the file bound and sizes see', async () => {
    const big = new Uint8Array(3000).fill(7);
    const files = await deriveFiles(
      descriptor('- {objectName: k, objectType: secretsmanager, objectEncoding: base64}\n'),
      enc(b64(big)),
      'v',
      'r',
    );
    expect(files[0]?.contents.byteLength).toBe(3000);
  });
});

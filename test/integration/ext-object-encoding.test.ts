/**
 * Our extension `objectEncoding` (docs/extensions.md) through the real socket: an object or a
 * jmesPath entry stored as base64 or hex text is mounted as the bytes it encodes, in both write
 * modes; keys and values in any case; rotation and unchanged-file detection see the decoded bytes;
 * failover; a value not valid in its encoding fails the mount naming the object, region and encoding,
 * never the value, and writes nothing.
 */
import { Buffer } from 'node:buffer';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REGION, startHarness, type Harness } from '../helpers/harness.js';
import { refused } from '../helpers/failure.js';

const FAILOVER = 'us-west-2';
/** DER-like bytes: a zero, high bytes, not UTF-8. */
const CERT = Buffer.from([0x30, 0x82, 0x01, 0x0a, 0x02, 0x82, 0x01, 0x01, 0x00, 0xc3, 0x28, 0xff, 0xfe, 0x00, 0x7f]);
const CERT2 = Buffer.from([0x30, 0x82, 0x02, 0x0b, 0x00, 0xff, 0xee, 0xdd]);
const KEY = Buffer.from([0xde, 0xad, 0xbe, 0xef, 0x00, 0x01]);
const visible = async (dir: string): Promise<string[]> =>
  (await readdir(dir)).filter((e) => !e.startsWith('..')).sort();
const bytesOf = async (target: string, file: string): Promise<Buffer> => readFile(path.join(target, file));

for (const mode of ['provider writes', 'driver writes'] as const) {
  const driverWrites = mode === 'driver writes';
  const n = (name: string): string => `${driverWrites ? 'ed' : 'ep'}-${name}`;

  describe(`objectEncoding (${mode})`, () => {
    let h: Harness;
    beforeAll(async () => {
      h = await startHarness(driverWrites ? { flags: ['--driver-writes-secrets'] } : {});
    });
    afterAll(async () => h?.close());

    it('ObjectEncoding: Base64 (key and value in another case) and hex: the files hold the decoded bytes', async () => {
      const { versionId } = h.emu.putSecret(REGION, n('cert'), CERT.toString('base64'));
      h.emu.putParameter(REGION, `/${n('key')}`, KEY.toString('hex').toUpperCase(), { type: 'SecureString' });
      const pod = h.pod();
      const target = await h.target();
      const objects =
        `- objectName: ${n('cert')}\n  objectType: secretsmanager\n  objectAlias: tls.crt\n  ObjectEncoding: Base64\n` +
        `- objectName: /${n('key')}\n  objectType: ssmparameter\n  objectAlias: tls.key\n  objectEncoding: HEX\n`;
      const res = await h.mountAndWrite(pod.attributes({ region: REGION, objects }), target);
      expect(await bytesOf(target, 'tls.crt')).toEqual(CERT);
      expect(await bytesOf(target, 'tls.key')).toEqual(KEY);
      expect(Object.fromEntries(res.objectVersion.map((v) => [v.id, v.version]))).toEqual({
        'tls.crt': versionId,
        'tls.key': '1',
      });
      if (driverWrites) expect(Buffer.from(res.files.find((f) => f.path === 'tls.crt')?.contents ?? [])).toEqual(CERT);
    });

    it('a jmesPath entry with base64 decodes its result; the object and other entries keep their text', async () => {
      const secret = JSON.stringify({ cert: CERT.toString('base64'), user: 'app' });
      h.emu.putSecret(REGION, n('json'), secret);
      const pod = h.pod();
      const target = await h.target();
      const objects =
        `- objectName: ${n('json')}\n  objectType: secretsmanager\n  jmesPath:\n` +
        '    - {path: cert, objectAlias: cert.der, objectEncoding: base64}\n    - {path: user, objectAlias: user}\n';
      await h.mountAndWrite(pod.attributes({ region: REGION, objects }), target);
      expect(await visible(target)).toEqual(['cert.der', n('json'), 'user']);
      expect(await bytesOf(target, 'cert.der')).toEqual(CERT);
      expect(await readFile(path.join(target, n('json')), 'utf8')).toBe(secret);
      expect(await readFile(path.join(target, 'user'), 'utf8')).toBe('app');
    });

    it('rotation: a new value is decoded and written; the same bytes re-encoded leave the file alone', async () => {
      const p = n('rot');
      h.emu.putSecret(REGION, p, CERT.toString('base64'));
      const pod = h.pod();
      const target = await h.target();
      const attributes = pod.attributes({
        region: REGION,
        objects: `- {objectName: ${p}, objectType: secretsmanager, objectEncoding: base64}`,
      });
      const first = await h.mountAndWrite(attributes, target);
      expect(await bytesOf(target, p)).toEqual(CERT);

      const v2 = h.emu.putSecret(REGION, p, CERT2.toString('base64'));
      const second = await h.mountAndWrite(attributes, target, first.objectVersion);
      expect(await bytesOf(target, p)).toEqual(CERT2);
      expect(second.objectVersion).toEqual([{ id: p, version: v2.versionId }]);

      // Same decoded bytes, other text (URL-safe, no padding, a trailing newline): a new version, the file untouched.
      const before = await stat(path.join(target, p));
      const v3 = h.emu.putSecret(REGION, p, `${CERT2.toString('base64url')}\n`);
      const third = await h.mountAndWrite(attributes, target, second.objectVersion);
      expect(third.objectVersion).toEqual([{ id: p, version: v3.versionId }]);
      expect(await bytesOf(target, p)).toEqual(CERT2);
      if (!driverWrites) {
        const after = await stat(path.join(target, p));
        expect(after.ino).toBe(before.ino);
        expect(after.mtimeMs).toBe(before.mtimeMs);
      }
    });

    it('a badly encoded value fails naming object, region and encoding, never the value; nothing written', async () => {
      const p = n('bad');
      const value = 'not-base64 S3cretPart';
      h.emu.putSecret(REGION, p, value);
      const pod = h.pod();
      const target = await h.target();
      const attributes = pod.attributes({
        region: REGION,
        objects: `- {objectName: ${p}, objectType: secretsmanager, objectEncoding: base64}`,
      });
      const e = await refused(h.client.mount({ attributes, targetPath: target }));
      expect(e.code).toBe(status.FAILED_PRECONDITION);
      expect(e.details).toContain(
        `${REGION}: the value of ${p} is not valid base64 (objectEncoding: base64): a byte outside the base64 ` +
          `alphabet at byte offset 10`,
      );
      for (const part of ['S3cret', 'Part', 'not-base64']) expect(e.details).not.toContain(part);
      expect(await readdir(target)).toEqual([]);
      for (const line of h.logs) expect(line).not.toContain('S3cret');
    });

    it('rotation to a bad value fails and leaves the mounted file as it was', async () => {
      const p = n('rotbad');
      h.emu.putSecret(REGION, p, KEY.toString('hex'));
      const pod = h.pod();
      const target = await h.target();
      const attributes = pod.attributes({
        region: REGION,
        objects: `- {objectName: ${p}, objectType: secretsmanager, objectEncoding: hex}`,
      });
      await h.mountAndWrite(attributes, target);
      h.emu.putSecret(REGION, p, 'abc');
      const e = await refused(h.client.mount({ attributes, targetPath: target }));
      expect(e.details).toContain('is not valid hex (objectEncoding: hex): an odd number of hex digits');
      expect(await bytesOf(target, p)).toEqual(KEY);
    });

    it('a bad jmesPath result names the alias and the object', async () => {
      const p = n('badentry');
      h.emu.putSecret(REGION, p, '{"cert":"%%%"}');
      const pod = h.pod();
      const objects =
        `- objectName: ${p}\n  objectType: secretsmanager\n  jmesPath: [{path: cert, objectAlias: c, ` +
        `objectEncoding: base64}]\n`;
      const e = await refused(
        h.client.mount({ attributes: pod.attributes({ region: REGION, objects }), targetPath: await h.target() }),
      );
      expect(e.code).toBe(status.FAILED_PRECONDITION);
      expect(e.details).toContain(
        `the jmesPath result of c in ${p} is not valid base64 (objectEncoding: base64 on this jmesPath entry)`,
      );
      expect(e.details).not.toContain('%%%');
    });

    it('an unknown encoding: INVALID_ARGUMENT naming the object and allowed values, before any AWS call', async () => {
      const pod = h.pod();
      h.emu.resetCalls();
      const objects = `- {objectName: ${n('unknown')}, objectType: secretsmanager, objectEncoding: base32}`;
      const e = await refused(
        h.client.mount({ attributes: pod.attributes({ region: REGION, objects }), targetPath: await h.target() }),
      );
      expect(e.code).toBe(status.INVALID_ARGUMENT);
      expect(e.details).toContain(`object "${n('unknown')}"`);
      expect(e.details).toContain('objectEncoding must be one of utf-8, base64, hex');
      expect(h.emu.callCount({ service: 'secretsmanager' })).toBe(0);
    });

    it("failover: the failover region's value is decoded, and its bad value names that region", async () => {
      const p = n('fo');
      h.emu.putSecret(REGION, p, CERT.toString('base64'));
      h.emu.putSecret(FAILOVER, p, CERT2.toString('base64'));
      h.emu.addFault({ service: 'secretsmanager', region: REGION, target: p, status: 500 });
      const pod = h.pod();
      const target = await h.target();
      const attributes = pod.attributes({
        region: REGION,
        failoverRegion: FAILOVER,
        objects: `- {objectName: ${p}, objectType: secretsmanager, objectEncoding: base64}`,
      });
      await h.mountAndWrite(attributes, target);
      expect(await bytesOf(target, p)).toEqual(CERT2);

      h.emu.putSecret(FAILOVER, p, 'bad value!');
      const e = await refused(h.client.mount({ attributes, targetPath: target }));
      expect(e.details).toContain(`${FAILOVER}: the value of ${p} is not valid base64`);
      expect(e.details).not.toContain('bad value');
      expect(await bytesOf(target, p)).toEqual(CERT2);
    });
  });
}

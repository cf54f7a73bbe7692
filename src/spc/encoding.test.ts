import { Buffer } from 'node:buffer';
import { describe, expect, test } from 'vitest';
import { decodeBase64, decodeHex, decodeValue, parseEncoding } from './encoding.js';

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
const ok = (r: ReturnType<typeof decodeValue>): Buffer => {
  if (!r.ok) throw new Error(`expected ok, got: ${r.why}`);
  return Buffer.from(r.bytes);
};
const why = (r: ReturnType<typeof decodeValue>): string => {
  if (r.ok) throw new Error('expected a refusal');
  return r.why;
};

describe('parseEncoding', () => {
  test.each([
    ['utf-8', 'utf-8'],
    ['UTF-8', 'utf-8'],
    ['base64', 'base64'],
    ['Base64', 'base64'],
    ['BASE64', 'base64'],
    ['hex', 'hex'],
    ['HEX', 'hex'],
    ['Hex', 'hex'],
  ])('%s → %s', (text, want) => expect(parseEncoding(text)).toBe(want));

  test.each(['utf8', 'base32', 'base64url', 'binary', ' hex', 'hex ', 'ascii'])('%s is not an encoding', (text) =>
    expect(parseEncoding(text)).toBeUndefined(),
  );
});

describe('base64', () => {
  const binary = Buffer.from([0, 1, 2, 0xfb, 0xff, 0xfe, 0x80, 0x3f]);

  test('standard alphabet, with or without padding', () => {
    expect(ok(decodeBase64(bytes(binary.toString('base64'))))).toEqual(binary);
    expect(ok(decodeBase64(bytes(binary.toString('base64').replace(/=+$/, ''))))).toEqual(binary);
    expect(ok(decodeBase64(bytes('aGVsbG8=')))).toEqual(Buffer.from('hello'));
    expect(ok(decodeBase64(bytes('aGk=')))).toEqual(Buffer.from('hi'));
    expect(ok(decodeBase64(bytes('aGk')))).toEqual(Buffer.from('hi'));
  });

  test('URL-safe alphabet, with or without padding', () => {
    const url = binary.toString('base64url');
    expect(url).toMatch(/[-_]/);
    expect(ok(decodeBase64(bytes(url)))).toEqual(binary);
    expect(
      ok(
        decodeBase64(
          bytes(`${url}=`.slice(0, Math.ceil(url.length / 4) * 4).padEnd(Math.ceil(url.length / 4) * 4, '=')),
        ),
      ),
    ).toEqual(binary);
  });

  test('line breaks (a wrapped encoder output, a trailing newline) are skipped', () => {
    const big = Buffer.alloc(200, 0xab);
    const wrapped = big.toString('base64').replace(/(.{76})/g, '$1\n') + '\n';
    expect(ok(decodeBase64(bytes(wrapped)))).toEqual(big);
    expect(ok(decodeBase64(bytes('aGVs\r\nbG8=\r\n')))).toEqual(Buffer.from('hello'));
  });

  test('the empty value is the empty file', () => {
    expect(ok(decodeBase64(bytes('')))).toEqual(Buffer.alloc(0));
  });

  test.each([
    ['aGVs bG8=', 'outside the base64 alphabet at byte offset 4'],
    ['aGVsbG8=\t', 'outside the base64 alphabet at byte offset 8'],
    ['{"a":"b"}', 'outside the base64 alphabet at byte offset 0'],
    ['aGVs*bG8', 'outside the base64 alphabet at byte offset 4'],
    ['aGVsbG8é', 'outside the base64 alphabet at byte offset 7'],
    ['a+b-', 'mixes the standard (+ /) and URL-safe (- _) alphabets'],
    ['ab/_', 'mixes the standard'],
    ['aGVsb', 'not a possible base64 length'],
    ['aGk==', 'wrong padding'],
    ['aGVsbG8==', 'wrong padding'],
    ['aGVsbA=', 'wrong padding'],
    ['aGVsbA===', 'wrong padding'],
    ['aGVs=', 'wrong padding'],
    ['aGk=aGk=', 'padding ("=") is followed by more text at byte offset 4'],
    ['=aGk', 'followed by more text at byte offset 1'],
    ['aGl=', 'unused bits'],
    ['aGk', undefined],
  ])('%j is refused: %s', (text, reason) => {
    const r = decodeBase64(bytes(text));
    if (reason === undefined) expect(r.ok).toBe(true);
    else expect(why(r)).toContain(reason);
  });
});

describe('hex', () => {
  test('either case, line breaks skipped', () => {
    expect(ok(decodeHex(bytes('00ff7F80')))).toEqual(Buffer.from([0, 0xff, 0x7f, 0x80]));
    expect(ok(decodeHex(bytes('DEAD\nbeef\r\n')))).toEqual(Buffer.from([0xde, 0xad, 0xbe, 0xef]));
    expect(ok(decodeHex(bytes('')))).toEqual(Buffer.alloc(0));
  });

  test.each([
    ['abc', 'an odd number of hex digits'],
    ['0g', 'not a hex digit at byte offset 1'],
    ['0x00', 'not a hex digit at byte offset 1'],
    ['00 ff', 'not a hex digit at byte offset 2'],
    ['de:ad', 'not a hex digit at byte offset 2'],
  ])('%j is refused: %s', (text, reason) => expect(why(decodeHex(bytes(text)))).toContain(reason));
});

test('utf-8 is the value as stored, whatever it holds', () => {
  const raw = Buffer.from([0xff, 0x00, 0x41]);
  expect(ok(decodeValue(raw, 'utf-8'))).toEqual(raw);
});

test('a refusal never holds a character of the value', () => {
  const secret = 'S3cr3t!Value with spaces and {json}';
  for (const enc of ['base64', 'hex'] as const) {
    const text = why(decodeValue(bytes(secret), enc));
    for (const part of ['S3cr', 'Value', 'json', '!', '{']) expect(text).not.toContain(part);
  }
});

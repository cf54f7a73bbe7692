/**
 * @module spc/encoding
 * Our extension `objectEncoding` (docs/extensions.md): a value stored as base64 or hex text is
 * written as the bytes it encodes. Pure. A decoding problem is described by its kind and its byte
 * offset only: never a character of the value, since the value is a secret.
 */
import { Buffer } from 'node:buffer';
import type { ObjectEncoding } from './types.js';

export const ENCODINGS: readonly ObjectEncoding[] = ['utf-8', 'base64', 'hex'];

/** A written value → the encoding, case-insensitive (`UTF-8`, `Base64`, `HEX`); undefined when not one of ours. */
export function parseEncoding(text: string): ObjectEncoding | undefined {
  const lower = text.toLowerCase();
  return ENCODINGS.find((e) => e === lower);
}

export type DecodeResult = { ok: true; bytes: Uint8Array } | { ok: false; why: string };

const CR = 0x0d;
const LF = 0x0a;
const EQ = 0x3d;

function isAlnum(b: number): boolean {
  return (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a);
}

function isHexDigit(b: number): boolean {
  return (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x46) || (b >= 0x61 && b <= 0x66);
}

/**
 * Strict base64: the standard alphabet (`+` `/`) or the URL-safe one (`-` `_`), not both in one value;
 * `=` padding optional, but when present it must be right (only at the end, making the length a
 * multiple of 4); the unused bits of the last character must be zero (what every encoder writes), so
 * one text means one value. Line breaks (CR, LF) are skipped anywhere: `base64` tools wrap their
 * output at 76 columns, and such text pasted into a secret is common. Any other byte (a space
 * included) is refused.
 */
export function decodeBase64(value: Uint8Array): DecodeResult {
  const clean: number[] = [];
  let standard = false;
  let urlSafe = false;
  let padding = 0;
  for (let i = 0; i < value.length; i++) {
    const b = value[i] ?? 0;
    if (b === CR || b === LF) continue;
    if (b === EQ) {
      padding++;
      continue;
    }
    if (b === 0x2b || b === 0x2f) standard = true;
    else if (b === 0x2d || b === 0x5f) urlSafe = true;
    else if (!isAlnum(b)) return { ok: false, why: `a byte outside the base64 alphabet at byte offset ${i}` };
    if (padding > 0) return { ok: false, why: `padding ("=") is followed by more text at byte offset ${i}` };
    clean.push(b);
  }
  if (standard && urlSafe) return { ok: false, why: 'it mixes the standard (+ /) and URL-safe (- _) alphabets' };
  const rest = clean.length % 4;
  if (rest === 1)
    return { ok: false, why: 'its length is not a possible base64 length (a character too many or missing)' };
  if (padding > 0 && (padding > 2 || (clean.length + padding) % 4 !== 0 || rest === 0)) {
    return { ok: false, why: 'wrong padding ("=")' };
  }
  const text = Buffer.from(clean).toString('latin1');
  const bytes = Buffer.from(text, urlSafe ? 'base64url' : 'base64');
  // Canonical form: re-encoding gives the same characters (unused bits were zero).
  const again = bytes.toString(urlSafe ? 'base64url' : 'base64').replace(/=+$/, '');
  if (again !== text)
    return { ok: false, why: 'the unused bits of its last character are not zero (not text a base64 encoder writes)' };
  // A copy: Buffer.from may hand out a slice of Node's shared pool.
  return { ok: true, bytes: new Uint8Array(bytes) };
}

/** Hex digits, either case, in pairs; line breaks (CR, LF) skipped as for base64; anything else refused. */
export function decodeHex(value: Uint8Array): DecodeResult {
  const clean: number[] = [];
  for (let i = 0; i < value.length; i++) {
    const b = value[i] ?? 0;
    if (b === CR || b === LF) continue;
    if (!isHexDigit(b)) return { ok: false, why: `a byte that is not a hex digit at byte offset ${i}` };
    clean.push(b);
  }
  if (clean.length % 2 !== 0) return { ok: false, why: 'an odd number of hex digits' };
  const bytes = Buffer.from(Buffer.from(clean).toString('latin1'), 'hex');
  // A copy: Buffer.from may hand out a slice of Node's shared pool.
  return { ok: true, bytes: new Uint8Array(bytes) };
}

/** The bytes `value` stands for in `encoding`; utf-8 is the value as stored. */
export function decodeValue(value: Uint8Array, encoding: ObjectEncoding): DecodeResult {
  switch (encoding) {
    case 'utf-8':
      return { ok: true, bytes: value };
    case 'base64':
      return decodeBase64(value);
    case 'hex':
      return decodeHex(value);
  }
}

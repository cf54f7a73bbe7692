import { describe, expect, it } from 'vitest';
import { ConfigError } from '../errors.js';
import type { MountAttributes } from '../spc/index.js';
import { ParsedObjects } from './parsed-objects.js';

const attrs = (objects: string, o: Partial<MountAttributes> = {}): MountAttributes =>
  ({ objects, pathTranslation: '_', failoverRegion: '', ...o }) as MountAttributes;
const cls = (name: string): string => `- {objectName: ${name}, objectType: secretsmanager}`;

describe('ParsedObjects', () => {
  it('the same class again is the same parse; anything the parse depends on makes another', () => {
    const cache = new ParsedObjects(16, 1 << 20);
    const first = cache.get(attrs(cls('a')), 0o644, 'us-east-1');
    expect(first.map((d) => d.fileName)).toEqual(['a']);
    expect(cache.get(attrs(cls('a')), 0o644, 'us-east-1')).toBe(first);
    expect(cache.get(attrs(cls('a')), 0o600, 'us-east-1')).not.toBe(first);
    expect(cache.get(attrs(cls('a')), 0o644, 'eu-west-1')).not.toBe(first);
    expect(cache.get(attrs(cls('a'), { pathTranslation: false }), 0o644, 'us-east-1')).not.toBe(first);
    expect(cache.get(attrs(cls('a')), 0o644, 'us-east-1')).toBe(first);
  });

  it('bounded in entries and in class text: the oldest goes', () => {
    const byCount = new ParsedObjects(2, 1 << 20);
    const a = byCount.get(attrs(cls('a')), 0o644, 'r');
    byCount.get(attrs(cls('b')), 0o644, 'r');
    byCount.get(attrs(cls('c')), 0o644, 'r');
    expect(byCount.get(attrs(cls('a')), 0o644, 'r')).not.toBe(a);

    const big = (name: string): string => `${cls(name)}\n# ${'x'.repeat(60)}`;
    const byBytes = new ParsedObjects(16, 200);
    const x = byBytes.get(attrs(big('x')), 0o644, 'r');
    expect(byBytes.get(attrs(big('x')), 0o644, 'r')).toBe(x);
    byBytes.get(attrs(big('y')), 0o644, 'r'); // two of ~113 bytes pass 200
    expect(byBytes.get(attrs(big('x')), 0o644, 'r')).not.toBe(x);
  });

  it('a class that does not parse throws each time and is not kept', () => {
    const cache = new ParsedObjects(16, 1 << 20);
    expect(() => cache.get(attrs('- {objectName: a}'), 0o644, 'r')).toThrow(ConfigError);
    expect(() => cache.get(attrs('- {objectName: a}'), 0o644, 'r')).toThrow(ConfigError);
  });
});

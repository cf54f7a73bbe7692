import { describe, expect, it } from 'vitest';
import { BoundedMap, setBounded } from './bounded-map.js';

describe('setBounded', () => {
  it('keeps the newest `max` keys; setting a key again makes it the newest', () => {
    const m = new Map<string, number>();
    for (const k of ['a', 'b', 'c']) setBounded(m, k, 1, 3);
    setBounded(m, 'a', 2, 3);
    setBounded(m, 'd', 1, 3);
    expect([...m.keys()]).toEqual(['c', 'a', 'd']);
  });
});

describe('BoundedMap', () => {
  it('drops the least recently used entry past the entry bound (get refreshes)', () => {
    const m = new BoundedMap<string, string>(2);
    m.set('a', 'A');
    m.set('b', 'B');
    expect(m.get('a')).toBe('A');
    m.set('c', 'C');
    expect([m.get('a'), m.get('b'), m.get('c')]).toEqual(['A', undefined, 'C']);
    expect(m.size).toBe(2);
  });

  it('drops the oldest entries until the weight bound holds, and keeps the weight exact', () => {
    const m = new BoundedMap<string, string>(100, 10, (v) => v.length);
    m.set('a', 'xxxx');
    m.set('b', 'xxxx');
    expect(m.weight).toBe(8);
    m.set('c', 'xxxxx');
    expect([m.get('a'), m.get('b'), m.get('c')]).toEqual([undefined, 'xxxx', 'xxxxx']);
    expect(m.weight).toBe(9);
    m.set('b', 'x');
    expect(m.weight).toBe(6);
    m.delete('c');
    expect([m.size, m.weight]).toEqual([1, 1]);
  });

  it('an entry heavier than the whole bound is not kept', () => {
    const m = new BoundedMap<string, string>(100, 3, (v) => v.length);
    m.set('big', 'xxxx');
    expect([m.size, m.weight, m.get('big')]).toEqual([0, 0, undefined]);
  });
});

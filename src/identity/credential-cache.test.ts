/**
 * CredentialCache: the key separates identities, entries live until a margin before expiry,
 * concurrent misses share one load, errors and refused credentials are not kept.
 */
import { describe, expect, it } from 'vitest';
import { CredentialCache, credentialKey, type CachedCredentials } from './credential-cache.js';

const MIN = 60_000;

function clock(start = 1_700_000_000_000): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => (t += ms) };
}

function creds(id: string, expiration?: number): CachedCredentials {
  return { accessKeyId: id, secretAccessKey: `secret-${id}`, sessionToken: `token-${id}`, expiration };
}

describe('credentialKey', () => {
  const base = ['irsa', 'us-east-1', 'arn:aws:iam::123456789012:role/a', 'token-a'] as const;
  it.each([
    ['method', ['pod-identity', base[1], base[2], base[3]]],
    ['region', [base[0], 'us-west-2', base[2], base[3]]],
    ['role', [base[0], base[1], 'arn:aws:iam::123456789012:role/b', base[3]]],
    ['token', [base[0], base[1], base[2], 'token-b']],
    ['an extra part (chain)', [...base, 'arn:aws:iam::210987654321:role/x']],
  ])('differs when only the %s differs', (_what, other) => {
    expect(credentialKey(other)).not.toBe(credentialKey([...base]));
  });

  it('is stable, hex sha256, and holds no part verbatim', () => {
    const k = credentialKey([...base]);
    expect(k).toBe(credentialKey([...base]));
    expect(k).toMatch(/^[0-9a-f]{64}$/);
    expect(k).not.toContain('token-a');
  });

  it('separates parts: ("ab","c") and ("a","bc") differ; undefined and "" are the same (absent)', () => {
    expect(credentialKey(['ab', 'c'])).not.toBe(credentialKey(['a', 'bc']));
    expect(credentialKey(['a', undefined])).toBe(credentialKey(['a', '']));
  });
});

describe('CredentialCache', () => {
  it('one load per key; a hit returns the same credentials', async () => {
    const c = new CredentialCache({ now: clock().now });
    let loads = 0;
    const load = async (): Promise<CachedCredentials> => creds(`k${++loads}`);
    expect((await c.get('a', load)).accessKeyId).toBe('k1');
    expect((await c.get('a', load)).accessKeyId).toBe('k1');
    expect((await c.get('b', load)).accessKeyId).toBe('k2');
    expect(loads).toBe(2);
    expect({ hits: c.hits, misses: c.misses, size: c.size }).toEqual({ hits: 1, misses: 2, size: 2 });
  });

  it('concurrent misses for one key share one load in flight', async () => {
    const c = new CredentialCache({ now: clock().now });
    let loads = 0;
    let release!: (v: CachedCredentials) => void;
    const load = (): Promise<CachedCredentials> => {
      loads++;
      return new Promise((r) => (release = r));
    };
    const all = Promise.all(Array.from({ length: 20 }, () => c.get('k', load)));
    release(creds('shared'));
    const got = await all;
    expect(loads).toBe(1);
    expect(new Set(got.map((g) => g.accessKeyId))).toEqual(new Set(['shared']));
  });

  it('errors are not cached, and every concurrent waiter sees the error', async () => {
    const c = new CredentialCache({ now: clock().now });
    let loads = 0;
    const failing = async (): Promise<CachedCredentials> => {
      loads++;
      throw new Error('refused');
    };
    const results = await Promise.allSettled([c.get('k', failing), c.get('k', failing)]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect(loads).toBe(1);
    expect(c.size).toBe(0);
    await expect(c.get('k', async () => creds('ok'))).resolves.toMatchObject({ accessKeyId: 'ok' });
  });

  it.each([
    // [lifetime, reused just before, reloaded at] — margin = min(5 min, half the lifetime)
    ['1 h credentials: kept until 5 min before expiry', 60 * MIN, 55 * MIN - 1, 55 * MIN],
    ['6 h agent credentials: 5 min margin', 360 * MIN, 355 * MIN - 1, 355 * MIN],
    ['8 min credentials: half-life margin (4 min)', 8 * MIN, 4 * MIN - 1, 4 * MIN],
  ])('%s', async (_name, lifetime, stillHit, reload) => {
    const t = clock();
    const c = new CredentialCache({ now: t.now });
    const start = t.now();
    let loads = 0;
    const load = async (): Promise<CachedCredentials> => creds(`k${++loads}`, t.now() + lifetime);
    await c.get('k', load);
    t.advance(stillHit);
    expect((await c.get('k', load)).accessKeyId).toBe('k1');
    t.advance(reload - stillHit);
    expect(t.now() - start).toBe(reload);
    expect((await c.get('k', load)).accessKeyId).toBe('k2');
    expect(loads).toBe(2);
  });

  it('credentials already expired (or expiring now) are returned but not kept', async () => {
    const t = clock();
    const c = new CredentialCache({ now: t.now });
    let loads = 0;
    const load = async (): Promise<CachedCredentials> => creds(`k${++loads}`, t.now());
    await c.get('k', load);
    await c.get('k', load);
    expect(loads).toBe(2);
    expect(c.size).toBe(0);
  });

  it('credentials without an expiration live defaultTtlMs', async () => {
    const t = clock();
    const c = new CredentialCache({ now: t.now, defaultTtlMs: 10 * MIN });
    let loads = 0;
    const load = async (): Promise<CachedCredentials> => creds(`k${++loads}`);
    await c.get('k', load);
    t.advance(10 * MIN - 1);
    await c.get('k', load);
    expect(loads).toBe(1);
    t.advance(1);
    await c.get('k', load);
    expect(loads).toBe(2);
  });

  it('forget() drops refused credentials: the next get loads again', async () => {
    const c = new CredentialCache({ now: clock().now });
    let loads = 0;
    const load = async (): Promise<CachedCredentials> => creds(`k${++loads}`);
    await c.get('k', load);
    c.forget('k');
    expect((await c.get('k', load)).accessKeyId).toBe('k2');
  });

  it('keeps at most maxEntries, dropping the oldest', async () => {
    const c = new CredentialCache({ now: clock().now, maxEntries: 2 });
    let loads = 0;
    const load = async (): Promise<CachedCredentials> => creds(`k${++loads}`);
    await c.get('a', load);
    await c.get('b', load);
    await c.get('c', load);
    expect(c.size).toBe(2);
    await c.get('a', load); // dropped: loaded again
    expect(loads).toBe(4);
  });
});

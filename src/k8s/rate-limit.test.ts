import { describe, expect, it } from 'vitest';
import { TokenBucket, type Sleep } from './rate-limit.js';

function bucket(qps: number, burst: number) {
  const clock = { now: 0 };
  const waits: number[] = [];
  const sleep: Sleep = async (ms) => {
    waits.push(ms);
  };
  return { b: new TokenBucket(qps, burst, () => clock.now, sleep), clock, waits };
}

const signal = new AbortController().signal;

describe('TokenBucket', () => {
  it('starts full: burst requests pass at once, the next ones queue at 1/qps', async () => {
    const { b, waits } = bucket(5, 10);
    for (let i = 0; i < 13; i++) await b.take(signal);
    // Reservations stack up while the clock stands still: 200 ms, 400 ms, 600 ms.
    expect(waits).toEqual([200, 400, 600]);
  });

  it('refills with time, never beyond burst', async () => {
    const { b, clock, waits } = bucket(2, 3);
    for (let i = 0; i < 3; i++) await b.take(signal);
    clock.now += 500; // one token back
    await b.take(signal);
    expect(waits).toEqual([]);
    await b.take(signal);
    expect(waits).toEqual([500]);
    clock.now += 3_600_000; // an hour idle: still only 3 tokens
    for (let i = 0; i < 3; i++) await b.take(signal);
    // The reserved token (−1) was repaid by the refill, so three pass and the fourth waits.
    await b.take(signal);
    expect(waits).toEqual([500, 500]);
  });

  it('a cancelled wait gives its reservation back', async () => {
    const clock = { now: 0 };
    const waits: number[] = [];
    // Waits until aborted: the waiter below is cancelled mid-wait.
    const sleep: Sleep = (ms, sig) => {
      waits.push(ms);
      return new Promise((_resolve, reject) => sig.addEventListener('abort', () => reject(new Error('aborted'))));
    };
    const b = new TokenBucket(1, 1, () => clock.now, sleep);
    await b.take(signal);
    const already = new AbortController();
    already.abort();
    await expect(b.take(already.signal)).rejects.toMatchObject({ code: 'CANCELLED' });
    const during = new AbortController();
    const p = b.take(during.signal);
    during.abort();
    await expect(p).rejects.toMatchObject({ code: 'CANCELLED' });
    expect(waits).toEqual([1000]);
    clock.now += 1000;
    // One token refilled, and the cancelled waiter left no reservation behind: no wait.
    await b.take(signal);
    expect(waits).toEqual([1000]);
  });

  it('refuses qps ≤ 0 and burst < 1', () => {
    expect(() => new TokenBucket(0, 1)).toThrow(/qps/);
    expect(() => new TokenBucket(1, 0.5)).toThrow(/burst/);
  });
});

/**
 * Admission: a bound on mounts working at once, a queue fair across namespaces, refusals that are
 * UNAVAILABLE (the driver retries) and come before any work: a full queue, a deadline the mount could
 * not meet from where it stands, and a wait that would leave it too little time.
 */
import { describe, expect, test } from 'vitest';
import { ProviderError } from '../errors.js';
import { Admission, AtCapacityError } from './admission.js';

const never = (): AbortSignal => new AbortController().signal;
const cancelled = (): Error => new ProviderError('CANCELLED', 'cancelled');
const tick = (ms = 0): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('Admission', () => {
  test('at most `concurrency` mounts work at once; the next starts when one is done', async () => {
    const a = new Admission({ concurrency: 2, maxQueued: 10 });
    const r1 = await a.enter('ns', undefined, never(), cancelled);
    await a.enter('ns', undefined, never(), cancelled);
    let third = false;
    const p3 = a.enter('ns', undefined, never(), cancelled).then((r) => {
      third = true;
      return r;
    });
    await tick();
    expect(third).toBe(false);
    expect(a.stats()).toMatchObject({ working: 2, queued: 1 });
    r1();
    r1(); // a second release of the same slot changes nothing
    (await p3)();
    expect(third).toBe(true);
    expect(a.stats()).toMatchObject({ working: 1, queued: 0 });
  });

  test('fair across namespaces: a tenant with many waiting mounts does not go before the others', async () => {
    const a = new Admission({ concurrency: 1, maxQueued: 100 });
    const first = await a.enter('busy', undefined, never(), cancelled);
    const order: string[] = [];
    const waits: Promise<void>[] = [];
    const queue = (key: string, label: string): void => {
      waits.push(
        a.enter(key, undefined, never(), cancelled).then((release) => {
          order.push(label);
          release();
        }),
      );
    };
    for (let i = 1; i <= 4; i++) queue('busy', `busy-${i}`);
    queue('quiet', 'quiet-1');
    queue('other', 'other-1');
    first();
    await Promise.all(waits);
    expect(order).toEqual(['busy-1', 'quiet-1', 'other-1', 'busy-2', 'busy-3', 'busy-4']);
  });

  test('a full queue refuses at once with UNAVAILABLE that says the provider is at capacity', async () => {
    const a = new Admission({ concurrency: 1, maxQueued: 1 });
    await a.enter('a', undefined, never(), cancelled);
    void a.enter('a', undefined, never(), cancelled);
    const err = await a.enter('b', undefined, never(), cancelled).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AtCapacityError);
    expect(err).toMatchObject({ code: 'UNAVAILABLE', reason: 'AtCapacity' });
    expect((err as Error).message).toMatch(
      /^provider at capacity: 1 mounts working and 1 waiting .*the driver will retry$/,
    );
  });

  test('a mount that could not finish before its deadline is not queued', async () => {
    let t = 1_000_000;
    const a = new Admission({ concurrency: 1, maxQueued: 10, initialEstimateMs: 2_000, now: () => t });
    const release = await a.enter('a', t + 100, never(), cancelled); // a free slot starts whatever the estimate
    const err = await a.enter('b', t + 3_000, never(), cancelled).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AtCapacityError);
    expect((err as Error).message).toMatch(/a mount now takes about 2\.0 s and this one has 3\.0 s left/);
    // With time for two mounts' worth, it waits.
    const ok = a.enter('b', t + 5_000, never(), cancelled);
    t += 1_000;
    release();
    const second = await ok;
    // The estimate follows what mounts take: 0.8 × 2000 + 0.2 × 1000.
    expect(a.stats().estimateMs).toBe(1_800);
    second();
  });

  test('a waiting mount gives up while there is still time to answer, and leaves the queue', async () => {
    const a = new Admission({ concurrency: 1, maxQueued: 10, initialEstimateMs: 30 });
    const release = await a.enter('a', undefined, never(), cancelled);
    const t0 = Date.now();
    const deadline = t0 + 120;
    const err = await a.enter('b', deadline, never(), cancelled).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AtCapacityError);
    expect(Date.now()).toBeLessThan(deadline);
    expect(a.stats()).toMatchObject({ working: 1, queued: 0 });
    release();
    expect(a.stats().working).toBe(0);
  });

  test("a caller that cancels while waiting gets the caller's error and leaves the queue", async () => {
    const a = new Admission({ concurrency: 1, maxQueued: 10 });
    const release = await a.enter('a', undefined, never(), cancelled);
    const c = new AbortController();
    const p = a.enter('b', undefined, c.signal, cancelled);
    c.abort();
    await expect(p).rejects.toMatchObject({ code: 'CANCELLED' });
    expect(a.stats().queued).toBe(0);
    release();
    expect(a.stats().working).toBe(0);
    await expect(a.enter('c', undefined, c.signal, cancelled)).rejects.toMatchObject({ code: 'CANCELLED' });
  });

  test('when the queue is full, the namespace with the most waiting gives way to another, newest first', async () => {
    const a = new Admission({ concurrency: 1, maxQueued: 3 });
    const release = await a.enter('busy', undefined, never(), cancelled);
    const busy = [1, 2, 3].map((i) =>
      a.enter('busy', undefined, never(), cancelled).then(
        (r) => ({ i, r }),
        (e: unknown) => ({ i, e }),
      ),
    );
    const quiet = a.enter('quiet', undefined, never(), cancelled);
    // busy-3 (the newest of the namespace holding the queue) was refused; busy-1 and busy-2 still wait.
    const gaveWay = await busy[2];
    expect(gaveWay).toMatchObject({ i: 3, e: { code: 'UNAVAILABLE', reason: 'AtCapacity' } });
    expect((gaveWay as { e: Error }).e.message).toMatch(/had the most waiting and gave way to another's/);
    expect(a.stats()).toMatchObject({ working: 1, queued: 3 });
    // The queue is now even enough: one more busy mount is refused, not another waiter.
    const refused = await a.enter('busy', undefined, never(), cancelled).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(AtCapacityError);
    const order: string[] = [];
    const served = (label: string, p: Promise<unknown>): Promise<void> =>
      p.then((got) => {
        order.push(label);
        (got as { r?: () => void }).r?.();
      });
    const all = Promise.all([
      served(
        'quiet',
        quiet.then((r) => ({ r })),
      ),
      served('busy-1', busy[0] as Promise<unknown>),
      served('busy-2', busy[1] as Promise<unknown>),
    ]);
    release();
    await all;
    // Round robin across namespaces, as before: the refusal only made room.
    expect(order).toEqual(['busy-1', 'quiet', 'busy-2']);
  });

  test('arrive: decided before anything is parsed; a mount let through counts as waiting until it enters', async () => {
    const a = new Admission({ concurrency: 1, maxQueued: 2 });
    let keyRead = 0;
    const key = (): string => {
      keyRead++;
      return 'ns';
    };
    const arrivals = [1, 2, 3].map(() => a.arrive(key, undefined));
    expect(arrivals.map((x) => x.refusal)).toEqual([undefined, undefined, undefined]);
    expect(a.stats()).toMatchObject({ working: 0, queued: 3 });
    const fourth = a.arrive(key, undefined);
    expect(fourth.refusal).toBeInstanceOf(AtCapacityError);
    expect(fourth.refusal?.message).toMatch(/^provider at capacity: 0 mounts working and 3 waiting/);
    // Nobody is in the queue itself yet: no namespace can give way, so the key was never read.
    expect(keyRead).toBe(0);
    // The first enters (and starts); entering twice, or ending after entering, changes nothing.
    arrivals[0]?.entered();
    arrivals[0]?.entered();
    const release = await a.enter('ns', undefined, never(), cancelled);
    expect(a.stats()).toMatchObject({ working: 1, queued: 2 });
    // One ends before entering (its class was refused): its place frees.
    arrivals[1]?.entered();
    expect(a.stats()).toMatchObject({ working: 1, queued: 1 });
    expect(a.arrive(key, undefined).refusal).toBeUndefined();
    release();
  });

  test('refusal() tells without queueing what enter() would answer now', async () => {
    const a = new Admission({ concurrency: 1, maxQueued: 1 });
    expect(a.refusal('a', undefined)).toBeUndefined();
    const release = await a.enter('a', undefined, never(), cancelled);
    expect(a.refusal('a', undefined)).toBeUndefined();
    expect(a.stats().queued).toBe(0);
    void a.enter('a', undefined, never(), cancelled);
    expect(a.refusal('a', undefined)).toBeInstanceOf(AtCapacityError);
    release();
  });
});

/**
 * @module k8s/rate-limit
 * Client-side token bucket for the Kubernetes API, as client-go's `--qps`/`--burst`
 * (docs/behaviour.md, "Kubernetes API"): the bucket starts full with `burst` tokens and refills at `qps` per second;
 * a request waits for its token (abortably) and never fails for lack of one.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { ProviderError } from '../errors.js';

/** Waits `ms`, or rejects with the signal's abort error. Injected by tests to avoid real sleeps. */
export type Sleep = (ms: number, signal: AbortSignal) => Promise<void>;

/** The error thrown when a caller's signal aborts a Kubernetes call: DEADLINE_EXCEEDED on timeout, else CANCELLED. */
export function abortError(signal: AbortSignal, what: string): ProviderError {
  const reason: unknown = signal.reason;
  if (reason instanceof ProviderError) return reason;
  const timedOut = reason instanceof Error && reason.name === 'TimeoutError';
  return new ProviderError(
    timedOut ? 'DEADLINE_EXCEEDED' : 'CANCELLED',
    `${what}: ${timedOut ? 'deadline exceeded' : 'cancelled'}`,
    {
      reason: timedOut ? 'Deadline' : 'Cancelled',
      cause: reason,
    },
  );
}

// Node's own abortable timer; its AbortError becomes ours, which says deadline or cancellation.
export const realSleep: Sleep = (ms, signal) =>
  sleep(ms, undefined, { signal }).catch(() => Promise.reject(abortError(signal, 'wait')));

export class TokenBucket {
  readonly #qps: number;
  readonly #burst: number;
  readonly #now: () => number;
  readonly #sleep: Sleep;
  #tokens: number;
  #last: number;

  constructor(qps: number, burst: number, now: () => number = Date.now, sleep: Sleep = realSleep) {
    if (!(qps > 0) || !Number.isFinite(qps)) throw new RangeError(`qps must be a positive number, got ${qps}`);
    if (!Number.isInteger(burst) || burst < 1)
      throw new RangeError(`burst must be an integer of at least 1, got ${burst}`);
    this.#qps = qps;
    this.#burst = burst;
    this.#now = now;
    this.#sleep = sleep;
    this.#tokens = burst;
    this.#last = now();
  }

  /** Takes one token, waiting for it if the bucket is empty. A cancelled wait gives its reservation back. */
  async take(signal: AbortSignal): Promise<void> {
    if (signal.aborted) throw abortError(signal, 'waiting for the Kubernetes client rate limit');
    const now = this.#now();
    this.#tokens = Math.min(this.#burst, this.#tokens + ((now - this.#last) * this.#qps) / 1000);
    this.#last = now;
    this.#tokens -= 1;
    if (this.#tokens >= 0) return;
    // Reserve the token now (the count goes negative) so waiters are served in order.
    const waitMs = Math.ceil((-this.#tokens * 1000) / this.#qps);
    try {
      await this.#sleep(waitMs, signal);
    } catch (err) {
      this.#tokens += 1;
      throw signal.aborted ? abortError(signal, 'waiting for the Kubernetes client rate limit') : err;
    }
  }
}

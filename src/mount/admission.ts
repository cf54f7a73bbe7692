/**
 * @module mount/admission
 * How many mounts do work at once, and who goes next. A node coming up full sends every pod's first
 * mount at once; started together they would all hold SDK calls, buffers and parsed answers at the
 * same time, and under a 50m CPU quota each would crawl until the deadline cut it half-way. Instead:
 *   - at most `concurrency` mounts work at once; the others wait in a queue;
 *   - the queue is fair: one tenant (namespace) sending many mounts waits its turn behind the others
 *     instead of in front of them (round robin across keys, first come first served within one);
 *   - deadline-aware: a mount that could not finish before its deadline, judged from how long mounts
 *     take now, is not started. It is answered UNAVAILABLE at once (or as soon as waiting longer would
 *     leave it too little time), so the driver retries later instead of timing out;
 *   - a full queue refuses at once, also UNAVAILABLE; but when another namespace holds more of it, its
 *     newest waiter gives way instead, so one tenant filling the queue cannot lock the others out.
 * `refusal()` tells, without queueing, whether a mount would be refused now: the pipeline asks it
 * before parsing the class, so the hundreds of mounts of an overload are refused at little cost.
 * Nothing is cut half-way by admission: it decides only before a mount starts its I/O.
 */
import { ProviderError } from '../errors.js';

export interface AdmissionOptions {
  /** Mounts doing work at once. */
  concurrency: number;
  /** Mounts waiting at most; one more is refused at once. */
  maxQueued: number;
  /** What a mount is assumed to take before any has finished (ms). */
  initialEstimateMs?: number;
  now?: () => number;
}

export interface AdmissionStats {
  working: number;
  /** Waiting: in the queue, or let through at arrival and not in it yet. */
  queued: number;
  /** Current estimate of one mount's working time (ms). */
  estimateMs: number;
}

interface Waiter {
  key: string;
  resolve: (release: () => void) => void;
  reject: (err: unknown) => void;
  cleanup: () => void;
}

/** The refusal the driver retries: says why, and that nothing was done. */
export class AtCapacityError extends ProviderError {
  constructor(detail: string) {
    super('UNAVAILABLE', `provider at capacity: ${detail}; nothing was fetched or written, the driver will retry`, {
      reason: 'AtCapacity',
    });
  }
}

export class Admission {
  private readonly concurrency: number;
  private readonly maxQueued: number;
  private readonly now: () => number;
  private working = 0;
  private queued = 0;
  /** Mounts let through by `arrive()` that have not reached `enter()` yet: they count as waiting. */
  private arriving = 0;
  /** Waiters per key, keys in round-robin order (a Map keeps insertion order). */
  private readonly queues = new Map<string, Waiter[]>();
  /** Exponentially weighted mean of working time of recent mounts. */
  private estimate: number;

  constructor(o: AdmissionOptions) {
    this.concurrency = Math.max(1, o.concurrency);
    this.maxQueued = Math.max(0, o.maxQueued);
    this.now = o.now ?? Date.now;
    this.estimate = o.initialEstimateMs ?? 500;
  }

  stats(): AdmissionStats {
    return { working: this.working, queued: this.queued + this.arriving, estimateMs: Math.round(this.estimate) };
  }

  /** When a mount that enters the queue now would likely finish (ms from now). */
  private expectedFinishMs(): number {
    const rounds = Math.floor((this.queued + this.arriving + this.working) / this.concurrency) + 1;
    return rounds * this.estimate;
  }

  /**
   * Waits for a working slot. Resolves with `release`, to be called once when the mount is done;
   * rejects with AtCapacityError when the mount should not start, or with `aborted()` when `signal`
   * fires first. `deadline` is epoch ms (undefined: none).
   */
  enter(key: string, deadline: number | undefined, signal: AbortSignal, aborted: () => Error): Promise<() => void> {
    if (signal.aborted) return Promise.reject(aborted());
    // A free slot starts at once, whatever the estimate: waiting cannot make it finish sooner.
    if (this.working < this.concurrency && this.queued === 0) return Promise.resolve(this.start());
    const refusal = this.refusal(key, deadline);
    if (refusal !== undefined) return Promise.reject(refusal);
    if (this.queued >= this.maxQueued) {
      // Full, but another namespace holds more of the queue: its newest waiter gives way.
      const victim = this.victimFor(key);
      if (victim !== undefined) {
        this.remove(victim);
        victim.reject(
          new AtCapacityError(
            `${this.working} mounts working and ${this.queued + 1} waiting (the most this provider queues); ` +
              "this namespace had the most waiting and gave way to another's",
          ),
        );
      }
    }
    const left = deadline === undefined ? Number.POSITIVE_INFINITY : deadline - this.now();
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const onAbort = (): void => {
        this.remove(waiter);
        reject(aborted());
      };
      const waiter: Waiter = {
        key,
        resolve,
        reject,
        cleanup: () => {
          if (timer) clearTimeout(timer);
          signal.removeEventListener('abort', onAbort);
        },
      };
      signal.addEventListener('abort', onAbort, { once: true });
      if (deadline !== undefined) {
        // Give up waiting while there is still time to answer, once starting would be too late.
        const check = (): void => {
          const rest = deadline - this.now();
          if (rest >= this.estimate) {
            timer = setTimeout(check, Math.max(10, rest - this.estimate));
            return;
          }
          this.remove(waiter);
          reject(this.tooLate(rest));
        };
        timer = setTimeout(check, Math.max(10, left - this.estimate));
      }
      let q = this.queues.get(key);
      if (!q) {
        q = [];
        this.queues.set(key, q);
      }
      q.push(waiter);
      this.queued++;
    });
  }

  /**
   * Why a mount of `key` arriving now would be refused (undefined: it would start or wait), without
   * queueing it or changing anything: the caller asks before it parses the class, so a refusal
   * costs next to nothing when hundreds of mounts arrive at once.
   */
  refusal(key: string | (() => string), deadline: number | undefined): AtCapacityError | undefined {
    const waiting = this.queued + this.arriving;
    const free = Math.max(0, this.concurrency - this.working);
    if (waiting < free) return undefined;
    // Arrivals not yet in the queue may also take the free working slots.
    if (waiting >= this.maxQueued + free && this.victimFor(key) === undefined) {
      return new AtCapacityError(
        `${this.working} mounts working and ${waiting} waiting (the most this provider queues)`,
      );
    }
    const left = deadline === undefined ? Number.POSITIVE_INFINITY : deadline - this.now();
    return left < this.expectedFinishMs() ? this.tooLate(left) : undefined;
  }

  /**
   * The decision at a mount's arrival, before its request is checked or parsed (the pipeline may
   * not even be loaded yet): `refusal` when it would be refused now. Otherwise it counts as waiting
   * from now on, so the hundreds of mounts of an overload that arrive together are refused at once
   * rather than all let through to be parsed; `entered` ends that (call it when the mount enters,
   * or ends first; more calls do nothing).
   */
  arrive(
    key: string | (() => string),
    deadline: number | undefined,
  ): { refusal: AtCapacityError | undefined; entered: () => void } {
    const refusal = this.refusal(key, deadline);
    if (refusal !== undefined) return { refusal, entered: () => {} };
    this.arriving++;
    let done = false;
    return {
      refusal: undefined,
      entered: () => {
        if (done) return;
        done = true;
        this.arriving--;
      },
    };
  }

  /**
   * When the queue is full, the waiter that gives way to a mount of `key` (or of the key it returns): the newest of the
   * namespace with the most waiting, when that is at least two more than `key` has (so the queue
   * ends up no less even). A tenant that filled the queue cannot lock the others out of it.
   */
  private victimFor(key: string | (() => string)): Waiter | undefined {
    if (this.maxQueued === 0) return undefined;
    let most: Waiter[] | undefined;
    for (const q of this.queues.values()) if (most === undefined || q.length > most.length) most = q;
    // The key (a function: read from the request only when it matters) is needed only now.
    if (most === undefined || most.length < 2) return undefined;
    const own = this.queues.get(typeof key === 'string' ? key : key())?.length ?? 0;
    return most.length > own + 1 ? most[most.length - 1] : undefined;
  }

  private tooLate(leftMs: number): AtCapacityError {
    const s = (ms: number): string => `${(Math.max(0, ms) / 1000).toFixed(1)} s`;
    return new AtCapacityError(
      `${this.working} mounts working and ${this.queued + this.arriving} waiting; a mount now takes about ` +
        `${s(this.estimate)} and this one has ${s(leftMs)} left before its deadline`,
    );
  }

  private remove(w: Waiter): void {
    w.cleanup();
    const q = this.queues.get(w.key);
    if (!q) return;
    const i = q.indexOf(w);
    if (i < 0) return;
    q.splice(i, 1);
    this.queued--;
    if (q.length === 0) this.queues.delete(w.key);
  }

  private start(): () => void {
    this.working++;
    const t0 = this.now();
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.working--;
      this.estimate = 0.8 * this.estimate + 0.2 * (this.now() - t0);
      this.next();
    };
  }

  /** Hands free slots to the next waiters, one key after another. */
  private next(): void {
    while (this.working < this.concurrency && this.queued > 0) {
      const [key, q] = this.queues.entries().next().value as [string, Waiter[]];
      const w = q.shift() as Waiter;
      this.queued--;
      // The key goes to the back of the line (or away when it has no one left).
      this.queues.delete(key);
      if (q.length > 0) this.queues.set(key, q);
      w.cleanup();
      w.resolve(this.start());
    }
  }
}

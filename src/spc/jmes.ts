/**
 * @module spc/jmes
 * The one place that runs JMESPath, with bounds: a class is written by a tenant, and one costly
 * expression must not take the node's provider (every pod's mounts) down with it.
 *
 * - Parse time: an expression over 1 KiB or 256 nodes is refused; a syntax error is
 *   `Invalid JMES Path: <path>.` (ASCP's text).
 * - A path made only of fields, sub-expressions and indexes (`username`, `"api-key"`, `a.b[0]`)
 *   costs at most its length: evaluated inline, as always.
 * - Anything else (projections, filters, multi-selects, functions…) can cost time and memory
 *   exponential in its length (200 bytes build 10^7 arrays or run for minutes): evaluated in one
 *   worker thread, started on first need and stopped when idle, one evaluation at a time, under a
 *   budget: CPU per mount, heap, and the size of the file it writes. A worker over budget is
 *   terminated (a new one starts when needed) and the entry fails; the same expression on the same
 *   value is then refused without running it for a while (rotation polls would repeat it).
 *
 * Library error texts are never passed on, since they may quote the document (a secret).
 */
import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { setBounded } from '../bounded-map.js';
import {
  evaluate,
  jmesLib,
  WORKER_MARKER,
  type EvalOutcome,
  type EvalReply,
  type EvalRequest,
  type ParsedJson,
} from './jmes-eval.js';

const MiB = 1024 * 1024;

/** The bounds (tests lower the timings with configureJmes). */
export interface JmesSettings {
  /** Longest expression accepted at parse time (UTF-8 bytes). Real paths are a few dozen. */
  expressionBytes: number;
  /** Most AST nodes accepted at parse time. `a.b[0]` has 5. */
  expressionNodes: number;
  /** Largest file one jmesPath entry may write (UTF-8 bytes of its text). */
  resultBytes: number;
  /** CPU the worker may spend on one mount's evaluations, all entries together (ms). */
  cpuMsPerMount: number;
  /** Heap the worker may use (MiB): its V8 old-generation limit, and checked while it evaluates. */
  heapMiB: number;
  /** The worker's V8 young generation (MiB). */
  youngMiB: number;
  /** Wall-clock backstop for one evaluation (ms): the CPU bound is the one meant to act. */
  evaluationMs: number;
  /** Longest wait for the worker to start (ms). */
  startMs: number;
  /** Evaluations that may wait for the worker; more are refused as UNAVAILABLE. */
  queue: number;
  /** The worker stops after this long without work (ms). */
  idleMs: number;
  /** How long an expression over budget on a value is refused without running (ms). */
  rememberMs: number;
}

const DEFAULTS: JmesSettings = {
  expressionBytes: 1024,
  expressionNodes: 256,
  resultBytes: MiB,
  cpuMsPerMount: 100,
  heapMiB: 16,
  youngMiB: 4,
  evaluationMs: 10_000,
  startMs: 10_000,
  queue: 64,
  idleMs: 30_000,
  rememberMs: 10 * 60_000,
};

let settings: JmesSettings = { ...DEFAULTS };

/** Changes bounds (tests); returns the previous ones. A running worker keeps its heap limits. */
export function configureJmes(change: Partial<JmesSettings>): JmesSettings {
  const previous = settings;
  settings = { ...settings, ...change };
  return previous;
}

export function jmesSettings(): Readonly<JmesSettings> {
  return settings;
}

// ---------------------------------------------------------------------------------------------
// Parse time.

/** Why an expression cannot be used: a syntax error (ASCP's text), or one of our limits (`message`). */
export type ExpressionProblem = { kind: 'syntax' } | { kind: 'limit'; message: string };

/** Nodes of a jmespath.js 0.16 AST, counting up to `stopAt` (walked without recursion). */
function countNodes(ast: unknown, stopAt: number): number {
  const stack: unknown[] = [ast];
  let n = 0;
  while (stack.length > 0 && n < stopAt) {
    const node = stack.pop();
    if (node === null || typeof node !== 'object' || typeof (node as { type?: unknown }).type !== 'string') continue;
    n += 1;
    const { type, children, value } = node as { type: string; children?: unknown; value?: unknown };
    if (Array.isArray(children)) stack.push(...(children as unknown[]));
    if (type === 'KeyValuePair') stack.push(value); // a Literal's value is data, not nodes
  }
  return n;
}

/** Node types whose evaluation costs at most one step each: a path of fields and indexes. */
const SIMPLE = new Set(['Field', 'Subexpression', 'IndexExpression', 'Index', 'Identity', 'Current']);

function isSimpleAst(ast: unknown): boolean {
  const stack: unknown[] = [ast];
  while (stack.length > 0) {
    const node = stack.pop() as { type?: unknown; children?: unknown } | null;
    if (node === null || typeof node !== 'object') return false;
    if (typeof node.type !== 'string' || !SIMPLE.has(node.type)) return false;
    if (Array.isArray(node.children)) stack.push(...(node.children as unknown[]));
  }
  return true;
}

/**
 * The names of a path made only of fields (`a.b`, `"db-host".port`), as the library parses them
 * (quotes and escapes resolved); undefined for any other expression or one that does not parse.
 */
export function fieldNames(expression: string): string[] | undefined {
  let ast: unknown;
  try {
    ast = jmesLib.compile(expression);
  } catch {
    return undefined;
  }
  const names: string[] = [];
  const walk = (node: unknown): boolean => {
    const n = node as { type?: unknown; name?: unknown; children?: unknown };
    if (n.type === 'Field' && typeof n.name === 'string') return names.push(n.name) > 0;
    if (n.type !== 'Subexpression' || !Array.isArray(n.children) || n.children.length !== 2) return false;
    return walk(n.children[0]) && walk(n.children[1]);
  };
  return walk(ast) ? names : undefined;
}

/** undefined when the expression is usable. */
export function expressionProblem(expression: string): ExpressionProblem | undefined {
  const bytes = Buffer.byteLength(expression, 'utf8');
  if (bytes > settings.expressionBytes) {
    return {
      kind: 'limit',
      message: `the path is ${bytes} bytes, more than the ${settings.expressionBytes} bytes this provider evaluates`,
    };
  }
  let ast: unknown;
  try {
    ast = jmesLib.compile(expression);
  } catch {
    return { kind: 'syntax' };
  }
  if (countNodes(ast, settings.expressionNodes + 1) > settings.expressionNodes) {
    return {
      kind: 'limit',
      message: `the path has more than ${settings.expressionNodes} expression nodes, the most this provider evaluates`,
    };
  }
  return undefined;
}

/** `my-key` / `a.my-key` unquoted: the usual cause of a JMESPath syntax error (README: quote it). */
export function looksLikeUnquotedHyphen(expression: string): boolean {
  return /^[A-Za-z_][\w-]*(\.[A-Za-z_][\w-]*)*$/.test(expression) && expression.includes('-');
}

/** Expression → evaluated inline; bounded (expressions come from parsed classes, ≤ 1 KiB each). */
const simpleCache = new Map<string, boolean>();

/** True when the expression is a plain path, evaluated inline. */
export function isSimplePath(expression: string): boolean {
  const known = simpleCache.get(expression);
  if (known !== undefined) return known;
  let simple: boolean;
  try {
    simple =
      Buffer.byteLength(expression, 'utf8') <= settings.expressionBytes && isSimpleAst(jmesLib.compile(expression));
  } catch {
    simple = false; // refused at parse time; the worker says so if it ever gets here
  }
  setBounded(simpleCache, expression, simple, 1024);
  return simple;
}

// ---------------------------------------------------------------------------------------------
// Evaluation.

/** What bound an evaluation hit: CPU of the mount, heap, or the wall-clock backstop. */
export type Bound = 'cpu' | 'memory' | 'time';

/** One entry's outcome: the evaluation's own, or why it did not run to the end. */
export type EntryOutcome =
  | EvalOutcome
  /** Over budget. `spent`: not run, an earlier entry of the mount used the budget. `until`: not run, it was over budget
   * on this value before. */
  | { kind: 'budget'; bound: Bound; spent?: true; until?: number }
  | { kind: 'busy'; waiting: number }
  | { kind: 'aborted'; deadline: boolean }
  /** The worker could not run it (`transient`: starting took too long). */
  | { kind: 'unavailable'; why: string; transient: boolean };

/** What one mount may still spend in the worker. */
export interface JmesBudget {
  cpuMicrosLeft: number;
}

const budgets = new WeakMap<AbortSignal, JmesBudget>();

/** The budget of the mount `signal` belongs to (one per signal), or a fresh one without a signal. */
export function budgetFor(signal?: AbortSignal): JmesBudget {
  if (signal === undefined) return { cpuMicrosLeft: settings.cpuMsPerMount * 1000 };
  let b = budgets.get(signal);
  if (b === undefined) {
    b = { cpuMicrosLeft: settings.cpuMsPerMount * 1000 };
    budgets.set(signal, b);
  }
  return b;
}

interface Stats {
  inline: number;
  inWorker: number;
  workerStarts: number;
  overBudget: number;
  remembered: number;
  /** V8's heap limit in the last worker started (bytes); a process-wide --max-old-space-size overrides resourceLimits.
   * */
  workerHeapLimit: number;
}

const stats: Stats = { inline: 0, inWorker: 0, workerStarts: 0, overBudget: 0, remembered: 0, workerHeapLimit: 0 };

/** Counters, and whether the worker is running now and how many evaluations wait for it. */
export function jmesStats(): Stats & { workerRunning: boolean; queued: number } {
  return { ...stats, workerRunning: evaluator.running(), queued: evaluator.waiting() };
}

/** Expression+value that went over budget → until when it is refused without running. */
const overBudget = new Map<string, { bound: Bound; until: number }>();

function overBudgetKey(expression: string, render: string, text: string): string {
  return createHash('sha256').update(expression).update('\0').update(render).update('\0').update(text).digest('base64');
}

/**
 * Evaluates one entry on a parsed secret (`text` is its JSON text, which the worker parses the
 * same way). Simple paths inline; others in the worker, drawing on `budget`.
 */
export async function evaluateEntry(
  json: ParsedJson,
  text: string,
  expression: string,
  render: 'string' | 'json',
  o: { budget: JmesBudget; signal?: AbortSignal | undefined },
): Promise<EntryOutcome> {
  if (isSimplePath(expression)) {
    stats.inline += 1;
    return evaluate(json, expression, render, settings.resultBytes);
  }
  const key = overBudgetKey(expression, render, text);
  const seen = overBudget.get(key);
  if (seen !== undefined && seen.until > Date.now()) {
    stats.remembered += 1;
    return { kind: 'budget', bound: seen.bound, until: seen.until };
  }
  if (o.budget.cpuMicrosLeft <= 0) return { kind: 'budget', bound: 'cpu', spent: true };
  const wholeBudget = o.budget.cpuMicrosLeft >= settings.cpuMsPerMount * 1000;
  stats.inWorker += 1;
  const out = await evaluator.run({ text, expression, render, maxBytes: settings.resultBytes }, o.budget, o.signal);
  if (out.kind === 'budget') {
    stats.overBudget += 1;
    o.budget.cpuMicrosLeft = 0; // the mount fails: its other entries need not run
    // Remembered only when it is this expression on this value alone (not a budget shared with
    // earlier entries, not a wall clock that a busy node slows down).
    if (out.bound === 'memory' || (out.bound === 'cpu' && wholeBudget)) {
      setBounded(overBudget, key, { bound: out.bound, until: Date.now() + settings.rememberMs }, 256);
    }
  }
  return out;
}

/** Stops the worker now (tests; shutdown needs nothing: an idle worker does not hold the process). */
export async function stopJmesWorker(): Promise<void> {
  await evaluator.stop();
}

/** Forgets expressions remembered as over budget (tests). */
export function forgetOverBudget(): void {
  overBudget.clear();
}

// ---------------------------------------------------------------------------------------------
// The worker.

/**
 * The worker's file: this module's sibling, .js in dist/spc/, .ts under vitest (Node strips its
 * types). In a bundle this code sits in a chunk of dist/bundle/, and the bundler must emit
 * jmes-eval.js as an entry point of its own, found beside the chunk or in spc/ below it (without
 * it, paths that need the worker fail with INTERNAL naming the thread; simple paths still work).
 */
function workerUrl(): URL {
  const ext = import.meta.url.endsWith('.ts') ? 'ts' : 'js';
  const candidates = [`./jmes-eval.${ext}`, `./spc/jmes-eval.${ext}`].map((p) => new URL(p, import.meta.url));
  return candidates.find((u) => existsSync(u)) ?? (candidates[0] as URL);
}

/** First look at the worker's CPU and heap this long after posting (most evaluations are done by then). */
const FIRST_CHECK_MS = 5;
const CHECK_MS = 10;

function abortedOutcome(signal: AbortSignal): EntryOutcome {
  const reason = signal.reason as { code?: string; name?: string } | undefined;
  return { kind: 'aborted', deadline: reason?.code === 'DEADLINE_EXCEEDED' || reason?.name === 'TimeoutError' };
}

interface Job {
  req: Omit<EvalRequest, 'id'>;
  budget: JmesBudget;
  signal: AbortSignal | undefined;
  settled: boolean;
  posted: boolean;
  settle(o: EntryOutcome): void;
}

/** The evaluation in the worker now, and how to end it early. */
interface Current {
  job: Job;
  fail(o: EntryOutcome): void;
}

class Evaluator {
  private worker: Worker | undefined;
  private cpuBase = 0;
  private readonly queue: Job[] = [];
  private current: Current | undefined;
  private pumping = false;
  private idleTimer: NodeJS.Timeout | undefined;
  /** A worker being terminated: the next one starts once it is gone (never two heaps at once). */
  private stopping: Promise<void> | undefined;
  private nextId = 1;

  running(): boolean {
    return this.worker !== undefined;
  }

  waiting(): number {
    return this.queue.length;
  }

  run(req: Omit<EvalRequest, 'id'>, budget: JmesBudget, signal: AbortSignal | undefined): Promise<EntryOutcome> {
    if (signal?.aborted === true) return Promise.resolve(abortedOutcome(signal));
    if (this.queue.length >= settings.queue) return Promise.resolve({ kind: 'busy', waiting: this.queue.length });
    return new Promise<EntryOutcome>((resolve) => {
      const onAbort = (): void => {
        if (signal === undefined || job.settled) return;
        if (job.posted && this.current?.job === job) this.current.fail(abortedOutcome(signal));
        else {
          const i = this.queue.indexOf(job);
          if (i >= 0) this.queue.splice(i, 1);
          job.settle(abortedOutcome(signal)); // being started for: the pump skips it
        }
      };
      const job: Job = {
        req,
        budget,
        signal,
        settled: false,
        posted: false,
        settle: (o) => {
          if (job.settled) return;
          job.settled = true;
          signal?.removeEventListener('abort', onAbort);
          resolve(o);
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.queue.push(job);
      void this.pump();
    });
  }

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      for (let job = this.queue.shift(); job !== undefined; job = this.queue.shift()) {
        if (job.settled) continue;
        clearTimeout(this.idleTimer);
        const w = await this.ensureWorker();
        if (job.settled) continue;
        if (typeof w === 'string') {
          job.settle({ kind: 'unavailable', why: w, transient: w.startsWith('did not start') });
          continue;
        }
        await this.evaluateIn(w, job);
      }
    } finally {
      this.pumping = false;
    }
    this.armIdle();
  }

  /** Posts the job and watches the worker's CPU and heap until it answers or is ended. */
  private evaluateIn(w: Worker, job: Job): Promise<void> {
    return new Promise<void>((finished) => {
      const id = this.nextId++;
      const cpuStart = this.cpuBase;
      let check: NodeJS.Timeout | undefined;
      const cleanup = (): void => {
        clearTimeout(check);
        clearTimeout(backstop);
        w.off('message', onMessage);
        if (this.current?.job === job) this.current = undefined;
      };
      const onMessage = (m: EvalReply): void => {
        if (!('id' in m) || m.id !== id) return;
        cleanup();
        job.budget.cpuMicrosLeft -= m.cpuMicros - cpuStart;
        this.cpuBase = m.cpuMicros;
        job.settle(m.outcome.kind === 'not-json' ? { kind: 'failed' } : m.outcome);
        finished();
      };
      this.current = {
        job,
        fail: (o) => {
          cleanup();
          job.settle(o);
          void this.discard(w).then(finished); // its heap is released before the next one starts
        },
      };
      const look = async (): Promise<void> => {
        let cpu: NodeJS.CpuUsage;
        let heap: { used_heap_size: number };
        try {
          [cpu, heap] = await Promise.all([w.cpuUsage(), w.getHeapStatistics()]);
        } catch {
          return; // exited: its exit handler ends the job
        }
        const current = this.current;
        if (current?.job !== job) return;
        if (cpu.user + cpu.system - cpuStart > job.budget.cpuMicrosLeft) current.fail({ kind: 'budget', bound: 'cpu' });
        else if (heap.used_heap_size > settings.heapMiB * MiB) current.fail({ kind: 'budget', bound: 'memory' });
        else check = setTimeout(() => void look(), CHECK_MS);
      };
      check = setTimeout(() => void look(), FIRST_CHECK_MS);
      const backstop = setTimeout(
        () => this.current?.job === job && this.current.fail({ kind: 'budget', bound: 'time' }),
        settings.evaluationMs,
      );
      w.on('message', onMessage);
      w.ref();
      job.posted = true;
      const req: EvalRequest = { id, ...job.req };
      w.postMessage(req);
    });
  }

  private async ensureWorker(): Promise<Worker | string> {
    if (this.worker !== undefined) return this.worker;
    await this.stopping;
    stats.workerStarts += 1;
    let w: Worker;
    try {
      w = new Worker(workerUrl(), {
        workerData: WORKER_MARKER,
        // A process-wide --max-old-space-size / --max-semi-space-size (NODE_OPTIONS) overrides
        // these in V8; the heap is also checked from here while the worker evaluates.
        resourceLimits: { maxOldGenerationSizeMb: settings.heapMiB, maxYoungGenerationSizeMb: settings.youngMiB },
        env: {}, // it needs no environment (and is given none of the provider's)
      });
    } catch {
      return 'could not start';
    }
    this.worker = w;
    const first = await new Promise<EvalReply | string>((resolve) => {
      const timer = setTimeout(() => done(`did not start within ${settings.startMs / 1000} s`), settings.startMs);
      const onMessage = (m: EvalReply): void => done(m);
      const onError = (err: unknown): void => {
        const code = (err as { code?: unknown } | null)?.code;
        done(`failed to start${typeof code === 'string' ? ` (${code})` : ''}`);
      };
      const onExit = (): void => done('exited while starting');
      const done = (r: EvalReply | string): void => {
        clearTimeout(timer);
        w.off('message', onMessage);
        w.off('error', onError);
        w.off('exit', onExit);
        resolve(r);
      };
      w.on('message', onMessage);
      w.on('error', onError);
      w.on('exit', onExit);
    });
    if (typeof first === 'string' || !('ready' in first)) {
      await this.discard(w);
      return typeof first === 'string' ? first : 'failed to start';
    }
    this.cpuBase = first.cpuMicros;
    stats.workerHeapLimit = first.heapLimit;
    w.on('error', (err: unknown) => {
      const oom = (err as { code?: unknown } | null)?.code === 'ERR_WORKER_OUT_OF_MEMORY';
      this.current?.fail(
        oom ? { kind: 'budget', bound: 'memory' } : { kind: 'unavailable', why: 'failed', transient: false },
      );
    });
    w.on('exit', () => {
      if (this.worker === w) this.worker = undefined;
      this.current?.fail({ kind: 'unavailable', why: 'exited', transient: false });
    });
    return w;
  }

  private armIdle(): void {
    const w = this.worker;
    if (w === undefined || this.queue.length > 0) return;
    w.unref(); // an idle worker does not keep the process alive
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => {
      if (this.worker === w && !this.pumping) void this.discard(w);
    }, settings.idleMs);
    this.idleTimer.unref();
  }

  private async discard(w: Worker): Promise<void> {
    if (this.worker === w) this.worker = undefined;
    const stopping = w.terminate().then(
      () => undefined,
      () => undefined,
    );
    this.stopping = stopping;
    await stopping;
    if (this.stopping === stopping) this.stopping = undefined;
  }

  async stop(): Promise<void> {
    clearTimeout(this.idleTimer);
    const w = this.worker;
    if (w !== undefined) await this.discard(w);
  }
}

const evaluator = new Evaluator();

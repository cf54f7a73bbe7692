/**
 * @module bench/box
 * `npm run bench -- --box`: the provider inside the Helm chart's resource box (requests = limits =
 * 50m CPU, 100Mi memory, as a real cgroup: see ./cgroup.ts), on a full node: 110 pods of 11 teams,
 * every pod with its own pod-bound tokens, classes of 10 ~1 KB secrets with a jmesPath entry and no
 * region (the provider reads its node's region through NODE_NAME), 20 ms on every AWS and
 * Kubernetes answer. The driver is played as it behaves: every first mount of the node at once, a
 * 2-minute deadline per attempt (the kubelet's), UNAVAILABLE retried with backoff, rotation polls
 * with the versions of the last mount.
 *
 * Phases (each boxed phase on its own provider process and box):
 *   start-ups    several starts, exec → listening socket
 *   node         the burst, rotation rounds, steady polls of one pod; peak cgroup memory over all
 *   overload     many concurrent first mounts: each must be OK or a fast UNAVAILABLE, no crash
 *   no cgroup    idle RSS; RSS after a small and a large burst; CPU per warm poll
 * A provider that dies (a restart in a cluster) ends its phase; how it died is printed and the
 * other phases still run. `wave`, `startBoxedProvider` and `attemptMount` are shared with
 * test/box/box.test.ts.
 */
import { setMaxListeners } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { status } from '@grpc/grpc-js';
import { createDriverClient, startEmulator, type DriverClient, type Emulator } from '../emulator/index.js';
import { BoxCluster, type BoxPod } from './box-scenario.js';
import { cgroupSupport, CFS_PERIOD_US, type BoxLimits, type BoxStats } from './cgroup.js';
import { coldCopy, dropFromCache, fillCompileCache, isTmpfs, type ColdBinary } from './page-cache.js';
import type { BenchOptions, BoxPhase, BoxSizes } from './options.js';
import type { ProcSample } from './proc.js';
import {
  describeExit,
  DOCKERFILE_NODE_OPTIONS,
  startProviderProcess,
  type ExitInfo,
  type ProviderProcess,
} from './provider-process.js';
import { median, mib, slope, table, verdict, type Verdict } from './report.js';
import type { BenchIO } from './run.js';

const MiB = 1024 * 1024;
/** An UNAVAILABLE is "fast" when it comes back within this: the driver retries it at once. */
export const FAST_UNAVAILABLE_MS = 5_000;
/** The kubelet's first retry of a failed NodePublishVolume comes after about a second, then doubles. */
const BACKOFF_MS = 1_000;
/** Steady polls' memory counts as flat when the fitted growth over the whole run is at most this. */
const FLAT_BYTES = 2 * MiB;
/** The steady polls stop after this long (a thrashing provider may take minutes per poll). */
const STEADY_BUDGET_MS = 10 * 60_000;
/** Width of the table's measured column (the figure, target and verdict columns take the rest of the 140). */
const MEASURED_COLUMNS = 54;
/** Printed lines stay within this many columns. */
export const MAX_COLUMNS = 140;

const sleep = (msecs: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, msecs));
const secs = (msecs: number): string => (Number.isFinite(msecs) ? `${(msecs / 1000).toFixed(1)} s` : 'n/a');
const CODE_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(status)
    .filter(([, v]) => typeof v === 'number')
    .map(([k, v]) => [v, k]),
);

// ------------------------------------------------------------------ a provider, boxed or not

export interface BoxEnv {
  node: string;
  mainJs: string;
  emulatorUrl: string;
  kubeconfig: string;
  /** Working directory; each provider gets its own sub-directory. */
  dir: string;
  /** NODE_OPTIONS of the provider (the Dockerfile's by default). */
  nodeOptions?: string;
  /** The kubelet root the pods' targets are under (`--kubelet-root`: the provider refuses targets elsewhere). */
  kubeletRoot: string;
  /** Boxed providers run this copy of node, dropped from the page cache before each start (see ./page-cache.ts). */
  cold?: ColdBinary;
  /** Added to the provider's environment. */
  extraEnv?: Record<string, string>;
  /** Added to the provider's command line. */
  extraFlags?: readonly string[];
  /** Node's compile cache, as the image has it (NODE_COMPILE_CACHE); dropped from the page cache with node on a cold
   * start. */
  compileCache?: { dir: string; files: string[] };
}

export interface BoxedProvider {
  readonly label: string;
  /** Started with node's pages out of the page cache (charged to its box as they are read). */
  readonly cold: boolean;
  readonly proc: ProviderProcess;
  readonly client: DriverClient;
  /** Aborted when the process ends before `stop()`: calls in flight are cancelled instead of waiting out their
   * deadline. */
  readonly dead: AbortSignal;
  stop(): Promise<void>;
}

let started = 0;

/**
 * The built provider as the chart starts it: NODE_NAME from the downward API, the Dockerfile's
 * NODE_OPTIONS, AWS and Kubernetes at the emulator, provider-writes mode; in a box with `limits`.
 */
export async function startBoxedProvider(
  env: BoxEnv,
  label: string,
  limits: BoxLimits | undefined,
  onLine?: (stream: 'stdout' | 'stderr', line: string) => void,
): Promise<BoxedProvider> {
  const cold =
    limits !== undefined && env.cold !== undefined && env.cold.drop() && dropFromCache(env.compileCache?.files ?? []);
  const proc = await startProviderProcess({
    node: cold && env.cold ? env.cold.path : env.node,
    mainJs: env.mainJs,
    dir: path.join(env.dir, `provider-${++started}`),
    emulatorUrl: env.emulatorUrl,
    kubeconfig: env.kubeconfig,
    flags: [`--kubelet-root=${env.kubeletRoot}`, ...(env.extraFlags ?? [])],
    nodeOptions: env.nodeOptions ?? DOCKERFILE_NODE_OPTIONS,
    env: {
      NODE_NAME: 'node-1',
      ...env.extraEnv,
      ...(env.compileCache === undefined ? {} : { NODE_COMPILE_CACHE: env.compileCache.dir }),
    },
    // Start-up under 50m takes seconds of wall time (the CPU quota, not the machine).
    startTimeoutMs: limits === undefined ? 20_000 : 180_000,
    ...(limits === undefined ? {} : { box: limits }),
    ...(onLine === undefined ? {} : { onLine }),
  });
  const death = new AbortController();
  // Every Mount in flight listens on it (hundreds at once in a burst).
  setMaxListeners(0, death.signal);
  let stopping = false;
  void proc.exited.then(() => {
    if (!stopping) death.abort(new Error('the provider process ended'));
  });
  const client = createDriverClient(proc.socketPath);
  return {
    label,
    cold,
    proc,
    client,
    dead: death.signal,
    async stop() {
      stopping = true;
      client.close();
      await proc.stop();
    },
  };
}

// ------------------------------------------------------------------ mounts as the driver sends them

export interface Attempt {
  ok: boolean;
  /** `OK`, or the gRPC status name (`UNAVAILABLE`, `DEADLINE_EXCEEDED`, …). */
  code: string;
  details: string;
  ms: number;
}

/** One Mount; the pod keeps the versions of a successful one (the driver sends them on the next poll). */
export async function attemptMount(
  p: BoxedProvider,
  pod: BoxPod,
  withVersions: boolean,
  deadlineMs: number,
): Promise<Attempt> {
  const t0 = performance.now();
  if (p.dead.aborted) return { ok: false, code: 'CANCELLED', details: 'the provider process had ended', ms: 0 };
  try {
    const res = await p.client.mount(
      { attributes: pod.attributes, targetPath: pod.target, currentObjectVersion: withVersions ? pod.versions : [] },
      { deadlineMs, signal: p.dead },
    );
    pod.versions = res.objectVersion;
    return { ok: true, code: 'OK', details: '', ms: performance.now() - t0 };
  } catch (err) {
    const e = err as { code?: unknown; details?: unknown };
    const code = typeof e?.code === 'number' ? (CODE_NAMES[e.code] ?? String(e.code)) : 'CLIENT_ERROR';
    const details = typeof e?.details === 'string' ? e.details : err instanceof Error ? err.message : String(err);
    return { ok: false, code, details, ms: performance.now() - t0 };
  }
}

export interface WaveOptions {
  /** Send the versions of the last mount (a rotation poll) instead of none (a first mount). */
  withVersions: boolean;
  deadlineMs: number;
  /** Attempts per pod while the answer is UNAVAILABLE (1 = no retry). */
  attempts: number;
}

export interface Wave {
  pods: number;
  /** Outcome of every pod's first attempt, by code. */
  first: Map<string, number>;
  /** Send → the last first attempt's answer. */
  firstLastMs: number;
  /** Outcome of every pod after the driver's retries, by code. */
  final: Map<string, number>;
  /** Send → the last answer of all, retries included. */
  doneMs: number;
  /** Pods that needed more than one attempt, and the most attempts one needed. */
  retried: number;
  maxAttempts: number;
  /** Every UNAVAILABLE answer (first or retried): how long it took, and its message. */
  unavailable: { ms: number; details: string }[];
  /** Pods that did not end OK: their last answer. */
  failures: { pod: string; code: string; details: string; ms: number }[];
  /** The provider ended during the wave. */
  died: boolean;
}

/**
 * Every pod mounts at once, as the kubelet starts a node's pods; a pod answered UNAVAILABLE is
 * retried after 1 s, 2 s, 4 s … (the kubelet's backoff), up to `attempts` attempts.
 */
export async function wave(p: BoxedProvider, pods: readonly BoxPod[], o: WaveOptions): Promise<Wave> {
  const first = new Map<string, number>();
  const final = new Map<string, number>();
  const unavailable: Wave['unavailable'] = [];
  const failures: Wave['failures'] = [];
  const bump = (m: Map<string, number>, k: string): void => {
    m.set(k, (m.get(k) ?? 0) + 1);
  };
  let firstLastMs = 0;
  let retried = 0;
  let maxAttempts = 0;
  const t0 = performance.now();
  await Promise.all(
    pods.map(async (pod) => {
      let n = 1;
      let a = await attemptMount(p, pod, o.withVersions, o.deadlineMs);
      bump(first, a.code);
      firstLastMs = Math.max(firstLastMs, performance.now() - t0);
      if (a.code === 'UNAVAILABLE') unavailable.push({ ms: a.ms, details: a.details });
      while (a.code === 'UNAVAILABLE' && n < o.attempts && !p.dead.aborted) {
        if (n === 1) retried++;
        await sleep(BACKOFF_MS * 2 ** (n - 1));
        n++;
        a = await attemptMount(p, pod, o.withVersions, o.deadlineMs);
        if (a.code === 'UNAVAILABLE') unavailable.push({ ms: a.ms, details: a.details });
      }
      maxAttempts = Math.max(maxAttempts, n);
      bump(final, a.code);
      if (!a.ok) failures.push({ pod: `${pod.namespace}/${pod.name}`, code: a.code, details: a.details, ms: a.ms });
    }),
  );
  return {
    pods: pods.length,
    first,
    firstLastMs,
    final,
    doneMs: performance.now() - t0,
    retried,
    maxAttempts,
    unavailable,
    failures,
    died: p.dead.aborted,
  };
}

/** `OK 100, UNAVAILABLE 10` (OK first). */
export function tally(m: ReadonlyMap<string, number>): string {
  return (
    [...m]
      .sort((a, b) => (a[0] === 'OK' ? -1 : b[0] === 'OK' ? 1 : b[1] - a[1]))
      .map(([k, n]) => `${k} ${n}`)
      .join(', ') || 'none'
  );
}

// ------------------------------------------------------------------ the scenario's phases

const OVERLOAD = 'the overload';
const NO_BOX = 'no cgroup box here';
const NOT_ASKED = 'not asked for';

interface Death {
  phase: string;
  /** The node phase (a restart of the node's provider), the overload, or the unboxed bursts. */
  scope: 'node' | 'overload' | 'unboxed';
  exit: ExitInfo;
  stats: BoxStats | undefined;
  stderr: string[];
}

interface Steady {
  /** Polls asked for, and made (fewer when the time budget ran out or the provider died). */
  polls: number;
  made: number;
  wallMs: number;
  ok: number;
  failures: Map<string, number>;
  /** The box's memory before the first poll and after the last. */
  start: BoxStats | undefined;
  end: BoxStats | undefined;
  /** Fitted growth per 100 polls of what cannot be reclaimed: anonymous memory and tmpfs (RSS without a box). */
  slopePer100: number;
  /** V8 heap in use before and after (a heap that grows until a collection is not a leak). */
  heapStart: number;
  heapEnd: number;
}

interface NodeResults {
  burst?: Wave;
  burstStats?: BoxStats | undefined;
  rounds: Wave[];
  steady?: Steady;
  stats?: BoxStats | undefined;
  startupMs: number;
  /** Highest V8 heap in use seen on /metrics (every 5 s) during the burst and the rounds. */
  heapPeak: number;
}

interface FloodResults {
  wave: Wave;
  alive: boolean;
  stats: BoxStats | undefined;
  heapPeak: number;
}

interface UnboxedRss {
  pods: number;
  wave: Wave;
  rss: ProcSample | undefined;
  /** V8 heap in use at the RSS sample. */
  heap: number;
}

interface Unboxed {
  idle: ProcSample;
  small: UnboxedRss;
  large: UnboxedRss;
  /** The small burst's pods mounting `waves` times: the large burst's number of mounts with no more pods. */
  sameMounts: UnboxedRss & { waves: number };
  /** NaN when the polls could not be measured (a poll failed, or the provider had died). */
  cpuMsPerPoll: number;
  cpuPolls: number;
}

interface Results {
  limits: BoxLimits;
  sizes: BoxSizes;
  starts: { wallMs: number; cpuMs: number }[];
  node?: NodeResults;
  flood?: FloodResults;
  unboxed?: Unboxed;
  deaths: Death[];
  /** Phases that could not run, and why. */
  skipped: Map<string, string>;
  /** Boxed provider starts, and how many of them cold (node's pages out of the page cache). */
  boxedStarts: number;
  coldStarts: number;
  /** The providers' NODE_OPTIONS. */
  nodeOptions: string;
  /** NODE_OPTIONS of the providers without a cgroup: the heap cap they would have in the box. */
  unboxedNodeOptions: string;
  /** How the providers used Node's compile cache (as the image, or why not). */
  compileCache: string;
  /** Environment and flags added to the providers' (--provider-env, --provider-flags), as `K=V … --flag …`; empty for
   * none. */
  extraEnv: string;
}

interface Ctx {
  o: BenchOptions;
  io: BenchIO;
  env: BoxEnv;
  emu: Emulator;
  cluster: BoxCluster;
  limits: BoxLimits | undefined;
  running: Set<BoxedProvider>;
  r: Results;
}

async function start(ctx: Ctx, label: string, boxed: boolean): Promise<BoxedProvider> {
  ctx.io.stderr(`  starting provider: ${label}`);
  const env = boxed ? ctx.env : { ...ctx.env, nodeOptions: ctx.r.unboxedNodeOptions };
  const p = await startBoxedProvider(env, label, boxed ? ctx.limits : undefined);
  ctx.running.add(p);
  if (p.proc.box !== undefined) ctx.r.boxedStarts++;
  if (p.cold) ctx.r.coldStarts++;
  return p;
}

async function stop(ctx: Ctx, p: BoxedProvider): Promise<void> {
  ctx.running.delete(p);
  await p.stop();
}

/** Records how a provider died (it is a restart in a cluster). */
function recordDeath(ctx: Ctx, p: BoxedProvider, phase: string, scope: Death['scope']): void {
  const exit = p.proc.exit ?? { code: null, signal: null };
  const lines = p.proc
    .stderrTail()
    .split('\n')
    .map((l) => l.trimEnd())
    .filter((l) => l !== '');
  // V8's fatal error ends in a native stack trace; its own lines say what happened.
  const fatal = lines.filter((l) => /FATAL ERROR|out of memory|Mark-Compact|Scavenge/.test(l)).slice(-3);
  ctx.r.deaths.push({
    phase,
    scope,
    exit,
    stats: p.proc.box?.stats(),
    stderr: fatal.length > 0 ? fatal : lines.slice(-6),
  });
  ctx.io.stderr(`  the provider died during ${phase}: ${describeExit(exit)}`);
}

/**
 * Whether the provider has ended. A process that just died may not have been reaped yet: its calls
 * failed (UNAVAILABLE, connection lost) before its exit is known, so give the exit a moment.
 */
async function ended(p: BoxedProvider): Promise<boolean> {
  await Promise.race([p.proc.exited, sleep(1_000)]);
  return p.proc.exit !== undefined;
}

async function phaseStarts(ctx: Ctx): Promise<void> {
  const n = ctx.o.boxSizes.starts;
  for (let i = 0; i < n; i++) {
    const p = await start(ctx, `start-up ${i + 1}/${n} (boxed)`, true);
    ctx.r.starts.push({ wallMs: p.proc.startupWallMs, cpuMs: p.proc.startupCpuMs });
    await stop(ctx, p);
  }
}

/**
 * `n` polls of one pod, one after another, with the versions of the last mount. A provider that
 * thrashes (its pages evicted and read again) can take minutes per poll: the polls stop once
 * `budgetMs` is spent, and the figure says how many were made.
 */
async function steadyPolls(
  p: BoxedProvider,
  pod: BoxPod,
  n: number,
  deadlineMs: number,
  budgetMs: number,
): Promise<Steady> {
  const box = p.proc.box;
  // Page cache comes and goes with reclaim (a cold box sits at its limit); a leak shows in anonymous memory.
  const mem = (): number => {
    const st = box?.stats();
    return st === undefined ? p.proc.sample().rssBytes : st.anonBytes + st.shmemBytes;
  };
  const start = box?.stats();
  const heapStart = await p.proc.heapUsed();
  const points: { x: number; y: number }[] = [{ x: 0, y: mem() }];
  const every = Math.max(1, Math.floor(n / 30));
  const failures = new Map<string, number>();
  let ok = 0;
  let made = 0;
  const t0 = performance.now();
  for (let i = 1; i <= n && !p.dead.aborted && performance.now() - t0 < budgetMs; i++) {
    const a = await attemptMount(p, pod, true, deadlineMs);
    made = i;
    if (a.ok) ok++;
    else failures.set(a.code, (failures.get(a.code) ?? 0) + 1);
    if (i % every === 0 || i === n) points.push({ x: i, y: mem() });
  }
  const wallMs = performance.now() - t0;
  const end = box?.stats();
  return {
    polls: n,
    made,
    ok,
    failures,
    start,
    end,
    slopePer100: slope(points) * 100,
    wallMs,
    heapStart,
    heapEnd: await p.proc.heapUsed(),
  };
}

async function phaseNode(ctx: Ctx): Promise<void> {
  const { o, cluster, emu } = ctx;
  const s = o.boxSizes;
  const deadlineMs = s.deadlineS * 1000;
  const pods = await cluster.pods(s.pods, 'app');
  const p = await start(ctx, `node: ${s.pods} pods (boxed)`, true);
  const res: NodeResults = { rounds: [], startupMs: p.proc.startupWallMs, heapPeak: Number.NaN };
  ctx.r.node = res;
  const heap = watchHeap(p);
  try {
    emu.setLatency(o.latencyMs);
    ctx.io.stderr(`  burst: ${s.pods} first mounts at once`);
    res.burst = await wave(p, pods, { withVersions: false, deadlineMs, attempts: s.attempts });
    res.burstStats = p.proc.box?.stats();
    if (res.burst.died || (await ended(p))) return recordDeath(ctx, p, 'the burst', 'node');
    for (let i = 0; i < s.rounds; i++) {
      ctx.io.stderr(`  rotation round ${i + 1}/${s.rounds}`);
      const w = await wave(p, pods, { withVersions: true, deadlineMs, attempts: s.attempts });
      res.rounds.push(w);
      if (w.died || (await ended(p))) return recordDeath(ctx, p, `rotation round ${i + 1}`, 'node');
    }
    res.heapPeak = await heap.stop();
    ctx.io.stderr(`  ${s.steadyPolls} steady polls of one pod`);
    res.steady = await steadyPolls(p, pods[0] as BoxPod, s.steadyPolls, deadlineMs, STEADY_BUDGET_MS);
    if (p.dead.aborted || (await ended(p))) return recordDeath(ctx, p, 'the steady polls', 'node');
    res.stats = p.proc.box?.stats();
  } finally {
    if (!Number.isFinite(res.heapPeak)) res.heapPeak = await heap.stop();
    emu.setLatency(0);
    await stop(ctx, p);
  }
}

async function phaseFlood(ctx: Ctx): Promise<void> {
  const { o, cluster, emu } = ctx;
  const s = o.boxSizes;
  const pods = await cluster.pods(s.flood, 'flood');
  const p = await start(ctx, `overload: ${s.flood} first mounts (boxed)`, true);
  const heap = watchHeap(p);
  try {
    emu.setLatency(o.latencyMs);
    ctx.io.stderr(`  ${s.flood} concurrent first mounts, one attempt each`);
    const w = await wave(p, pods, { withVersions: false, deadlineMs: s.deadlineS * 1000, attempts: 1 });
    const alive = !(await ended(p));
    ctx.r.flood = { wave: w, alive, stats: p.proc.box?.stats(), heapPeak: await heap.stop() };
    if (!alive) recordDeath(ctx, p, OVERLOAD, 'overload');
  } finally {
    await heap.stop();
    emu.setLatency(0);
    await stop(ctx, p);
  }
}

/**
 * The highest V8 heap in use, read from the provider's /metrics every 5 s: how close it came to the
 * old-space cap of NODE_OPTIONS (V8 aborts the process past it). Rarely, so the scrapes cost the
 * box about what the kubelet's probes do.
 */
function watchHeap(p: BoxedProvider, everyMs = 5_000): { stop(): Promise<number> } {
  let peak = Number.NaN;
  let running = true;
  const loop = (async () => {
    while (running && !p.dead.aborted) {
      const h = await p.proc.heapUsed();
      if (Number.isFinite(h)) peak = Number.isFinite(peak) ? Math.max(peak, h) : h;
      for (let waited = 0; running && waited < everyMs; waited += 100) await sleep(100);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return peak;
    },
  };
}

/**
 * NODE_OPTIONS for a provider without a cgroup, with the heap cap the image has in the box: node
 * reads `--max-old-space-size-percentage` against the memory it sees, which without a cgroup is
 * the machine's (a heap of gigabytes, collected lazily, so RSS would show garbage not yet
 * collected, not memory kept); the same percentage of the box's limit is given as
 * `--max-old-space-size` instead. Options without the percentage are kept as they are.
 */
export function unboxedNodeOptions(nodeOptions: string, limitBytes: number): string {
  return nodeOptions.replace(
    /--max-old-space-size-percentage=(\d+(?:\.\d+)?)/,
    (_m, pct: string) => `--max-old-space-size=${Math.floor(((Number(pct) / 100) * limitBytes) / MiB)}`,
  );
}

/**
 * The old-space cap NODE_OPTIONS gives V8, in bytes: `--max-old-space-size=48` → 48 MiB;
 * `--max-old-space-size-percentage=40` → 40% of the memory limit Node reads from its cgroup (the
 * box's `limitBytes`); NaN when there is none or it cannot be told.
 */
export function oldSpaceCap(nodeOptions: string | undefined, limitBytes: number): number {
  const pct = /--max-old-space-size-percentage=(\d+(?:\.\d+)?)/.exec(nodeOptions ?? '');
  if (pct !== null) return (Number(pct[1]) / 100) * limitBytes;
  const m = /--max-old-space-size=(\d+)/.exec(nodeOptions ?? '');
  return m === null ? Number.NaN : Number(m[1]) * MiB;
}

interface UnboxedBurst {
  p: BoxedProvider;
  pods: BoxPod[];
  wave: Wave;
  /** Undefined when the provider died in the burst. */
  rss: ProcSample | undefined;
  /** V8 heap in use a second after the last answer (NaN when unreadable). */
  heap: number;
}

/**
 * A burst of `n` first mounts on a fresh unboxed provider, and its RSS a second after the last
 * answer; with `waves` > 1, the same pods mount again (as first mounts) that many times in all, one
 * wave after another: as many mounts as a larger burst, with no more pods.
 */
async function unboxedBurst(ctx: Ctx, n: number, waves = 1): Promise<UnboxedBurst> {
  const pods = await ctx.cluster.pods(n, `rss${n}x${waves}`);
  const p = await start(ctx, `RSS: ${n} pods${waves > 1 ? ` × ${waves} waves` : ''} (no cgroup)`, false);
  ctx.emu.setLatency(ctx.o.latencyMs);
  let w = await wave(p, pods, {
    withVersions: false,
    deadlineMs: ctx.o.boxSizes.deadlineS * 1000,
    attempts: ctx.o.boxSizes.attempts,
  });
  for (let i = 1; i < waves && !w.died; i++) {
    const next = await wave(p, pods, {
      withVersions: false,
      deadlineMs: ctx.o.boxSizes.deadlineS * 1000,
      attempts: ctx.o.boxSizes.attempts,
    });
    // A wave that failed anywhere is the one reported.
    if ((next.final.get('OK') ?? 0) < next.pods || (w.final.get('OK') ?? 0) === w.pods) w = next;
  }
  ctx.emu.setLatency(0);
  if (await ended(p)) {
    recordDeath(ctx, p, `the ${n}-pod burst (no cgroup)`, 'unboxed');
    return { p, pods, wave: w, rss: undefined, heap: Number.NaN };
  }
  // ended() waited a second for an exit: the sample is a second after the last answer.
  return { p, pods, wave: w, rss: p.proc.sample(), heap: await p.proc.heapUsed() };
}

async function phaseUnboxed(ctx: Ctx): Promise<void> {
  const [smallN, largeN] = ctx.o.boxSizes.rssPods;
  const small = await unboxedBurst(ctx, smallN);
  let idle: ProcSample | undefined;
  try {
    // Idle RSS of its own fresh process: a provider that has mounted nothing yet.
    const fresh = await start(ctx, 'idle (no cgroup)', false);
    await sleep(1_000);
    idle = fresh.proc.sample();
    await stop(ctx, fresh);
    // CPU per warm poll on the small burst's process: sequential rotation polls of one pod, no latency.
    const polls = ctx.o.cpuPolls;
    let cpuMsPerPoll = Number.NaN;
    if (small.rss !== undefined) {
      const pod = small.pods[0] as BoxPod;
      for (let i = 0; i < 20; i++) await attemptMount(small.p, pod, true, 60_000);
      const s0 = small.p.proc.sample();
      let failed = 0;
      for (let i = 0; i < polls; i++) if (!(await attemptMount(small.p, pod, true, 60_000)).ok) failed++;
      if (failed === 0 && !(await ended(small.p))) cpuMsPerPoll = (small.p.proc.sample().cpuMs - s0.cpuMs) / polls;
    }
    await stop(ctx, small.p);
    const large = await unboxedBurst(ctx, largeN);
    await stop(ctx, large.p);
    // The control: as many first mounts as the large burst, made by the small burst's number of pods.
    const waves = Math.max(1, Math.round(largeN / smallN));
    const same = await unboxedBurst(ctx, smallN, waves);
    await stop(ctx, same.p);
    ctx.r.unboxed = {
      idle,
      small: { pods: smallN, wave: small.wave, rss: small.rss, heap: small.heap },
      large: { pods: largeN, wave: large.wave, rss: large.rss, heap: large.heap },
      sameMounts: { pods: smallN, waves, wave: same.wave, rss: same.rss, heap: same.heap },
      cpuMsPerPoll,
      cpuPolls: polls,
    };
  } finally {
    if (ctx.running.has(small.p)) await stop(ctx, small.p);
  }
}

/** A tmpfs for the pods' volumes when there is one: the driver mounts each volume as tmpfs, and the provider's cgroup
 * pays for what it writes there. */
export function volumeRoot(): string {
  return isTmpfs('/dev/shm') ? '/dev/shm' : os.tmpdir();
}

export async function runBox(o: BenchOptions, io: BenchIO): Promise<number> {
  const t0 = performance.now();
  const loadBefore = os.loadavg()[0] ?? Number.NaN;
  const support = cgroupSupport();
  const limits: BoxLimits = { memoryBytes: o.boxSizes.memoryMiB * MiB, cpuMillis: o.boxSizes.cpuMillis };
  const dir = await mkdtemp(path.join(os.tmpdir(), 'csi-aws-box-'));
  const volumes = await mkdtemp(path.join(volumeRoot(), 'csi-aws-box-volumes-'));
  const emu = await startEmulator({ latencyMs: 0 });
  const kubeconfig = path.join(dir, 'kubeconfig');
  await emu.writeKubeconfig(kubeconfig);
  const s = o.boxSizes;
  const cluster = new BoxCluster(emu, volumes, { teams: s.teams, objects: s.objects, secretBytes: s.secretBytes });
  const env: BoxEnv = {
    node: o.node,
    mainJs: o.provider,
    emulatorUrl: emu.url,
    kubeconfig,
    dir,
    kubeletRoot: cluster.kubeletRoot,
    nodeOptions: `${DOCKERFILE_NODE_OPTIONS} ${o.providerNodeOptions}`.trim(),
    extraEnv: o.providerEnv,
    extraFlags: o.providerFlags,
    ...(support.ok && s.coldNode ? { cold: coldCopy(o.node, dir) } : {}),
  };
  // The image runs the bundle with a compile cache filled at build time; so does the bench when it runs the bundle.
  const compileCache =
    path.basename(path.dirname(o.provider)) === 'bundle'
      ? fillCompileCache(o.node, o.provider, dir)
      : { why: 'the provider is not the bundle the image runs' };
  if ('dir' in compileCache) env.compileCache = compileCache;
  const r: Results = {
    limits,
    sizes: s,
    starts: [],
    deaths: [],
    skipped: new Map(),
    boxedStarts: 0,
    coldStarts: 0,
    nodeOptions: env.nodeOptions ?? '',
    unboxedNodeOptions: unboxedNodeOptions(env.nodeOptions ?? '', limits.memoryBytes),
    extraEnv: [...Object.entries(o.providerEnv).map(([k, v]) => `${k}=${v}`), ...o.providerFlags].join(' '),
    compileCache:
      'dir' in compileCache
        ? `filled as the image's (${compileCache.files.length} files), NODE_COMPILE_CACHE set for every provider`
        : `none: ${compileCache.why}`,
  };
  const ctx: Ctx = { o, io, env, emu, cluster, limits: support.ok ? limits : undefined, running: new Set(), r };
  let code = 0;
  try {
    io.stderr(
      `bench --box: emulator ${emu.url}; provider ${o.provider}; ` +
        (support.ok ? `cgroup v${support.version}` : `no cgroup (${support.why})`),
    );
    // A phase that fails (a provider that cannot start in the box, say) is reported; the others still run.
    const phase = async (name: string, what: string, fn: (c: Ctx) => Promise<void>): Promise<void> => {
      io.stderr(what);
      try {
        await fn(ctx);
      } catch (err) {
        code = 1;
        r.skipped.set(name, err instanceof Error ? err.message : String(err));
        io.stderr(`  ${name} failed: ${err instanceof Error ? err.message : String(err)}`);
      }
    };
    const asked = new Set<string>(s.phases);
    const run = async (name: BoxPhase, what: string, fn: (c: Ctx) => Promise<void>, boxed: boolean): Promise<void> => {
      if (!asked.has(name)) r.skipped.set(name, `${NOT_ASKED} (--box-phases)`);
      else if (boxed && !support.ok) r.skipped.set(name, `${NO_BOX}: ${support.why}`);
      else await phase(name, what, fn);
    };
    await run('starts', 'start-ups in the box', phaseStarts, true);
    await run('node', 'the node in the box: burst, rotations, steady polls', phaseNode, true);
    await run('flood', 'overload in the box', phaseFlood, true);
    await run('unboxed', 'no cgroup: idle RSS, RSS after bursts, CPU per poll', phaseUnboxed, false);
    print(io, o, r, support.ok ? `v${support.version}` : undefined);
  } finally {
    for (const p of [...ctx.running]) await stop(ctx, p).catch(() => {});
    await emu.close();
    await rm(dir, { recursive: true, force: true });
    await rm(volumes, { recursive: true, force: true });
  }
  const cpus = os.cpus();
  io.stdout(
    `\nBox bench finished in ${secs(performance.now() - t0)} on ` +
      `${cpus.length} × ${cpus[0]?.model.trim() ?? 'unknown CPU'}, node ${process.version}.`,
  );
  io.stdout(
    `Load average (1 min) at start ${loadBefore.toFixed(2)}, at ` +
      `end ${(os.loadavg()[0] ?? Number.NaN).toFixed(2)} (the unboxed figures assume free cores).`,
  );
  return code;
}

// ------------------------------------------------------------------ printing

/** The figures' names, in print order (the smoke test checks each appears). */
export const BOX_FIGURES = [
  'burst: mounts OK',
  'burst: restarts',
  'burst: time to last answer',
  'rotation round',
  'steady polls of one pod',
  'peak cgroup memory',
  'overload',
  'start-up in the box',
  'RSS after',
  'CPU per warm poll',
  'idle RSS',
] as const;

function ok(b: boolean): Verdict {
  return b ? 'ok' : 'MISSED';
}

/** Cuts a line to MAX_COLUMNS, marking the cut. */
function fit(line: string, width = MAX_COLUMNS): string {
  return line.length <= width ? line : `${line.slice(0, width - 1)}…`;
}

/** Prose wrapped at spaces to MAX_COLUMNS, continuation lines indented by two. */
export function wrap(text: string, width = MAX_COLUMNS): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    const next = line === '' ? word : `${line} ${word}`;
    if (next.length > width && line.trim() !== '') {
      lines.push(line);
      line = `  ${word}`;
    } else {
      line = next;
    }
  }
  if (line !== '') lines.push(line);
  return lines.map((l) => fit(l, width));
}

function print(io: BenchIO, o: BenchOptions, r: Results, cgroup: string | undefined): void {
  const out = (text = ''): void => {
    for (const line of text.split('\n')) io.stdout(fit(line));
  };
  const say = (text: string): void => {
    for (const line of wrap(text)) io.stdout(line);
  };
  const s = r.sizes;
  const L = r.limits;
  const limitsText = `${L.cpuMillis}m CPU / ${mib(L.memoryBytes)}`;
  const notes: string[] = [];
  const rows: string[][] = [];
  const na = (why: string): [string, string] => [`n/a: ${why}`, 'n/a'];
  /** Why a phase did not run, short (the full reason is printed below the table). */
  const skip = (phase: string): string | undefined => {
    const why = r.skipped.get(phase);
    if (why === undefined) return undefined;
    if (why.startsWith(NOT_ASKED)) return 'not asked for (--box-phases)';
    return why.startsWith(NO_BOX) ? 'no cgroup (see below)' : 'failed (see below)';
  };

  if (o.quick) out('QUICK MODE: tiny sizes, the figures below only show that every phase runs.\n');
  out(
    `## Box (the chart's resources: requests = limits = ${limitsText}; ${s.pods} pods of ${s.teams} service accounts)`,
  );
  out(
    `${o.latencyMs} ms on every AWS and Kubernetes answer; every pod has its own tokens; ${s.objects} secrets ` +
      `of ${s.secretBytes} B per class,`,
  );
  out(
    `one with jmesPath; no region parameter (NODE_NAME); ${s.deadlineS} s deadline per attempt; UNAVAILABLE retried ` +
      `(1 s, 2 s, …; ≤ ${s.attempts} attempts).`,
  );

  const node = r.node;
  const nodeDeath = r.deaths.find((d) => d.scope === 'node');
  const notRun = (what: string): [string, string] =>
    na(nodeDeath ? `not run: the provider died in ${nodeDeath.phase}` : (skip('node') ?? `${what} did not run`));

  // Burst
  const b = node?.burst;
  if (b) {
    const okFinal = b.final.get('OK') ?? 0;
    rows.push([
      `${BOX_FIGURES[0]} (after retries)`,
      `${okFinal}/${b.pods} (first attempts: ${b.first.get('OK') ?? 0} OK)`,
      `${b.pods} OK`,
      ok(okFinal === b.pods),
    ]);
    notes.push(`Burst, first attempts: ${tally(b.first)}; after the driver's retries: ${tally(b.final)}.`);
    const restarts = r.deaths.filter((d) => d.scope === 'node').length;
    const how = nodeDeath
      ? ` (${describeExit(nodeDeath.exit)}, ${nodeDeath.stats?.oomKills ?? 0} OOM kills, in ${nodeDeath.phase})`
      : '';
    rows.push([BOX_FIGURES[1], `${restarts}${how}`, '0', ok(restarts === 0)]);
    rows.push([
      `${BOX_FIGURES[2]} (all sent at once)`,
      `${secs(b.firstLastMs)} first attempts; ${secs(b.doneMs)} with retries`,
      '≤ 60 s',
      b.died ? 'MISSED' : verdict(b.doneMs, 60_000),
    ]);
    if (b.retried > 0)
      notes.push(`Burst: ${b.retried} pods retried on UNAVAILABLE, at most ${b.maxAttempts} attempts.`);
    const bs = node.burstStats;
    if (bs) {
      notes.push(
        `Burst: box CPU ${secs(bs.cpuMs ?? Number.NaN)}, throttled ` +
          `in ${bs.throttledPeriods} of ${bs.periods} periods; ` +
          `working set peak ${mib(bs.peakWorkingSetBytes)}, anon peak ${mib(bs.peakAnonBytes)}, charge ` +
          `peak ${mib(bs.peakBytes)}.`,
      );
    }
  } else {
    for (const f of BOX_FIGURES.slice(0, 3)) rows.push([f, ...notRun('the burst')]);
  }

  // Rotation rounds
  if (node && node.rounds.length > 0) {
    node.rounds.forEach((w, i) => {
      const okN = w.final.get('OK') ?? 0;
      rows.push([
        `${BOX_FIGURES[3]} ${i + 1}/${s.rounds} (all ${w.pods} pods poll)`,
        `${okN}/${w.pods} OK in ${secs(w.doneMs)}` +
          (w.retried > 0 ? ` (first attempts: ${w.first.get('OK') ?? 0} OK)` : ''),
        '≤ 30 s, all OK',
        ok(okN === w.pods && !w.died && w.doneMs <= 30_000),
      ]);
    });
  } else if (s.rounds > 0) {
    rows.push([BOX_FIGURES[3], ...notRun('the rotation rounds')]);
  }

  // Steady polls
  const st = node?.steady;
  if (st) {
    const growth = st.slopePer100 * (st.polls / 100);
    const anon = (x: BoxStats | undefined): number => (x === undefined ? Number.NaN : x.anonBytes + x.shmemBytes);
    const budget = st.made < st.polls ? ' (budget)' : '';
    const slopeKiB = st.slopePer100 / 1024;
    rows.push([
      `${st.polls} ${BOX_FIGURES[4]}`,
      `${st.ok}/${st.made} OK${budget}; ${(anon(st.start) / MiB).toFixed(1)} → ${mib(anon(st.end))}; ` +
        `${slopeKiB >= 0 ? '+' : ''}${slopeKiB.toFixed(0)} KiB/100`,
      `all OK, flat (≤ ${FLAT_BYTES / MiB} MiB)`,
      ok(st.ok === st.polls && growth <= FLAT_BYTES),
    ]);
    if (st.made < st.polls && !nodeDeath)
      notes.push(
        `Steady polls stopped after ${st.made} of ${st.polls} (${secs(st.wallMs)}): ` +
          `the ${STEADY_BUDGET_MS / 1000} s budget ran out.`,
      );
    if (st.failures.size > 0) notes.push(`Steady polls that failed: ${tally(st.failures)}.`);
    if (st.start && st.end) {
      notes.push(
        `Steady polls, box memory at start → end: ` +
          `charged ${mib(st.start.memoryBytes)} → ${mib(st.end.memoryBytes)}, working ` +
          `set ${mib(st.start.workingSetBytes)} → ` +
          `${mib(st.end.workingSetBytes)}, anon + tmpfs ${mib(anon(st.start))} → ${mib(anon(st.end))} (the figure); ` +
          `V8 heap in use ${mib(st.heapStart)} → ${mib(st.heapEnd)}.`,
      );
    }
  } else {
    rows.push([BOX_FIGURES[4], ...notRun('the steady polls')]);
  }

  // Peak memory over the node phase (also when it died: the kernel's peak is the evidence)
  const peakStats = node?.stats ?? nodeDeath?.stats ?? node?.burstStats;
  if (peakStats) {
    rows.push([
      `${BOX_FIGURES[5]} (burst, rounds, steady)`,
      `working set ${mib(peakStats.peakWorkingSetBytes)} (anon ${mib(peakStats.peakAnonBytes)}); ` +
        `${peakStats.oomKills} OOM kills`,
      '≤ 85 MiB working set',
      verdict(peakStats.peakWorkingSetBytes, 85 * MiB),
    ]);
    notes.push(
      `Node phase memory: charge peak ${mib(peakStats.peakBytes)}` +
        `${peakStats.peakSource === 'sampled' ? ' (sampled)' : ' (kernel)'} of ${mib(L.memoryBytes)}; now page cache ` +
        `${mib(peakStats.fileBytes)}, tmpfs ${mib(peakStats.shmemBytes)}; major ` +
        `faults ${peakStats.majorFaults}, file refaults ${peakStats.fileRefaults ?? 'n/a'}` +
        `${peakStats.limitHits === undefined ? '' : `, limit hit ${peakStats.limitHits}×`}.`,
    );
  } else {
    rows.push([BOX_FIGURES[5], ...na(skip('node') ?? 'no box')]);
  }

  // Overload
  const f = r.flood;
  if (f) {
    const w = f.wave;
    const okN = w.first.get('OK') ?? 0;
    const unav = w.first.get('UNAVAILABLE') ?? 0;
    const other = w.pods - okN - unav;
    const slowest = w.unavailable.reduce((m, u) => Math.max(m, u.ms), 0);
    rows.push([
      `${BOX_FIGURES[6]}: ${w.pods} first mounts at once`,
      `${f.alive ? 'alive' : 'DIED'}; ${okN} OK, ` +
        `${unav} UNAVAILABLE${unav > 0 ? ` ≤ ${secs(slowest)}` : ''}, ${other} other`,
      `alive; OK or UNAV. ≤ ${FAST_UNAVAILABLE_MS / 1000} s`,
      ok(f.alive && other === 0 && slowest <= FAST_UNAVAILABLE_MS),
    ]);
    if (unav > 0) {
      const ms = w.unavailable.map((u) => u.ms).sort((a, b) => a - b);
      const at = (q: number): number => ms[Math.min(ms.length - 1, Math.floor(q * ms.length))] ?? Number.NaN;
      notes.push(
        `Overload, UNAVAILABLE answered after: median ${secs(median(ms))}, 90% within ${secs(at(0.9))}, ` +
          `${ms.filter((x) => x <= FAST_UNAVAILABLE_MS).length} of ${ms.length} ` +
          `within ${FAST_UNAVAILABLE_MS / 1000} s; ` +
          `last answer of all after ${secs(w.firstLastMs)}.`,
      );
    }
    if (other > 0)
      notes.push(
        `Overload, other answers: ${tally(new Map([...w.first].filter(([k]) => k !== 'OK' && k !== 'UNAVAILABLE')))}` +
          `; last answer after ${secs(w.firstLastMs)}.`,
      );
    if (f.stats) {
      notes.push(
        `Overload: working set peak ${mib(f.stats.peakWorkingSetBytes)} (anon ${mib(f.stats.peakAnonBytes)}), ` +
          `charge peak ${mib(f.stats.peakBytes)}, ` +
          `${f.stats.oomKills} OOM kills, box CPU ${secs(f.stats.cpuMs ?? Number.NaN)}.`,
      );
    }
  } else {
    rows.push([`${BOX_FIGURES[6]}: ${s.flood} first mounts at once`, ...na(skip('flood') ?? 'did not run')]);
  }

  // Start-up
  if (r.starts.length > 0) {
    const walls = r.starts.map((x) => x.wallMs);
    const cpus = r.starts.map((x) => x.cpuMs);
    rows.push([
      `${BOX_FIGURES[7]} (median of ${walls.length})`,
      `${secs(median(walls))} (max ${secs(Math.max(...walls))}; CPU ${median(cpus).toFixed(0)} ms)`,
      '≤ 1.5 s',
      verdict(median(walls), 1_500),
    ]);
  } else {
    rows.push([BOX_FIGURES[7], ...na(skip('starts') ?? 'did not run')]);
  }

  // Unboxed
  const u = r.unboxed;
  if (u) {
    const figure = `${BOX_FIGURES[8]} ${u.large.pods}-pod − ${u.small.pods}-pod burst (no cgroup)`;
    const bothOk =
      (u.small.wave.final.get('OK') ?? 0) === u.small.pods && (u.large.wave.final.get('OK') ?? 0) === u.large.pods;
    const died = r.deaths.filter((x) => x.scope === 'unboxed');
    if (u.large.rss !== undefined && u.small.rss !== undefined) {
      const d = u.large.rss.rssBytes - u.small.rss.rssBytes;
      rows.push([
        figure,
        `${d >= 0 ? '+' : ''}${mib(d)} (${mib(u.large.rss.rssBytes)} − ${mib(u.small.rss.rssBytes)})` +
          (bothOk ? '' : '; NOT all OK'),
        '≤ 10 MiB',
        bothOk ? verdict(d, 10 * MiB) : 'MISSED',
      ]);
    } else {
      rows.push([
        figure,
        `DIED in ${died
          .map((x) => `${x.phase.replace(/^the /, '').replace(/ \(no cgroup\)$/, '')} (${describeExit(x.exit)})`)
          .join(', ')}`,
        '≤ 10 MiB',
        'MISSED',
      ]);
    }
    const cpu = Number.isFinite(u.cpuMsPerPoll)
      ? `${u.cpuMsPerPoll.toFixed(2)} ms (${u.cpuPolls} polls)`
      : 'n/a: polls failed or the provider died';
    rows.push([`${BOX_FIGURES[9]}, ${s.objects} objects (no cgroup)`, cpu, '≤ 5 ms', verdict(u.cpuMsPerPoll, 5)]);
    rows.push([
      `${BOX_FIGURES[10]} 1 s after start (no cgroup)`,
      `${mib(u.idle.rssBytes)} (anon ${mib(u.idle.anonBytes)})`,
      '≤ 60 MiB',
      verdict(u.idle.rssBytes, 60 * MiB),
    ]);
    if (!bothOk)
      notes.push(
        `RSS bursts: ${u.small.pods} pods ${tally(u.small.wave.final)}; ` +
          `${u.large.pods} pods ${tally(u.large.wave.final)}.`,
      );
    const m = u.sameMounts;
    if (u.small.rss !== undefined && u.large.rss !== undefined && m.rss !== undefined) {
      notes.push(
        `RSS after the bursts (no cgroup): ${u.small.pods} pods ${mib(u.small.rss.rssBytes)}, ` +
          `V8 heap in use ${mib(u.small.heap)}; ${u.large.pods} pods ${mib(u.large.rss.rssBytes)}, ` +
          `heap ${mib(u.large.heap)}; the same ${m.pods * m.waves} first mounts made by ${m.pods} pods ` +
          `(${m.waves} waves) ${mib(m.rss.rssBytes)}, heap ${mib(m.heap)} (${tally(m.wave.final)} in its last wave): ` +
          `what the large burst adds over the small one and the control does too comes with the mounts made, ` +
          `not with the pods.`,
      );
    }
  } else {
    for (const fig of BOX_FIGURES.slice(8)) rows.push([fig, ...na(skip('unboxed') ?? 'did not run')]);
  }

  // A measured text too long for its column is cut there and given whole below the table.
  for (const row of rows) {
    const m = row[1] ?? '';
    if (m.length > MEASURED_COLUMNS) {
      notes.unshift(`${row[0]}: ${m}`);
      row[1] = fit(m, MEASURED_COLUMNS);
    }
  }
  out();
  out(table(['figure', 'measured', 'target', 'verdict'], rows));

  say(
    `Start-up = exec → listening socket. Fast UNAVAILABLE = answered within ${FAST_UNAVAILABLE_MS / 1000} s. ` +
      `Working set = box charge − inactive ` +
      `page cache (the kubelet's figure), sampled every 50 ms. Steady polls: anon + tmpfs at start → end; fitted ` +
      `slope per 100 polls; ` +
      `flat = fitted growth over the polls ≤ ${FLAT_BYTES / MiB} MiB.`,
  );
  out();
  out(
    cgroup
      ? `Box: cgroup ${cgroup}, CPU quota ${(L.cpuMillis / 1000) * CFS_PERIOD_US} µs per ${CFS_PERIOD_US} µs, ` +
          `memory limit ${mib(L.memoryBytes)} (swap counted).`
      : 'Box: none.',
  );
  for (const [phase, why] of r.skipped) say(`Phase ${phase} did not run: ${why}`);
  const heaps = [
    node && Number.isFinite(node.heapPeak) ? `${mib(node.heapPeak)} in the burst and rounds` : '',
    f && Number.isFinite(f.heapPeak) ? `${mib(f.heapPeak)} in the overload` : '',
  ].filter((x) => x !== '');
  if (r.unboxed && r.unboxedNodeOptions !== r.nodeOptions) {
    say(
      `Unboxed providers run with NODE_OPTIONS "${r.unboxedNodeOptions}": the heap cap the image has ` +
        `under the box's ${mib(L.memoryBytes)}. NODE_OPTIONS' percentage alone would cap the old space at a ` +
        `share of this machine's ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, where V8 collects lazily and ` +
        `RSS shows garbage not yet collected more than memory kept.`,
    );
  }
  if (heaps.length > 0)
    say(
      `V8 heap in use (/metrics every 5 s), peak: ${heaps.join(', ')}; old space capped ` +
        `at ${mib(oldSpaceCap(r.nodeOptions, L.memoryBytes))} in the box (NODE_OPTIONS "${r.nodeOptions}").`,
    );
  if (r.boxedStarts > 0) {
    const how = r.coldStarts === r.boxedStarts ? 'all cold' : r.coldStarts === 0 ? 'all warm' : `${r.coldStarts} cold`;
    say(
      `Boxed starts: ${r.boxedStarts}, ${how} (cold: node's pages and the compile cache dropped from the page cache ` +
        `first, so the box pays for them as it reads them).`,
    );
    say(`Compile cache: ${r.compileCache}.`);
    if (r.extraEnv !== '') say(`Added to the providers' environment and command line: ${r.extraEnv}.`);
  }
  for (const n of notes) say(n);
  const unav = [
    ...(node?.burst?.unavailable ?? []),
    ...(node?.rounds.flatMap((w) => w.unavailable) ?? []),
    ...(f?.wave.unavailable ?? []),
  ];
  const distinct = [...new Set(unav.map((x) => x.details))];
  if (distinct.length > 0) {
    out(`UNAVAILABLE messages (${unav.length} answers, ${distinct.length} distinct; first 3):`);
    for (const m of distinct.slice(0, 3)) out(`  ${m}`);
  }
  const failed = [...(node?.burst?.failures ?? []), ...(node?.rounds.flatMap((w) => w.failures) ?? [])].filter(
    (x) => x.code !== 'UNAVAILABLE' && x.code !== 'CANCELLED',
  );
  const otherMsgs = [
    ...new Set(
      [...failed, ...(f?.wave.failures ?? []).filter((x) => x.code !== 'UNAVAILABLE')].map(
        (x) => `${x.code} after ${secs(x.ms)}: ${x.details}`,
      ),
    ),
  ];
  if (otherMsgs.length > 0) {
    out(`Other failures (first 3 distinct):`);
    for (const m of otherMsgs.slice(0, 3)) out(`  ${m}`);
  }
  for (const d of r.deaths) {
    const stats = d.stats
      ? `; box: ${d.stats.oomKills} OOM kills, peak ${mib(d.stats.peakBytes)}, now ${mib(d.stats.memoryBytes)}`
      : '';
    say(`The provider DIED during ${d.phase}: ${describeExit(d.exit)}${stats}. Last stderr lines:`);
    for (const l of d.stderr.length > 0 ? d.stderr : ['(none)']) out(`  ${l}`);
  }
}

/**
 * @module bench/run
 * `npm run bench`: the figures of docs/benchmarks.md, measured in this run. The emulator runs in this process; each
 * provider is a child process (`node dist/main.js`, the Dockerfile's NODE_OPTIONS) whose CPU and
 * memory come from /proc. Prints one table per goal: measured figure, target, ASCP's pattern
 * (computed from its code, described, not measured), verdict. See docs/benchmarks.md.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createDriverClient, startEmulator, type DriverClient, type Emulator } from '../emulator/index.js';
import { parseBenchArgs, USAGE, type BenchOptions } from './options.js';
import { runBox } from './box.js';
import { runHostileBench } from './hostile.js';
import { watchRss, type ProcSample } from './proc.js';
import { DOCKERFILE_NODE_OPTIONS, startProviderProcess, type ProviderProcess } from './provider-process.js';
import { footnoteColumn, median, mib, ms, quantile, slope, table, verdict, wrap } from './report.js';
import { profileCalls, type CallProfile } from './rounds.js';
import { mapLimit, mountPod, Scenario, type BenchPod } from './scenario.js';
import { isMain } from '../entry.js';

export interface BenchIO {
  stdout(line: string): void;
  /** Progress lines. */
  stderr(line: string): void;
}

/** The sections, in print order; the smoke test checks each heading appears. */
export const SECTIONS = ['Start-up', 'Round trips', 'API cost', 'Latency', 'CPU', 'Memory', 'Scale'] as const;

type Mode = 'provider-writes' | 'driver-writes';

interface Running {
  label: string;
  mode: Mode;
  proc: ProviderProcess;
  client: DriverClient;
  /** RSS right after the socket appeared. */
  rssAtStart: number;
}

interface Ctx {
  o: BenchOptions;
  emu: Emulator;
  scenario: Scenario;
  dir: string;
  kubeconfig: string;
  io: BenchIO;
  running: Running[];
  started: Running[];
}

async function startProvider(ctx: Ctx, label: string, mode: Mode, extra: string[] = []): Promise<Running> {
  ctx.io.stderr(`  starting provider ${label}`);
  const flags = [
    ...(mode === 'driver-writes' ? ['--driver-writes-secrets'] : []),
    `--pod-identity-endpoint=${ctx.emu.podIdentityUrl}`,
    `--kubelet-root=${ctx.scenario.kubeletRoot}`,
    ...extra,
  ];
  const proc = await startProviderProcess({
    node: ctx.o.node,
    mainJs: ctx.o.provider,
    dir: path.join(ctx.dir, `provider-${ctx.started.length + 1}`),
    emulatorUrl: ctx.emu.url,
    kubeconfig: ctx.kubeconfig,
    flags,
    nodeOptions: `${DOCKERFILE_NODE_OPTIONS} ${ctx.o.providerNodeOptions}`.trim(),
  });
  const r: Running = {
    label,
    mode,
    proc,
    client: createDriverClient(proc.socketPath),
    rssAtStart: proc.sample().rssBytes,
  };
  ctx.running.push(r);
  ctx.started.push(r);
  await r.client.version();
  return r;
}

async function stopProvider(ctx: Ctx, r: Running): Promise<void> {
  r.client.close();
  await r.proc.stop();
  ctx.running = ctx.running.filter((x) => x !== r);
}

const sleep = (msecs: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, msecs));

// ------------------------------------------------------------------ measurements

interface MountProfile {
  wallMs: number;
  profile: CallProfile;
}

async function profiledMount(ctx: Ctx, r: Running, pod: BenchPod, withVersions: boolean): Promise<MountProfile> {
  const mark = ctx.emu.calls.length;
  const t = await mountPod(r.client, pod, withVersions);
  return { wallMs: t.wallMs, profile: profileCalls(ctx.emu.calls.slice(mark), currentLatency) };
}

/** The latency set on the emulator (the emulator does not expose it). */
let currentLatency = 0;
function setLatency(ctx: Ctx, msecs: number): void {
  ctx.emu.setLatency(msecs);
  currentLatency = msecs;
}

interface WarmStats {
  walls: number[];
  /** The poll with the most round trips. */
  worst: CallProfile;
  /** Most STS / k8s calls seen in one poll. */
  maxSts: number;
  maxK8s: number;
  maxSmRounds: number;
  /** Secrets Manager round trips of each poll. */
  smRounds: number[];
}

async function warmPolls(ctx: Ctx, r: Running, pod: BenchPod, withVersions: boolean, n: number): Promise<WarmStats> {
  const walls: number[] = [];
  let worst: CallProfile | undefined;
  let maxSts = 0;
  let maxK8s = 0;
  let maxSmRounds = 0;
  const smRounds: number[] = [];
  for (let i = 0; i < n; i++) {
    const m = await profiledMount(ctx, r, pod, withVersions);
    walls.push(m.wallMs);
    maxSts = Math.max(maxSts, m.profile.byService.sts + m.profile.byService['pod-identity']);
    maxK8s = Math.max(maxK8s, m.profile.byService.k8s);
    maxSmRounds = Math.max(maxSmRounds, m.profile.roundsOf.secretsmanager);
    smRounds.push(m.profile.roundsOf.secretsmanager);
    if (worst === undefined || m.profile.rounds.length > worst.rounds.length) worst = m.profile;
  }
  return { walls, worst: worst as CallProfile, maxSts, maxK8s, maxSmRounds, smRounds };
}

interface CpuStats {
  cpuMsPerPoll: number;
  wallMsPerPoll: number;
  awsCallsPerPoll: number;
  polls: number;
}

/** Sequential warm polls of one pod with no added latency; CPU from /proc over all of them. */
async function cpuPerPoll(ctx: Ctx, r: Running, pod: BenchPod, withVersions: boolean, n: number): Promise<CpuStats> {
  // Warm-up (JIT, pools) is not measured.
  for (let i = 0; i < Math.min(20, n); i++) await mountPod(r.client, pod, withVersions);
  const mark = ctx.emu.calls.length;
  const s0 = r.proc.sample();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await mountPod(r.client, pod, withVersions);
  const wall = performance.now() - t0;
  const s1 = r.proc.sample();
  const aws = ctx.emu.calls.slice(mark).filter((c) => c.service !== 'k8s').length;
  return { cpuMsPerPoll: (s1.cpuMs - s0.cpuMs) / n, wallMsPerPoll: wall / n, awsCallsPerPoll: aws / n, polls: n };
}

interface BurstStats {
  pods: BenchPod[];
  wallMs: number;
  cpuMs: number;
  maxRssBytes: number;
  hwmBytes: number;
  anonAfter: number;
  calls: CallProfile;
}

/** `n` new pods mount at once (first mounts), with the section latency on every call. */
async function burst(ctx: Ctx, r: Running, n: number, objects: number): Promise<BurstStats> {
  const pods: BenchPod[] = [];
  for (let i = 0; i < n; i++) pods.push(await ctx.scenario.pod(objects));
  setLatency(ctx, ctx.o.latencyMs);
  const mark = ctx.emu.calls.length;
  const watch = watchRss(r.proc.pid, 5);
  const s0 = r.proc.sample();
  const t0 = performance.now();
  await Promise.all(pods.map((p) => mountPod(r.client, p, false)));
  const wallMs = performance.now() - t0;
  const s1 = r.proc.sample();
  const mem = watch.stop();
  const calls = profileCalls(ctx.emu.calls.slice(mark), 0);
  setLatency(ctx, 0);
  return {
    pods,
    wallMs,
    cpuMs: s1.cpuMs - s0.cpuMs,
    maxRssBytes: mem.maxRssBytes,
    hwmBytes: mem.hwmBytes,
    anonAfter: s1.anonBytes,
    calls,
  };
}

interface Throughput {
  polls: number;
  cpuMs: number;
  wallMs: number;
  pollsPerCpuSecond: number;
  rssAfter: number;
}

/** Every pod polls at once, `rounds` times, no added latency. */
async function throughput(r: Running, pods: readonly BenchPod[], totalPolls: number): Promise<Throughput> {
  const rounds = Math.max(1, Math.ceil(totalPolls / pods.length));
  // Warm-up (JIT, pools): about 100 polls, not measured.
  for (let i = 0; i < Math.ceil(100 / pods.length); i++)
    await Promise.all(pods.map((p) => mountPod(r.client, p, false)));
  const s0 = r.proc.sample();
  const t0 = performance.now();
  for (let i = 0; i < rounds; i++) await Promise.all(pods.map((p) => mountPod(r.client, p, i % 2 === 1)));
  const wallMs = performance.now() - t0;
  const s1 = r.proc.sample();
  const polls = rounds * pods.length;
  const cpuMs = s1.cpuMs - s0.cpuMs;
  return {
    polls,
    cpuMs,
    wallMs,
    pollsPerCpuSecond: cpuMs > 0 ? (polls * 1000) / cpuMs : Number.POSITIVE_INFINITY,
    rssAfter: s1.rssBytes,
  };
}

interface SoakSample {
  polls: number;
  rss: number;
  anon: number;
  heap: number;
}

interface SoakStats {
  polls: number;
  samples: SoakSample[];
  /** RSS: median of the last third of samples − median of the middle third (the first third is warm-up). */
  growthBytes: number;
  anonGrowthBytes: number;
  slopeBytesPer1000: number;
  cpuMsPerPoll: number;
  callsPerPoll: Record<string, number>;
  wallMs: number;
}

function growth(values: readonly number[]): number {
  const third = Math.floor(values.length / 3);
  const mid = values.slice(third, 2 * third);
  const last = values.slice(2 * third);
  return mid.length > 0 && last.length > 0 ? median(last) - median(mid) : 0;
}

/** `total` warm polls cycling over `pods`, 10 in flight, both forms alternately; memory sampled 20 times. */
async function soak(ctx: Ctx, r: Running, pods: readonly BenchPod[], total: number): Promise<SoakStats> {
  setLatency(ctx, 0);
  ctx.emu.resetCalls();
  const step = Math.max(1, Math.floor(total / 20));
  const take = async (polls: number): Promise<SoakSample> => {
    const p = r.proc.sample();
    return { polls, rss: p.rssBytes, anon: p.anonBytes, heap: await r.proc.heapUsed() };
  };
  const samples: SoakSample[] = [await take(0)];
  let done = 0;
  const s0 = r.proc.sample();
  const t0 = performance.now();
  const indices = Array.from({ length: total }, (_, i) => i);
  await mapLimit(indices, 10, async (i) => {
    await mountPod(r.client, pods[i % pods.length] as BenchPod, i % 2 === 1);
    done++;
    if (done % step === 0) samples.push(await take(done));
  });
  const wallMs = performance.now() - t0;
  const s1 = r.proc.sample();
  const profile = profileCalls(ctx.emu.calls, 0);
  ctx.emu.resetCalls();
  const callsPerPoll: Record<string, number> = {};
  for (const [s, n] of Object.entries(profile.byService)) callsPerPoll[s] = n / total;
  const third = Math.floor(samples.length / 3);
  return {
    polls: total,
    samples,
    growthBytes: growth(samples.map((x) => x.rss)),
    anonGrowthBytes: growth(samples.map((x) => x.anon)),
    slopeBytesPer1000: slope(samples.slice(third).map((x) => ({ x: x.polls, y: x.rss }))) * 1000,
    cpuMsPerPoll: (s1.cpuMs - s0.cpuMs) / total,
    callsPerPoll,
    wallMs,
  };
}

// ------------------------------------------------------------------ the run

interface ModeResults {
  mode: Mode;
  first: { objects: number; podIdentity: boolean; m: MountProfile }[];
  firstWalls: number[];
  /** At the round-trip latency. */
  warm: { withVersions: boolean; stats: WarmStats }[];
  /** At the latency section's latency. */
  warmWalls: { withVersions: boolean; stats: WarmStats }[];
  cpu: { withVersions: boolean; stats: CpuStats }[];
  /** Warm polls of a pod whose role may call BatchGetSecretValue (no versions sent). */
  cpuBatch?: CpuStats;
}

async function measureMode(ctx: Ctx, r: Running): Promise<ModeResults> {
  const { o } = ctx;
  const res: ModeResults = { mode: r.mode, first: [], firstWalls: [], warm: [], warmWalls: [], cpu: [] };
  ctx.io.stderr(`  ${r.mode}: first mounts and warm polls at ${o.rtLatencyMs} ms latency (round trips)`);
  setLatency(ctx, o.rtLatencyMs);
  for (const n of o.firstSizes) {
    const pod = await ctx.scenario.pod(n);
    res.first.push({ objects: n, podIdentity: false, m: await profiledMount(ctx, r, pod, false) });
  }
  const pi = await ctx.scenario.pod(o.objects, { podIdentity: true });
  res.first.push({ objects: o.objects, podIdentity: true, m: await profiledMount(ctx, r, pi, false) });
  const rtPod = await ctx.scenario.pod(o.objects);
  await mountPod(r.client, rtPod, false);
  for (const withVersions of [false, true])
    res.warm.push({ withVersions, stats: await warmPolls(ctx, r, rtPod, withVersions, o.samples) });

  ctx.io.stderr(
    `  ${r.mode}: ${o.samples} first mounts of ${o.objects} and ${o.samples} warm polls per form ` +
      `at ${o.latencyMs} ms latency`,
  );
  setLatency(ctx, o.latencyMs);
  const pods: BenchPod[] = [];
  for (let i = 0; i < o.samples; i++) {
    const pod = await ctx.scenario.pod(o.objects);
    pods.push(pod);
    res.firstWalls.push((await mountPod(r.client, pod, false)).wallMs);
  }
  const pod = pods[0] as BenchPod;
  for (const withVersions of [false, true])
    res.warmWalls.push({ withVersions, stats: await warmPolls(ctx, r, pod, withVersions, o.samples) });

  setLatency(ctx, 0);
  ctx.io.stderr(`  ${r.mode}: ${o.cpuPolls} warm polls per form (CPU)`);
  for (const withVersions of [false, true])
    res.cpu.push({ withVersions, stats: await cpuPerPoll(ctx, r, pod, withVersions, o.cpuPolls) });
  // The same with a role that may call secretsmanager:BatchGetSecretValue (one call per 20 secrets).
  const batchPod = await ctx.scenario.pod(o.objects, { allowBatch: true });
  await mountPod(r.client, batchPod, false);
  res.cpuBatch = await cpuPerPoll(ctx, r, batchPod, false, o.cpuPolls);
  ctx.emu.resetCalls();
  return res;
}

interface CacheResults {
  mode: Mode;
  off: { withVersions: boolean; stats: CpuStats }[];
  on: { withVersions: boolean; stats: CpuStats }[];
  /** SM calls of a first mount by another identity, right after the first pod's (cache on). */
  otherIdentityCalls: number;
  ownFirstCalls: number;
}

async function measureCache(ctx: Ctx, r: Running, off: ModeResults): Promise<CacheResults> {
  const { o } = ctx;
  setLatency(ctx, 0);
  const polls = Math.max(1, Math.min(o.cpuPolls, 200));
  const a = await ctx.scenario.pod(o.objects);
  let mark = ctx.emu.calls.length;
  await mountPod(r.client, a, false);
  const ownFirstCalls = ctx.emu.calls.slice(mark).filter((c) => c.service === 'secretsmanager').length;
  const b = await ctx.scenario.pod(o.objects);
  mark = ctx.emu.calls.length;
  await mountPod(r.client, b, false);
  const otherIdentityCalls = ctx.emu.calls.slice(mark).filter((c) => c.service === 'secretsmanager').length;
  const on: CacheResults['on'] = [];
  for (const withVersions of [false, true])
    on.push({ withVersions, stats: await cpuPerPoll(ctx, r, a, withVersions, polls) });
  ctx.emu.resetCalls();
  return { mode: r.mode, off: off.cpu, on, otherIdentityCalls, ownFirstCalls };
}

interface ObjectScaleRow {
  objects: number;
  firstWallMs: number;
  firstCpuMs: number;
  warm: CpuStats;
  rssAfter: number;
}

async function measureObjectScale(ctx: Ctx, r: Running): Promise<ObjectScaleRow[]> {
  const rows: ObjectScaleRow[] = [];
  setLatency(ctx, 0);
  for (const k of ctx.o.objectScale) {
    ctx.io.stderr(`  scale: ${k} objects per mount`);
    const pod = await ctx.scenario.pod(k);
    const s0 = r.proc.sample();
    const first = await mountPod(r.client, pod, false);
    const s1 = r.proc.sample();
    const warm = await cpuPerPoll(ctx, r, pod, false, ctx.o.scalePolls);
    rows.push({
      objects: k,
      firstWallMs: first.wallMs,
      firstCpuMs: s1.cpuMs - s0.cpuMs,
      warm,
      rssAfter: r.proc.sample().rssBytes,
    });
    ctx.emu.resetCalls();
  }
  return rows;
}

interface PodScaleRow {
  pods: number;
  burst: BurstStats;
  warm: Throughput;
}

export async function runBench(argv: readonly string[], io: BenchIO): Promise<number> {
  const parsed = parseBenchArgs(argv);
  if (parsed.kind === 'help') {
    io.stdout(USAGE);
    return 0;
  }
  if (parsed.kind === 'error') {
    io.stderr(`bench: ${parsed.message}\n\n${USAGE}`);
    return 2;
  }
  const o = parsed.options;
  if (process.platform !== 'linux') {
    io.stderr('bench: reads /proc/<pid>/stat and /proc/<pid>/status, so it runs on Linux only');
    return 2;
  }
  // The box scenario is its own run: the provider inside the chart's cgroup limits (tools/bench/box.ts).
  if (o.box) return runBox(o, io);
  if (o.boxHostile) return runHostileBench(o, io);
  const tStart = performance.now();
  const loadBefore = os.loadavg();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'csi-aws-bench-'));
  const emu = await startEmulator({ latencyMs: 0 });
  currentLatency = 0;
  const kubeconfig = path.join(dir, 'kubeconfig');
  await emu.writeKubeconfig(kubeconfig);
  const scenario = new Scenario(emu, dir);
  scenario.seed(Math.max(o.objects, ...o.firstSizes, ...o.objectScale));
  const ctx: Ctx = { o, emu, scenario, dir, kubeconfig, io, running: [], started: [] };
  let code = 0;
  try {
    io.stderr(
      `bench: emulator ${emu.url}; provider ${o.provider} on ${o.node} (${process.version}); ` +
        (o.quick ? 'QUICK sizes' : 'full sizes'),
    );

    // Memory first, on a fresh process: idle RSS, then the burst, then the soak.
    io.stderr('memory: idle, burst, soak');
    const pm = await startProvider(ctx, 'memory (provider-writes)', 'provider-writes');
    await sleep(1_000);
    const idle = pm.proc.sample();
    io.stderr(`  burst of ${o.burst} first mounts of ${o.objects} objects`);
    const burstStats = await burst(ctx, pm, o.burst, o.objects);
    const burstWarm = await throughput(pm, burstStats.pods, Math.max(o.burst * 3, ctx.o.scalePolls));
    io.stderr(`  soak: ${o.soakPolls} warm polls`);
    const soakStats = await soak(ctx, pm, burstStats.pods, o.soakPolls);
    const podRows: PodScaleRow[] = [];
    if (o.podScale.includes(o.burst)) podRows.push({ pods: o.burst, burst: burstStats, warm: burstWarm });
    await stopProvider(ctx, pm);

    io.stderr('round trips, latency, CPU');
    const modes: ModeResults[] = [];
    for (const mode of ['provider-writes', 'driver-writes'] as const) {
      const r = await startProvider(ctx, mode, mode);
      modes.push(await measureMode(ctx, r));
      await stopProvider(ctx, r);
    }

    io.stderr('API cost: --cache-ttl=30s');
    const caches: CacheResults[] = [];
    for (const m of modes) {
      const r = await startProvider(ctx, `${m.mode} --cache-ttl=30s`, m.mode, ['--cache-ttl=30s']);
      caches.push(await measureCache(ctx, r, m));
      await stopProvider(ctx, r);
    }

    io.stderr('scale');
    const ps = await startProvider(ctx, 'scale: objects (provider-writes)', 'provider-writes');
    const objectRows = await measureObjectScale(ctx, ps);
    await stopProvider(ctx, ps);
    for (const n of o.podScale) {
      if (n === o.burst) continue;
      const r = await startProvider(ctx, `scale: ${n} pods (provider-writes)`, 'provider-writes');
      io.stderr(`  scale: ${n} concurrent pods`);
      const b = await burst(ctx, r, n, o.objects);
      podRows.push({ pods: n, burst: b, warm: await throughput(r, b.pods, Math.max(n * 3, o.scalePolls)) });
      await stopProvider(ctx, r);
    }
    podRows.sort((a, b) => a.pods - b.pods);

    print(io, o, {
      idle,
      burst: burstStats,
      soak: soakStats,
      modes,
      caches,
      objectRows,
      podRows,
      started: ctx.started,
    });
    const loadAfter = os.loadavg();
    io.stdout(
      `\nBench finished in ${((performance.now() - tStart) / 1000).toFixed(1)} s ` +
        `on ${os.cpus().length} × ${os.cpus()[0]?.model.trim() ?? 'unknown CPU'}, ` +
        `${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, ${process.platform}/${process.arch}, node ${process.version}.`,
    );
    io.stdout(
      wrap(
        `Load average (1 min) at start ${loadBefore[0]?.toFixed(2)}, at end ${loadAfter[0]?.toFixed(2)}: wall-clock ` +
          `figures (latency) suffer when it exceeds the core count; CPU figures much less.`,
        120,
      ),
    );
    const problems = ctx.started.flatMap((r) => r.proc.problems);
    if (problems.length > 0) {
      io.stdout(`\nProvider warnings/errors during the run (${problems.length}, first 5):`);
      for (const p of problems.slice(0, 5)) io.stdout(`  ${p}`);
    }
  } catch (err) {
    code = 1;
    io.stderr(`bench failed: ${err instanceof Error ? err.message : String(err)}`);
    for (const r of ctx.running) for (const p of r.proc.problems.slice(0, 5)) io.stderr(`  provider ${r.label}: ${p}`);
  } finally {
    for (const r of [...ctx.running]) await stopProvider(ctx, r).catch(() => {});
    await emu.close();
    await rm(dir, { recursive: true, force: true });
  }
  return code;
}

// ------------------------------------------------------------------ printing

interface Results {
  idle: ProcSample;
  burst: BurstStats;
  soak: SoakStats;
  modes: ModeResults[];
  caches: CacheResults[];
  objectRows: ObjectScaleRow[];
  podRows: PodScaleRow[];
  started: Running[];
}

/** Fewer soak polls than this give no RSS slope: the first polls fill caches, not leak. */
const MIN_SLOPE_POLLS = 1000;

/** Service names as the round-trip table's columns name them. */
const short = (rounds: string): string => rounds.replaceAll('secretsmanager', 'SM').replaceAll('pod-identity', 'agent');

const form = (withVersions: boolean): string => (withVersions ? 'versions sent' : 'no versions');
const fmt = (n: number, d = 2): string => (Number.isFinite(n) ? n.toFixed(d) : 'n/a');
const wholeMiB = (bytes: number): string => (bytes / 1048576).toFixed(0);

function print(io: BenchIO, o: BenchOptions, r: Results): void {
  const out = (s = ''): void => io.stdout(s);
  const L = o.latencyMs;
  const RT = o.rtLatencyMs;
  const N = o.objects;
  if (o.quick) {
    out('QUICK MODE: tiny sizes: the figures below only show that every section runs. Counts (round trips, AWS');
    out('calls) are judged; time, CPU and memory are not (verdict "-"): too few samples to mean anything.\n');
  }
  /** A verdict on time, CPU or memory: not given in quick mode. */
  const timed = (v: string): string => (o.quick ? '-' : v);
  /** A table whose ASCP column becomes numbered notes under it, so it fits a terminal. */
  const noted = (
    header: readonly string[],
    rows: readonly (readonly string[])[],
    columns: readonly string[] = ['ASCP pattern'],
  ): string => {
    let cur = rows.map((r) => [...r]);
    const notes: string[] = [];
    for (const c of columns) {
      const f = footnoteColumn(header, cur, c);
      const col = header.indexOf(c);
      const offset = notes.length;
      cur = f.rows.map((r) =>
        r.map((cell, i) =>
          i === col ? cell.replace(/^\[(\d+)\]$/, (_m, n: string) => `[${Number(n) + offset}]`) : cell,
        ),
      );
      notes.push(...f.notes.map((t) => t.replace(/^\[(\d+)\]/, (_m, n: string) => `[${Number(n) + offset}]`)));
    }
    return [table(header, cur), ...notes].join('\n');
  };

  // Start-up
  out('## Start-up (every provider process started in this run)');
  out(
    table(
      ['provider', 'CPU to socket', 'wall to socket', 'RSS at socket', 'target', 'verdict'],
      r.started.map((s) => [
        s.label,
        ms(s.proc.startupCpuMs, 0),
        ms(s.proc.startupWallMs, 0),
        mib(s.rssAtStart),
        'CPU ≤ 300 ms',
        timed(verdict(s.proc.startupCpuMs, 300)),
      ]),
    ),
  );

  // Round trips
  out(`\n## Round trips`);
  out(
    wrap(
      `${RT} ms added to every emulated AWS and Kubernetes answer; a round = calls starting within ${RT} ms of its ` +
        `first call; a warm poll's SM rounds read rounds:polls (1:2× = two polls of one round).`,
      120,
    ),
  );
  const rtRows: string[][] = [];
  for (const m of r.modes) {
    for (const f of m.first) {
      const p = f.m.profile;
      const sts = p.byService.sts + p.byService['pod-identity'];
      rtRows.push([
        `first mount, ${f.objects} objects${f.podIdentity ? ', Pod Identity' : ', IRSA'}`,
        m.mode,
        String(sts),
        String(p.byService.k8s),
        String(p.byService.secretsmanager),
        String(p.roundsOf.secretsmanager),
        `${p.rounds.length} (${short(p.rounds.map((x) => x.label).join(' → '))})`,
        String(Math.floor(f.m.wallMs / RT)),
        '≤ 3 round trips',
        f.podIdentity
          ? `agent, then ${f.objects} GetSecretValue one by one: ${f.objects + 1}`
          : `k8s SA, STS, then ${f.objects} GetSecretValue one by one: ${f.objects + 2}`,
        verdict(p.rounds.length, 3),
      ]);
    }
    for (const w of m.warm) {
      const s = w.stats;
      // Per poll: a poll with more than one round is shown, and it fails the row only if it is the typical poll.
      const hist = new Map<number, number>();
      for (const n of s.smRounds) hist.set(n, (hist.get(n) ?? 0) + 1);
      const histText = [...hist]
        .sort((a, b) => a[0] - b[0])
        .map(([k, n]) => `${k}:${n}×`)
        .join(' ');
      const ok = s.maxSts === 0 && s.maxK8s === 0 && median(s.smRounds) <= 1;
      rtRows.push([
        `warm poll, ${N} objects, ${form(w.withVersions)} (${s.walls.length} polls)`,
        m.mode,
        String(s.maxSts),
        String(s.maxK8s),
        String(s.worst.byService.secretsmanager),
        histText,
        `worst ${s.worst.rounds.length} (${short(s.worst.rounds.map((x) => x.label).join(' → ')) || 'none'})`,
        `${Math.floor(median(s.walls) / RT)} (worst ${Math.floor(Math.max(...s.walls) / RT)})`,
        '0 STS, 0 k8s, ≤ 1 SM round trip',
        `k8s SA, STS, then ${N} ${w.withVersions ? 'DescribeSecret' : 'GetSecretValue'} one by one: ${N + 2}`,
        ok ? (s.maxSmRounds > 1 ? 'ok (typical poll)' : 'ok') : 'MISSED',
      ]);
    }
  }
  out(
    noted(
      [
        'case',
        'mode',
        'STS',
        'k8s',
        'SM',
        'SM rounds',
        'rounds (from call times)',
        'wall÷lat',
        'target',
        'ASCP pattern',
        'verdict',
      ],
      rtRows,
      ['target', 'ASCP pattern'],
    ),
  );

  // API cost
  out('\n## API cost (AWS calls per warm poll, no added latency; --cache-ttl=30s is opt-in)');
  const costRows: string[][] = [];
  for (const c of r.caches) {
    for (const x of c.off) {
      costRows.push([
        c.mode,
        'off',
        form(x.withVersions),
        fmt(x.stats.awsCallsPerPoll),
        ms(x.stats.cpuMsPerPoll, 3),
        `${N} (one per object)`,
        `${N} SM + 1 STS (+1 k8s) per poll`,
        verdict(x.stats.awsCallsPerPoll, N),
      ]);
    }
    for (const x of c.on) {
      costRows.push([
        c.mode,
        '30s',
        form(x.withVersions),
        fmt(x.stats.awsCallsPerPoll),
        ms(x.stats.cpuMsPerPoll, 3),
        '0 within the TTL',
        'no such knob',
        verdict(x.stats.awsCallsPerPoll, 0),
      ]);
    }
    costRows.push([
      c.mode,
      '30s',
      `first mount, other identity`,
      String(c.otherIdentityCalls),
      '-',
      `${c.ownFirstCalls} (never shared across identities)`,
      '-',
      c.otherIdentityCalls === c.ownFirstCalls && c.ownFirstCalls > 0 ? 'ok' : 'MISSED',
    ]);
  }
  out(
    noted(['mode', 'cache-ttl', 'poll', 'AWS calls/poll', 'CPU/poll', 'target', 'ASCP pattern', 'verdict'], costRows, [
      'target',
      'ASCP pattern',
    ]),
  );

  // Latency
  out(`\n## Latency (${L} ms added to every emulated AWS and Kubernetes answer; ${o.samples} mounts each)`);
  const latRows: string[][] = [];
  for (const m of r.modes) {
    latRows.push([
      `first mount, ${N} objects`,
      m.mode,
      ms(median(m.firstWalls)),
      ms(quantile(m.firstWalls, 0.95)),
      '≤ 80 ms',
      '~280 ms',
      timed(verdict(median(m.firstWalls), 80)),
    ]);
    for (const w of m.warmWalls) {
      latRows.push([
        `warm poll, ${N} objects, ${form(w.withVersions)}`,
        m.mode,
        ms(median(w.stats.walls)),
        ms(quantile(w.stats.walls, 0.95)),
        '≤ 40 ms',
        '~280 ms',
        timed(verdict(median(w.stats.walls), 40)),
      ]);
    }
  }
  out(table(['case', 'mode', 'median', 'p95', 'target', 'ASCP pattern', 'verdict (median)'], latRows));

  // CPU
  out(`\n## CPU (provider process user+system from /proc, warm polls of ${N} objects, no added latency)`);
  const cpuRows: string[][] = [];
  for (const m of r.modes) {
    for (const c of m.cpu) {
      cpuRows.push([
        `warm poll, ${form(c.withVersions)}`,
        m.mode,
        ms(c.stats.cpuMsPerPoll, 3),
        `${c.stats.polls}`,
        ms(c.stats.wallMsPerPoll, 2),
        `${fmt(1000 / c.stats.cpuMsPerPoll, 0)}`,
        '≤ 1 ms',
        'rebuilds clients, k8s + STS calls every poll',
        timed(verdict(c.stats.cpuMsPerPoll, 1)),
      ]);
    }
    const b = m.cpuBatch;
    if (b) {
      cpuRows.push([
        `warm poll, BatchGetSecretValue (${fmt(b.awsCallsPerPoll, 2)} calls/poll)`,
        m.mode,
        ms(b.cpuMsPerPoll, 3),
        `${b.polls}`,
        ms(b.wallMsPerPoll, 2),
        `${fmt(1000 / b.cpuMsPerPoll, 0)}`,
        '≤ 1 ms',
        'rebuilds clients, k8s + STS calls every poll',
        timed(verdict(b.cpuMsPerPoll, 1)),
      ]);
    }
  }
  const startCpu = r.started.map((s) => s.proc.startupCpuMs);
  cpuRows.push([
    'start-up to socket (median / max)',
    'all',
    `${ms(median(startCpu), 0)} / ${ms(Math.max(...startCpu), 0)}`,
    `${startCpu.length} starts`,
    '-',
    '-',
    '≤ 300 ms',
    'Go binary',
    timed(verdict(Math.max(...startCpu), 300)),
  ]);
  out(
    noted(['case', 'mode', 'CPU', 'polls', 'wall/poll', 'polls/CPU-s', 'target', 'ASCP pattern', 'verdict'], cpuRows),
  );

  // Memory
  out('\n## Memory (provider RSS from /proc = anonymous + file-backed; NODE_OPTIONS as the Dockerfile sets)');
  const s = r.soak;
  const flat = s.growthBytes <= 2 * 1024 * 1024;
  const burstPeak = Math.max(r.burst.maxRssBytes, r.burst.hwmBytes);
  const first = s.samples[0] as SoakSample;
  const last = s.samples[s.samples.length - 1] as SoakSample;
  out(
    noted(
      ['case', 'measured', 'target', 'ASCP pattern', 'verdict'],
      [
        [
          'idle, 1 s after start',
          `${mib(r.idle.rssBytes)} (anon ${mib(r.idle.anonBytes)}, file ${mib(r.idle.fileBytes)})`,
          '≤ 64 MiB',
          'chart limit 100Mi',
          timed(verdict(r.idle.rssBytes, 64 * 1024 * 1024)),
        ],
        [
          `peak, burst of ${r.burst.pods.length} first mounts (${N} objects, ${L} ms)`,
          `${mib(burstPeak)} (sampled ${mib(r.burst.maxRssBytes)}, VmHWM ${mib(r.burst.hwmBytes)}; anon ` +
            `after ${mib(r.burst.anonAfter)})`,
          '≤ 90 MiB',
          'chart limit 100Mi',
          timed(verdict(burstPeak, 90 * 1024 * 1024)),
        ],
        [
          `${s.polls} warm polls, ${r.burst.pods.length} pods (10 in flight)`,
          `RSS growth, last third − middle third: ${mib(s.growthBytes)} (anon ${mib(s.anonGrowthBytes)})`,
          'RSS growth ≤ 2 MiB',
          '-',
          timed(flat ? 'ok' : 'GROWS'),
        ],
      ],
    ),
  );
  out(
    `Soak, first → last sample: RSS ${mib(first.rss)} → ${mib(last.rss)}, ` +
      `anon ${mib(first.anon)} → ${mib(last.anon)}, V8 heap used ${mib(first.heap)} → ${mib(last.heap)}.`,
  );
  out(
    wrap(
      `RSS / anon / V8 heap used during the soak (polls: ` +
        `MiB): ${s.samples.map((x) => `${x.polls}:${[x.rss, x.anon, x.heap].map(wholeMiB).join('/')}`).join(' ')}`,
      120,
      '  ',
    ),
  );
  if (s.polls < 10_000)
    out(
      `(the default soak is ${
        o.quick ? 'tiny in quick mode' : 'smaller than 10,000 polls to keep the run near ' + '3 minutes on 2 cores'
      }; --soak-polls=10000 for a long one)`,
    );
  // A slope from a few dozen polls extrapolates start-up growth (caches filling) to 1000 polls: not said.
  if (s.polls >= MIN_SLOPE_POLLS)
    out(`RSS slope over the last two thirds: ${(s.slopeBytesPer1000 / 1024).toFixed(0)} KiB per 1000 polls.`);
  else
    out(
      `RSS slope: not computed from ${s.polls} polls (it needs ${MIN_SLOPE_POLLS} or more; a few polls only show ` +
        `caches filling).`,
    );
  out(
    wrap(
      `Soak: ${ms(s.cpuMsPerPoll, 3)} CPU per poll, ${(s.wallMs / 1000).toFixed(1)} s; calls per poll: ${Object.entries(
        s.callsPerPoll,
      )
        .map(([k, v]) => `${k} ${v.toFixed(3)}`)
        .join(', ')}`,
      120,
    ),
  );

  // Cost per pod per day, ours (measured calls per poll) against ASCP's call pattern (computed)
  const POLLS_PER_DAY = (24 * 60) / 2;
  out(`\n## AWS API calls per pod per day`);
  out(
    `A class of ${N} Secrets Manager objects, no region set, one rotation poll every 2 minutes ` +
      `= ${POLLS_PER_DAY} polls.`,
  );
  out(
    wrap(
      "ASCP's pattern, computed from its code: every poll makes 1 STS exchange, " +
        `${N} GetSecretValue (or DescribeSecret) calls and 3 Kubernetes lookups, one after another ` +
        `(${N + 4} sequential round trips).`,
      120,
    ),
  );
  const dayRows: string[][] = [];
  const ascpAws = (N + 1) * POLLS_PER_DAY;
  const ascpWall = (N + 4) * L;
  for (const m of r.modes) {
    const plain = m.cpu.find((c) => !c.withVersions)?.stats;
    const warm = m.warmWalls.find((w) => !w.withVersions)?.stats;
    const warmMedian = warm ? median(warm.walls) : NaN;
    if (plain) {
      const ours = plain.awsCallsPerPoll * POLLS_PER_DAY;
      const k8s = warm ? fmt(warm.maxK8s * POLLS_PER_DAY, 0) : 'n/a';
      dayRows.push([
        m.mode,
        'default (GetSecretValue each)',
        fmt(ours, 0),
        fmt(ascpAws, 0),
        `${fmt(ascpAws / ours, 1)}×`,
        k8s,
        `${3 * POLLS_PER_DAY}`,
        ms(warmMedian, 1),
        ms(ascpWall, 0),
        `${fmt(ascpWall / warmMedian, 1)}×`,
      ]);
    }
    if (m.cpuBatch) {
      const ours = m.cpuBatch.awsCallsPerPoll * POLLS_PER_DAY;
      dayRows.push([
        m.mode,
        'BatchGetSecretValue allowed',
        fmt(ours, 0),
        fmt(ascpAws, 0),
        `${fmt(ascpAws / ours, 1)}×`,
        '-',
        `${3 * POLLS_PER_DAY}`,
        '-',
        ms(ascpWall, 0),
        '-',
      ]);
    }
    const cached = r.caches.find((c) => c.mode === m.mode)?.on.find((c) => !c.withVersions)?.stats;
    if (cached) {
      // Within a 30 s TTL every 2-minute poll misses the cache: the measured 0 calls/poll is for polls inside the TTL.
      dayRows.push([
        m.mode,
        '--cache-ttl=30s, inside TTL',
        fmt(cached.awsCallsPerPoll * POLLS_PER_DAY, 0),
        fmt(ascpAws, 0),
        cached.awsCallsPerPoll === 0 ? '∞' : `${fmt(ascpAws / (cached.awsCallsPerPoll * POLLS_PER_DAY), 1)}×`,
        '-',
        `${3 * POLLS_PER_DAY}`,
        '-',
        ms(ascpWall, 0),
        '-',
      ]);
    }
  }
  out(
    table(
      ['mode', 'configuration', 'AWS/day', 'ASCP', 'ratio', 'k8s/day', 'ASCP', `warm poll`, 'ASCP', 'ratio'],
      dayRows,
    ),
  );
  out(`Each "ASCP" column is ASCP's figure (computed) for the column before it; warm polls with ${L} ms per answer.`);

  // Scale
  out('\n## Scale (provider-writes)');
  const w0 = r.modes[0]?.cpu[0]?.stats;
  if (w0)
    out(
      `Throughput: ${fmt(1000 / w0.cpuMsPerPoll, 0)} warm polls of ${N} objects per CPU-second (sequential, one pod).`,
    );
  out(
    `\nObjects per mount (no added latency; ${o.scalePolls} warm polls each; RSS accumulates over the rows, same ` +
      `process):`,
  );
  out(
    table(
      [
        'objects',
        'first mount wall',
        'first mount CPU',
        'warm poll CPU',
        'warm poll wall',
        'CPU per object per poll',
        'RSS after',
      ],
      r.objectRows.map((x) => [
        String(x.objects),
        ms(x.firstWallMs),
        ms(x.firstCpuMs, 0),
        ms(x.warm.cpuMsPerPoll, 3),
        ms(x.warm.wallMsPerPoll, 2),
        ms(x.warm.cpuMsPerPoll / x.objects, 4),
        mib(x.rssAfter),
      ]),
    ),
  );
  out('');
  out(
    wrap(
      `Concurrent pods (${N} objects each; first mounts at once with ${L} ms latency, then every pod polls at once, ` +
        `no latency; a fresh process per row):`,
      120,
    ),
  );
  out(
    table(
      [
        'pods',
        'burst wall',
        'CPU per first mount',
        'STS+k8s calls',
        'peak RSS',
        'warm polls',
        'polls per CPU-s',
        'CPU per poll',
        'RSS after',
      ],
      r.podRows.map((x) => [
        String(x.pods),
        ms(x.burst.wallMs, 0),
        ms(x.burst.cpuMs / x.pods, 1),
        `${x.burst.calls.byService.sts}+${x.burst.calls.byService.k8s}`,
        mib(Math.max(x.burst.maxRssBytes, x.burst.hwmBytes)),
        String(x.warm.polls),
        fmt(x.warm.pollsPerCpuSecond, 0),
        ms(x.warm.cpuMs / x.warm.polls, 3),
        mib(x.warm.rssAfter),
      ]),
    ),
  );
}

// Started as a program (node build/tools/bench/run.js), not imported.
if (isMain(import.meta.url)) {
  runBench(process.argv.slice(2), {
    stdout: (line) => process.stdout.write(line + '\n'),
    stderr: (line) => process.stderr.write(line + '\n'),
  }).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exit(1);
    },
  );
}

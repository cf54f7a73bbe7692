/**
 * @module bench/cgroup
 * A real Linux cgroup "box" with a pod's CPU and memory limits, so the bench and the tests can run
 * the provider the way the kubelet runs it under the Helm chart's `resources` (requests = limits):
 * a CFS quota for CPU (50m = 5 ms of CPU per 100 ms period) and a hard memory limit whose breach
 * ends in the kernel's OOM killer, with swap counted so it cannot hide memory.
 *
 * cgroup v2 is used when its hierarchy offers `cpu` and `memory` and they can be enabled in a
 * child's `cgroup.subtree_control` (a box is that child; the process runs in a leaf inside it, as a
 * container runs inside its pod's cgroup); else cgroup v1 (`memory`, `cpu` and, when mounted,
 * `cpuacct` hierarchies). Boxes are created at the root of each hierarchy, named
 * `csi-provider-box-<pid>-<n>`, and removed on `close()` (leftover processes are killed first).
 *
 * Needs root (or a delegated hierarchy); `cgroupSupport()` says whether this machine can, and why not.
 */
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export type CgroupVersion = 1 | 2;
export type CgroupSupport = { ok: true; version: CgroupVersion } | { ok: false; why: string };

export interface BoxLimits {
  /** Hard memory limit (the chart's `limits.memory`: 100Mi = 104857600). */
  memoryBytes: number;
  /** CPU limit in millicores (the chart's `limits.cpu`: 50m = 50). */
  cpuMillis: number;
}

/** CFS period the kubelet uses (100 ms); the quota is `cpuMillis` thousandths of it. */
export const CFS_PERIOD_US = 100_000;

export interface BoxStats {
  /** Memory charged to the box now (anonymous, page cache and tmpfs it wrote, kernel memory). */
  memoryBytes: number;
  /** Highest charge since the box was made: the kernel's own peak, or sampled every 50 ms when the kernel has none. */
  peakBytes: number;
  peakSource: 'kernel' | 'sampled';
  /**
   * Charge minus inactive page cache: what the kubelet reports as the container's memory
   * (working set) and what cannot be given back without hurting. Page cache fills a box up to its
   * limit and is reclaimed on demand, so the raw charge says little once files were read.
   */
  workingSetBytes: number;
  /** Highest working set, sampled every 50 ms. */
  peakWorkingSetBytes: number;
  /** Anonymous memory (heaps, stacks) now and its sampled peak; tmpfs pages the box wrote; page cache. */
  anonBytes: number;
  peakAnonBytes: number;
  shmemBytes: number;
  fileBytes: number;
  /** Page faults that had to read from disk, and page-cache pages read again soon after eviction (thrashing). */
  majorFaults: number;
  fileRefaults: number | undefined;
  /** Processes the kernel's OOM killer killed in the box. */
  oomKills: number;
  /** v1 only: times the charge hit the limit (reclaim was needed; not every hit is a kill). */
  limitHits: number | undefined;
  /** CPU used by every process of the box, ms (undefined when no CPU accounting is mounted). */
  cpuMs: number | undefined;
  /** CFS periods with runnable tasks, and those in which the box ran out of quota. */
  periods: number;
  throttledPeriods: number;
  /** Total time the box was held back by its quota, ms. */
  throttledMs: number;
}

export interface Box {
  /** `csi-provider-box-<pid>-<n>` */
  readonly name: string;
  readonly version: CgroupVersion;
  readonly limits: BoxLimits;
  /** The cgroup directories of the box (one per v1 hierarchy; the box and its leaf in v2). */
  readonly dirs: readonly string[];
  /**
   * `command args…` wrapped so the process joins the box before it execs: its whole life, start-up
   * included, is charged to the box, and its pid stays the one `spawn` returns.
   */
  wrap(command: string, args: readonly string[]): { command: string; args: string[] };
  stats(): BoxStats;
  /** Pids in the box now. */
  pids(): number[];
  /** Kills what is left in the box, then removes its cgroups. Safe to call twice. */
  close(): Promise<void>;
}

// ------------------------------------------------------------------ where the hierarchies are

export interface CgroupMounts {
  /** v1 controller → mount point (`memory` → `/sys/fs/cgroup/memory`). */
  v1: Map<string, string>;
  /** The cgroup2 mount point, if any. */
  v2: string | undefined;
}

/**
 * The cgroup mounts from `/proc/self/mountinfo` text. A line is
 * `id parent maj:min root mountpoint options [optional…] - fstype source superoptions`; v1 mounts
 * name their controllers in the super options (`rw,cpu,cpuacct`). Mounts of a sub-tree (root ≠ `/`)
 * are skipped: a box must be made at a hierarchy's root.
 */
export function parseCgroupMounts(mountinfo: string): CgroupMounts {
  const v1 = new Map<string, string>();
  let v2: string | undefined;
  for (const line of mountinfo.split('\n')) {
    const dash = line.indexOf(' - ');
    if (dash < 0) continue;
    const before = line.slice(0, dash).split(' ');
    const after = line.slice(dash + 3).split(' ');
    const root = before[3];
    const mountPoint = before[4]?.replace(/\\040/g, ' ');
    const fstype = after[0];
    if (root !== '/' || mountPoint === undefined) continue;
    if (fstype === 'cgroup2') v2 ??= mountPoint;
    if (fstype === 'cgroup') {
      for (const opt of (after[2] ?? '').split(',')) {
        if (['memory', 'cpu', 'cpuacct'].includes(opt) && !v1.has(opt)) v1.set(opt, mountPoint);
      }
    }
  }
  return { v1, v2 };
}

function readMounts(): CgroupMounts {
  try {
    return parseCgroupMounts(readFileSync('/proc/self/mountinfo', 'utf8'));
  } catch {
    return { v1: new Map(), v2: undefined };
  }
}

// ------------------------------------------------------------------ small file helpers

function read(file: string): string {
  return readFileSync(file, 'utf8');
}

function readOr(file: string): string | undefined {
  try {
    return read(file);
  } catch {
    return undefined;
  }
}

function write(file: string, value: string): void {
  try {
    writeFileSync(file, value);
  } catch (err) {
    throw new Error(
      `cannot write ${JSON.stringify(value)} to ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
      { cause: err },
    );
  }
}

/** `key value` lines (memory.events, cpu.stat, memory.oom_control) → map. */
export function parseFlatKeyed(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const [k, v] = line.trim().split(/\s+/);
    if (k !== undefined && v !== undefined && /^\d+$/.test(v)) out.set(k, Number(v));
  }
  return out;
}

function num(file: string): number | undefined {
  const t = readOr(file)?.trim();
  return t !== undefined && /^\d+$/.test(t) ? Number(t) : undefined;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

let counter = 0;
function nextName(): string {
  return `csi-provider-box-${process.pid}-${++counter}`;
}

// ------------------------------------------------------------------ support

let cachedSupport: CgroupSupport | undefined;

/**
 * Whether a box can be made here, found by making one (a probe box with the chart's limits, no
 * process) and removing it. v2 is tried first, then v1; `why` names what failed for each.
 */
export function cgroupSupport(): CgroupSupport {
  if (cachedSupport !== undefined) return cachedSupport;
  if (process.platform !== 'linux')
    return (cachedSupport = { ok: false, why: `cgroups are Linux only (this is ${process.platform})` });
  const mounts = readMounts();
  const why: string[] = [];
  for (const version of [2, 1] as const) {
    const problem = unusable(mounts, version);
    if (problem !== undefined) {
      why.push(`v${version}: ${problem}`);
      continue;
    }
    try {
      const probe = makeBox(mounts, version, { memoryBytes: 100 * 1024 * 1024, cpuMillis: 50 });
      removeDirs(probe.dirs);
      return (cachedSupport = { ok: true, version });
    } catch (err) {
      why.push(`v${version}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  return (cachedSupport = { ok: false, why: why.join('; ') });
}

/** Why a hierarchy cannot hold a box, before trying one; undefined when it might. */
function unusable(mounts: CgroupMounts, version: CgroupVersion): string | undefined {
  if (version === 2) {
    if (mounts.v2 === undefined) return 'no cgroup2 mount';
    const controllers = (readOr(path.join(mounts.v2, 'cgroup.controllers')) ?? '').trim().split(/\s+/);
    const missing = ['cpu', 'memory'].filter((c) => !controllers.includes(c));
    if (missing.length > 0) return `${mounts.v2}/cgroup.controllers does not list ${missing.join(' and ')}`;
    return undefined;
  }
  const missing = ['memory', 'cpu'].filter((c) => !mounts.v1.has(c));
  return missing.length > 0 ? `no v1 hierarchy with the ${missing.join(' and ')} controller` : undefined;
}

// ------------------------------------------------------------------ making a box

interface Made {
  name: string;
  version: CgroupVersion;
  /** Created directories, parents first (removed in reverse). */
  dirs: string[];
  /** Where a process joins (cgroup.procs of each). */
  procsFiles: string[];
  memoryDir: string;
  cpuDir: string;
  /** cpuacct (v1) when mounted; the box itself in v2. */
  cpuacctDir: string | undefined;
}

function makeBox(mounts: CgroupMounts, version: CgroupVersion, limits: BoxLimits): Made {
  const name = nextName();
  const dirs: string[] = [];
  const mk = (dir: string): string => {
    try {
      mkdirSync(dir);
    } catch (err) {
      throw new Error(`cannot create ${dir}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
    }
    dirs.push(dir);
    return dir;
  };
  const quota = String(Math.max(1000, Math.round((limits.cpuMillis / 1000) * CFS_PERIOD_US)));
  const memory = String(limits.memoryBytes);
  try {
    if (version === 2) {
      const root = mounts.v2 as string;
      const box = mk(path.join(root, name));
      // The limits sit on the box, the process in its leaf (a pod's cgroup and its container's).
      write(path.join(box, 'cgroup.subtree_control'), '+cpu +memory');
      const leaf = mk(path.join(box, 'provider'));
      write(path.join(box, 'memory.max'), memory);
      if (existsSync(path.join(box, 'memory.swap.max'))) write(path.join(box, 'memory.swap.max'), '0');
      write(path.join(box, 'cpu.max'), `${quota} ${CFS_PERIOD_US}`);
      return {
        name,
        version,
        dirs,
        procsFiles: [path.join(leaf, 'cgroup.procs')],
        memoryDir: box,
        cpuDir: box,
        cpuacctDir: box,
      };
    }
    const memoryDir = mk(path.join(mounts.v1.get('memory') as string, name));
    write(path.join(memoryDir, 'memory.limit_in_bytes'), memory);
    // With swap accounting on, memory+swap gets the same limit: swapping cannot stretch the box.
    if (existsSync(path.join(memoryDir, 'memory.memsw.limit_in_bytes')))
      write(path.join(memoryDir, 'memory.memsw.limit_in_bytes'), memory);
    const cpuMount = mounts.v1.get('cpu') as string;
    const cpuDir = cpuMount === mounts.v1.get('memory') ? memoryDir : mk(path.join(cpuMount, name));
    write(path.join(cpuDir, 'cpu.cfs_period_us'), String(CFS_PERIOD_US));
    write(path.join(cpuDir, 'cpu.cfs_quota_us'), quota);
    const acctMount = mounts.v1.get('cpuacct');
    let cpuacctDir: string | undefined;
    if (acctMount !== undefined)
      cpuacctDir =
        acctMount === cpuMount
          ? cpuDir
          : acctMount === mounts.v1.get('memory')
            ? memoryDir
            : mk(path.join(acctMount, name));
    const procsFiles = [...new Set([memoryDir, cpuDir, ...(cpuacctDir === undefined ? [] : [cpuacctDir])])].map((d) =>
      path.join(d, 'cgroup.procs'),
    );
    return { name, version, dirs, procsFiles, memoryDir, cpuDir, cpuacctDir };
  } catch (err) {
    removeDirs(dirs);
    throw err;
  }
}

/** rmdir, children first; a cgroup is busy for a moment after its last process died, so retry briefly. */
function removeDirs(dirs: readonly string[]): string[] {
  const left = new Set<string>();
  for (const dir of [...dirs].reverse()) {
    try {
      rmdirSync(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') left.add(dir);
    }
  }
  // Same order as given (parents first), so a retry again removes children first.
  return dirs.filter((d) => left.has(d));
}

function pidsIn(procsFiles: readonly string[]): number[] {
  const pids = new Set<number>();
  for (const f of procsFiles) {
    for (const l of (readOr(f) ?? '').split('\n')) if (/^\d+$/.test(l.trim())) pids.add(Number(l.trim()));
  }
  return [...pids];
}

/**
 * A new box with these limits. Throws when boxes cannot be made here (see `cgroupSupport()`).
 * The caller closes it.
 */
export function createBox(limits: BoxLimits): Box {
  const support = cgroupSupport();
  if (!support.ok) throw new Error(`no cgroup box on this machine: ${support.why}`);
  const made = makeBox(readMounts(), support.version, limits);
  const v2 = made.version === 2;

  // Without a kernel peak (v2 before Linux 5.19), the peak is sampled; v1 always has one.
  const kernelPeakFile = path.join(made.memoryDir, v2 ? 'memory.peak' : 'memory.max_usage_in_bytes');
  const currentFile = path.join(made.memoryDir, v2 ? 'memory.current' : 'memory.usage_in_bytes');
  const hasKernelPeak = existsSync(kernelPeakFile);
  const statFile = path.join(made.memoryDir, 'memory.stat');
  // v1 names hierarchical totals `total_*`; v2's memory.stat is hierarchical already.
  const key = (k: string): string => (v2 ? k : `total_${k === 'anon' ? 'rss' : k === 'file' ? 'cache' : k}`);
  const memStat = (): Map<string, number> => parseFlatKeyed(readOr(statFile) ?? '');
  let sampledPeak = 0;
  let peakWorkingSet = 0;
  let peakAnon = 0;
  const sample = (): { usage: number; stat: Map<string, number>; workingSet: number } => {
    const usage = num(currentFile) ?? Number.NaN;
    const stat = memStat();
    const workingSet = Math.max(0, usage - (stat.get(key('inactive_file')) ?? 0));
    if (Number.isFinite(usage)) {
      sampledPeak = Math.max(sampledPeak, usage);
      peakWorkingSet = Math.max(peakWorkingSet, workingSet);
    }
    peakAnon = Math.max(peakAnon, stat.get(key('anon')) ?? 0);
    return { usage, stat, workingSet };
  };
  // The kernel keeps no peak of the working set (nor of anything in v2 before Linux 5.19): sampled.
  const sampler = setInterval(sample, 50);
  sampler.unref();
  let closed = false;

  return {
    name: made.name,
    version: made.version,
    limits,
    dirs: made.dirs,
    wrap(command, args) {
      // `$$` is the shell's pid, which `exec` hands to the command: spawn's pid is the provider's.
      const join = made.procsFiles.map((f) => `echo $$ > ${shellQuote(f)}`).join(' && ');
      return { command: '/bin/sh', args: ['-c', `${join} && exec "$@"`, 'sh', command, ...args] };
    },
    stats() {
      const now = sample();
      const memoryBytes = now.usage;
      const peakBytes = hasKernelPeak ? (num(kernelPeakFile) ?? Number.NaN) : sampledPeak;
      const memory = {
        workingSetBytes: now.workingSet,
        peakWorkingSetBytes: peakWorkingSet,
        anonBytes: now.stat.get(key('anon')) ?? 0,
        peakAnonBytes: peakAnon,
        shmemBytes: now.stat.get(key('shmem')) ?? 0,
        fileBytes: now.stat.get(key('file')) ?? 0,
        majorFaults: now.stat.get(key('pgmajfault')) ?? 0,
        fileRefaults: now.stat.get(key('workingset_refault_file')) ?? now.stat.get(key('workingset_refault')),
      };
      const cpuStat = parseFlatKeyed(readOr(path.join(made.cpuDir, 'cpu.stat')) ?? '');
      if (v2) {
        const events = parseFlatKeyed(readOr(path.join(made.memoryDir, 'memory.events')) ?? '');
        const usage = cpuStat.get('usage_usec');
        return {
          memoryBytes,
          peakBytes,
          peakSource: hasKernelPeak ? 'kernel' : 'sampled',
          ...memory,
          oomKills: events.get('oom_kill') ?? 0,
          limitHits: undefined,
          cpuMs: usage === undefined ? undefined : usage / 1000,
          periods: cpuStat.get('nr_periods') ?? 0,
          throttledPeriods: cpuStat.get('nr_throttled') ?? 0,
          throttledMs: (cpuStat.get('throttled_usec') ?? 0) / 1000,
        };
      }
      const oom = parseFlatKeyed(readOr(path.join(made.memoryDir, 'memory.oom_control')) ?? '');
      const usageNs = made.cpuacctDir === undefined ? undefined : num(path.join(made.cpuacctDir, 'cpuacct.usage'));
      return {
        memoryBytes,
        peakBytes,
        peakSource: 'kernel',
        ...memory,
        oomKills: oom.get('oom_kill') ?? 0,
        limitHits: num(path.join(made.memoryDir, 'memory.failcnt')),
        cpuMs: usageNs === undefined ? undefined : usageNs / 1e6,
        periods: cpuStat.get('nr_periods') ?? 0,
        throttledPeriods: cpuStat.get('nr_throttled') ?? 0,
        throttledMs: (cpuStat.get('throttled_time') ?? 0) / 1e6,
      };
    },
    pids: () => pidsIn(made.procsFiles),
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(sampler);
      // Kill whatever is left, wait for the box to empty (a killed process leaves it when reaped).
      const deadline = Date.now() + 10_000;
      for (;;) {
        const pids = pidsIn(made.procsFiles);
        if (pids.length === 0) break;
        for (const pid of pids) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            // already gone
          }
        }
        if (Date.now() > deadline) break;
        await sleep(50);
      }
      let left: string[] = [...made.dirs];
      while (left.length > 0 && Date.now() < deadline) {
        left = removeDirs(left);
        if (left.length > 0) await sleep(50);
      }
      if (left.length > 0)
        throw new Error(
          `could not remove cgroup ${left.join(', ')} (processes ` +
            `left: ${pidsIn(made.procsFiles).join(', ') || 'none'})`,
        );
    },
  };
}

/**
 * @module bench/options
 * `npm run bench -- [flags]` → BenchOptions. Defaults are the sizes docs/benchmarks.md reports; `--quick` shrinks every
 * size (the smoke test's mode); explicit flags win over both. `--box` runs only the box scenario
 * (the provider inside a cgroup with the Helm chart's limits), sized by the `--box-*` flags.
 */
import path from 'node:path';
import { repoRoot } from '../repo-root.js';

/** Sizes of the box scenario (tools/bench/box.ts). */
export interface BoxSizes {
  /** Teams (namespace + service account + IAM role each); pods are spread over them. */
  teams: number;
  /** Pods of the burst (the chart's node: 110). */
  pods: number;
  /** Secrets Manager objects in each pod's class. */
  objects: number;
  /** Bytes of each secret's JSON value. */
  secretBytes: number;
  /** Rotation rounds (every pod polls once per round). */
  rounds: number;
  /** Sequential polls of one pod for the memory-flat check. */
  steadyPolls: number;
  /** Concurrent first mounts of the overload figure. */
  flood: number;
  /** Bursts whose RSS is compared (no cgroup): small and large. */
  rssPods: [number, number];
  /** Start-ups timed under the box. */
  starts: number;
  /** The box: the chart's limits.memory (MiB) and limits.cpu (millicores). */
  memoryMiB: number;
  cpuMillis: number;
  /** Deadline of each Mount attempt, as the kubelet gives NodePublishVolume (2 min). */
  deadlineS: number;
  /** Attempts per pod when the answer is UNAVAILABLE (the driver retries). */
  attempts: number;
  /** Boxed providers run a copy of node dropped from the page cache first: the box pays for its pages (a cold start).
   * */
  coldNode: boolean;
  /** Phases to run (all by default); the others print `not run`. */
  phases: BoxPhase[];
}

/** The box scenario's phases, in run order. */
export const BOX_PHASES = ['starts', 'node', 'flood', 'unboxed'] as const;
export type BoxPhase = (typeof BOX_PHASES)[number];

export interface BenchOptions {
  quick: boolean;
  /** Only the box scenario. */
  box: boolean;
  /** Only the hostile tenant in the box (tools/bench/hostile.ts). */
  boxHostile: boolean;
  boxSizes: BoxSizes;
  /** Latency added to every emulated AWS and Kubernetes answer in the latency section (default 20 ms). */
  latencyMs: number;
  /**
   * Latency of the round-trip section. Round trips are told apart by call start times, so it is
   * larger than the latency section's: on a loaded 2-core machine a process descheduled for 20 ms
   * would split one round of concurrent calls in two.
   */
  rtLatencyMs: number;
  /** Objects per mount in the round-trip, latency, CPU and memory sections. */
  objects: number;
  /** First-mount sizes whose round trips are counted. */
  firstSizes: number[];
  /** Mounts timed per latency figure. */
  samples: number;
  /** Sequential warm polls per CPU figure. */
  cpuPolls: number;
  /** Warm polls of the memory soak. */
  soakPolls: number;
  /** Concurrent first mounts of the memory burst. */
  burst: number;
  /** Objects per mount of the scale table. */
  objectScale: number[];
  /** Concurrent pods of the scale table. */
  podScale: number[];
  /** Warm polls per row of the scale tables. */
  scalePolls: number;
  /** Node binary running the provider (default: this one). */
  node: string;
  /** The provider's compiled entry point. */
  provider: string;
  /** Appended to the Dockerfile's NODE_OPTIONS for every provider (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`). */
  providerNodeOptions: string;
  /** Environment added to every provider's (e.g. `MALLOC_ARENA_MAX=2`), beside the image's. */
  providerEnv: Record<string, string>;
  /** Flags added to every provider's command line in the box scenario (e.g. `--max-concurrent-mounts=4`). */
  providerFlags: string[];
}

export const USAGE = `Usage: npm run bench -- [flags]

Runs the provider (dist/main.js) as a child process against the in-process AWS/Kubernetes emulator
and prints its figures (see docs/benchmarks.md): round trips, API cost, latency, CPU, memory, scale.

  --quick               tiny sizes (smoke test; figures are not meaningful)
  --box                 only the box scenario: the provider in a cgroup with the chart's 50m CPU / 100Mi
                        (a full node's burst, rotations, steady polls, overload, start-up; see docs/benchmarks.md)
  --box-hostile         only the hostile tenant: one tenant's attacks on the boxed provider while another mounts
  --box-pods=N          pods of the burst (110)            --box-teams=N        service accounts/roles (11)
  --box-objects=N       secrets per class (10)             --box-secret-bytes=N size of each secret (1024)
  --box-rounds=N        rotation rounds (3)                --box-steady-polls=N polls of one pod (300)
  --box-flood=N         concurrent first mounts (500)      --box-rss-pods=A,B   bursts compared by RSS (11,220)
  --box-starts=N        start-ups timed in the box (5)     --box-attempts=N     attempts on UNAVAILABLE (5)
  --box-memory-mib=N    box memory limit (100)             --box-cpu-millis=N   box CPU limit (50)
  --box-deadline-s=N    deadline of each Mount attempt (120)
  --box-cold-node=B     boxed providers start with node's pages out of the page cache, charged to the box (true)
  --box-phases=A,B,…    phases to run, of starts,node,flood,unboxed (all); e.g. --box-phases=flood
  --latency-ms=N        latency added to every emulated call in the latency section (20)
  --rt-latency-ms=N     latency of the round-trip section, where rounds are told apart by call times (50)
  --objects=N           objects per mount (10)
  --first-sizes=A,B,…   first-mount sizes whose round trips are counted (1,5,10,20)
  --samples=N           mounts per latency figure (20)
  --cpu-polls=N         warm polls per CPU figure (300)
  --soak-polls=N        warm polls of the memory soak (4000; 10000 for a long soak)
  --burst=N             concurrent first mounts of the memory burst (110)
  --object-scale=A,B,…  objects per mount of the scale table (1,10,50,100)
  --pod-scale=A,B,…     concurrent pods of the scale table (1,10,110)
  --scale-polls=N       warm polls per scale row (50)
  --provider=PATH       provider entry point (dist/main.js)
  --node=PATH           node binary for the provider (this process's)
  --provider-node-options='…'  appended to the provider's NODE_OPTIONS, e.g. '--cpu-prof --cpu-prof-dir=/tmp/prof'
  --provider-env=K=V,…  added to the providers' environment, e.g. MALLOC_ARENA_MAX=2 (box scenario)
  --provider-flags='…'  added to the providers' command line, e.g. '--max-concurrent-mounts=4' (box scenario)
`;

/**
 * What the image runs: dist/bundle/main.js (scripts/bundle.mjs, run by `npm run build`) when it is
 * there and not older than dist/main.js, else dist/main.js; in the repository's dist/, whether the
 * bench runs from tools/bench/ (vitest) or from build/tools/bench/ (npm run bench).
 */
export function defaultProviderPath(moduleUrl: string = import.meta.url): string {
  const main = path.join(repoRoot(moduleUrl), 'dist', 'main.js');
  const bundle = path.join(path.dirname(main), 'bundle', 'main.js');
  const { statSync } = process.getBuiltinModule('node:fs');
  const mtime = (file: string): number => statSync(file, { throwIfNoEntry: false })?.mtimeMs ?? Number.NaN;
  return mtime(bundle) >= mtime(main) ? bundle : main;
}

const FULL = {
  latencyMs: 20,
  rtLatencyMs: 50,
  objects: 10,
  firstSizes: [1, 5, 10, 20],
  samples: 20,
  cpuPolls: 300,
  soakPolls: 4_000,
  burst: 110,
  objectScale: [1, 10, 50, 100],
  podScale: [1, 10, 110],
  scalePolls: 50,
};

const FULL_BOX: BoxSizes = {
  teams: 11,
  pods: 110,
  objects: 10,
  secretBytes: 1024,
  rounds: 3,
  steadyPolls: 300,
  flood: 500,
  rssPods: [11, 220],
  starts: 5,
  memoryMiB: 100,
  cpuMillis: 50,
  deadlineS: 120,
  attempts: 5,
  coldNode: true,
  phases: [...BOX_PHASES],
};

const QUICK_BOX: BoxSizes = {
  ...FULL_BOX,
  teams: 3,
  pods: 6,
  objects: 3,
  rounds: 1,
  steadyPolls: 10,
  flood: 12,
  rssPods: [3, 6],
  starts: 2,
};

const QUICK: typeof FULL = {
  latencyMs: 20,
  rtLatencyMs: 50,
  objects: 3,
  firstSizes: [1, 3],
  samples: 2,
  cpuPolls: 10,
  soakPolls: 40,
  burst: 4,
  objectScale: [1, 3],
  podScale: [1, 4],
  scalePolls: 4,
};

/** `K=V,K=V` → an environment; a malformed entry is an error. */
function envList(text: string, errors: string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const entry of text.split(',').filter((e) => e !== '')) {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(entry);
    if (m === null) errors.push(`--provider-env: ${JSON.stringify(entry)} is not NAME=value`);
    else env[m[1] as string] = m[2] as string;
  }
  return env;
}

export type ParsedArgs = { kind: 'run'; options: BenchOptions } | { kind: 'help' } | { kind: 'error'; message: string };

export function parseBenchArgs(argv: readonly string[]): ParsedArgs {
  const raw = new Map<string, string>();
  let quick = false;
  let box = false;
  let boxHostile = false;
  for (const arg of argv) {
    if (arg === '--help' || arg === '-h') return { kind: 'help' };
    if (arg === '--quick') {
      quick = true;
      continue;
    }
    if (arg === '--box') {
      box = true;
      continue;
    }
    if (arg === '--box-hostile') {
      boxHostile = true;
      continue;
    }
    const m = /^--([a-z-]+)=(.*)$/.exec(arg);
    if (m === null)
      return { kind: 'error', message: `unknown argument ${JSON.stringify(arg)} (flags take the form --name=value)` };
    raw.set(m[1] as string, m[2] as string);
  }
  const base = quick ? QUICK : FULL;
  const errors: string[] = [];
  const int = (name: string, def: number, min: number): number => {
    const v = raw.get(name);
    raw.delete(name);
    if (v === undefined) return def;
    if (!/^\d+$/.test(v) || Number(v) < min) {
      errors.push(`--${name}=${v}: want an integer ≥ ${min}`);
      return def;
    }
    return Number(v);
  };
  const list = (name: string, def: number[]): number[] => {
    const v = raw.get(name);
    raw.delete(name);
    if (v === undefined) return def;
    const parts = v.split(',');
    if (parts.some((p) => !/^\d+$/.test(p) || Number(p) < 1)) {
      errors.push(`--${name}=${v}: want a comma-separated list of integers ≥ 1, e.g. 1,10,50`);
      return def;
    }
    return parts.map(Number);
  };
  const bool = (name: string, def: boolean): boolean => {
    const v = raw.get(name);
    raw.delete(name);
    if (v === undefined) return def;
    if (v !== 'true' && v !== 'false') {
      errors.push(`--${name}=${v}: want true or false`);
      return def;
    }
    return v === 'true';
  };
  const str = (name: string, def: string): string => {
    const v = raw.get(name);
    raw.delete(name);
    return v === undefined || v === '' ? def : v;
  };
  const b = quick ? QUICK_BOX : FULL_BOX;
  const rssPods = list('box-rss-pods', b.rssPods);
  const phaseText = raw.get('box-phases');
  raw.delete('box-phases');
  const phases = phaseText === undefined ? b.phases : (phaseText.split(',') as BoxPhase[]);
  for (const ph of phases)
    if (!(BOX_PHASES as readonly string[]).includes(ph))
      errors.push(`--box-phases: ${JSON.stringify(ph)} is not one of ${BOX_PHASES.join(', ')}`);
  if (rssPods.length !== 2) errors.push(`--box-rss-pods: want two sizes, small and large, e.g. 11,220`);
  const boxSizes: BoxSizes = {
    teams: int('box-teams', b.teams, 1),
    pods: int('box-pods', b.pods, 1),
    objects: int('box-objects', b.objects, 1),
    secretBytes: int('box-secret-bytes', b.secretBytes, 64),
    rounds: int('box-rounds', b.rounds, 0),
    steadyPolls: int('box-steady-polls', b.steadyPolls, 2),
    flood: int('box-flood', b.flood, 1),
    rssPods: [rssPods[0] ?? b.rssPods[0], rssPods[1] ?? b.rssPods[1]],
    starts: int('box-starts', b.starts, 1),
    memoryMiB: int('box-memory-mib', b.memoryMiB, 16),
    cpuMillis: int('box-cpu-millis', b.cpuMillis, 1),
    deadlineS: int('box-deadline-s', b.deadlineS, 1),
    attempts: int('box-attempts', b.attempts, 1),
    coldNode: bool('box-cold-node', b.coldNode),
    phases,
  };
  const options: BenchOptions = {
    quick,
    box,
    boxHostile,
    boxSizes,
    latencyMs: int('latency-ms', base.latencyMs, 1),
    rtLatencyMs: int('rt-latency-ms', base.rtLatencyMs, 1),
    objects: int('objects', base.objects, 1),
    firstSizes: list('first-sizes', base.firstSizes),
    samples: int('samples', base.samples, 1),
    cpuPolls: int('cpu-polls', base.cpuPolls, 1),
    soakPolls: int('soak-polls', base.soakPolls, 1),
    burst: int('burst', base.burst, 1),
    objectScale: list('object-scale', base.objectScale),
    podScale: list('pod-scale', base.podScale),
    scalePolls: int('scale-polls', base.scalePolls, 1),
    node: str('node', process.execPath),
    provider: str('provider', defaultProviderPath()),
    providerNodeOptions: str('provider-node-options', ''),
    providerEnv: envList(str('provider-env', ''), errors),
    providerFlags: str('provider-flags', '')
      .split(/\s+/)
      .filter((f) => f !== ''),
  };
  for (const name of raw.keys()) errors.push(`unknown flag --${name}`);
  if (errors.length > 0) return { kind: 'error', message: errors.join('\n') };
  return { kind: 'run', options };
}

/**
 * @module bench/provider-process
 * The provider as a child process (`node dist/main.js`), so its CPU and memory are its own: the
 * Dockerfile's NODE_OPTIONS, AWS_ENDPOINT_URL and KUBECONFIG pointing at the emulator, a socket in a
 * temp provider volume, /metrics on a free loopback port. Start-up is measured to the moment the
 * socket file exists. Optionally inside a cgroup box with the chart's CPU and memory limits (the
 * process joins it before exec, so start-up is boxed too), with env the chart sets (NODE_NAME).
 * How the process ended is kept: a crash (V8's heap limit aborts with SIGABRT, the cgroup OOM
 * killer sends SIGKILL) is a restart in a cluster, and the bench must be able to prove there was none.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { createServer } from 'node:net';
import path from 'node:path';
import { repoRoot } from '../repo-root.js';
import { createBox, type Box, type BoxLimits } from './cgroup.js';
import { sampleProc, type ProcSample } from './proc.js';

const DOCKERFILE: string = (() => {
  try {
    return readFileSync(path.join(repoRoot(import.meta.url), 'Dockerfile'), 'utf8');
  } catch {
    return '';
  }
})();

/** Read from the Dockerfile's `ENV NODE_OPTIONS=…`, so the bench measures what the image runs. */
export const DOCKERFILE_NODE_OPTIONS: string = /^ENV NODE_OPTIONS="([^"]*)"/m.exec(DOCKERFILE)?.[1] ?? '';

/** Other variables of the image's environment that change how the process runs (glibc's malloc arenas), read the same
 * way. */
export const DOCKERFILE_ENV: Readonly<Record<string, string>> = Object.fromEntries(
  ['MALLOC_ARENA_MAX'].flatMap((name) => {
    const v = new RegExp(`^ENV ${name}=(\\S+)`, 'm').exec(DOCKERFILE)?.[1];
    return v === undefined ? [] : [[name, v]];
  }),
);

export interface ProviderProcessOptions {
  node: string;
  mainJs: string;
  /** Working directory for this provider (its volume is `<dir>/providers`). */
  dir: string;
  emulatorUrl: string;
  kubeconfig: string;
  /** Extra flags (`--driver-writes-secrets`, `--cache-ttl=30s`). */
  flags: readonly string[];
  nodeOptions?: string;
  /** Give up waiting for the socket after this long. Default 20 s. */
  startTimeoutMs?: number;
  /** Env on top of the defaults, as the chart adds it (e.g. NODE_NAME from the downward API). */
  env?: Record<string, string>;
  /** Run inside a new cgroup box with these limits (closed by `stop()`). */
  box?: BoxLimits;
  /** Every complete line the process prints, as it comes (e.g. to check no secret is logged). */
  onLine?: (stream: 'stdout' | 'stderr', line: string) => void;
}

/** How the process ended: an exit code, or the signal that ended it. */
export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ProviderProcess {
  readonly pid: number;
  readonly socketPath: string;
  readonly metricsUrl: string;
  /** CPU used from spawn until the socket existed. */
  readonly startupCpuMs: number;
  /** Wall time from spawn until the socket existed. */
  readonly startupWallMs: number;
  sample(): ProcSample;
  /** `nodejs_heap_used_bytes` from the provider's /metrics (NaN when unreadable). */
  heapUsed(): Promise<number>;
  /** Log lines at warn or error level (names only; the provider never logs values). */
  readonly problems: string[];
  /** Log lines seen. */
  readonly logLines: number;
  /** The cgroup box it runs in, if asked for (open until `stop()`). */
  readonly box: Box | undefined;
  /** How it ended, once it has (before `stop()` was called: it died). */
  readonly exit: ExitInfo | undefined;
  /** Resolves when the process has ended, however. */
  readonly exited: Promise<ExitInfo>;
  /** The last few KB of stderr (V8's fatal errors and stack traces land there). */
  stderrTail(): string;
  /** SIGTERM, wait for exit (SIGKILL after 5 s), remove the box; resolves with the exit code. */
  stop(): Promise<number | null>;
}

/** A free loopback TCP port (listen on 0, read it, close). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

function exitOf(child: ChildProcess): Promise<ExitInfo> {
  if (child.exitCode !== null || child.signalCode !== null)
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

/** `exit 1`, `SIGKILL`: for messages. */
export function describeExit(e: ExitInfo): string {
  return e.signal !== null ? e.signal : `exit ${String(e.code)}`;
}

/** Splits a stream into lines for `onLine`, keeping a partial line until its end arrives. */
function lineSplitter(emit: (line: string) => void): (chunk: string) => void {
  let partial = '';
  return (chunk) => {
    const lines = (partial + chunk).split('\n');
    partial = lines.pop() ?? '';
    for (const l of lines) emit(l);
  };
}

export async function startProviderProcess(o: ProviderProcessOptions): Promise<ProviderProcess> {
  const box = o.box === undefined ? undefined : createBox(o.box);
  try {
    return await start(o, box);
  } catch (err) {
    await box?.close();
    throw err;
  }
}

async function start(o: ProviderProcessOptions, box: Box | undefined): Promise<ProviderProcess> {
  const volume = path.join(o.dir, 'providers');
  await mkdir(volume, { recursive: true });
  const socketPath = path.join(volume, 'aws.sock');
  const port = await freePort();
  const env: Record<string, string> = {
    PATH: process.env['PATH'] ?? '/usr/bin:/bin',
    NODE_OPTIONS: o.nodeOptions ?? DOCKERFILE_NODE_OPTIONS,
    NODE_ENV: 'production',
    ...DOCKERFILE_ENV,
    AWS_ENDPOINT_URL: o.emulatorUrl,
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_CONFIG_FILE: path.join(o.dir, 'no-aws-config'),
    AWS_SHARED_CREDENTIALS_FILE: path.join(o.dir, 'no-aws-credentials'),
    KUBECONFIG: o.kubeconfig,
    ...o.env,
  };
  const args = [
    o.mainJs,
    `--provider-volume=${volume}`,
    `--metrics-addr=127.0.0.1:${port}`,
    '--health-addr=',
    ...o.flags,
  ];
  const run = box === undefined ? { command: o.node, args } : box.wrap(o.node, args);
  const t0 = performance.now();
  const child = spawn(run.command, run.args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not start ${o.node} ${o.mainJs}`);
  const problems: string[] = [];
  let logLines = 0;
  let stderr = '';
  // The provider's logger writes JSON lines to stderr; both streams are read the same way.
  const lines = (stream: 'stdout' | 'stderr'): ((chunk: string) => void) =>
    lineSplitter((l) => {
      logLines++;
      if (/"level":"(warn|error)"/.test(l) && problems.length < 20) problems.push(l);
      o.onLine?.(stream, l);
    });
  child.stdout?.setEncoding('utf8').on('data', lines('stdout'));
  const stderrLines = lines('stderr');
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-4000);
    stderrLines(chunk);
  });
  let exit: ExitInfo | undefined;
  const done = exitOf(child).then((e) => (exit = e));

  // Poll for the socket: the CPU reading is taken the moment it exists.
  const deadline = t0 + (o.startTimeoutMs ?? 20_000);
  let startupCpuMs: number;
  let startupWallMs: number;
  for (;;) {
    if (existsSync(socketPath)) {
      startupWallMs = performance.now() - t0;
      startupCpuMs = sampleProc(pid).cpuMs;
      break;
    }
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(
        `provider exited (${child.exitCode ?? child.signalCode}) before ` +
          `listening: ${stderr.trim() || problems.join('\n')}`,
      );
    }
    if (performance.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(
        `provider did not create ${socketPath} within ${o.startTimeoutMs ?? 20_000} ms: ${stderr.trim()}`,
      );
    }
    await new Promise((r) => setTimeout(r, 1));
  }

  return {
    pid,
    socketPath,
    metricsUrl: `http://127.0.0.1:${port}/metrics`,
    startupCpuMs,
    startupWallMs,
    problems,
    get logLines() {
      return logLines;
    },
    box,
    get exit() {
      return exit;
    },
    exited: done,
    stderrTail: () => stderr,
    sample: () => sampleProc(pid),
    async heapUsed() {
      try {
        const text = await (
          await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(5_000) })
        ).text();
        return Number(/^nodejs_heap_used_bytes (\S+)$/m.exec(text)?.[1] ?? Number.NaN);
      } catch {
        return Number.NaN;
      }
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      const e = await done;
      clearTimeout(timer);
      await box?.close();
      return e.code;
    },
  };
}

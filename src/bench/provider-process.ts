/**
 * @module bench/provider-process
 * The provider as a child process (`node dist/main.js`), so its CPU and memory are its own: the
 * Dockerfile's NODE_OPTIONS, AWS_ENDPOINT_URL and KUBECONFIG pointing at the emulator, a socket in a
 * temp provider volume, /metrics on a free loopback port. Start-up is measured to the moment the
 * socket file exists.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { createServer } from 'node:net';
import path from 'node:path';
import { sampleProc, type ProcSample } from './proc.js';

/** Read from the Dockerfile's `ENV NODE_OPTIONS=…`, so the bench measures what the image runs. */
export const DOCKERFILE_NODE_OPTIONS: string = (() => {
  try {
    const text = readFileSync(new URL('../../Dockerfile', import.meta.url), 'utf8');
    return /^ENV NODE_OPTIONS="([^"]*)"/m.exec(text)?.[1] ?? '';
  } catch {
    return '';
  }
})();

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
  /** SIGTERM, wait for exit (SIGKILL after 5 s); resolves with the exit code. */
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

function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

export async function startProviderProcess(o: ProviderProcessOptions): Promise<ProviderProcess> {
  const volume = path.join(o.dir, 'providers');
  await mkdir(volume, { recursive: true });
  const socketPath = path.join(volume, 'aws.sock');
  const port = await freePort();
  const env: Record<string, string> = {
    PATH: process.env['PATH'] ?? '/usr/bin:/bin',
    NODE_OPTIONS: o.nodeOptions ?? DOCKERFILE_NODE_OPTIONS,
    NODE_ENV: 'production',
    AWS_ENDPOINT_URL: o.emulatorUrl,
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_CONFIG_FILE: path.join(o.dir, 'no-aws-config'),
    AWS_SHARED_CREDENTIALS_FILE: path.join(o.dir, 'no-aws-credentials'),
    KUBECONFIG: o.kubeconfig,
  };
  const args = [o.mainJs, `--provider-volume=${volume}`, `--metrics-addr=127.0.0.1:${port}`, '--health-addr=', ...o.flags];
  const t0 = performance.now();
  const child = spawn(o.node, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not start ${o.node} ${o.mainJs}`);
  const problems: string[] = [];
  let logLines = 0;
  let stderr = '';
  let partial = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    const lines = (partial + chunk).split('\n');
    partial = lines.pop() ?? '';
    for (const l of lines) {
      logLines++;
      if (/"level":"(warn|error)"/.test(l) && problems.length < 20) problems.push(l);
    }
  });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-4000);
  });
  const done = exited(child);

  // Poll for the socket: the CPU reading is taken the moment it exists.
  const deadline = t0 + (o.startTimeoutMs ?? 20_000);
  let startupCpuMs = Number.NaN;
  let startupWallMs = Number.NaN;
  for (;;) {
    if (existsSync(socketPath)) {
      startupWallMs = performance.now() - t0;
      startupCpuMs = sampleProc(pid).cpuMs;
      break;
    }
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`provider exited (${child.exitCode ?? child.signalCode}) before listening: ${stderr.trim() || problems.join('\n')}`);
    }
    if (performance.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`provider did not create ${socketPath} within ${o.startTimeoutMs ?? 20_000} ms: ${stderr.trim()}`);
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
    sample: () => sampleProc(pid),
    async heapUsed() {
      try {
        const text = await (await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(5_000) })).text();
        return Number(/^nodejs_heap_used_bytes (\S+)$/m.exec(text)?.[1] ?? Number.NaN);
      } catch {
        return Number.NaN;
      }
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      const code = await done;
      clearTimeout(timer);
      return code;
    },
  };
}

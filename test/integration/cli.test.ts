/**
 * The built server as a DaemonSet runs it (`node dist/main.js …`): --help and --version, refusals at
 * start with exit 2, ASCP's tolerance for its own flags (docs/behaviour.md, "Flags"), Go flag forms, a clean
 * SIGTERM, and a missing provider volume. The child reaches only the emulator's Kubernetes API.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type Emulator } from '../../tools/emulator/index.js';
import { NAME, VERSION } from '../../src/version.js';
import { ensureBuilt, MAIN, ROOT } from '../helpers/built.js';

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

interface Proc {
  child: ChildProcess;
  /** Everything written so far. */
  readonly stdout: string;
  readonly stderr: string;
  /** The first stderr JSON line whose msg is `msg`, once it is written. */
  logLine(msg: string): Promise<Record<string, unknown>>;
  exited: Promise<Exit>;
}

const running: Proc[] = [];

function start(args: string[], env: Record<string, string> = {}): Proc {
  // A clean environment: no KUBERNETES_SERVICE_*, no proxies, no AWS settings from the host.
  const child = spawn(process.execPath, [MAIN, ...args], {
    cwd: ROOT,
    env: { PATH: process.env['PATH'] ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  const waiters: (() => void)[] = [];
  child.stdout?.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  child.stderr?.setEncoding('utf8').on('data', (c: string) => {
    stderr += c;
    for (const w of waiters.slice()) w();
  });
  const exited = new Promise<Exit>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })),
  );
  const proc: Proc = {
    child,
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
    logLine(msg) {
      return new Promise((resolve, reject) => {
        const check = (): boolean => {
          for (const line of stderr.split('\n')) {
            if (!line.startsWith('{')) continue;
            const parsed = JSON.parse(line) as Record<string, unknown>;
            if (parsed['msg'] === msg) {
              resolve(parsed);
              return true;
            }
          }
          return false;
        };
        if (check()) return;
        const w = (): void => {
          if (check()) waiters.splice(waiters.indexOf(w), 1);
        };
        waiters.push(w);
        void exited.then((e) =>
          reject(new Error(`exited (${e.code}) before logging ${JSON.stringify(msg)}:\n${e.stderr}`)),
        );
      });
    },
    exited,
  };
  running.push(proc);
  return proc;
}

function run(args: string[], env: Record<string, string> = {}): Promise<Exit> {
  return start(args, env).exited;
}

let dir: string;
let emu: Emulator;
let kubeconfig: string;
let volumes = 0;

async function volume(): Promise<string> {
  const v = path.join(dir, `providers-${++volumes}`);
  await mkdir(v);
  return v;
}

beforeAll(async () => {
  ensureBuilt();
  dir = await mkdtemp(path.join(tmpdir(), 'csi-aws-cli-'));
  emu = await startEmulator();
  kubeconfig = path.join(dir, 'kubeconfig');
  await emu.writeKubeconfig(kubeconfig);
}, 180_000);

afterEach(async () => {
  for (const p of running.splice(0)) {
    if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    await p.exited;
  }
});

afterAll(async () => {
  await emu?.close();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

describe('--help and --version', () => {
  it('--help lists every flag with its default and the environment, exit 0', async () => {
    const r = await run(['--help']);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    for (const [flag, def] of [
      ['provider-volume', '"/var/run/secrets-store-csi-providers"'],
      ['kubelet-root', '"/var/lib/kubelet"'],
      ['driver-writes-secrets', 'false'],
      ['qps', '"5"'],
      ['burst', '"10"'],
      ['eks-addon-version', '""'],
      ['pod-identity-http-timeout', '""'],
      ['pod-identity-endpoint', '""'],
      ['metrics-addr', '"127.0.0.1:8989"'],
      ['health-addr', '"0.0.0.0:8990"'],
      ['log-level', '"info"'],
      ['log-format', '"json"'],
      ['cache-ttl', '"0s"'],
      ['metrics-object-names', 'false'],
    ] as const) {
      const at = r.stdout.indexOf(`--${flag}`);
      expect(at, flag).toBeGreaterThanOrEqual(0);
      expect(r.stdout.slice(at, r.stdout.indexOf('\n  --', at + 1)), flag).toContain(`(default ${def})`);
    }
    expect(r.stdout).toMatch(/HTTPS_PROXY/);
  });

  it('--version prints name, version and build info, exit 0', async () => {
    const r = await run(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(`${NAME} ${VERSION} (node ${process.version}, ${process.platform}/${process.arch})`);
  });
});

describe('refused at start, before any mount (exit 2, message on stderr)', () => {
  it.each<[string[], RegExp]>([
    [['--nonsense'], /flag provided but not defined: -nonsense/],
    [['-v', '2'], /flag provided but not defined: -v/],
    [['--log-level=loud'], /invalid value "loud" for flag -log-level: want debug, info, warn or error/],
    [['--metrics-addr=nonsense'], /invalid value "nonsense" for flag -metrics-addr: want host:port/],
    [['--qps=fast'], /invalid value "fast" for flag -qps/],
  ])('%j', async (args, message) => {
    const r = await run(args, { KUBECONFIG: kubeconfig });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(new RegExp(`^${NAME}: `));
    expect(r.stderr).toMatch(message);
    expect(r.stdout).toBe('');
  });
});

describe('serving', () => {
  it('Go flag forms; bad --pod-identity-http-timeout only logged (ASCP); SIGTERM → exit 0, socket gone', async () => {
    const vol = await volume();
    const socket = path.join(vol, 'aws.sock');
    const p = start(
      [
        `--provider-volume=${vol}`,
        '--health-addr=127.0.0.1:0',
        '--metrics-addr=127.0.0.1:0',
        '-qps',
        '7',
        '--driver-writes-secrets',
        '--pod-identity-http-timeout=bogus',
      ],
      { KUBECONFIG: kubeconfig },
    );
    const warning = await p.logLine(
      `failed to parse podIdentityHttpTimeout value 'bogus': time: invalid duration "bogus", using default SDK value`,
    );
    expect(warning['level']).toBe('warn');
    const listening = await p.logLine('listening');
    expect(listening['socket']).toBe(socket);
    const http = await p.logLine('http endpoints listening');
    expect(existsSync(socket)).toBe(true);
    // The address as bound, and readiness checked and logged at start, before any probe.
    expect(String(http['address'])).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(http['url']).toBeUndefined();
    await p.logLine('ready');
    const base = `http://${String(http['address'])}`;

    const ready = await fetch(`${base}/readyz`);
    expect(ready.status).toBe(200);
    const metricsLine = p.stderr
      .split('\n')
      .filter((l) => l.includes('"msg":"http endpoints listening"'))
      .map((l) => JSON.parse(l) as { address: string; paths: string[] })
      .find((l) => l.paths.includes('/metrics'));
    expect((await fetch(`http://${metricsLine?.address ?? ''}/metrics`)).status).toBe(200);

    p.child.kill('SIGTERM');
    const exit = await p.exited;
    expect(exit.code).toBe(0);
    expect(existsSync(socket)).toBe(false);
    expect(exit.stderr).toMatch(/"msg":"received signal: draining mounts in flight"/);
    expect(exit.stderr).toMatch(/"msg":"stopped"/);
  });

  it('--driver-writes-secrets=false and -burst 20 (separate value) start too; SIGINT stops as well', async () => {
    const vol = await volume();
    const p = start(
      [`-provider-volume`, vol, '--health-addr=', '--metrics-addr=', '--driver-writes-secrets=false', '-burst', '20'],
      { KUBECONFIG: kubeconfig },
    );
    await p.logLine('listening');
    expect(p.stderr).not.toMatch(/http endpoints listening/);
    p.child.kill('SIGINT');
    const exit = await p.exited;
    expect(exit.code).toBe(0);
    expect(existsSync(path.join(vol, 'aws.sock'))).toBe(false);
  });

  it('a missing provider volume directory: exit 1 with a message naming it', async () => {
    const missing = path.join(dir, 'no-such-dir');
    const r = await run([`--provider-volume=${missing}`, '--health-addr=127.0.0.1:0', '--metrics-addr=127.0.0.1:0'], {
      KUBECONFIG: kubeconfig,
    });
    expect(r.code).toBe(1);
    const failed = r.stderr.split('\n').find((l) => l.includes('"start-up failed"'));
    expect(failed).toBeDefined();
    expect(failed).toContain(`provider volume ${missing} does not exist`);
  });

  it('no Kubernetes config: still serves classes that need no lookup, logs why and how to fix, not ready', async () => {
    const vol = await volume();
    const p = start([`--provider-volume=${vol}`, '--health-addr=127.0.0.1:0', '--metrics-addr=']);
    const line = await p.logLine(
      'no Kubernetes API access: IRSA and region lookups will fail, and /readyz answers not ready',
    );
    expect(line['level']).toBe('error');
    expect(String(line['error'])).toMatch(/KUBECONFIG/);
    await p.logLine('listening');
    // Said at start, not at the first probe; and /readyz agrees with the log.
    const notReady = await p.logLine('not ready');
    expect(String(notReady['reason'])).toMatch(
      /^no Kubernetes API access \(.*KUBECONFIG.*\): IRSA roles and node regions cannot be looked up$/,
    );
    expect(p.stderr).not.toMatch(/"msg":"ready"/);
    const http = await p.logLine('http endpoints listening');
    const r = await fetch(`http://${String(http['address'])}/readyz`);
    expect(r.status).toBe(503);
    expect(await r.text()).toMatch(/^not ready: no Kubernetes API access/);
    p.child.kill('SIGTERM');
    expect((await p.exited).code).toBe(0);
  });
});

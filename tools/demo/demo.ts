/**
 * @module demo/demo
 * `demo`: the whole path on this machine, no cloud. The emulator (example seed) plays AWS and
 * Kubernetes, the real provider (`start()` of main) serves on a temp unix socket, and this command
 * plays the driver: a Mount, a rotation, a second Mount as driver v1.6 sends it (no versions), the
 * calls each made (the warm path should reach neither STS nor Kubernetes), a /metrics excerpt,
 * `doctor` on the healthy setup and on a broken one (a trust policy naming another service account),
 * and a clean shutdown. Values shown are the emulator's fake demo data; sensitive-looking ones are masked.
 */
import { randomUUID } from 'node:crypto';
import { lstat, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  createDriverClient,
  EXAMPLE_ROLE,
  exampleSeed,
  loadSeed,
  mountAttributes,
  pointAwsSdkAt,
  startEmulator,
  type CallRecord,
  type DriverClient,
  type Emulator,
  type ObjectVersion,
} from '../emulator/index.js';
import { createLogger } from '../../src/observability/index.js';
import { wantsColor, type CommandIO } from '../../src/cli/index.js';
import { isMain } from '../entry.js';
import { parseFlags } from '../../src/cli/index.js';

const USAGE = `Usage: npm run demo -- [--keep]

Runs the AWS/Kubernetes emulator and the real provider on this machine, mounts a SecretProviderClass
as the CSI driver would, rotates a secret and mounts again. No AWS account or cluster is used.

  --keep   keep the temp directory (kubeconfig, socket dir, mounted files, provider log) and print its path

Colour on a terminal; NO_COLOR=1 turns it off, FORCE_COLOR=1 forces it.
`;

/** Output lines fit this many columns (longer ones wrap, continued with an indent). */
export const DEMO_WIDTH = 120;

const REGION = 'us-east-1';
const NAMESPACE = 'default';
const SERVICE_ACCOUNT = 'app';
const POD = 'app-0';
const CLASS = 'app-secrets';

/** The demo's SecretProviderClass `objects`: a JSON secret split with jmesPath, a plain and a binary secret, SSM
 * SecureString and String. */
export const DEMO_OBJECTS = `
- objectName: prod/db-creds
  objectType: secretsmanager
  objectAlias: db-creds.json
  filePermission: "0640"
  jmesPath:
    - {path: username, objectAlias: db-username}
    - {path: password, objectAlias: db-password, filePermission: "0600"}
- {objectName: prod/api-key, objectType: secretsmanager, objectAlias: api-key, filePermission: "0600"}
- {objectName: prod/tls-cert, objectType: secretsmanager, objectAlias: tls-cert.der, filePermission: "0644"}
- {objectName: /app/db-host, objectType: ssmparameter, objectAlias: db-host}
- {objectName: /app/feature-flag, objectType: ssmparameter, objectAlias: feature-flag}
`;

/** The SecretProviderClass the demo mounts, as a user would apply it (the demo passes its parameters to Mount as the
 * driver does). */
export function demoClassYaml(): string {
  const objects = DEMO_OBJECTS.trim()
    .split('\n')
    .map((l) => `      ${l}`)
    .join('\n');
  return [
    'apiVersion: secrets-store.csi.x-k8s.io/v1',
    'kind: SecretProviderClass',
    'metadata:',
    `  name: ${CLASS}`,
    `  namespace: ${NAMESPACE}`,
    'spec:',
    '  provider: aws',
    '  parameters:',
    `    region: ${REGION}`,
    '    objects: |',
    objects,
  ].join('\n');
}

/** ANSI styles, or none. */
/** Function-valued fields, not methods: each is handed around on its own (`out(line, style.step)`). */
interface Style {
  step: (s: string) => string;
  dim: (s: string) => string;
  good: (s: string) => string;
  bad: (s: string) => string;
}
const PLAIN: Style = { step: (s) => s, dim: (s) => s, good: (s) => s, bad: (s) => s };
const ANSI: Style = {
  step: (s) => `\x1b[1;36m${s}\x1b[0m`,
  dim: (s) => `\x1b[2m${s}\x1b[0m`,
  good: (s) => `\x1b[32m${s}\x1b[0m`,
  bad: (s) => `\x1b[1;31m${s}\x1b[0m`,
};

/** Visible length (ANSI escapes do not count). */
function visible(s: string): number {
  // eslint-disable-next-line no-control-regex
  return s.replace(/\x1b\[[0-9;]*m/g, '').length;
}

/**
 * A line cut into lines of at most `width` visible columns, at spaces or after commas; the
 * continuation lines keep the first line's indent plus two spaces. A single word longer than the
 * width (a long path) stands alone on its line.
 */
export function fitLine(line: string, width = DEMO_WIDTH): string[] {
  if (visible(line) <= width) return [line];
  const indent = /^ */.exec(line)?.[0] ?? '';
  const cont = `${indent}  `;
  const words = line.slice(indent.length).split(/(?<=,)|(?<= )/);
  const out: string[] = [];
  let cur = indent;
  for (const w of words) {
    if (visible(cur) + visible(w.trimEnd()) > width && cur.trim() !== '') {
      out.push(cur.trimEnd());
      cur = cont + w.trimStart();
    } else cur += w;
  }
  if (cur.trim() !== '') out.push(cur.trimEnd());
  return out;
}

/** Files whose (fake, non-sensitive) demo values are printed; every other value is masked. */
const SHOWN = new Set(['db-username', 'db-host', 'feature-flag']);

/** The rotated value of prod/db-creds: only the password changes. */
const ROTATED_DB_CREDS = '{"username":"app","password":"r0tated-demo","port":5432}';

interface FileInfo {
  path: string;
  mode: number;
  size: number;
  ino: number;
  mtimeMs: number;
  contents: Buffer;
}

class StepError extends Error {
  constructor(
    readonly step: string,
    message: string,
    options?: { cause: unknown },
  ) {
    super(message, options);
  }
}

/** `--keep`, `--help`; anything else is refused. */
function parseArgs(argv: readonly string[]): { keep: boolean } | { help: true } | { error: string } {
  let keep = false;
  for (const a of argv) {
    if (a === '--help' || a === '-h' || a === 'help') return { help: true };
    if (a === '--keep' || a === '-keep' || a === '--keep=true') keep = true;
    else if (a === '--keep=false') keep = false;
    else return { error: `unknown argument ${JSON.stringify(a)}` };
  }
  return { keep };
}

async function listMount(dir: string, prefix = ''): Promise<FileInfo[]> {
  const out: FileInfo[] = [];
  const entries = (await readdir(path.join(dir, prefix), { withFileTypes: true })).sort((a, b) =>
    a.name.localeCompare(b.name),
  );
  for (const e of entries) {
    const rel = prefix === '' ? e.name : `${prefix}/${e.name}`;
    if (e.isDirectory()) {
      out.push(...(await listMount(dir, rel)));
      continue;
    }
    const full = path.join(dir, rel);
    const st = await lstat(full);
    out.push({
      path: rel,
      mode: st.mode & 0o777,
      size: st.size,
      ino: st.ino,
      mtimeMs: st.mtimeMs,
      contents: await readFile(full),
    });
  }
  return out;
}

function shownValue(f: FileInfo): string {
  if (SHOWN.has(f.path)) return JSON.stringify(f.contents.toString('utf8'));
  const text = f.contents.toString('utf8');
  // eslint-disable-next-line no-control-regex -- control characters mark a value as binary
  const binary = !Buffer.from(text, 'utf8').equals(f.contents) || /[\x00-\x08\x0e-\x1f]/.test(text);
  return binary ? '<binary, masked>' : '<masked>';
}

function pad(s: string, n: number): string {
  return s.length >= n ? s : s + ' '.repeat(n - s.length);
}

function tree(files: readonly FileInfo[], versions: readonly ObjectVersion[]): string[] {
  const byId = new Map(versions.map((v) => [v.id, v.version] as const));
  const w = Math.max(...files.map((f) => f.path.length), 4);
  return files.map((f, i) => {
    const branch = i === files.length - 1 ? '└──' : '├──';
    const version = byId.get(f.path) ?? '-';
    const mode = f.mode.toString(8).padStart(4, '0');
    const size = `${String(f.size).padStart(4)} B`;
    const shown = `version ${pad(shortVersion(version), 10)}  ${shownValue(f)}`;
    return `   ${branch} ${pad(f.path, w)}  ${mode}  ${size}  ${shown}`;
  });
}

/** Secrets Manager version ids are UUIDs: the first 8 characters are enough to tell them apart. */
function shortVersion(v: string): string {
  return /^[0-9a-f]{8}-/.test(v) ? `${v.slice(0, 8)}…` : v;
}

interface CallSummary {
  sts: number;
  secretsmanager: number;
  ssm: number;
  k8s: number;
  podIdentity: number;
  detail: string;
}

function summarize(calls: readonly CallRecord[]): CallSummary {
  const count = (s: CallRecord['service']): number => calls.filter((c) => c.service === s).length;
  const ops = new Map<string, number>();
  for (const c of calls) {
    const k = `${c.service}:${c.operation}${c.status >= 400 || c.status === 0 ? ` (${c.errorCode ?? c.status})` : ''}`;
    ops.set(k, (ops.get(k) ?? 0) + 1);
  }
  return {
    sts: count('sts'),
    secretsmanager: count('secretsmanager'),
    ssm: count('ssm'),
    k8s: count('k8s'),
    podIdentity: count('pod-identity'),
    detail: [...ops].map(([k, n]) => `${k}×${n}`).join(', ') || 'none',
  };
}

function grpcMessage(err: unknown): string {
  const e = err as { code?: unknown; details?: unknown; message?: unknown };
  if (typeof e?.details === 'string' && e.details !== '') return `gRPC status ${String(e.code)}: ${e.details}`;
  return err instanceof Error ? err.message : String(err);
}

export async function run(argv: readonly string[], io: CommandIO): Promise<number> {
  return runDemo(argv, io);
}

/** Test seam: `prepare` runs once the emulator is seeded (e.g. to inject a fault and see the demo fail cleanly). */
export interface DemoHooks {
  prepare?: (emu: Emulator) => void;
}

export async function runDemo(argv: readonly string[], io: CommandIO, hooks: DemoHooks = {}): Promise<number> {
  const args = parseArgs(argv);
  if ('help' in args) {
    io.stdout(USAGE);
    return 0;
  }
  if ('error' in args) {
    io.stderr(`demo: ${args.error}\n\n${USAGE}`);
    return 2;
  }
  const style = io.color === true ? ANSI : PLAIN;
  /** One line, fitted to the width; `paint` styles each piece after its indent. */
  const out = (line = '', paint: (s: string) => string = (s) => s): void => {
    for (const l of fitLine(line)) {
      const indent = /^ */.exec(l)?.[0] ?? '';
      io.stdout(`${indent}${l.length > indent.length ? paint(l.slice(indent.length)) : ''}\n`);
    }
  };
  const stepLine = (line: string): void => out(line, style.step);
  const t0 = performance.now();
  const cleanups: (() => Promise<void> | void)[] = [];
  const logs: string[] = [];
  let dir: string | undefined;
  let step = 'start';
  let code = 0;

  try {
    dir = await mkdtemp(path.join(os.tmpdir(), 'csi-aws-demo-'));
    const base = dir;

    // 1. Emulator.
    step = '1. emulator';
    stepLine(
      '1. Starting the AWS + Kubernetes emulator (example seed: role app-reader for default/app, 3 secrets, 2 ' +
        'parameters)',
    );
    const emu = await startEmulator();
    cleanups.push(() => emu.close());
    loadSeed(emu, exampleSeed());
    hooks.prepare?.(emu);
    const kubeconfig = path.join(base, 'kubeconfig');
    await emu.writeKubeconfig(kubeconfig);
    cleanups.push(pointAwsSdkAt(emu.url, base));
    out(`   emulator on ${emu.url} (AWS_ENDPOINT_URL); kubeconfig ${kubeconfig}`);

    // 2. The real provider.
    step = '2. provider';
    stepLine('2. Starting the provider (the same start() the DaemonSet runs) on a temp unix socket');
    const volume = path.join(base, 'providers');
    await mkdir(volume);
    const env: Record<string, string | undefined> = { KUBECONFIG: kubeconfig };
    // The kubelet's directory tree, in miniature: the provider writes only into a pod's CSI volume mount.
    const kubeletRoot = path.join(base, 'kubelet');
    const parsed = parseFlags(
      [
        `--provider-volume=${volume}`,
        `--kubelet-root=${kubeletRoot}`,
        '--metrics-addr=127.0.0.1:0',
        '--health-addr=127.0.0.1:0',
        '--log-level=debug',
      ],
      env,
    );
    if (parsed.kind !== 'run')
      throw new StepError(
        step,
        `unexpected flag parse result: ${parsed.kind === 'error' ? parsed.message : parsed.kind}`,
      );
    const logger = createLogger({ level: 'debug', write: (line) => logs.push(line) });
    const { start } = await import('../../src/cli/index.js');
    const provider = await start(parsed.flags, env, logger);
    cleanups.push(() => provider.stop());
    const client: DriverClient = createDriverClient(provider.socketPath);
    cleanups.push(() => client.close());
    const version = await client.version();
    out(
      `   ${version.runtime_name} ${version.runtime_version} (API ${version.version}) on unix:${provider.socketPath}`,
    );
    if (provider.metricsUrl !== undefined) out(`   metrics ${provider.metricsUrl}`);

    // 3. First mount.
    step = '3. first mount';
    stepLine(
      `3. Mount as the driver: pod ${NAMESPACE}/${POD}, service account ${SERVICE_ACCOUNT}, IRSA token from the ` +
        `emulator`,
    );
    out(`   the SecretProviderClass (a JSON secret split with jmesPath, a binary secret, two SSM parameters):`);
    for (const l of demoClassYaml().split('\n')) out(`     ${l}`, style.dim);
    const target = path.join(
      kubeletRoot,
      'pods',
      randomUUID(),
      'volumes',
      'kubernetes.io~csi',
      'secrets-store',
      'mount',
    );
    await mkdir(target, { recursive: true });
    const tokens = {
      'sts.amazonaws.com': emu.issueToken({
        namespace: NAMESPACE,
        serviceAccount: SERVICE_ACCOUNT,
        audience: 'sts.amazonaws.com',
        podName: POD,
      }),
      'pods.eks.amazonaws.com': emu.issueToken({
        namespace: NAMESPACE,
        serviceAccount: SERVICE_ACCOUNT,
        audience: 'pods.eks.amazonaws.com',
        podName: POD,
      }),
    };
    const attributes = mountAttributes({
      podName: POD,
      namespace: NAMESPACE,
      serviceAccount: SERVICE_ACCOUNT,
      secretProviderClass: CLASS,
      tokens,
      parameters: { region: REGION, objects: DEMO_OBJECTS },
    });
    const mark1 = emu.calls.length;
    const first = await client.mount({ attributes, targetPath: target }, { deadlineMs: 30_000 });
    const calls1 = summarize(emu.calls.slice(mark1));
    const before = await listMount(target);
    out(`   ${first.objectVersion.length} object versions returned; files in the pod's volume, in the temp directory:`);
    out(`   ${path.relative(base, target)}`, style.dim);
    out('   (values are fake demo data from the emulator; only non-sensitive ones are shown, the rest masked)');
    for (const line of tree(before, first.objectVersion)) out(line);

    // 4. Rotation.
    step = '4. rotation';
    const rotated = emu.putSecret(REGION, 'prod/db-creds', ROTATED_DB_CREDS);
    stepLine(
      `4. Rotating prod/db-creds in the emulator (new password, same username): new ` +
        `version ${shortVersion(rotated.versionId)}`,
    );

    // 5. Second mount, as driver v1.6 republishes: no versions sent.
    step = '5. second mount';
    stepLine('5. Mount again as driver v1.6 does on a republish (current_object_version empty)');
    const mark2 = emu.calls.length;
    const second = await client.mount(
      { attributes, targetPath: target, currentObjectVersion: [] },
      { deadlineMs: 30_000 },
    );
    const calls2 = summarize(emu.calls.slice(mark2));
    const after = await listMount(target);
    const v1 = new Map(first.objectVersion.map((v) => [v.id, v.version] as const));
    const v2 = new Map(second.objectVersion.map((v) => [v.id, v.version] as const));
    for (const line of tree(after, second.objectVersion)) out(line);
    const old = new Map(before.map((f) => [f.path, f] as const));
    const changed: string[] = [];
    const untouched: string[] = [];
    for (const f of after) {
      const o = old.get(f.path);
      if (o !== undefined && o.ino === f.ino && o.mtimeMs === f.mtimeMs) untouched.push(f.path);
      else changed.push(f.path);
    }
    const newVersions = [...v2]
      .filter(([id, v]) => v1.get(id) !== v)
      .map(([id, v]) => `${id} ${shortVersion(v1.get(id) ?? '-')} → ${shortVersion(v)}`);
    out(`   new versions: ${newVersions.join('; ') || 'none'}`);
    out(`   rewritten (new inode/mtime): ${changed.join(', ') || 'none'}`);
    out(`   untouched (same inode and mtime): ${untouched.join(', ') || 'none'}`);

    // 6. What each mount cost.
    step = '6. call log';
    stepLine('6. Calls the emulator saw');
    const row = (name: string, c: CallSummary): string =>
      `   ${pad(name, 13)} STS ${c.sts}, Secrets Manager ${c.secretsmanager}, SSM ${c.ssm}, Kubernetes ${c.k8s}`;
    out(row('first mount:', calls1));
    out(`                 ${calls1.detail}`, style.dim);
    out(row('second mount:', calls2));
    out(`                 ${calls2.detail}`, style.dim);
    if (calls1.detail.includes('BatchGetSecretValue (AccessDeniedException)')) {
      out(
        `   ${style.good('expected:')} BatchGetSecretValue (AccessDeniedException) is the provider asking once ` +
          `whether the role may read`,
      );
      out(
        '   secrets in batches (optional, it cuts warm-poll CPU); the demo role may not, so it reads them one by ' +
          'one and does not',
      );
      out('   ask that role again for an hour. The mount succeeded; the error in /metrics below is that probe.');
    }
    if (calls2.sts === 0 && calls2.k8s === 0) {
      out(
        `   ${style.good('the second mount made 0 STS and 0 Kubernetes calls')}: credentials and the role lookup ` +
          `came from the provider's caches`,
      );
    } else {
      out(
        `   UNEXPECTED: the second mount made ${calls2.sts} STS and ${calls2.k8s} Kubernetes call(s); the caches ` +
          `should have answered them (please report this)`,
        style.bad,
      );
    }

    // 7. Metrics.
    step = '7. metrics';
    if (provider.metricsUrl !== undefined) {
      stepLine(`7. /metrics excerpt (${provider.metricsUrl})`);
      const res = await fetch(provider.metricsUrl, { signal: AbortSignal.timeout(5_000) });
      const text = await res.text();
      const families = ['mounts', 'aws_calls', 'credential_exchanges', 'kubernetes_requests', 'cache_requests'];
      const wanted = new RegExp(`^csi_provider_aws_(${families.join('|')})_total\\{`);
      const lines = text.split('\n').filter((l) => wanted.test(l));
      for (const l of lines.slice(0, 16)) out(`   ${l}`);
      if (lines.length > 16) out(`   … ${lines.length - 16} more`);
      if (lines.length === 0) out('   (no mount or call metrics found)');
    } else {
      stepLine('7. /metrics: disabled');
    }

    // 8. doctor, healthy then broken.
    step = '8. doctor';
    stepLine(
      `8. doctor, with an operator's credentials: for ${NAMESPACE}/${SERVICE_ACCOUNT}, then for ${NAMESPACE}/web, ` +
        `whose role is also app-reader`,
    );
    out(
      `   (app-reader's trust policy names ${NAMESPACE}/${SERVICE_ACCOUNT} only: a pod of ${NAMESPACE}/web would ` +
        `fail to mount)`,
    );
    emu.addCsiDriver('secrets-store.csi.k8s.io', {
      tokenRequests: [{ audience: 'sts.amazonaws.com' }, { audience: 'pods.eks.amazonaws.com' }],
    });
    emu.addNode('node-1');
    emu.addPod('kube-system', 'csi-secrets-provider-aws-demo', 'node-1', {
      labels: { 'app.kubernetes.io/name': 'csi-secrets-provider-aws' },
    });
    emu.addServiceAccount(NAMESPACE, 'web', { 'eks.amazonaws.com/role-arn': EXAMPLE_ROLE });
    const operatorRole = 'arn:aws:iam::123456789012:role/demo-operator';
    emu.addRole({ arn: operatorRole, allow: { iamRead: true, secretsmanager: ['*'], describeParameters: true } });
    const operator = emu.issueCredentials(operatorRole);
    const classFile = path.join(base, `${CLASS}.yaml`);
    await writeFile(classFile, demoClassYaml() + '\n');
    const { main } = await import('../../src/cli/index.js');
    for (const sa of [SERVICE_ACCOUNT, 'web']) {
      let text = '';
      const doctorEnv = {
        AWS_ACCESS_KEY_ID: operator.accessKeyId,
        AWS_SECRET_ACCESS_KEY: operator.secretAccessKey,
        AWS_SESSION_TOKEN: operator.sessionToken,
        AWS_ENDPOINT_URL: emu.url,
        KUBECONFIG: kubeconfig,
      };
      const exit = await main(['doctor', '--class', classFile, '--namespace', NAMESPACE, '--service-account', sa], {
        stdout: (t) => (text += t),
        stderr: (t) => (text += t),
        env: doctorEnv,
        cwd: base,
      });
      out(
        `   $ csi-secrets-provider-aws doctor --class ${CLASS}.yaml ` +
          `--namespace ${NAMESPACE} --service-account ${sa}   (exit ${exit})`,
        style.dim,
      );
      for (const l of text.trimEnd().split('\n')) {
        // Only the rows that say something beyond "exists": the checks' verdicts and the summary.
        if (/^PASS\s+(object|access)\s/.test(l)) continue;
        out(`   ${l}`, /^FAIL/.test(l) ? style.bad : (s) => s);
      }
    }
  } catch (err) {
    code = 1;
    const where = err instanceof StepError ? err.step : step;
    io.stderr(`demo failed at step ${where}: ${grpcMessage(err)}\n`);
    const errors = logs.filter((l) => /"level":"(warn|error)"/.test(l)).slice(-5);
    if (errors.length > 0) io.stderr(`last provider warnings/errors:\n${errors.map((l) => `  ${l}`).join('\n')}\n`);
  }

  // 8. Shutdown, in reverse order of start.
  stepLine(`${code === 0 ? '9' : '-'}. Shutting down: driver client, provider (drain, socket removed), emulator`);
  for (const c of cleanups.reverse()) {
    try {
      await c();
    } catch (err) {
      io.stderr(`demo: cleanup failed: ${err instanceof Error ? err.message : String(err)}\n`);
      code = 1;
    }
  }
  if (dir !== undefined) {
    if (args.keep) {
      await writeFile(path.join(dir, 'provider.log'), logs.join('\n') + '\n', { mode: 0o600 });
      out(`   kept ${dir} (kubeconfig, pods/${POD}/volumes/secrets-store, provider.log); remove it when done`);
    } else {
      await rm(dir, { recursive: true, force: true });
      const gone = await stat(dir).then(
        () => false,
        () => true,
      );
      out(
        gone
          ? '   temp directory removed (run `npm run demo -- --keep` to keep it: kubeconfig, mounted files, ' +
              'provider log)'
          : `   temp directory NOT removed: ${dir}`,
      );
    }
  }
  out(
    code === 0 ? `Done in ${((performance.now() - t0) / 1000).toFixed(1)} s.` : 'Demo failed.',
    code === 0 ? style.good : style.bad,
  );
  return code;
}

// Started as a program (`npm run demo` runs node build/tools/demo/demo.js), not imported.
if (isMain(import.meta.url)) {
  // Output piped into `head` and closed: stop writing, let the demo finish (it still cleans up).
  let stdoutClosed = false;
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') stdoutClosed = true;
    else throw err;
  });
  run(process.argv.slice(2), {
    stdout: (t) => {
      if (!stdoutClosed) process.stdout.write(t);
    },
    stderr: (t) => process.stderr.write(t),
    env: process.env,
    cwd: process.cwd(),
    color: wantsColor(process.stdout.isTTY, process.env),
  }).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`demo: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}

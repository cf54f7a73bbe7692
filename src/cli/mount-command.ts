/**
 * @module cli/mount-command
 * `mount --class FILE --pod-namespace NS --service-account SA [--out DIR]`: what a pod would get,
 * fetched for real with the operator's own AWS credentials (standard chain) or a role assumed with
 * them (`--role-arn`), through the provider's own pipeline (createMount: same parsing, fetchers,
 * file names, modes and versions). Writes the files to DIR (the provider's atomic writer) or lists
 * them (values hidden unless `--show-values`), then renders the Secrets the driver's `secretObjects`
 * sync would create (docs/behaviour.md, "secretObjects"). AWS_ENDPOINT_URL points it at the emulator.
 *
 * What differs from a pod's mount, on purpose: no Kubernetes (the region comes from the class,
 * `--region` or AWS_REGION) and no pod token (the operator's credentials replace IRSA / Pod Identity;
 * a class's own `assumeRoleArn` chain is still followed).
 */
import { Buffer } from 'node:buffer';
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { stringify } from 'yaml';
import { AwsClientFactory, Fetcher } from '../aws/index.js';
import { ConfigError, MountFailedError, ProviderError } from '../errors.js';
import { writeMount } from '../files/index.js';
import {
  assumeRole,
  operatorCredentials,
  sessionName,
  type CachedCredentials,
  type IdentityRequest,
} from '../identity/index.js';
import { createMount, type MountDeps, type MountFile, type ObjectVersion } from '../mount/index.js';
import { createLogger } from '../observability/index.js';
import { ATTR, IRSA_AUDIENCE, POD_IDENTITY_AUDIENCE, type SecretObjectSpec } from '../spc/index.js';
import { appId } from '../version.js';
import type { CommandIO } from './io.js';
import { parseManifests, spcFields } from './manifests.js';

const USAGE = `Usage: mount --class FILE --pod-namespace NS --service-account SA [options]

Fetches what a pod using this SecretProviderClass would get, with your own AWS credentials (the
standard chain: env, profile, SSO, instance role), through the provider's own mount pipeline.

Options:
  --class FILE            manifest holding the SecretProviderClass (required)
  --name NAME             which SecretProviderClass, when FILE holds several
  --pod-namespace NS      the pod's namespace (required; also the Secrets' namespace)
  --service-account SA    the pod's service account (required)
  --pod NAME              the pod's name (default "mount-cli")
  --out DIR               write the files into DIR (created if needed), as the provider writes them
  --show-values           print file contents and Secret data (hidden by default)
  --role-arn ARN          assume this role first (sts:AssumeRole with your credentials)
  --region REGION         region when the class sets none (default: env AWS_REGION)
  --driver-writes-secrets mount as a provider run with --driver-writes-secrets (its stricter path rules)
  --timeout SECONDS       give up after this long (default 60)

Environment: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_PROFILE (credentials);
AWS_REGION; AWS_ENDPOINT_URL[_<SERVICE>] (e.g. the emulator).
`;

export interface MountOptions {
  classFile: string;
  name: string | undefined;
  podNamespace: string;
  serviceAccount: string;
  pod: string;
  out: string | undefined;
  showValues: boolean;
  roleArn: string | undefined;
  region: string | undefined;
  driverWritesSecrets: boolean;
  timeoutMs: number;
}

type Parsed = { kind: 'run'; options: MountOptions } | { kind: 'help' } | { kind: 'error'; message: string };

const STRING_FLAGS = new Set([
  'class',
  'name',
  'pod-namespace',
  'service-account',
  'pod',
  'out',
  'role-arn',
  'region',
  'timeout',
]);
const BOOL_FLAGS = new Set(['show-values', 'driver-writes-secrets']);

export function parseMountArgs(argv: readonly string[]): Parsed {
  const values = new Map<string, string>();
  const bools = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === '--help' || arg === '-h') return { kind: 'help' };
    if (!arg.startsWith('-')) return { kind: 'error', message: `unexpected argument ${JSON.stringify(arg)}` };
    const body = arg.replace(/^--?/, '');
    const eq = body.indexOf('=');
    const name = eq >= 0 ? body.slice(0, eq) : body;
    if (BOOL_FLAGS.has(name)) {
      if (eq >= 0 && !['true', 'false'].includes(body.slice(eq + 1)))
        return { kind: 'error', message: `--${name} takes no value (or =true/=false)` };
      if (eq < 0 || body.slice(eq + 1) === 'true') bools.add(name);
      continue;
    }
    if (!STRING_FLAGS.has(name)) return { kind: 'error', message: `unknown option --${name}` };
    const value = eq >= 0 ? body.slice(eq + 1) : argv[++i];
    if (value === undefined) return { kind: 'error', message: `--${name} needs a value` };
    values.set(name, value);
  }
  const missing = ['class', 'pod-namespace', 'service-account'].filter((n) => (values.get(n) ?? '') === '');
  if (missing.length > 0) return { kind: 'error', message: `missing ${missing.map((n) => `--${n}`).join(', ')}` };
  const timeout = values.get('timeout') ?? '60';
  if (!/^\d+(\.\d+)?$/.test(timeout) || Number(timeout) <= 0)
    return { kind: 'error', message: `--timeout must be a positive number of seconds, got ${JSON.stringify(timeout)}` };
  const roleArn = values.get('role-arn');
  if (roleArn !== undefined && !/^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@/-]+$/.test(roleArn)) {
    return {
      kind: 'error',
      message:
        `--role-arn must be an IAM role ARN like arn:aws:iam::123456789012:role/name, ` +
        `got ${JSON.stringify(roleArn)}`,
    };
  }
  return {
    kind: 'run',
    options: {
      classFile: values.get('class') ?? '',
      name: values.get('name'),
      podNamespace: values.get('pod-namespace') ?? '',
      serviceAccount: values.get('service-account') ?? '',
      pod: values.get('pod') ?? 'mount-cli',
      out: values.get('out'),
      showValues: bools.has('show-values'),
      roleArn,
      region: values.get('region'),
      driverWritesSecrets: bools.has('driver-writes-secrets'),
      timeoutMs: Number(timeout) * 1000,
    },
  };
}

/**
 * Identity for the pipeline: the operator's credentials in place of the pod's (IRSA / Pod Identity),
 * then `--role-arn`, then the class's own `assumeRoleArn` chain (docs/extensions.md), as the provider
 * would chain after the pod's identity. One exchange per region and step.
 */
function operatorIdentity(
  clients: AwsClientFactory,
  base: () => Promise<CachedCredentials>,
  roleArn: string | undefined,
): MountDeps['identity'] {
  const cache = new Map<string, Promise<CachedCredentials>>();
  const once = (key: string, load: () => Promise<CachedCredentials>): Promise<CachedCredentials> => {
    let p = cache.get(key);
    if (p === undefined) {
      p = load();
      p.catch(() => cache.delete(key));
      cache.set(key, p);
    }
    return p;
  };
  return {
    credentials(req: IdentityRequest, region: string, signal: AbortSignal) {
      const session = sessionName(req.namespace, req.serviceAccount);
      const first = (): Promise<CachedCredentials> =>
        roleArn === undefined
          ? base()
          : once(`role\0${region}`, async () =>
              assumeRole(clients, { region, creds: await base(), roleArn, sessionName: session, signal }),
            );
      const chain = req.assumeRole;
      if (chain === undefined) return first();
      return once(`chain\0${region}`, async () =>
        assumeRole(clients, {
          region,
          creds: await first(),
          roleArn: chain.roleArn,
          externalId: chain.externalId,
          durationSeconds: chain.durationSeconds,
          sessionName: session,
          signal,
        }),
      );
    },
    forget() {
      cache.clear();
    },
  };
}

function noKubernetes(): MountDeps['kube'] {
  const fail = (): Promise<string> =>
    Promise.reject(
      new ProviderError(
        'FAILED_PRECONDITION',
        'the class sets no region and none was given: pass --region, set AWS_REGION, or add region to the class (a ' +
          "pod would take its node's)",
        {
          field: ATTR.region,
          reason: 'NoRegion',
        },
      ),
    );
  // roleArn: never asked (the operator's credentials replace IRSA).
  return { roleArn: () => Promise.resolve(''), nodeRegion: fail, podRegion: fail };
}

/** Placeholder tokens: the pipeline requires one per method; the operator identity never sends them. */
function placeholderTokens(): string {
  const entry = {
    token: 'not-a-token:operator-credentials-are-used',
    expirationTimestamp: new Date(Date.now() + 3600_000).toISOString().replace(/\.\d{3}Z$/, 'Z'),
  };
  return JSON.stringify({ [IRSA_AUDIENCE]: entry, [POD_IDENTITY_AUDIENCE]: entry });
}

export interface MountOutcome {
  files: MountFile[];
  objectVersions: ObjectVersion[];
  /** namespace/name of the class mounted. */
  className: string;
  secretObjects: SecretObjectSpec[];
  region: string;
}

function modeText(mode: number): string {
  return '0' + (mode & 0o7777).toString(8).padStart(3, '0');
}

function isText(b: Uint8Array): boolean {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(b);
    return !b.includes(0);
  } catch {
    return false;
  }
}

/** A table `path  mode  size  version`, then the values when asked. */
export function formatFiles(outcome: Pick<MountOutcome, 'files' | 'objectVersions'>, showValues: boolean): string {
  const version = new Map(outcome.objectVersions.map((v) => [v.id, v.version]));
  const rows: string[][] = [['PATH', 'MODE', 'SIZE', 'VERSION']];
  for (const f of outcome.files)
    rows.push([f.path, modeText(f.mode), String(f.contents.length), version.get(f.path) ?? '']);
  const listed = new Set(outcome.files.map((f) => f.path));
  for (const v of outcome.objectVersions)
    if (!listed.has(v.id)) rows.push([v.id, '-', '-', `${v.version} (optional object not found: no file)`]);
  const widths = rows[0]?.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length))) ?? [];
  const lines = rows.map((r) =>
    r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c] ?? 0))).join('  '),
  );
  if (showValues) {
    for (const f of outcome.files) {
      lines.push('', `==> ${f.path} <==`);
      lines.push(
        isText(f.contents)
          ? Buffer.from(f.contents).toString('utf8')
          : `(binary, base64) ${Buffer.from(f.contents).toString('base64')}`,
      );
    }
  }
  return lines.join('\n') + '\n';
}

export interface RenderedSecrets {
  yaml: string;
  /** The driver's refusals (a file not found, a missing field), one per Secret it would not create. */
  problems: string[];
}

/**
 * The Secrets the driver's sync would create from the mounted files (docs/behaviour.md, "secretObjects"): data
 * from files by relative path, user labels plus `secrets-store.csi.k8s.io/managed: "true"`, user
 * annotations, in the pod's namespace. Values hidden unless `showValues`. (For kubernetes.io/tls the
 * driver also re-encodes the key and keeps only the PEM blocks; shown here as mounted.)
 */
export function renderSecrets(
  secretObjects: readonly SecretObjectSpec[],
  files: readonly MountFile[],
  namespace: string,
  showValues: boolean,
): RenderedSecrets {
  const byPath = new Map(files.map((f) => [f.path, f]));
  const docs: string[] = [];
  const problems: string[] = [];
  secretObjects.forEach((so, i) => {
    const at = `secretObjects[${i}]`;
    const name = typeof so.secretName === 'string' ? so.secretName : '';
    const type = typeof so.type === 'string' ? so.type : '';
    const data = Array.isArray(so.data) ? (so.data as unknown[]) : [];
    if (name === '' || type === '' || data.length === 0) {
      problems.push(`${at}: secretName, type and data are required; the driver creates no Secret for it`);
      return;
    }
    const out: Record<string, string> = {};
    let ok = true;
    for (const entry of data) {
      const e = (entry !== null && typeof entry === 'object' ? entry : {}) as Record<string, unknown>;
      const objectName = typeof e['objectName'] === 'string' ? e['objectName'] : '';
      const key = typeof e['key'] === 'string' ? e['key'] : '';
      if (objectName === '' || key === '') {
        problems.push(`${at} (${name}): every data entry needs objectName and key`);
        ok = false;
        continue;
      }
      const file = byPath.get(objectName);
      if (file === undefined) {
        problems.push(`${at} (${name}): file matching objectName ${objectName} not found in the pod`);
        ok = false;
        continue;
      }
      out[key] = showValues
        ? Buffer.from(file.contents).toString('base64')
        : `<hidden: ${file.contents.length} bytes, --show-values to print>`;
    }
    if (!ok) return;
    const labels = { ...(isStringMap(so.labels) ? so.labels : {}), 'secrets-store.csi.k8s.io/managed': 'true' };
    const metadata: Record<string, unknown> = { name, namespace, labels };
    if (isStringMap(so.annotations) && Object.keys(so.annotations).length > 0) metadata['annotations'] = so.annotations;
    docs.push(stringify({ apiVersion: 'v1', kind: 'Secret', metadata, type, data: out }, { lineWidth: 0 }));
  });
  return { yaml: docs.map((d) => `---\n${d}`).join(''), problems };
}

function isStringMap(v: unknown): v is Record<string, string> {
  return (
    v !== null && typeof v === 'object' && !Array.isArray(v) && Object.values(v).every((x) => typeof x === 'string')
  );
}

/** Loads the class and performs the mount. Throws ProviderError (ConfigError for the class). */
export async function mountClass(o: MountOptions, io: CommandIO, signal: AbortSignal): Promise<MountOutcome> {
  const file = path.resolve(io.cwd, o.classFile);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ProviderError(
      'INVALID_ARGUMENT',
      `cannot read ${o.classFile} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
      { reason: 'Usage' },
    );
  }
  const mf = parseManifests(text, o.classFile);
  const classes = mf.objects.filter(
    (x) => x.kind === 'SecretProviderClass' && (o.name === undefined || x.name === o.name),
  );
  if (classes.length !== 1) {
    const names = mf.objects.filter((x) => x.kind === 'SecretProviderClass').map((x) => x.name);
    const why = mf.errors[0] !== undefined ? `: ${mf.errors[0].message}` : '';
    throw new ProviderError(
      'INVALID_ARGUMENT',
      classes.length === 0
        ? `no SecretProviderClass${o.name !== undefined ? ` named ${JSON.stringify(o.name)}` : ''} in ` +
            `${o.classFile}${why}${names.length > 0 ? ` (found: ${names.join(', ')})` : ''}`
        : `${o.classFile} holds several SecretProviderClasses (${names.join(', ')}): choose one with --name`,
      { reason: 'Usage' },
    );
  }
  const spc = classes[0]!;
  const fields = spcFields(spc);
  const problems = [...fields.problems.map((p) => ({ message: p.message, path: p.key }))];
  if (fields.provider !== 'aws')
    problems.push({
      message:
        `spec.provider is ${JSON.stringify(fields.provider ?? null)}, not "aws": the driver would not call ` +
        `this provider`,
      path: 'spec.provider',
    });
  if (problems.length > 0) throw new ConfigError(problems);

  const clients = new AwsClientFactory({ appId: appId('') });
  const logger = createLogger({ level: 'warn', format: 'text', write: (line) => io.stderr(line + '\n') });
  let captured: MountFile[] = [];
  const mount = createMount({
    driverWritesSecrets: o.driverWritesSecrets,
    awsRegion: o.region ?? io.env['AWS_REGION'] ?? '',
    nodeName: '',
    kube: noKubernetes(),
    identity: operatorIdentity(clients, operatorCredentials(io.env), o.roleArn),
    fetcher: new Fetcher(clients),
    writer: {
      // Provider-writes mode: the pipeline hands its files here, as it hands them to files/ in a pod.
      async writeMount(_target, files, opts) {
        captured = [...files];
        if (o.out !== undefined) return writeMount(o.out, files, opts);
        return { written: files.map((f) => f.path), unchanged: [], removed: [] };
      },
      touchMount: () => Promise.resolve(),
    },
    logger,
  });
  const attributes: Record<string, string> = {
    ...fields.parameters,
    [ATTR.secretProviderClass]: spc.name,
    [ATTR.podName]: o.pod,
    [ATTR.podNamespace]: o.podNamespace,
    [ATTR.podUid]: '00000000-0000-4000-8000-000000000000',
    [ATTR.serviceAccountName]: o.serviceAccount,
    [ATTR.tokens]: placeholderTokens(),
  };
  if (o.out !== undefined) await mkdir(o.out, { recursive: true, mode: 0o700 });
  const summary: { regions?: string[] } = {};
  try {
    const result = await mount(
      {
        attributes: JSON.stringify(attributes),
        secrets: 'null',
        targetPath: o.out ?? path.join(io.cwd, '.mount-cli-target'),
        permission: '420',
        currentObjectVersion: [],
      },
      signal,
      summary,
    );
    let files = captured;
    if (o.driverWritesSecrets) {
      files = result.files;
      if (o.out !== undefined) await writeMount(o.out, files, { signal });
    }
    return {
      files,
      objectVersions: result.objectVersions,
      className: spc.namespace !== '' ? `${spc.namespace}/${spc.name}` : spc.name,
      secretObjects: fields.secretObjects ?? [],
      region: summary.regions?.[0] ?? '',
    };
  } finally {
    clients.close();
  }
}

function describeError(err: unknown): string {
  if (err instanceof ConfigError) {
    const n = err.problems.length;
    const head = n === 1 ? 'the class has a problem' : `the class has ${n} problems`;
    return `${head} (run check on it for positions):\n${err.problems.map((p) => `  ${p.message}`).join('\n')}`;
  }
  if (err instanceof MountFailedError && err.failures.length > 1) {
    const distinct = [...new Set(err.failures.map((f) => f.message))];
    if (distinct.length === 1) return `${err.failures.length} objects failed: ${distinct[0] ?? ''} (${err.code})`;
    return `${err.failures.length} objects failed:\n${distinct.map((m) => `  ${m}`).join('\n')}`;
  }
  if (err instanceof ProviderError) return `${err.message} (${err.code})`;
  return err instanceof Error ? err.message : String(err);
}

export async function run(argv: readonly string[], io: CommandIO): Promise<number> {
  const parsed = parseMountArgs(argv);
  if (parsed.kind === 'help') {
    io.stdout(USAGE);
    return 0;
  }
  if (parsed.kind === 'error') {
    io.stderr(`mount: ${parsed.message}\n\n${USAGE}`);
    return 2;
  }
  const o = parsed.options;
  let outcome: MountOutcome;
  try {
    outcome = await mountClass(o, io, AbortSignal.timeout(o.timeoutMs));
  } catch (err) {
    io.stderr(`mount: ${describeError(err)}\n`);
    return err instanceof ProviderError && err.reason === 'Usage' ? 2 : 1;
  }
  const where =
    o.out !== undefined
      ? `wrote ${outcome.files.length} files to ${o.out}`
      : `${outcome.files.length} files (not written: --out DIR writes ` +
        `them${o.showValues ? '' : '; --show-values prints them'})`;
  io.stdout(`# ${outcome.className} for ${o.podNamespace}/${o.serviceAccount} in ${outcome.region}: ${where}\n`);
  io.stdout(formatFiles(outcome, o.showValues));
  if (outcome.secretObjects.length === 0) return 0;
  const secrets = renderSecrets(outcome.secretObjects, outcome.files, o.podNamespace, o.showValues);
  io.stdout(
    `\n# Secrets the driver's secretObjects sync would ` +
      `create${o.showValues ? '' : ' (values hidden: --show-values)'}:\n${secrets.yaml}`,
  );
  for (const p of secrets.problems) io.stderr(`mount: ${p}\n`);
  return secrets.problems.length > 0 ? 1 : 0;
}

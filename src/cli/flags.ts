/**
 * @module cli/flags
 * argv + env → one frozen, typed `Flags`, read once, so no module reads process.argv or the environment on its own.
 * Go `flag` package manners, since ASCP's DaemonSets pass Go-style flags (docs/behaviour.md, "Flags"): `-name=v`,
 * `--name=v`, `-name v`; booleans as `--flag` or `--flag=true|false`; an unknown flag stops the process. ASCP's own
 * flags keep ASCP's tolerance (an invalid `--pod-identity-http-timeout` is logged and ignored); a bad value of one of
 * our flags fails at start, never at the first mount.
 */
import path from 'node:path';
import { formatDuration, parseGoDuration } from './duration.js';
import type { LogFormat, LogLevel } from '../observability/index.js';
// spc/'s attribute rules alone: its index loads the YAML and JMESPath parsers, which wait for the first mount.
import { goParseBool } from '../spc/attributes.js';
import { NAME, VERSION } from '../version.js';

export interface Flags {
  /** Directory of the socket `<dir>/aws.sock`. */
  readonly providerVolume: string;
  /**
   * The kubelet's root directory (normalized, no trailing slash): the driver's Mount targets are
   * `<kubeletRoot>/pods/<uid>/volumes/kubernetes.io~csi/<volume>/mount`, and no other is written.
   */
  readonly kubeletRoot: string;
  readonly driverWritesSecrets: boolean;
  /** Kubernetes client rate limit. */
  readonly qps: number;
  readonly burst: number;
  readonly eksAddonVersion: string;
  /** Per-attempt timeout of the Pod Identity agent call; undefined = default. */
  readonly podIdentityHttpTimeoutMs: number | undefined;
  /** Full agent credentials URL replacing both EKS addresses (tests, demo, non-EKS). */
  readonly podIdentityEndpoint: string | undefined;
  /** `host:port` of /metrics, '' = off. */
  readonly metricsAddr: string;
  /** `host:port` of /healthz and /readyz, '' = off. */
  readonly healthAddr: string;
  readonly logLevel: LogLevel;
  readonly logFormat: LogFormat;
  /** Opt-in value cache lifetime (0 = off). */
  readonly cacheTtlMs: number;
  /** Secret names as a metric label. */
  readonly metricsObjectNames: boolean;
  /** Mounts doing work at once (the rest wait in a fair queue). */
  readonly maxConcurrentMounts: number;
  /** Mounts waiting at most; more are answered UNAVAILABLE at once. */
  readonly maxQueuedMounts: number;
  /** Bytes one mount may read, and bytes of files it may make. */
  readonly maxMountBytes: number;
  /** Files one mount may make. */
  readonly maxMountFiles: number;
  /** Region names a class may use beyond the AWS partitions' (a partition newer than this release). */
  readonly extraRegions: ReadonlySet<string>;
  /** env AWS_REGION ('' when unset). */
  readonly awsRegion: string;
  /** env NODE_NAME (downward API): the provider's own node, for the region label. */
  readonly nodeName: string;
}

/** `4Mi`, `512Ki`, `1Gi` (also with a trailing B) or plain bytes → bytes; undefined when not a size. */
export function parseSize(text: string): number | undefined {
  const m = /^(\d{1,12})(Ki|Mi|Gi)?B?$/.exec(text.trim());
  if (m === null) return undefined;
  const unit = m[2] === 'Ki' ? 1024 : m[2] === 'Mi' ? 1024 ** 2 : m[2] === 'Gi' ? 1024 ** 3 : 1;
  return Number(m[1]) * unit;
}

export type FlagsResult =
  | { kind: 'run'; flags: Flags; warnings: string[] }
  | { kind: 'help'; text: string }
  | { kind: 'version'; text: string }
  | { kind: 'error'; message: string };

interface FlagSpec {
  name: string;
  kind: 'string' | 'bool' | 'int' | 'duration';
  def: string;
  help: string;
  env?: string;
  ascp?: boolean;
}

const SPECS: readonly FlagSpec[] = [
  {
    name: 'provider-volume',
    kind: 'string',
    def: '/var/run/secrets-store-csi-providers',
    help: "directory of the provider socket (aws.sock); must match the driver's providers directory",
    ascp: true,
  },
  {
    name: 'kubelet-root',
    kind: 'string',
    def: '/var/lib/kubelet',
    help:
      "the kubelet's root directory (its --root-dir, the chart's kubeletPath): a Mount's target must be " +
      '<kubelet-root>/pods/<pod-uid>/volumes/kubernetes.io~csi/<volume>/mount, reached through no symbolic link, or ' +
      'it is refused (provider-writes mode) or left untouched (driver-writes mode)',
  },
  {
    name: 'driver-writes-secrets',
    kind: 'bool',
    def: 'false',
    help: 'return file contents to the driver instead of writing them into the pod volume',
    ascp: true,
  },
  { name: 'qps', kind: 'int', def: '5', help: 'Kubernetes API client queries per second', ascp: true },
  { name: 'burst', kind: 'int', def: '10', help: 'Kubernetes API client burst', ascp: true },
  {
    name: 'eks-addon-version',
    kind: 'string',
    def: '',
    help: 'EKS add-on version, replaces ours in the user agent app id',
    ascp: true,
  },
  {
    name: 'pod-identity-http-timeout',
    kind: 'string',
    def: '',
    help: 'timeout of one Pod Identity agent request (Go duration, e.g. 250ms); invalid values are logged and ignored',
    ascp: true,
  },
  {
    name: 'pod-identity-endpoint',
    kind: 'string',
    def: '',
    help:
      'full URL of the Pod Identity agent credentials endpoint, used instead of the EKS addresses (e.g. ' +
      'http://127.0.0.1:2703/v1/credentials)',
  },
  {
    name: 'metrics-addr',
    kind: 'string',
    def: '127.0.0.1:8989',
    help:
      'host:port serving Prometheus /metrics; the default is loopback, reachable only inside the pod: use ' +
      '0.0.0.0:8989 to be scraped, and limit who may connect ("" disables)',
  },
  {
    name: 'health-addr',
    kind: 'string',
    def: '0.0.0.0:8990',
    help: 'host:port serving /healthz and /readyz, on the pod IP for the kubelet\'s probes ("" disables)',
  },
  { name: 'log-level', kind: 'string', def: 'info', help: 'debug, info, warn or error' },
  { name: 'log-format', kind: 'string', def: 'json', help: 'json or text' },
  {
    name: 'cache-ttl',
    kind: 'duration',
    def: '0s',
    help: 'opt-in: reuse fetched values for this long per identity (bounded staleness, fewer AWS calls); 0 disables',
  },
  {
    name: 'max-concurrent-mounts',
    kind: 'int',
    def: '8',
    help:
      'mounts doing work at once; the others wait their turn, fairly across namespaces, and a mount that could ' +
      'not finish before its deadline is answered UNAVAILABLE (the driver retries)',
  },
  {
    name: 'max-queued-mounts',
    kind: 'int',
    def: '512',
    help: 'mounts waiting at most; more are answered UNAVAILABLE at once',
  },
  {
    name: 'max-mount-bytes',
    kind: 'string',
    def: '4Mi',
    help:
      'bytes one mount may read, and bytes of files it may make (e.g. 4Mi, 512Ki; at least 64Ki): more is ' +
      'refused RESOURCE_EXHAUSTED naming the object',
  },
  {
    name: 'max-mount-files',
    kind: 'int',
    def: '5000',
    help:
      'files one mount may make (allKeys and aliases included): more is refused RESOURCE_EXHAUSTED naming the ' +
      'object',
  },
  {
    name: 'extra-regions',
    kind: 'string',
    def: '',
    help:
      "comma-separated region names classes may use beyond the AWS partitions' (for a partition newer than this " +
      'release)',
  },
  {
    name: 'metrics-object-names',
    kind: 'bool',
    def: 'false',
    help:
      'opt-in: label per-object metrics with the object name (never its value); whoever reads /metrics then ' +
      "sees every tenant's object names and ARNs",
  },
];

const ENV_NOTES = [
  'AWS_REGION            default region when a class sets none',
  'AWS_USE_FIPS_ENDPOINT use FIPS endpoints for Secrets Manager and SSM',
  'AWS_ENDPOINT_URL[_<SERVICE>]  endpoint overrides (SECRETS_MANAGER, SSM, STS)',
  'NODE_NAME             this node (downward API): its region label is read once',
  'KUBECONFIG            kubeconfig instead of the in-cluster config',
  'HTTPS_PROXY, HTTP_PROXY, NO_PROXY  proxy for AWS calls',
];

export function helpText(): string {
  const lines = [`Usage: ${NAME} [flags]`, '', 'Flags:'];
  for (const s of SPECS) {
    const def = s.kind === 'bool' ? `(default ${s.def})` : `(default ${JSON.stringify(s.def)})`;
    lines.push(
      `  --${s.name}${s.kind === 'bool' ? '' : ' ' + s.kind}`,
      `        ${s.help} ${def}${s.ascp ? ' [ASCP]' : ''}`,
    );
  }
  lines.push('  --help        print this help', '  --version     print name, version and runtime', '', 'Environment:');
  for (const e of ENV_NOTES) lines.push('  ' + e);
  return lines.join('\n');
}

export function versionText(): string {
  return `${NAME} ${VERSION} (node ${process.version}, ${process.platform}/${process.arch})`;
}

/** Go strconv.ParseBool (the same twelve spellings `usePodIdentity` accepts). */
export const parseGoBool = goParseBool;

const ADDR = /^(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]*):\d{1,5}$/;

export function parseFlags(argv: readonly string[], env: Record<string, string | undefined>): FlagsResult {
  const byName = new Map(SPECS.map((s) => [s.name, s]));
  const raw = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === '--') break;
    if (!arg.startsWith('-') || arg === '-')
      return { kind: 'error', message: `unexpected argument ${JSON.stringify(arg)}` };
    const body = arg.replace(/^--?/, '');
    const eq = body.indexOf('=');
    const name = eq >= 0 ? body.slice(0, eq) : body;
    if (name === 'help' || name === 'h') return { kind: 'help', text: helpText() };
    if (name === 'version') return { kind: 'version', text: versionText() };
    const spec = byName.get(name);
    if (!spec) {
      return { kind: 'error', message: `flag provided but not defined: -${name}\nRun with --help to list the flags.` };
    }
    if (eq >= 0) raw.set(name, body.slice(eq + 1));
    else if (spec.kind === 'bool') raw.set(name, 'true');
    else {
      const next = argv[i + 1];
      if (next === undefined) return { kind: 'error', message: `flag needs an argument: -${name}` };
      raw.set(name, next);
      i++;
    }
  }

  const errors: string[] = [];
  const warnings: string[] = [];
  const str = (n: string): string => raw.get(n) ?? byName.get(n)?.def ?? '';
  const bool = (n: string): boolean => {
    const v = parseGoBool(str(n));
    if (v === undefined) errors.push(`invalid boolean value ${JSON.stringify(str(n))} for flag -${n}`);
    return v ?? false;
  };
  const int = (n: string, min: number): number => {
    const v = str(n);
    if (!/^[+-]?\d+$/.test(v) || Number(v) < min)
      errors.push(`invalid value ${JSON.stringify(v)} for flag -${n}: want an integer ≥ ${min}`);
    return Number(v);
  };

  // ASCP's tolerance (docs/behaviour.md, "Flags"): log and fall back to the default, never crash-loop.
  let podIdentityHttpTimeoutMs: number | undefined;
  const pit = str('pod-identity-http-timeout');
  if (pit !== '') {
    try {
      const ms = parseGoDuration(pit);
      if (ms <= 0)
        warnings.push(`podIdentityHttpTimeout must be positive, got: ${formatDuration(ms)}, using default SDK value`);
      else {
        podIdentityHttpTimeoutMs = ms;
        if (ms > 30_000)
          warnings.push(
            `podIdentityHttpTimeout value ${formatDuration(ms)} is unusually high, consider using a smaller value`,
          );
      }
    } catch (err) {
      warnings.push(
        `failed to parse podIdentityHttpTimeout value '${pit}': ${(err as Error).message}, using default SDK value`,
      );
    }
  }

  const endpoint = str('pod-identity-endpoint');
  if (endpoint !== '') {
    let ok: boolean;
    try {
      const u = new URL(endpoint);
      ok = u.protocol === 'http:' || u.protocol === 'https:';
    } catch {
      ok = false;
    }
    if (!ok)
      errors.push(
        `invalid value ${JSON.stringify(endpoint)} for flag -pod-identity-endpoint: want an http(s) URL such as ` +
          `http://127.0.0.1:2703/v1/credentials`,
      );
  }

  for (const n of ['metrics-addr', 'health-addr']) {
    const v = str(n);
    if (v !== '' && !ADDR.test(v))
      errors.push(`invalid value ${JSON.stringify(v)} for flag -${n}: want host:port, e.g. 0.0.0.0:8989 or [::]:8989`);
  }
  const logLevel = str('log-level');
  if (!['debug', 'info', 'warn', 'error'].includes(logLevel))
    errors.push(`invalid value ${JSON.stringify(logLevel)} for flag -log-level: want debug, info, warn or error`);
  const logFormat = str('log-format');
  if (!['json', 'text'].includes(logFormat))
    errors.push(`invalid value ${JSON.stringify(logFormat)} for flag -log-format: want json or text`);
  let cacheTtlMs = 0;
  try {
    cacheTtlMs = parseGoDuration(str('cache-ttl'));
    if (cacheTtlMs < 0) errors.push('invalid value for flag -cache-ttl: must not be negative');
  } catch (err) {
    errors.push(`invalid value ${JSON.stringify(str('cache-ttl'))} for flag -cache-ttl: ${(err as Error).message}`);
  }
  const maxMountBytes = parseSize(str('max-mount-bytes'));
  if (maxMountBytes === undefined || maxMountBytes < 64 * 1024) {
    errors.push(
      `invalid value ${JSON.stringify(str('max-mount-bytes'))} for flag -max-mount-bytes: want a size of at least ` +
        `64Ki (one Secrets Manager value), such as 4Mi or 8388608`,
    );
  }
  const providerVolume = str('provider-volume');
  if (providerVolume === '') errors.push('flag -provider-volume must not be empty');
  const rawKubeletRoot = str('kubelet-root');
  const kubeletRoot = rawKubeletRoot.length > 1 ? rawKubeletRoot.replace(/\/+$/, '') : rawKubeletRoot;
  if (!kubeletRoot.startsWith('/') || kubeletRoot.includes('\0') || path.posix.normalize(kubeletRoot) !== kubeletRoot) {
    errors.push(
      `invalid value ${JSON.stringify(rawKubeletRoot)} for flag -kubelet-root: want an absolute, normalized ` +
        `directory such as /var/lib/kubelet`,
    );
  }

  const flags: Flags = Object.freeze({
    providerVolume,
    kubeletRoot,
    driverWritesSecrets: bool('driver-writes-secrets'),
    qps: int('qps', 1),
    burst: int('burst', 1),
    eksAddonVersion: str('eks-addon-version'),
    podIdentityHttpTimeoutMs,
    podIdentityEndpoint: endpoint === '' ? undefined : endpoint,
    metricsAddr: str('metrics-addr'),
    healthAddr: str('health-addr'),
    logLevel: logLevel as LogLevel,
    logFormat: logFormat as LogFormat,
    cacheTtlMs,
    metricsObjectNames: bool('metrics-object-names'),
    maxConcurrentMounts: int('max-concurrent-mounts', 1),
    maxQueuedMounts: int('max-queued-mounts', 0),
    maxMountBytes: maxMountBytes ?? 0,
    maxMountFiles: int('max-mount-files', 1),
    extraRegions: new Set(
      str('extra-regions')
        .split(',')
        .map((r) => r.trim())
        .filter((r) => r !== ''),
    ),
    awsRegion: env['AWS_REGION'] ?? '',
    nodeName: env['NODE_NAME'] ?? '',
  });
  if (errors.length > 0) return { kind: 'error', message: errors.join('\n') };
  return { kind: 'run', flags, warnings };
}

// parseFlags: Go flag-package forms, ASCP's flags and tolerance (docs/behaviour.md, "Flags"; T01 of
// ASCP's test cases), our own flags failing at start with the fix in the message, --help and --version.
import { describe, expect, it } from 'vitest';
import { NAME, VERSION } from '../version.js';
import { DEFAULT_MAX_MOUNT_BYTES, DEFAULT_MAX_MOUNT_FILES } from '../mount/mount.js';
import { helpText, parseFlags, parseGoBool, parseSize, type Flags, type FlagsResult } from './flags.js';

function flags(argv: string[], env: Record<string, string | undefined> = {}): { flags: Flags; warnings: string[] } {
  const r = parseFlags(argv, env);
  if (r.kind !== 'run') throw new Error(`expected run, got ${JSON.stringify(r)}`);
  return { flags: r.flags, warnings: r.warnings };
}

function error(argv: string[]): string {
  const r: FlagsResult = parseFlags(argv, {});
  if (r.kind !== 'error') throw new Error(`expected error, got ${r.kind}`);
  return r.message;
}

describe("T01 TestParsePodIdentityHttpTimeout (ASCP's test of the flag)", () => {
  it.each<[string, number | undefined, RegExp | undefined]>([
    ['100ms', 100, undefined],
    ['2s', 2000, undefined],
    ['500ms', 500, undefined],
    ['35s', 35_000, /^podIdentityHttpTimeout value 35s is unusually high, consider using a smaller value$/],
    [
      'invalid',
      undefined,
      /^failed to parse podIdentityHttpTimeout value 'invalid': time: invalid duration "invalid", using default SDK/,
    ],
    ['0s', undefined, /^podIdentityHttpTimeout must be positive, got: 0s, using default SDK value$/],
    ['-100ms', undefined, /^podIdentityHttpTimeout must be positive, got: -100ms, using default SDK value$/],
    ['', undefined, undefined],
    ['30s', 30_000, undefined],
    ['30001ms', 30_001, /^podIdentityHttpTimeout value 30.001s is unusually high/],
  ])('--pod-identity-http-timeout=%j → %s ms, warning %s, never an error', (value, ms, warning) => {
    const r = flags([`--pod-identity-http-timeout=${value}`]);
    expect(r.flags.podIdentityHttpTimeoutMs).toBe(ms);
    if (warning === undefined) expect(r.warnings).toEqual([]);
    else {
      expect(r.warnings).toHaveLength(1);
      expect(r.warnings[0]).toMatch(warning);
    }
  });
});

describe("defaults (ASCP's flags + ours)", () => {
  it('no flags → ASCP defaults and ours', () => {
    expect(flags([]).flags).toEqual({
      providerVolume: '/var/run/secrets-store-csi-providers',
      kubeletRoot: '/var/lib/kubelet',
      driverWritesSecrets: false,
      qps: 5,
      burst: 10,
      eksAddonVersion: '',
      podIdentityHttpTimeoutMs: undefined,
      podIdentityEndpoint: undefined,
      metricsAddr: '127.0.0.1:8989',
      healthAddr: '0.0.0.0:8990',
      logLevel: 'info',
      logFormat: 'json',
      cacheTtlMs: 0,
      metricsObjectNames: false,
      maxConcurrentMounts: 8,
      maxQueuedMounts: 512,
      maxMountBytes: DEFAULT_MAX_MOUNT_BYTES,
      maxMountFiles: DEFAULT_MAX_MOUNT_FILES,
      extraRegions: new Set(),
      awsRegion: '',
      nodeName: '',
    });
  });

  it('per-mount bounds: sizes as 4Mi, 512Ki or bytes, at least 64Ki; files at least 1', () => {
    expect(flags(['--max-mount-bytes=8Mi', '--max-mount-files=100']).flags).toMatchObject({
      maxMountBytes: 8 * 1024 * 1024,
      maxMountFiles: 100,
    });
    expect(flags(['--max-mount-bytes=65536']).flags.maxMountBytes).toBe(64 * 1024);
    expect([parseSize('512Ki'), parseSize('1GiB'), parseSize('4MB'), parseSize('-1'), parseSize('4 M')]).toEqual([
      512 * 1024,
      1024 ** 3,
      undefined,
      undefined,
      undefined,
    ]);
    for (const bad of ['--max-mount-bytes=32Ki', '--max-mount-bytes=4MB', '--max-mount-files=0']) {
      const r = parseFlags([bad], {});
      expect(r.kind, bad).toBe('error');
      if (r.kind === 'error') expect(r.message).toContain(bad.slice(2, bad.indexOf('=')));
    }
  });

  it('is frozen and reads AWS_REGION and NODE_NAME from env once', () => {
    const r = flags([], { AWS_REGION: 'eu-west-1', NODE_NAME: 'ip-10-0-0-1' });
    expect(Object.isFrozen(r.flags)).toBe(true);
    expect(r.flags.awsRegion).toBe('eu-west-1');
    expect(r.flags.nodeName).toBe('ip-10-0-0-1');
  });
});

describe('Go flag forms (what existing DaemonSets pass)', () => {
  it.each<[string[], Partial<Flags>]>([
    [['-qps', '7'], { qps: 7 }],
    [['--qps', '7'], { qps: 7 }],
    [['-qps=7'], { qps: 7 }],
    [['--qps=7', '--burst=20'], { qps: 7, burst: 20 }],
    [['--driver-writes-secrets'], { driverWritesSecrets: true }],
    [['-driver-writes-secrets'], { driverWritesSecrets: true }],
    [['--driver-writes-secrets=false'], { driverWritesSecrets: false }],
    [['--driver-writes-secrets=true'], { driverWritesSecrets: true }],
    [['--driver-writes-secrets=T'], { driverWritesSecrets: true }],
    [['--driver-writes-secrets=0'], { driverWritesSecrets: false }],
    [
      ['--provider-volume', '/etc/kubernetes/secrets-store-csi-providers'],
      { providerVolume: '/etc/kubernetes/secrets-store-csi-providers' },
    ],
    [['--provider-volume=/tmp/p'], { providerVolume: '/tmp/p' }],
    [
      ['--kubelet-root=/var/snap/microk8s/common/var/lib/kubelet'],
      { kubeletRoot: '/var/snap/microk8s/common/var/lib/kubelet' },
    ],
    [['--kubelet-root=/data/kubelet/'], { kubeletRoot: '/data/kubelet' }],
    [['--eks-addon-version=v1.0.0-eksbuild.1'], { eksAddonVersion: 'v1.0.0-eksbuild.1' }],
    [['--qps=7', '--', '--nonsense'], { qps: 7 }],
    // The later occurrence wins, as in Go.
    [['--qps=7', '--qps=9'], { qps: 9 }],
    [['--metrics-addr=', '--health-addr=[::1]:0'], { metricsAddr: '', healthAddr: '[::1]:0' }],
    [
      ['--pod-identity-endpoint=http://127.0.0.1:2703/v1/credentials'],
      { podIdentityEndpoint: 'http://127.0.0.1:2703/v1/credentials' },
    ],
    [['--cache-ttl=1m30s'], { cacheTtlMs: 90_000 }],
    [['--log-level=debug', '--log-format=text'], { logLevel: 'debug', logFormat: 'text' }],
    [['--metrics-object-names'], { metricsObjectNames: true }],
    [['--metrics-object-names=false'], { metricsObjectNames: false }],
    [['--max-concurrent-mounts=2', '--max-queued-mounts', '0'], { maxConcurrentMounts: 2, maxQueuedMounts: 0 }],
    [['--extra-regions= xx-new-1,,yy-new-2 '], { extraRegions: new Set(['xx-new-1', 'yy-new-2']) }],
  ])('%j', (argv, want) => {
    expect(flags(argv).flags).toMatchObject(want);
  });
});

describe('refusals at start', () => {
  it.each<[string[], RegExp]>([
    [['--nonsense'], /^flag provided but not defined: -nonsense\nRun with --help to list the flags\.$/],
    [['-v=2'], /flag provided but not defined: -v/],
    [['--logtostderr'], /flag provided but not defined: -logtostderr/],
    [['stray'], /unexpected argument "stray"/],
    [['--qps'], /flag needs an argument: -qps/],
    [['--qps=many'], /invalid value "many" for flag -qps: want an integer ≥ 1/],
    [['--qps=0'], /flag -qps/],
    [['--burst=-1'], /flag -burst/],
    [['--driver-writes-secrets=yes'], /invalid boolean value "yes" for flag -driver-writes-secrets/],
    [['--log-level=loud'], /invalid value "loud" for flag -log-level: want debug, info, warn or error/],
    [['--log-format=xml'], /flag -log-format: want json or text/],
    [['--metrics-addr=nonsense'], /invalid value "nonsense" for flag -metrics-addr: want host:port/],
    [['--health-addr=8990'], /flag -health-addr: want host:port/],
    [['--pod-identity-endpoint=ftp://x'], /flag -pod-identity-endpoint: want an http\(s\) URL/],
    [['--cache-ttl=soon'], /flag -cache-ttl: time: invalid duration "soon"/],
    [['--cache-ttl=-1s'], /flag -cache-ttl: must not be negative/],
    [['--provider-volume='], /flag -provider-volume must not be empty/],
    [['--kubelet-root='], /invalid value "" for flag -kubelet-root: want an absolute, normalized directory/],
    [['--kubelet-root=var/lib/kubelet'], /flag -kubelet-root/],
    [['--kubelet-root=/var/lib/../kubelet'], /flag -kubelet-root/],
  ])('%j → %s', (argv, message) => {
    expect(error(argv)).toMatch(message);
  });

  it('reports every bad value at once', () => {
    const m = error(['--log-level=loud', '--metrics-addr=nonsense', '--qps=x']);
    expect(m.split('\n')).toHaveLength(3);
  });

  it('an invalid ASCP timeout next to a bad flag of ours: the bad flag still fails', () => {
    expect(error(['--pod-identity-http-timeout=bogus', '--log-level=loud'])).toMatch(/-log-level/);
  });
});

describe('--help and --version', () => {
  it('--help, -help, -h all print help that lists every flag with its default', () => {
    for (const arg of ['--help', '-help', '-h'])
      expect(parseFlags([arg], {})).toEqual({ kind: 'help', text: helpText() });
    const text = helpText();
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
      const at = text.indexOf(`--${flag}`);
      expect(at, flag).toBeGreaterThanOrEqual(0);
      const entry = text.slice(at, text.indexOf('\n  --', at + 1));
      expect(entry, flag).toContain(`(default ${def})`);
    }
    for (const v of ['AWS_REGION', 'HTTPS_PROXY', 'NO_PROXY', 'KUBECONFIG', 'NODE_NAME']) expect(text).toContain(v);
  });

  it('--version names us, our version and the runtime', () => {
    const r = parseFlags(['--version'], {});
    expect(r.kind).toBe('version');
    if (r.kind === 'version')
      expect(r.text).toBe(`${NAME} ${VERSION} (node ${process.version}, ${process.platform}/${process.arch})`);
  });

  it('help wins over a bad flag after it, as Go stops at -h', () => {
    expect(parseFlags(['--help', '--nonsense'], {}).kind).toBe('help');
  });
});

describe('parseGoBool (strconv.ParseBool)', () => {
  it.each<[string, boolean | undefined]>([
    ['1', true],
    ['t', true],
    ['T', true],
    ['TRUE', true],
    ['true', true],
    ['True', true],
    ['0', false],
    ['f', false],
    ['F', false],
    ['FALSE', false],
    ['false', false],
    ['False', false],
    ['yes', undefined],
    ['tRUE', undefined],
    ['', undefined],
  ])('%j → %s', (v, want) => {
    expect(parseGoBool(v)).toBe(want);
  });
});

// What ships: the npm package (package.json "files", as `npm pack` lists it) and the image's bundle
// (dist/bundle/, the only thing the Dockerfile's runtime stage copies from the build) hold the
// product alone. The tools (tools/: the AWS/Kubernetes emulator, its driver client, the bench, the
// demo) are built to build/ and never reach either.
import { execFile, execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { CLUSTER_NAME, startEmulator } from '../../tools/emulator/index.js';
import { ensureBuilt, ROOT } from '../helpers/built.js';
import { ensureBundle } from '../helpers/bundle.js';

const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
  files: string[];
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
  scripts: Record<string, string>;
};

/** Names of every tools module (tools/emulator/cli.ts → emulator/cli), to look for in what ships. */
function toolModules(dir = path.join(ROOT, 'tools'), prefix = ''): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    if (e.isDirectory()) return e.name === 'testdata' ? [] : toolModules(path.join(dir, e.name), `${prefix}${e.name}/`);
    return e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') ? [`${prefix}${e.name.replace(/\.ts$/, '')}`] : [];
  });
}

describe('the npm package', () => {
  it('packs dist/ (the product), package.json and the README: no tools module, no build/, no proto/', () => {
    ensureBuilt();
    // --ignore-scripts: prepack would build again; the dry run only lists what the files field takes.
    const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
      cwd: ROOT,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const files = (JSON.parse(out) as Array<{ files: Array<{ path: string }> }>)[0]?.files.map((f) => f.path) ?? [];
    expect(files).toContain('dist/main.js');
    expect(files).toContain('package.json');
    expect(files.filter((f) => !f.startsWith('dist/') && f !== 'package.json' && f !== 'README.md')).toEqual([]);
    // A tools module compiled into dist/ (a stale dist/ from before the tools moved out: `npm run build` starts from an
    // empty dist/).
    const tools = new Set(toolModules());
    expect(files.filter((f) => tools.has(f.replace(/^dist\//, '').replace(/\.js(\.map)?$/, '')))).toEqual([]);
    expect(files.filter((f) => /emulator|bench|demo|driver-client/.test(f))).toEqual([]);
  });

  it('declares the tools-only packages as dev dependencies, builds before packing, starts from an empty dist/', () => {
    expect(pkg.files).toEqual(['dist/']);
    expect(Object.keys(pkg.dependencies)).not.toContain('@grpc/proto-loader');
    expect(Object.keys(pkg.devDependencies)).toContain('@grpc/proto-loader');
    // The tools' and tests' gRPC client; the product serves gRPC itself (src/server/grpc-server.ts).
    expect(Object.keys(pkg.dependencies)).not.toContain('@grpc/grpc-js');
    expect(Object.keys(pkg.devDependencies)).toContain('@grpc/grpc-js');
    expect(pkg.scripts['prepack']).toBe('npm run build');
    expect(pkg.scripts['build']).toMatch(/^rm -rf dist && /);
  });
});

/** The bundle's files the server loads at start: main.js and what it imports statically, not by `import()`. */
function startupFiles(dir: string): string[] {
  const seen = new Set<string>();
  const todo = ['main.js'];
  for (let f = todo.pop(); f !== undefined; f = todo.pop()) {
    if (seen.has(f)) continue;
    seen.add(f);
    const text = readFileSync(path.join(dir, f), 'utf8');
    for (const m of text.matchAll(/^(?:import|export)\b[^;]*?\bfrom\s*"\.\/([^"]+)"|^import\s*"\.\/([^"]+)"/gm))
      todo.push((m[1] ?? m[2])!);
  }
  return [...seen];
}

/** `doctor`'s SDK packages (the provider server never uses them). */
const DOCTOR_PACKAGES = ['@aws-sdk/client-iam', '@aws-sdk/client-eks', '@aws-sdk/client-kms'];

describe("the image's bundle (dist/bundle/)", () => {
  it("starts without doctor's IAM, EKS and KMS clients: each is a chunk that only doctor's import() loads", () => {
    const dir = path.dirname(ensureBundle());
    const startup = startupFiles(dir);
    expect(startup.length).toBeGreaterThan(1);
    // esbuild heads each bundled module with a comment naming its file (`// node_modules/<pkg>/…`, the path
    // relative to the checkout: `// ../x/node_modules/<pkg>/…` when node_modules is a link elsewhere).
    const at = (files: string[], pkg: string): string[] => {
      const head = new RegExp(`^// (?:\\S*/)?node_modules/${pkg.replace('/', '\\/')}/`, 'm');
      return files.filter((f) => head.test(readFileSync(path.join(dir, f), 'utf8')));
    };
    // The comments are found where they are: yaml's parser is bundled (a chunk the first mount loads).
    const all = readdirSync(dir).filter((f) => f.endsWith('.js'));
    expect(at(all, 'yaml')).not.toEqual([]);
    for (const pkg of DOCTOR_PACKAGES) {
      expect(at(startup, pkg), pkg).toEqual([]);
      expect(at(all, pkg), pkg).not.toEqual([]);
    }
  });

  it('runs doctor, its IAM, EKS and KMS calls included, against the emulator', { timeout: 60_000 }, async () => {
    const bundle = ensureBundle();
    const emu = await startEmulator({ accountId: '111122223333' });
    const tmp = await mkdtemp(path.join(os.tmpdir(), 'doctor-bundle-'));
    try {
      const kubeconfig = path.join(tmp, 'kubeconfig');
      await emu.writeKubeconfig(kubeconfig);
      const role = 'arn:aws:iam::111122223333:role/pod-identity-reader';
      const operator = 'arn:aws:iam::111122223333:role/operator';
      const key = 'arn:aws:kms:us-east-1:111122223333:key/0b7e5c1d-1111-4222-8333-444455556666';
      emu.addRole({ arn: role, allow: { secretsmanager: ['prod/db-creds*'], ssm: ['/app/*'], kms: [key] } });
      emu.addRole({
        arn: operator,
        allow: { iamRead: true, eksRead: true, kmsRead: true, secretsmanager: ['*'], describeParameters: true },
      });
      emu.addPodIdentityAssociation({ namespace: 'default', serviceAccount: 'app-pod-identity', roleArn: role });
      emu.addKmsKey({ arn: key, aliases: ['alias/app'] });
      emu.putSecret('us-east-1', 'prod/db-creds', '{"username":"u","password":"p","db-host":"h"}', {
        kmsKeyId: 'alias/app',
      });
      emu.putParameter('us-east-1', '/app/feature-flag', 'on');
      emu.addCsiDriver('secrets-store.csi.k8s.io', { tokenRequests: [{ audience: 'pods.eks.amazonaws.com' }] });
      emu.addPod('kube-system', 'provider', 'node-1', {
        labels: { 'app.kubernetes.io/name': 'csi-secrets-provider-aws' },
      });
      const c = emu.issueCredentials(operator);
      const run = promisify(execFile);
      const { stdout } = await run(
        process.execPath,
        [
          bundle,
          'doctor',
          ...['--class', 'manifests/examples/pod-identity.yaml', '--namespace', 'default'],
          ...['--service-account', 'app-pod-identity', '--region', 'us-east-1', '--cluster', CLUSTER_NAME],
          ...['--format', 'json'],
        ],
        {
          cwd: ROOT,
          // A clean environment: the emulator's endpoint and credentials, no AWS settings from the host.
          env: {
            PATH: process.env['PATH'] ?? '',
            AWS_ENDPOINT_URL: emu.url,
            AWS_ACCESS_KEY_ID: c.accessKeyId,
            AWS_SECRET_ACCESS_KEY: c.secretAccessKey,
            AWS_SESSION_TOKEN: c.sessionToken,
            AWS_EC2_METADATA_DISABLED: 'true',
            AWS_CONFIG_FILE: path.join(tmp, 'none'),
            AWS_SHARED_CREDENTIALS_FILE: path.join(tmp, 'none'),
            KUBECONFIG: kubeconfig,
          },
        },
      );
      const report = JSON.parse(stdout) as { checks: { check: string; status: string }[] };
      expect(report.checks.filter((r) => r.status !== 'PASS')).toEqual([]);
      const status = (check: string): string | undefined => report.checks.find((r) => r.check === check)?.status;
      expect([status('pod-identity'), status('pod-identity-trust'), status('access'), status('kms')]).toEqual([
        'PASS',
        'PASS',
        'PASS',
        'PASS',
      ]);
      const services = new Set(emu.calls.map((r) => `${r.service} ${r.operation} ${r.status}`));
      for (const call of [
        'eks ListPodIdentityAssociations 200',
        'eks DescribePodIdentityAssociation 200',
        'iam GetRole 200',
        'iam SimulatePrincipalPolicy 200',
        'kms DescribeKey 200',
      ])
        expect(services).toContain(call);
    } finally {
      await emu.close();
      await rm(tmp, { recursive: true, force: true });
    }
  });

  it('holds no gRPC library: the server speaks gRPC on node:http2 itself, and starts without one', () => {
    const dir = path.dirname(ensureBundle());
    const all = readdirSync(dir).filter((f) => f.endsWith('.js'));
    // esbuild heads each bundled module with a comment naming its file (see above); grpc-js's own names too.
    const hits = all.flatMap((f) => {
      const text = readFileSync(path.join(dir, f), 'utf8');
      return [/^\/\/ (?:\S*\/)?node_modules\/@grpc\//m, /\bServerCredentials\b/, /\bcreateConnectionInjector\b/]
        .filter((re) => re.test(text))
        .map((re) => `${f}: ${re.source}`);
    });
    expect(hits).toEqual([]);
    // Nor does the licence file name it (it lists every bundled package).
    expect(readFileSync(path.join(dir, 'THIRD-PARTY-LICENSES.txt'), 'utf8')).not.toMatch(/^@grpc\//m);
    // The server is in the start-up files all the same: the check would see it.
    expect(
      startupFiles(dir).some((f) =>
        readFileSync(path.join(dir, f), 'utf8').includes('v1alpha1.CSIDriverProvider/Mount'),
      ),
    ).toBe(true);
  });

  it('holds no emulator, driver client, bench or demo code', () => {
    const dir = path.dirname(ensureBundle());
    const hits: string[] = [];
    // Names only the tools define (the product serves the driver's API with its own codec, server/codec.ts).
    const marks = [
      'startEmulator',
      'createDriverClient',
      'writeFilesLikeDriver',
      'driverPathProblem',
      'runBench',
      'runDemo',
      'PROTO_PATH',
      'repoRoot',
    ];
    for (const f of readdirSync(dir).filter((n) => n.endsWith('.js'))) {
      const text = readFileSync(path.join(dir, f), 'utf8');
      for (const m of marks) if (text.includes(m)) hits.push(`${f}: ${m}`);
    }
    expect(hits).toEqual([]);
  });
});

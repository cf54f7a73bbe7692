// The Dockerfile, checked without a Docker engine: its stages, what they copy (files that exist
// and that .dockerignore lets through), the install scripts `npm ci --ignore-scripts` skips (from
// package-lock.json), the entrypoint, the user and the V8 heap against the chart's memory limit.
// And the server the image runs, run as the image runs it: the bundle (scripts/bundle.mjs) in a
// directory with no node_modules, answering mounts that load every lazily imported part.
import { randomUUID } from 'node:crypto';
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createDriverClient, mountAttributes, startEmulator } from '../../tools/emulator/index.js';
import { ROOT as ROOT_DIR } from '../helpers/built.js';
import { ensureBundle } from '../helpers/bundle.js';
import { readDefaultValues } from './helm.js';

const ROOT = new URL('../../', import.meta.url);
const read = (p: string): string => readFileSync(new URL(p, ROOT), 'utf8');
const pkg = JSON.parse(read('package.json')) as {
  main: string;
  scripts: Record<string, string>;
  devDependencies: Record<string, string>;
  dependencies: Record<string, string>;
  allowScripts: Record<string, boolean>;
};
const lock = JSON.parse(read('package-lock.json')) as {
  packages: Record<string, { dev?: boolean; hasInstallScript?: boolean; version?: string }>;
};
const bundleScript = read('scripts/bundle.mjs');
const buildConfig = JSON.parse(read('tsconfig.build.json')) as { compilerOptions: { rootDir: string; outDir: string } };

interface Instruction {
  op: string;
  args: string;
  stage: string;
}

/** Dockerfile → instructions (continuations joined, comments dropped), each tagged with its stage. */
function parseDockerfile(text: string): { instructions: Instruction[]; args: Record<string, string> } {
  const lines = text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  const instructions: Instruction[] = [];
  const args: Record<string, string> = {};
  let stage = '';
  for (const line of lines) {
    const [, op = '', rest = ''] = /^(\S+)\s*(.*)$/.exec(line) ?? [];
    const upper = op.toUpperCase();
    if (upper === 'ARG' && stage === '') {
      const [k = '', v = ''] = rest.split('=');
      args[k] = v;
    }
    if (upper === 'FROM') stage = /\bAS\s+(\S+)/i.exec(rest)?.[1] ?? String(instructions.length);
    instructions.push({ op: upper, args: rest, stage });
  }
  return { instructions, args };
}

/** .dockerignore as Docker reads it: last matching pattern wins; a match on a parent directory counts. */
function dockerIgnored(patterns: readonly string[], path: string): boolean {
  const toRegex = (p: string): RegExp =>
    new RegExp(
      '^' +
        p
          .replace(/[.+^${}()|[\]\\]/g, '\\$&')
          .replace(/\*\*\/?/g, '\u0000')
          .replace(/\*/g, '[^/]*')
          .replace(/\?/g, '[^/]')
          // eslint-disable-next-line no-control-regex -- NUL stands in for `**/` while the rest is rewritten
          .replace(/\u0000/g, '(?:.*/)?') +
        '$',
    );
  const parts = path.split('/');
  const prefixes = parts.map((_p, i) => parts.slice(0, i + 1).join('/'));
  let ignored = false;
  for (const raw of patterns) {
    const neg = raw.startsWith('!');
    const re = toRegex((neg ? raw.slice(1) : raw).replace(/\/$/, ''));
    if (prefixes.some((p) => re.test(p))) ignored = !neg;
  }
  return ignored;
}

const { instructions, args } = parseDockerfile(read('Dockerfile'));
const ignore = read('.dockerignore')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l !== '' && !l.startsWith('#'));
const stages = instructions.filter((i) => i.op === 'FROM').map((i) => i.stage);
const inStage = (stage: string, op: string): Instruction[] =>
  instructions.filter((i) => i.stage === stage && i.op === op);
const runtime = stages.at(-1) ?? '';

describe('Dockerfile', () => {
  it('builds on Node 24 slim in every stage', () => {
    expect(args.NODE_IMAGE).toMatch(/^node:24(\.\d+)*-[a-z]+-slim$/);
    for (const f of instructions.filter((i) => i.op === 'FROM'))
      expect(f.args).toMatch(/^\$\{NODE_IMAGE\}\s+AS\s+\w+$/);
    expect(stages).toEqual(['build', 'runtime']);
  });

  it('builds with npm ci + npm run build (empty dist/, tsc, bundle; no tools); runtime stage installs nothing', () => {
    expect(inStage('build', 'RUN').map((r) => r.args)).toEqual([
      expect.stringMatching(/^npm ci --ignore-scripts\b/),
      'npm run build',
    ]);
    expect(pkg.scripts.build).toBe('rm -rf dist && tsc -p tsconfig.build.json && node scripts/bundle.mjs');
    expect(
      inStage('runtime', 'RUN')
        .map((r) => r.args)
        .join(' '),
    ).not.toMatch(/npm ci|npm install/);
  });

  it('copies and bind-mounts from the build context only files that exist and .dockerignore lets through', () => {
    const copies = instructions.filter((i) => i.op === 'COPY' && !i.args.includes('--from='));
    expect(copies.length).toBeGreaterThan(0);
    const sources = copies.flatMap((c) => c.args.split(/\s+/).slice(0, -1));
    const mounts = instructions
      .filter((i) => i.op === 'RUN')
      .flatMap((r) => [...r.args.matchAll(/--mount=type=bind,source=([^,\s]+)/g)].map((m) => m[1] as string));
    expect(mounts).toEqual(['scripts/compile-cache.mjs']);
    for (const src of [...sources, ...mounts]) {
      const path = src.replace(/\/$/, '');
      expect(existsSync(new URL(path, ROOT)), `${src} exists`).toBe(true);
      expect(dockerIgnored(ignore, path), `${src} is in the build context`).toBe(false);
    }
  });

  it('copies between stages what those stages made', () => {
    const froms = instructions.filter((i) => i.op === 'COPY' && i.args.includes('--from='));
    const got = froms.map((c) => [c.stage, /--from=(\S+)\s+(\S+)/.exec(c.args)?.slice(1)]);
    expect(got).toEqual([['runtime', ['build', `/src/${buildConfig.compilerOptions.outDir}/bundle`]]]);
    expect(bundleScript).toContain("const outdir = path.join(root, 'dist', 'bundle');");
    expect(buildConfig.compilerOptions.outDir).toBe('dist');
    expect(inStage('build', 'WORKDIR').map((w) => w.args)).toEqual(['/src']);
  });

  it('ships dist/bundle/ and package.json, the bundle two levels below it (as dist/*/, where version.ts looks)', () => {
    expect(inStage(runtime, 'WORKDIR').map((w) => w.args)).toEqual(['/app']);
    const dests = inStage(runtime, 'COPY').map((c) => c.args.split(/\s+/).at(-1));
    expect(dests).toEqual(['./dist/bundle', './']);
    expect(inStage(runtime, 'COPY').at(-1)?.args).toBe('package.json ./');
  });

  it('runs package.json main (node dist/bundle/main.js) as PID 1 and a numeric non-root user, no HEALTHCHECK', () => {
    expect(inStage(runtime, 'ENTRYPOINT').map((e) => JSON.parse(e.args) as unknown)).toEqual([
      ['node', 'dist/bundle/main.js'],
    ]);
    expect(pkg.main).toBe('dist/main.js');
    expect(bundleScript).toContain(`entryPoints: ['${pkg.main}', 'dist/spc/jmes-eval.js']`);
    expect(inStage(runtime, 'USER').map((u) => u.args)).toEqual([expect.stringMatching(/^[1-9]\d*:[1-9]\d*$/)]);
    expect(instructions.some((i) => i.op === 'HEALTHCHECK')).toBe(false);
  });

  it('fills the compile cache as root, after the bundle and NODE_OPTIONS are set, at the path it is read from', () => {
    const rt = instructions.filter((i) => i.stage === runtime);
    const at = (pred: (i: Instruction) => boolean): number => rt.findIndex(pred);
    const fill = at((i) => i.op === 'RUN' && i.args.includes('compile-cache.mjs'));
    const cacheEnv = at((i) => i.op === 'ENV' && i.args.startsWith('NODE_COMPILE_CACHE='));
    expect(rt[cacheEnv]?.args).toBe('NODE_COMPILE_CACHE=/app/compile-cache');
    expect(rt[fill]?.args).toMatch(/ node \/tmp\/compile-cache\.mjs dist\/bundle\/main\.js$/);
    expect(cacheEnv).toBeLessThan(fill);
    expect(at((i) => i.op === 'ENV' && i.args.startsWith('NODE_OPTIONS='))).toBeLessThan(fill);
    expect(at((i) => i.op === 'COPY' && i.args.includes('/dist/bundle'))).toBeLessThan(fill);
    expect(at((i) => i.op === 'COPY' && i.args === 'package.json ./')).toBeLessThan(fill);
    expect(at((i) => i.op === 'USER')).toBeGreaterThan(fill);
  });

  it("sizes the V8 heap from the container's memory limit, inside the chart's 100Mi", () => {
    const env = inStage(runtime, 'ENV')
      .map((e) => e.args)
      .join(' ');
    // The bench reads NODE_OPTIONS from this line with a regex.
    expect(read('Dockerfile')).toMatch(/^ENV NODE_OPTIONS="[^"]*"$/m);
    expect(env).not.toMatch(/--max-old-space-size=/);
    const percent = Number(/--max-old-space-size-percentage=(\d+)\b/.exec(env)?.[1]);
    const semi = Number(/--max-semi-space-size=(\d+)/.exec(env)?.[1]);
    expect(semi).toBe(1);
    const limit = (readDefaultValues() as { resources: { limits: { memory: string } } }).resources.limits.memory;
    expect(limit).toMatch(/^\d+Mi$/);
    const limitMiB = Number.parseInt(limit, 10);
    const oldSpace = (percent / 100) * limitMiB;
    // A burst of 110 first mounts peaks at ~28 MiB of heap.
    expect(oldSpace).toBeGreaterThanOrEqual(32);
    // Measured at 100Mi (see the Dockerfile): ~60 MiB beside the old generation (node's mapped pages
    // ~40 MiB, below which it thrashes; ~18 MiB outside the V8 heap in a burst; 3 semi-spaces).
    expect(oldSpace + 60).toBeLessThanOrEqual(limitMiB);
  });
});

describe('install scripts (per package-lock.json)', () => {
  const withScripts = Object.entries(lock.packages)
    .filter(([path, p]) => path !== '' && p.hasInstallScript === true)
    .map(([path]) => path.replace(/^.*node_modules\//, ''));

  it('installs with --ignore-scripts: no install script is needed; allowScripts names every package with one', () => {
    // protobufjs: prints a version notice. node: downloads a second Node binary (the image is Node 24).
    // esbuild: checks its platform binary, which npm installs as an optional dependency anyway.
    expect(withScripts.sort()).toEqual(['esbuild', 'node', 'protobufjs']);
    expect(pkg.allowScripts).toEqual({ esbuild: false, node: true, protobufjs: false });
  });

  it('esbuild is a pinned dev dependency (the bundle must not change under a lock refresh)', () => {
    expect(pkg.devDependencies.esbuild).toMatch(/^\d+\.\d+\.\d+$/);
    expect(lock.packages['node_modules/esbuild']?.version).toBe(pkg.devDependencies.esbuild);
    expect(lock.packages['node_modules/esbuild']?.dev).toBe(true);
  });
});

describe('.dockerignore', () => {
  it.each([
    ['node_modules/yaml/package.json', true],
    ['dist/main.js', true],
    ['.git/HEAD', true],
    ['test/manifests/chart.test.ts', true],
    ['src/spc/parse.test.ts', true],
    ['src/spc/testdata/class.yaml', true],
    ['src/main.ts', false],
    ['scripts/bundle.mjs', false],
    ['proto/service.proto', true],
    ['tools/emulator/index.ts', true],
    ['tools/tsconfig.json', true],
    ['build/tools/demo/demo.js', true],
    ['package-lock.json', false],
  ])('%s ignored: %s', (path, want) => {
    expect(dockerIgnored(ignore, path)).toBe(want);
  });
});

describe("the image's server: dist/bundle/ and package.json, without node_modules", () => {
  it(
    'starts and mounts through every lazily loaded part (kubeconfig, IRSA and STS, Pod Identity, Secrets Manager ' +
      'with jmesPath inline and in the worker thread, SSM)',
    { timeout: 120_000 },
    async () => {
      const bundle = ensureBundle();
      const work = mkdtempSync(path.join(os.tmpdir(), 'image-server-'));
      const emu = await startEmulator();
      let child: ReturnType<typeof spawn> | undefined;
      try {
        // /app as the runtime stage lays it out; nothing above it may hold a node_modules.
        const app = path.join(work, 'app');
        cpSync(path.dirname(bundle), path.join(app, 'dist', 'bundle'), { recursive: true });
        cpSync(path.join(ROOT_DIR, 'package.json'), path.join(app, 'package.json'));
        for (let dir = app; dir !== path.dirname(dir); dir = path.dirname(dir))
          expect(existsSync(path.join(dir, 'node_modules')), `${dir}/node_modules`).toBe(false);

        const region = 'us-east-1';
        emu.addNode('node-1', { 'topology.kubernetes.io/region': region });
        emu.putSecret(region, 'app/db', JSON.stringify({ username: 'app-user', password: 'not-a-real-password' }));
        emu.putParameter(region, '/app/flag', 'on');
        const kubeconfig = path.join(work, 'kubeconfig');
        await emu.writeKubeconfig(kubeconfig);
        const objects = [
          '- objectName: app/db',
          '  objectType: secretsmanager',
          '  objectAlias: db',
          '  jmesPath:',
          '    - path: username',
          '      objectAlias: db-user',
          // Not a plain path: evaluated in the JMESPath worker thread, which the bundle must carry.
          '    - path: "join(\',\', sort(keys(@)))"',
          '      objectAlias: db-keys',
          '- objectName: /app/flag',
          '  objectType: ssmparameter',
          '  objectAlias: flag',
          '',
        ].join('\n');
        const pods = ['irsa', 'pod-identity'].map((kind) => {
          const [namespace, serviceAccount, podName] = ['team', `sa-${kind}`, `pod-${kind}`];
          const roleArn = `arn:aws:iam::${emu.accountId}:role/reader-${kind}`;
          emu.addRole({
            arn: roleArn,
            trust: { subjects: [`system:serviceaccount:${namespace}:${serviceAccount}`] },
            allow: { secretsmanager: ['*'], ssm: ['*'] },
          });
          if (kind === 'irsa')
            emu.addServiceAccount(namespace, serviceAccount, { 'eks.amazonaws.com/role-arn': roleArn });
          else {
            emu.addServiceAccount(namespace, serviceAccount, {});
            emu.addPodIdentityAssociation({ namespace, serviceAccount, roleArn });
          }
          emu.addPod(namespace, podName, 'node-1');
          const tokens = Object.fromEntries(
            ['sts.amazonaws.com', 'pods.eks.amazonaws.com'].map((audience) => [
              audience,
              emu.issueToken({ namespace, serviceAccount, audience, podName }),
            ]),
          );
          const parameters: Record<string, string> = {
            objects,
            ...(kind === 'pod-identity' ? { usePodIdentity: 'true' } : {}),
          };
          // Shaped as the kubelet makes it: the provider writes into no other directory.
          const target = path.join(
            work,
            'kubelet',
            'pods',
            randomUUID(),
            'volumes',
            'kubernetes.io~csi',
            'secrets-store',
            'mount',
          );
          mkdirSync(target, { recursive: true });
          return {
            kind,
            target,
            attributes: JSON.stringify(mountAttributes({ podName, namespace, serviceAccount, tokens, parameters })),
          };
        });

        const volume = path.join(work, 'providers');
        mkdirSync(volume);
        const nodeOptions = /^ENV NODE_OPTIONS="([^"]*)"/m.exec(read('Dockerfile'))?.[1] ?? '';
        const missing = path.join(work, 'none');
        let log = '';
        child = spawn(
          process.execPath,
          [
            'dist/bundle/main.js',
            `--provider-volume=${volume}`,
            `--kubelet-root=${path.join(work, 'kubelet')}`,
            '--health-addr=',
            '--metrics-addr=',
            `--pod-identity-endpoint=${emu.podIdentityUrl}`,
          ],
          {
            cwd: app,
            env: {
              PATH: process.env['PATH'] ?? '/usr/bin:/bin',
              NODE_ENV: 'production',
              NODE_OPTIONS: nodeOptions,
              NODE_NAME: 'node-1',
              AWS_ENDPOINT_URL: emu.url,
              AWS_EC2_METADATA_DISABLED: 'true',
              AWS_CONFIG_FILE: missing,
              AWS_SHARED_CREDENTIALS_FILE: missing,
              KUBECONFIG: kubeconfig,
            },
            stdio: ['ignore', 'pipe', 'pipe'],
          },
        );
        for (const s of [child.stdout, child.stderr])
          s?.setEncoding('utf8').on('data', (chunk: string) => (log += chunk));
        const socket = path.join(volume, 'aws.sock');
        for (const deadline = Date.now() + 30_000; !existsSync(socket);) {
          expect(child.exitCode, log).toBeNull();
          expect(Date.now(), `no socket within 30 s: ${log}`).toBeLessThan(deadline);
          await new Promise((r) => setTimeout(r, 20));
        }
        const client = createDriverClient(socket);
        try {
          expect((await client.version()).runtime_name).toBe(
            (JSON.parse(read('package.json')) as { name: string }).name,
          );
          for (const pod of pods) {
            const res = await client.mount(
              { attributes: pod.attributes, targetPath: pod.target, currentObjectVersion: [] },
              { deadlineMs: 60_000 },
            );
            expect(res.objectVersion.length, pod.kind).toBeGreaterThanOrEqual(2);
            expect(JSON.parse(readFileSync(path.join(pod.target, 'db'), 'utf8')), pod.kind).toMatchObject({
              username: 'app-user',
            });
            expect(readFileSync(path.join(pod.target, 'db-user'), 'utf8'), pod.kind).toBe('app-user');
            expect(readFileSync(path.join(pod.target, 'db-keys'), 'utf8'), pod.kind).toBe('password,username');
            expect(readFileSync(path.join(pod.target, 'flag'), 'utf8'), pod.kind).toBe('on');
          }
        } finally {
          client.close();
        }
        const exited = new Promise<number | null>((resolve) => child?.once('exit', (code) => resolve(code)));
        child.kill('SIGTERM');
        expect(await exited, log).toBe(0);
        expect(log.split('\n').filter((l) => /"level":"(warn|error)"/.test(l))).toEqual([]);
      } finally {
        if (child !== undefined && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        await emu.close();
        rmSync(work, { recursive: true, force: true });
      }
    },
  );
});

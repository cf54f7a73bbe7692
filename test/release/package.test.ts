// What ships: the npm package (package.json "files", as `npm pack` lists it) and the image's bundle
// (dist/bundle/, the only thing the Dockerfile's runtime stage copies from the build) hold the
// product alone. The tools (tools/: the AWS/Kubernetes emulator, its driver client, the bench, the
// demo) are built to build/ and never reach either.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
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

  it('declares the tools-only packages as dev dependencies, builds before packing, and starts from an empty dist/', () => {
    expect(pkg.files).toEqual(['dist/']);
    expect(Object.keys(pkg.dependencies)).not.toContain('@grpc/proto-loader');
    expect(Object.keys(pkg.devDependencies)).toContain('@grpc/proto-loader');
    expect(pkg.scripts['prepack']).toBe('npm run build');
    expect(pkg.scripts['build']).toMatch(/^rm -rf dist && /);
  });
});

describe("the image's bundle (dist/bundle/)", () => {
  it('holds no emulator, driver client, bench or demo code', () => {
    const dir = path.dirname(ensureBundle());
    const hits: string[] = [];
    // Names only the tools define. (@grpc/proto-loader is in the bundle all the same: @grpc/grpc-js
    // loads it for itself; the product serves the driver's API with its own codec, server/codec.ts.)
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

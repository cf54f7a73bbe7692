/**
 * Import direction is a test, not a hope: reads the import lines of src/** (tests
 * excluded) and fails on an edge the table does not allow, on an import into another part's folder
 * past its index.ts, on a package imported outside its home, or on a cycle (type-only imports
 * included). src/main.ts is the one entry point: it alone exits, and nothing imports it. And the
 * product (src/) never imports the tools (tools/: emulator, bench, demo), which may import the
 * product: the image and the npm package hold src/ alone. docs/architecture.md says the same in prose.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SRC = fileURLToPath(new URL('../src/', import.meta.url));
const TOOLS = fileURLToPath(new URL('../tools/', import.meta.url));

/** The modules under dir (`tests`: its *.test.ts files instead). */
function walk(dir: string, tests = false): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return e.name === 'testdata' ? [] : walk(p, tests);
    return e.name.endsWith('.ts') && e.name.endsWith('.test.ts') === tests ? [p] : [];
  });
}

/** The part a file belongs to: its top folder under src/, or the leaf file's name. */
function part(file: string): string {
  const rel = path.relative(SRC, file).split(path.sep);
  return rel.length > 1 ? `${rel[0]}/` : (rel[0] ?? '');
}

const LEAVES = [
  'observability/',
  'errors.ts',
  'version.ts',
  'aws-errors.ts',
  'node-http.ts',
  'bounded-map.ts',
  'bytes.ts',
  'map-limit.ts',
];
/** What each part may import of ours (besides itself). `type:` = type-only imports. */
const ALLOWED: Record<string, readonly string[]> = {
  // The program: runs the command its arguments name, and exits. Nothing imports it.
  'main.ts': ['cli/', 'version.ts'],
  // The commands are the composition roots: `serve` wires every part into the server, `mount`
  // wires the provider's real parts with the operator's credentials, `check` runs spc/'s rules.
  'cli/': ['server/', 'mount/', 'spc/', 'identity/', 'aws/', 'k8s/', 'files/', ...LEAVES],
  'server/': ['type:mount/', ...LEAVES],
  'mount/': ['spc/', 'type:identity/', 'type:aws/', 'type:k8s/', 'type:files/', ...LEAVES],
  'identity/': ['type:spc/', ...LEAVES],
  'aws/': ['type:spc/', ...LEAVES],
  'k8s/': ['type:spc/', ...LEAVES],
  'files/': ['type:spc/', ...LEAVES],
  'spc/': [...LEAVES],
  'observability/': ['errors.ts', 'version.ts'],
  'errors.ts': [],
  'version.ts': [],
  'aws-errors.ts': ['errors.ts', 'observability/', 'bytes.ts'],
  'node-http.ts': [],
  'bounded-map.ts': [],
  'bytes.ts': [],
  'map-limit.ts': [],
};
/**
 * Imports into another part's folder name its index.ts, except these (from → to, with why). A part's
 * index is what it offers; its other modules may change without the rest of the product noticing.
 */
const PAST_THE_INDEX: Record<string, string> = {
  'cli/serve.ts → spc/regions.ts':
    "the server's start-up path: spc/index.ts loads the YAML and JMESPath parsers, which wait for the first mount",
  'cli/flags.ts → spc/attributes.ts':
    "the server's start-up path (flags are parsed first): spc/index.ts loads the YAML and JMESPath parsers, which " +
    'wait for the first mount',
  'cli/serve.ts → mount/admission.ts':
    'the server asks admission as each Mount arrives, before the pipeline is loaded: mount/index.ts loads ' +
    'spc/index.ts, which waits for the first mount',
  'cli/serve.ts → spc/attributes.ts':
    "admission queues by the pod's namespace, read as each Mount arrives, before the pipeline is loaded: " +
    'spc/index.ts waits for the first mount',
};
/** Packages that only some parts may import (value imports). */
const PACKAGE_HOMES: Record<string, readonly string[]> = {
  '@aws-sdk/': ['aws/', 'identity/'],
  '@smithy/': ['aws/'],
  jmespath: ['spc/'],
};

interface Edge {
  from: string;
  to: string;
  typeOnly: boolean;
  spec: string;
}

function imports(file: string): Edge[] {
  const text = readFileSync(file, 'utf8');
  const out: Edge[] = [];
  const re = /^\s*(import|export)\s+(type\s+)?[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/gm;
  for (const m of text.matchAll(re)) {
    const spec = m[3] ?? m[4] ?? '';
    const typeOnly =
      m[2] !== undefined ||
      (m[1] !== undefined &&
        /^\s*import\s+\{\s*type\s[^}]*\}/.test(m[0]) &&
        !/,\s*(?!type\s)\w/.test(m[0].replace(/^[^{]*\{/, '')));
    const to = spec.startsWith('.') ? path.resolve(path.dirname(file), spec.replace(/\.js$/, '.ts')) : spec;
    out.push({ from: file, to, typeOnly: typeOnly || /^\s*import\s+type\b/.test(m[0]), spec });
  }
  return out;
}

const files = walk(SRC);
const edges = files.flatMap(imports);
const toolFiles = walk(TOOLS);
const toolEdges = toolFiles.flatMap(imports);

describe('architecture', () => {
  it('imports point from the edge inward (the ALLOWED table)', () => {
    const bad: string[] = [];
    for (const e of edges) {
      if (!e.to.startsWith(SRC)) continue;
      const from = part(e.from);
      const to = part(e.to);
      if (from === to) continue;
      const allowed = ALLOWED[from];
      if (!allowed) {
        bad.push(`${path.relative(SRC, e.from)}: part ${from} is not in the table`);
        continue;
      }
      const ok = allowed.includes('*') || allowed.includes(to) || (e.typeOnly && allowed.includes(`type:${to}`));
      if (!ok) bad.push(`${path.relative(SRC, e.from)} → ${path.relative(SRC, e.to)}${e.typeOnly ? ' (type)' : ''}`);
    }
    expect(bad).toEqual([]);
  });

  it("imports into another part's folder go through its index.ts (PAST_THE_INDEX lists the exceptions)", () => {
    const past = new Set<string>();
    const bad: string[] = [];
    for (const e of edges) {
      if (
        !e.to.startsWith(SRC) ||
        part(e.from) === part(e.to) ||
        !part(e.to).endsWith('/') ||
        path.basename(e.to) === 'index.ts'
      )
        continue;
      const key = `${path.relative(SRC, e.from)} → ${path.relative(SRC, e.to)}`;
      if (key in PAST_THE_INDEX) past.add(key);
      else bad.push(key + (e.typeOnly ? ' (type)' : ''));
    }
    expect(bad).toEqual([]);
    // No stale exception: each one is still an import.
    expect([...past].sort()).toEqual(Object.keys(PAST_THE_INDEX).sort());
  });

  it('one entry point: src/main.ts alone exits the process, and nothing imports it', () => {
    const exits = files
      .filter((f) => /\bprocess\.(exit\(|exitCode\s*=)/.test(readFileSync(f, 'utf8')))
      .map((f) => path.relative(SRC, f));
    expect(exits).toEqual(['main.ts']);
    expect(edges.filter((e) => e.to === path.join(SRC, 'main.ts')).map((e) => path.relative(SRC, e.from))).toEqual([]);
  });

  it('packages are imported only in their home', () => {
    const bad: string[] = [];
    for (const e of edges) {
      if (e.to.startsWith(SRC) || e.typeOnly) continue;
      for (const [pkg, homes] of Object.entries(PACKAGE_HOMES)) {
        if (e.spec === pkg || e.spec.startsWith(pkg)) {
          const from = part(e.from);
          if (!homes.includes(from)) bad.push(`${path.relative(SRC, e.from)} imports ${e.spec}`);
        }
      }
    }
    expect(bad).toEqual([]);
  });

  it('no import cycles between modules, type-only imports included', () => {
    const graph = new Map<string, string[]>();
    for (const e of edges) {
      if (!e.to.startsWith(SRC)) continue;
      graph.set(e.from, [...(graph.get(e.from) ?? []), e.to]);
    }
    const cycles: string[] = [];
    const state = new Map<string, 'open' | 'done'>();
    const visit = (n: string, stack: string[]): void => {
      if (state.get(n) === 'done') return;
      if (state.get(n) === 'open') {
        cycles.push([...stack.slice(stack.indexOf(n)), n].map((f) => path.relative(SRC, f)).join(' → '));
        return;
      }
      state.set(n, 'open');
      for (const m of graph.get(n) ?? []) visit(m, [...stack, n]);
      state.set(n, 'done');
    };
    for (const f of files) visit(f, []);
    expect(cycles).toEqual([]);
  });

  it('the product (src/) imports nothing outside src/ but packages, and never the tools', () => {
    const inRepo = (e: Edge): boolean => path.isAbsolute(e.to);
    // Tests beside the code may use the tools (the emulator, the driver client): they are not built into dist/.
    const productTests = walk(SRC, true).flatMap(imports);
    expect(
      edges.filter((e) => inRepo(e) && !e.to.startsWith(SRC)).map((e) => `${path.relative(SRC, e.from)} → ${e.spec}`),
    ).toEqual([]);
    expect(
      productTests
        .filter(
          (e) =>
            inRepo(e) &&
            !e.to.startsWith(SRC) &&
            !e.to.startsWith(TOOLS) &&
            !e.to.includes(`${path.sep}test${path.sep}helpers${path.sep}`),
        )
        .map((e) => `${path.relative(SRC, e.from)} → ${e.spec}`),
    ).toEqual([]);
  });

  it('the product never imports a gRPC library, not even its types: it serves gRPC on node:http2 itself', () => {
    // grpc-js is the tools' and the tests' gRPC client (the driver's stand-in), a dev dependency; the
    // server's start-up under 50m CPU is why (docs/benchmarks.md, "Start-up in the box").
    const grpcImports = (list: Edge[]): string[] =>
      list.filter((e) => e.spec.startsWith('@grpc/')).map((e) => `${path.relative(SRC, e.from)} → ${e.spec}`);
    expect(grpcImports(edges)).toEqual([]);
    // The check sees such imports where they are: the tests beside the code use grpc-js as the client.
    expect(grpcImports(walk(SRC, true).flatMap(imports))).not.toEqual([]);
    const pkg = JSON.parse(readFileSync(path.join(SRC, '..', 'package.json'), 'utf8')) as {
      dependencies: Record<string, string>;
      devDependencies: Record<string, string>;
    };
    expect(Object.keys(pkg.dependencies).filter((d) => d.startsWith('@grpc/'))).toEqual([]);
    expect(Object.keys(pkg.devDependencies)).toContain('@grpc/grpc-js');
  });

  it('the tools import the product and one another, never the tests; @grpc/proto-loader is theirs alone', () => {
    expect(
      toolEdges
        .filter((e) => path.isAbsolute(e.to) && !e.to.startsWith(SRC) && !e.to.startsWith(TOOLS))
        .map((e) => `${path.relative(TOOLS, e.from)} → ${e.spec}`),
    ).toEqual([]);
    expect(toolEdges.some((e) => e.spec === '@grpc/proto-loader')).toBe(true);
    expect(
      edges.filter((e) => e.spec === '@grpc/proto-loader' && !e.typeOnly).map((e) => path.relative(SRC, e.from)),
    ).toEqual([]);
  });

  it('the table covers every part that exists', () => {
    const parts = new Set(files.map(part));
    for (const p of parts) expect(ALLOWED, p).toHaveProperty([p]);
  });
});

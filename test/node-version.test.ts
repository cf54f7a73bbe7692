// Which Node does what: `npm ci` on the machine's Node 20 installs quietly (no package asks for a
// newer Node), npm scripts and the image run Node 24, and the server refuses an older Node with a
// message that says which one to use.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ensureBuilt, ROOT } from './helpers/built.js';
import { nodeVersionProblem, RUNTIME_NODE_MAJOR } from '../src/version.js';

const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
  engines: { node: string };
  devDependencies: Record<string, string>;
};
const lock = JSON.parse(readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8')) as {
  packages: Record<string, { engines?: { node?: string } | string[] }>;
};

/** The lowest Node the README and package.json promise an install on. */
const INSTALL_NODE = '20.19.0';

type V = [number, number, number];
const parse = (v: string): V => {
  const [a = 0, b = 0, c = 0] = v
    .replace(/^v/, '')
    .split('.')
    .map((x) => (x === '*' || x === 'x' ? 0 : Number(x)));
  return [a, b, c];
};
const cmp = (x: V, y: V): number => x[0] - y[0] || x[1] - y[1] || x[2] - y[2];

/** Whether `version` satisfies an npm engines range (the forms the lock holds: >=, ^, X.*, ||, spaces). */
export function satisfies(version: string, range: string): boolean {
  const v = parse(version);
  return range.split('||').some((alt) => {
    const parts = alt
      .trim()
      .replace(/(>=|<=|>|<|\^|~|=)\s+/g, '$1')
      .split(/\s+/)
      .filter(Boolean);
    return parts.every((p) => {
      const m = /^(>=|<=|>|<|\^|~|=)?(.+)$/.exec(p);
      if (!m) return false;
      const op = m[1] ?? '';
      const raw = m[2]!;
      const r = parse(raw);
      if (op === '>=') return cmp(v, r) >= 0;
      if (op === '>') return cmp(v, r) > 0;
      if (op === '<=') return cmp(v, r) <= 0;
      if (op === '<') return cmp(v, r) < 0;
      if (op === '^') return v[0] === r[0] && cmp(v, r) >= 0;
      if (op === '~') return v[0] === r[0] && v[1] === r[1] && cmp(v, r) >= 0;
      if (raw.includes('*') || raw.includes('x') || raw.split('.').length < 3) {
        const fixed = raw.split('.').filter((x) => x !== '*' && x !== 'x').length;
        return v.slice(0, fixed).every((n, i) => n === r[i]);
      }
      return cmp(v, r) === 0;
    });
  });
}

describe("install on the machine's Node 20", () => {
  it('the range check reads npm ranges (so the next test can fail)', () => {
    expect(satisfies('20.19.0', '>=20')).toBe(true);
    expect(satisfies('20.19.0', '>=22')).toBe(false);
    expect(satisfies('20.19.0', '^20.19.0 || >=22.12.0')).toBe(true);
    expect(satisfies('20.18.0', '^20.19.0 || >=22.12.0')).toBe(false);
    expect(satisfies('20.19.0', '6.* || 8.* || >= 10.*')).toBe(true);
    expect(satisfies('20.19.0', '^20.0.0 || ^22.0.0 || >=24.0.0')).toBe(true);
    expect(satisfies('20.19.0', '>=24')).toBe(false);
  });

  it(`no locked package, ours included, needs more than Node ${INSTALL_NODE} (npm ci prints no EBADENGINE)`, () => {
    const refusing = Object.entries(lock.packages)
      .map(
        ([name, p]) => [name || '(root)', !p.engines || Array.isArray(p.engines) ? undefined : p.engines.node] as const,
      )
      .filter(([, range]) => range !== undefined && !satisfies(INSTALL_NODE, range))
      .map(([name, range]) => `${name}: ${range ?? ''}`);
    expect(refusing).toEqual([]);
    expect(satisfies(INSTALL_NODE, pkg.engines.node)).toBe(true);
  });
});

describe(`the runtime is Node ${RUNTIME_NODE_MAJOR}`, () => {
  it("the node dev dependency (what npm scripts run on) and the image's base have that major", () => {
    expect(pkg.devDependencies.node).toMatch(new RegExp(`^\\^${RUNTIME_NODE_MAJOR}\\.`));
    expect(readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8')).toMatch(
      new RegExp(`^ARG NODE_IMAGE=node:${RUNTIME_NODE_MAJOR}-`, 'm'),
    );
    expect(Number(process.versions.node.split('.')[0])).toBe(RUNTIME_NODE_MAJOR);
  });

  it('an older Node is refused with the way to run the right one; the same major or newer is fine', () => {
    expect(nodeVersionProblem('v20.20.2')).toMatch(/^Node v20\.20\.2 is older than Node 24, .*npm start -- \[flags\]/);
    expect(nodeVersionProblem('v22.1.0')).toBeDefined();
    expect(nodeVersionProblem('v24.0.0')).toBeUndefined();
    expect(nodeVersionProblem('v25.2.1')).toBeUndefined();
    expect(nodeVersionProblem('garbage')).toBeDefined();
  });

  it('the server run by an older Node on this machine exits 1 with that message (skipped if PATH has none)', (ctx) => {
    const older = (process.env.PATH ?? '')
      .split(path.delimiter)
      .map((d) => path.join(d, 'node'))
      .filter((p) => existsSync(p))
      .find((p) => {
        try {
          return (
            Number(execFileSync(p, ['-p', 'process.versions.node.split(".")[0]'], { encoding: 'utf8' }).trim()) <
            RUNTIME_NODE_MAJOR
          );
        } catch {
          return false;
        }
      });
    if (older === undefined) return ctx.skip();
    const r = spawnSync(older, [ensureBuilt(), '--provider-volume=/nonexistent'], {
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^csi-secrets-provider-aws: Node v\d+\.\d+\.\d+ is older than Node 24/);
    expect(r.stderr).not.toMatch(/listening/);
  }, 60_000);
});

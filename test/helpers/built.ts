/**
 * The built server, for tests that spawn it as the DaemonSet runs it (`node dist/main.js`). CI
 * builds before testing; here dist/ is rebuilt only when dist/main.js is missing or older than src/.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const MAIN = path.join(ROOT, 'dist', 'main.js');

/** Newest mtime of the sources dist/ is built from. */
function newestSource(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) {
      if (e.name !== 'testdata') newest = Math.max(newest, newestSource(p));
    } else if (e.name.endsWith('.ts') && !e.name.endsWith('.test.ts')) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

/** dist/main.js, built first when stale. */
export function ensureBuilt(): string {
  if (existsSync(MAIN) && statSync(MAIN).mtimeMs >= newestSource(path.join(ROOT, 'src'))) return MAIN;
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  try {
    execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: ROOT, stdio: 'pipe' });
  } catch (err) {
    // tsc still emits on type errors elsewhere; fail only when there is nothing to run.
    if (!existsSync(MAIN)) throw err;
  }
  return MAIN;
}

/**
 * The image's server, dist/bundle/main.js (scripts/bundle.mjs), for tests that run or read it: CI
 * builds both with `npm run build`; here it is bundled again when older than dist/main.js.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { ensureBuilt, ROOT } from './built.js';

export function ensureBundle(): string {
  const main = ensureBuilt();
  const bundle = path.join(ROOT, 'dist', 'bundle', 'main.js');
  if (!existsSync(bundle) || statSync(bundle).mtimeMs < statSync(main).mtimeMs) {
    execFileSync(process.execPath, [path.join(ROOT, 'scripts', 'bundle.mjs')], { cwd: ROOT, stdio: 'pipe' });
  }
  return bundle;
}

/**
 * @module entry (a leaf)
 * Whether a module is the program node was started with. Compares real paths: npm links a package's
 * `bin` into node_modules/.bin as a symlink, so `process.argv[1]` is the link, not the module.
 */
import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

export function isMain(moduleUrl: string): boolean {
  const started = process.argv[1];
  if (started === undefined) return false;
  try {
    return moduleUrl === pathToFileURL(realpathSync(started)).href;
  } catch {
    return false;
  }
}

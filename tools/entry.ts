/**
 * @module entry
 * Whether a tools module is the program node was started with: a tool's entry point (emulator/cli,
 * bench/run, demo/demo) is also imported by its tests, and runs only when started. Compares real
 * paths: `process.argv[1]` may be a link to the module (npm's node_modules/.bin links are).
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

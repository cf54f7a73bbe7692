/**
 * @module repo-root
 * The repository root seen from a module of tools/<tool>/: two levels up from source (vitest runs
 * tools/<tool>/*.ts), three once built (tools/tsconfig.json emits the tools, and the product modules
 * they import, under build/: build/tools/<tool>/*.js). Tools read the repository's files from it
 * (proto/, the Dockerfile, the provider's dist/).
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export function repoRoot(moduleUrl: string): string {
  const here = path.dirname(fileURLToPath(moduleUrl));
  return path.resolve(here, moduleUrl.endsWith('.ts') ? '../..' : '../../..');
}

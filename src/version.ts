/**
 * @module version
 * Name and version of this package, read once from the nearest package.json above this file
 * (src/, dist/ and compiled test trees all sit below it), so the Version RPC, the user agent and
 * --version agree.
 */
import { existsSync, readFileSync } from 'node:fs';

interface PackageJson {
  name: string;
  version: string;
}

function findPackageJson(): URL {
  let dir = new URL('./', import.meta.url);
  for (let i = 0; i < 5; i++) {
    const candidate = new URL('package.json', dir);
    if (existsSync(candidate)) return candidate;
    dir = new URL('../', dir);
  }
  throw new Error('package.json not found above ' + import.meta.url);
}

const pkg = JSON.parse(readFileSync(findPackageJson(), 'utf8')) as PackageJson;

/** Our runtime name, as the Version RPC reports it. */
export const NAME: string = pkg.name;
/** Semver of this build. */
export const VERSION: string = pkg.version;
/** The gRPC API version the driver speaks. */
export const API_VERSION = 'v1alpha1';

/** User agent app id: `<name>-<version>`, the EKS add-on version replacing ours when given (CONTRACT.md §8). */
export function appId(eksAddonVersion?: string): string {
  return `${NAME}-${eksAddonVersion !== undefined && eksAddonVersion !== '' ? eksAddonVersion : VERSION}`;
}

/**
 * @module version
 * Name and version of this package, read once from package.json (dist/ and src/ both sit one level
 * below it), so the Version RPC, the user agent and --version agree.
 */
import { readFileSync } from 'node:fs';

interface PackageJson {
  name: string;
  version: string;
}

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as PackageJson;

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

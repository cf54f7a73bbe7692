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

/** User agent app id: `<name>-<version>`, the EKS add-on version replacing ours when given (docs/behaviour.md,
 * "Flags"). */
export function appId(eksAddonVersion?: string): string {
  return `${NAME}-${eksAddonVersion !== undefined && eksAddonVersion !== '' ? eksAddonVersion : VERSION}`;
}

/**
 * The Node.js major this provider ships on (the image's base, the `node` dev dependency that npm
 * scripts run on) and is tested with. A test keeps it equal to both.
 */
export const RUNTIME_NODE_MAJOR = 24;

/**
 * Why the server should not start on this Node (`process.version` form, e.g. `v20.20.2`), or
 * undefined when it is new enough. Installing works on Node 20 (npm ci brings Node 24 for the
 * scripts); a machine's older Node running `node dist/main.js` by hand is what this catches.
 */
export function nodeVersionProblem(version: string): string | undefined {
  const major = Number(/^v?(\d+)\./.exec(version)?.[1]);
  if (Number.isInteger(major) && major >= RUNTIME_NODE_MAJOR) return undefined;
  return (
    `Node ${version} is older than Node ${RUNTIME_NODE_MAJOR}, which this provider ships on (its image) and is ` +
    `tested with. ` +
    `Run it with the project's own Node: \`npm start -- [flags]\` or \`node_modules/.bin/node dist/main.js ` +
    `[flags]\` in a checkout, or the image.`
  );
}

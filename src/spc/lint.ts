/**
 * @module spc/lint
 * Warnings for the offline `check` command: things that load but cost money, surprise users, or
 * would behave differently under ASCP. Never errors: parseAttributes/parseObjects own those.
 */
import type { ConfigProblem } from '../errors.js';
import { ATTR } from './attributes.js';
import type { MountAttributes, SecretDescriptor } from './types.js';

const OPEN_MODE_MASK = ~0o644 & 0o7777;

function warn(message: string, path: string, index?: number): ConfigProblem {
  return index === undefined
    ? { message: `${path}: ${message}`, path, severity: 'warning' }
    : { message: `${path}: ${message}`, path, index, severity: 'warning' };
}

/**
 * Warnings about a class that parsed. `rawParameters` (the attribute map as sent) lets it see values
 * the parser normalised away, such as an unknown `preferredAddressType`.
 */
export function lintObjects(
  descriptors: readonly SecretDescriptor[],
  attrs: MountAttributes,
  rawParameters: Readonly<Record<string, string>> = {},
): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  // No warning for a class without `region`: most real classes set none, and the provider finds the
  // region without cost per mount (its own node's label, looked up once, with the chart's NODE_NAME).
  const pat = rawParameters[ATTR.preferredAddressType];
  if (pat !== undefined && pat !== '' && !['ipv4', 'ipv6', 'auto'].includes(pat.toLowerCase())) {
    out.push(
      warn(
        `unknown value ${JSON.stringify(pat)} is treated as auto (use ipv4, ipv6 or auto)`,
        ATTR.preferredAddressType,
      ),
    );
  }
  if (pat !== undefined && pat !== '' && !attrs.usePodIdentity) {
    out.push(warn('only used with usePodIdentity: true; ignored here', ATTR.preferredAddressType));
  }
  if (attrs.assumeRole !== undefined) {
    out.push(
      warn(
        "assumeRoleArn is our extension: ASCP ignores it and would read the secrets with the pod's own role",
        ATTR.assumeRoleArn,
      ),
    );
  }
  for (const d of descriptors) {
    const at = `objects[${d.index}]`;
    if ((d.mode & OPEN_MODE_MASK) !== 0) {
      out.push(
        warn(`file mode 0${d.mode.toString(8)} is more open than 0644 for a secret`, `${at}.filePermission`, d.index),
      );
    }
    if (d.optional)
      out.push(
        warn(
          'optional is our extension: ASCP ignores it and fails the mount when the object is missing',
          `${at}.optional`,
          d.index,
        ),
      );
    if (d.allKeys)
      out.push(
        warn('allKeys is our extension: ASCP ignores it and writes only the whole secret', `${at}.allKeys`, d.index),
      );
    // utf-8 is ASCP's behaviour already: only a decoding encoding differs there.
    if (d.objectEncoding !== undefined && d.objectEncoding !== 'utf-8') {
      out.push(
        warn(
          `objectEncoding is our extension: ASCP ignores it and mounts the ${d.objectEncoding} text as stored, not ` +
            `the bytes it encodes`,
          `${at}.objectEncoding`,
          d.index,
        ),
      );
    }
    if (d.fileName.startsWith('..')) {
      out.push(
        warn(
          'a file name starting with ".." is refused by the driver when it writes the files (--driver-writes-secrets)',
          `${at}.objectName`,
          d.index,
        ),
      );
    }
    d.jmesPath.forEach((e, j) => {
      const ep = `${at}.jmesPath[${j}]`;
      if ((e.mode & OPEN_MODE_MASK) !== 0) {
        out.push(
          warn(`file mode 0${e.mode.toString(8)} is more open than 0644 for a secret`, `${ep}.filePermission`, d.index),
        );
      }
      if (e.render === 'json')
        out.push(warn('render: json is our extension: ASCP refuses non-string results', `${ep}.render`, d.index));
      if (e.objectEncoding !== undefined && e.objectEncoding !== 'utf-8') {
        out.push(
          warn(
            `objectEncoding is our extension: ASCP ignores it and writes the ${e.objectEncoding} text of the ` +
              `result, not the bytes it encodes`,
            `${ep}.objectEncoding`,
            d.index,
          ),
        );
      }
      if (e.objectAlias.includes('"')) {
        out.push(
          warn(
            'objectAlias contains double quotes, which become part of the file name (hyphens need no quoting in ' +
              'aliases)',
            `${ep}.objectAlias`,
            d.index,
          ),
        );
      }
      if (e.fileName.startsWith('..')) {
        out.push(
          warn(
            'a file name starting with ".." is refused by the driver when it writes the files ' +
              '(--driver-writes-secrets)',
            `${ep}.objectAlias`,
            d.index,
          ),
        );
      }
    });
  }
  return out;
}

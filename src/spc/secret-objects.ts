/**
 * @module spc/secret-objects
 * The driver's rules for `secretObjects` (docs/behaviour.md, "secretObjects"): it copies mounted files,
 * by relative path, into Kubernetes Secrets, and refuses names and keys Kubernetes refuses. Checked
 * against the files the class names, so `check` says before a pod does which sync will fail.
 */
import type { DeclaredFile } from './types.js';

/** One `secretObjects` entry as written (any field may be missing or of the wrong type). */
export interface SecretObjectSpec {
  secretName: unknown;
  type: unknown;
  labels: unknown;
  annotations: unknown;
  data: unknown;
}

/** A problem at `path` (`spec.secretObjects[0].data[1].key`); `steps` is the same place as manifest keys and indexes.
 * */
export interface SecretObjectsProblem {
  severity: 'error' | 'warning';
  path: string;
  steps: readonly (string | number)[];
  message: string;
}

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const SECRET_KEY = /^[-._a-zA-Z0-9]+$/;

/**
 * The problems of a class's `secretObjects`. `invalid`: the field is there but not a list. `declared`:
 * the files the class names, or undefined when they are not all known (its objects have errors that
 * hide names): then file names are not checked.
 */
export function secretObjectsProblems(
  list: readonly SecretObjectSpec[] | undefined,
  invalid: boolean,
  declared: readonly DeclaredFile[] | undefined,
): SecretObjectsProblem[] {
  const out: SecretObjectsProblem[] = [];
  if (invalid) {
    out.push({
      severity: 'error',
      path: 'spec.secretObjects',
      steps: ['spec', 'secretObjects'],
      message: 'spec.secretObjects must be a list of {secretName, type, data: [{objectName, key}]}',
    });
    return out;
  }
  if (list === undefined) return out;
  const files = new Map<string, DeclaredFile>();
  for (const f of declared ?? []) files.set(f.fileName, f);
  const allKeys = [...new Set((declared ?? []).filter((f) => f.allKeys).map((f) => f.objectName))];
  const secretNames = new Set<string>();
  list.forEach((so, i) => {
    const at = ['spec', 'secretObjects', i] as const;
    const p = `spec.secretObjects[${i}]`;
    const err = (field: string, message: string, steps: readonly (string | number)[] = [...at, field]): void => {
      out.push({ severity: 'error', path: `${p}.${field}`, steps, message });
    };
    const warnAt = (field: string, message: string, steps: readonly (string | number)[]): void => {
      out.push({ severity: 'warning', path: `${p}.${field}`, steps, message });
    };

    if (typeof so.secretName !== 'string' || so.secretName === '')
      err('secretName', 'secretName is required: the name of the Kubernetes Secret the driver creates');
    else if (so.secretName.length > 253 || !DNS_SUBDOMAIN.test(so.secretName)) {
      err(
        'secretName',
        `secretName ${JSON.stringify(so.secretName)} is not a valid Secret name (lowercase letters, digits, '-' and ` +
          `'.', at most 253)`,
      );
    } else if (secretNames.has(so.secretName)) {
      warnAt(
        'secretName',
        `secretName ${JSON.stringify(so.secretName)} appears twice: the driver overwrites one Secret with the other`,
        [...at, 'secretName'],
      );
    } else secretNames.add(so.secretName);
    if (typeof so.type !== 'string' || so.type === '')
      err('type', 'type is required (Opaque for plain key/value pairs)');
    for (const f of ['labels', 'annotations'] as const) {
      const v = so[f];
      if (
        v !== undefined &&
        v !== null &&
        (typeof v !== 'object' || Array.isArray(v) || Object.values(v).some((x) => typeof x !== 'string'))
      ) {
        err(f, `${f} must be a mapping of strings`);
      }
    }
    if (!Array.isArray(so.data) || so.data.length === 0) {
      err('data', 'data is required: a list of {objectName, key}, one per file copied into the Secret');
      return;
    }
    const keys = new Set<string>();
    so.data.forEach((entry: unknown, j) => {
      const e = (entry !== null && typeof entry === 'object' ? entry : {}) as Record<string, unknown>;
      const dp = `data[${j}]`;
      const objectName = e['objectName'];
      const key = e['key'];
      if (typeof key !== 'string' || key === '')
        err(`${dp}.key`, 'key is required: the key of this file in the Secret', [...at, 'data', j, 'key']);
      else if (key.length > 253 || !SECRET_KEY.test(key)) {
        err(`${dp}.key`, `key ${JSON.stringify(key)} is not a valid Secret key (letters, digits, '-', '_' and '.')`, [
          ...at,
          'data',
          j,
          'key',
        ]);
      } else if (so.type === 'kubernetes.io/tls' && key !== 'tls.crt' && key !== 'tls.key') {
        err(
          `${dp}.key`,
          `a kubernetes.io/tls Secret takes only the keys tls.crt and tls.key, got ${JSON.stringify(key)}`,
          [...at, 'data', j, 'key'],
        );
      } else if (keys.has(key)) {
        warnAt(`${dp}.key`, `key ${JSON.stringify(key)} appears twice: the later file wins`, [...at, 'data', j, 'key']);
      } else keys.add(key);
      if (typeof objectName !== 'string' || objectName === '') {
        err(`${dp}.objectName`, 'objectName is required: the mounted file (its objectAlias, or objectName) to copy', [
          ...at,
          'data',
          j,
          'objectName',
        ]);
        return;
      }
      if (declared === undefined) return; // the class's file names are not all known: its errors come first
      const steps = [...at, 'data', j, 'objectName'];
      const file = files.get(objectName);
      if (file?.optional) {
        warnAt(
          `${dp}.objectName`,
          `${JSON.stringify(objectName)} comes from an optional object: while it is absent the driver cannot create ` +
            `the Secret`,
          steps,
        );
      }
      if (file !== undefined) return;
      if (allKeys.length > 0 && !objectName.includes('/')) {
        warnAt(
          `${dp}.objectName`,
          `${JSON.stringify(objectName)} is no file the class names; it can only come from an allKeys object ` +
            `(${allKeys.join(', ')}) if the secret has that key`,
          steps,
        );
        return;
      }
      const byName = (declared ?? []).find((f) => f.objectName === objectName && f.fileName !== objectName);
      const known = [...files.keys()].sort();
      const fix =
        byName !== undefined
          ? ` (the file of ${objectName} is named ${JSON.stringify(byName.fileName)}: use that)`
          : ` (files: ${known.join(', ')})`;
      warnAt(
        `${dp}.objectName`,
        `${JSON.stringify(objectName)} matches no file this class produces: the driver fails the sync with "file ` +
          `matching objectName ${objectName} not found in the pod"${fix}`,
        steps,
      );
    });
  });
  return out;
}

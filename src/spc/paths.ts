/**
 * @module spc/paths
 * File-name rules: `pathTranslation` (docs/behaviour.md, "Objects") and the checks every output path
 * must pass before anything is written or returned to the driver (docs/behaviour.md, "Paths":
 * **better** than ASCP, which checks only `../` in an object's own name).
 */
import { Buffer } from 'node:buffer';

/** Bytes per path segment / per whole path that the driver's writer accepts (docs/behaviour.md, "Paths"). */
export const MAX_SEGMENT_BYTES = 255;
export const MAX_PATH_BYTES = 4096;

/**
 * The file name for an object name or alias.
 * Translation on: every '/' becomes the character (`mypath/TestSecret1`, '_' → `mypath_TestSecret1`).
 * Translation off: leading '/' are stripped (`///a/b` → `a/b`), inner ones kept.
 */
export function translatePath(name: string, pathTranslation: string | false): string {
  if (pathTranslation === false) return name.replace(/^\/+/, '');
  return name.replaceAll('/', pathTranslation);
}

/** Shows a name in a message without letting control characters or huge names through. */
export function quoteName(name: string, max = 80): string {
  const shown = name.length > max ? `${name.slice(0, max)}…` : name;
  return JSON.stringify(shown);
}

/**
 * What is wrong with an output path, or undefined when it is fine. The path must be relative, in
 * clean form, free of `..` segments and NUL, each segment ≤ 255 bytes and the whole ≤ 4096 bytes.
 * `..` cases keep ASCP's text `path can not contain ../` (users' runbooks match it).
 */
export function filePathProblem(path: string): string | undefined {
  if (path === '') return 'file path is empty';
  if (path.includes('\0')) return `file path contains a NUL character: ${quoteName(path)}`;
  if (path.startsWith('/')) return `file path must be relative, not absolute: ${quoteName(path)}`;
  const segments = path.split('/');
  if (segments.includes('..')) return `path can not contain ../: ${quoteName(path)}`;
  if (path === '.') return `file path can not be "." (the mount directory itself)`;
  if (segments.some((s) => s === '' || s === '.')) {
    return `file path is not in clean form (no "./", "//" or trailing "/"): ${quoteName(path)}`;
  }
  const long = segments.find((s) => Buffer.byteLength(s, 'utf8') > MAX_SEGMENT_BYTES);
  if (long !== undefined) {
    return `file path segment is longer than ${MAX_SEGMENT_BYTES} bytes: ${quoteName(long)}`;
  }
  if (Buffer.byteLength(path, 'utf8') > MAX_PATH_BYTES) {
    return `file path is longer than ${MAX_PATH_BYTES} bytes: ${quoteName(path)}`;
  }
  return undefined;
}

/**
 * The driver's extra rule in `--driver-writes-secrets` mode: the first segment must not start with
 * `..` (reserved for its `..data` entries; `..a` refused, `a/..b` fine). ASCP accepts such names
 * (its test P34), so this is only applied when the driver writes.
 */
export function driverWritesPathProblem(path: string): string | undefined {
  const base = filePathProblem(path);
  if (base !== undefined) return base;
  if (path.startsWith('..')) {
    return (
      `file path can not start with ".." when the driver writes the files ` +
      `(--driver-writes-secrets): ${quoteName(path)}`
    );
  }
  return undefined;
}

/** One clash between two outputs of a mount. */
export interface PathConflict {
  /** The path that clashes (the later one in list order). */
  path: string;
  /** Index in the input list of the later output. */
  index: number;
  /** Index of the earlier output it clashes with. */
  otherIndex: number;
  kind: 'duplicate' | 'prefix';
  message: string;
}

/** Every duplicate and file/directory clash (`a` and `a/b`) among `paths`, each reported once. */
export function pathConflicts(paths: readonly string[]): PathConflict[] {
  const first = new Map<string, number>();
  const out: PathConflict[] = [];
  paths.forEach((p, i) => {
    const prev = first.get(p);
    if (prev !== undefined) {
      out.push({
        path: p,
        index: i,
        otherIndex: prev,
        kind: 'duplicate',
        message: `two outputs would be written to the same file ${quoteName(p)}`,
      });
    } else {
      first.set(p, i);
    }
  });
  // Directory prefixes: `a` as a file and `a/b` needing `a` to be a directory.
  const reported = new Set<string>();
  paths.forEach((p, i) => {
    const segs = p.split('/');
    for (let n = 1; n < segs.length; n++) {
      const dir = segs.slice(0, n).join('/');
      const j = first.get(dir);
      if (j === undefined) continue;
      const key = `${dir}\0${p}`;
      if (reported.has(key)) continue;
      reported.add(key);
      out.push({
        path: p,
        index: Math.max(i, j),
        otherIndex: Math.min(i, j),
        kind: 'prefix',
        message: `${quoteName(dir)} is written as a file but ${quoteName(p)} needs it to be a directory`,
      });
    }
  });
  return out;
}

/** Messages for duplicates and file/directory prefix clashes across all outputs of a mount. */
export function findPathConflicts(paths: readonly string[]): string[] {
  return pathConflicts(paths).map((c) => c.message);
}

/**
 * @module bench/page-cache
 * A private copy of the node binary whose pages can be dropped from the page cache before each
 * boxed start, so the box pays for the binary as a container does on a cold start.
 *
 * Why: the kernel charges a page-cache page to the cgroup of the process that first reads it. The
 * bench process runs the same node binary as the provider, so the binary's pages are already cached
 * (and charged elsewhere): a boxed provider would get ~50 MiB of mapped text for free. A container
 * started on a node where its image is not in the page cache (a reboot, an image pulled long ago
 * and evicted) is charged for every page of `node` it touches, against its own memory limit.
 * Dropping uses GNU dd's `iflag=nocache count=0` (posix_fadvise DONTNEED on that one file): nothing
 * else on the machine is evicted, and pages still mapped by a running process stay.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, copyFileSync, fsyncSync, openSync, readdirSync, statfsSync } from 'node:fs';
import path from 'node:path';

export interface ColdBinary {
  /** The copy to run. */
  readonly path: string;
  /** Drops the copy's pages from the page cache; false when it cannot (then starts are warm). */
  drop(): boolean;
}

/** Whether `dir` is on a tmpfs (statfs f_type TMPFS_MAGIC); false when it cannot be told. */
export function isTmpfs(dir: string): boolean {
  try {
    return statfsSync(dir).type === 0x01021994;
  } catch {
    return false;
  }
}

/** Drops the pages of `files` from the page cache (as {@link ColdBinary.drop}); false when any cannot be. */
export function dropFromCache(files: readonly string[]): boolean {
  let all = true;
  for (const f of files) {
    try {
      execFileSync('dd', [`if=${f}`, 'iflag=nocache', 'count=0', 'status=none'], { stdio: 'ignore' });
    } catch {
      all = false;
    }
  }
  return all;
}

/**
 * Node's compile cache for `server`, filled as the image fills it at build time (the repository's
 * scripts/compile-cache.mjs, found beside the server's dist/), so the bench starts the provider as
 * the image does. Returns the cache directory and its files, or why there is none.
 */
export function fillCompileCache(
  node: string,
  server: string,
  dir: string,
): { dir: string; files: string[] } | { why: string } {
  const script = path.resolve(path.dirname(server), '../../scripts/compile-cache.mjs');
  const cache = path.join(dir, 'compile-cache');
  try {
    execFileSync(node, [script, server], {
      env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', NODE_COMPILE_CACHE: cache },
      stdio: 'pipe',
      timeout: 120_000,
    });
  } catch (err) {
    return { why: `${path.basename(script)} failed: ${(err as Error).message.split('\n')[0] ?? ''}` };
  }
  const files: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else files.push(p);
    }
  };
  walk(cache);
  return files.length > 0 ? { dir: cache, files } : { why: 'the compile cache stayed empty' };
}

export function coldCopy(binary: string, dir: string): ColdBinary {
  const copy = path.join(dir, `cold-${path.basename(binary)}`);
  copyFileSync(binary, copy);
  // Dirty pages cannot be dropped: write the copy out first.
  const fd = openSync(copy, 'r+');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  // On tmpfs the page cache is the file itself: nothing can be dropped.
  const onTmpfs = isTmpfs(dir);
  return {
    path: copy,
    drop() {
      return !onTmpfs && dropFromCache([copy]);
    },
  };
}

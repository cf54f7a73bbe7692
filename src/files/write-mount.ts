/**
 * @module files/write-mount
 * Provider-writes mode: puts a mount's files into the pod's target directory (docs/behaviour.md, "Files").
 * Each changed file is written to a temp file beside it and renamed over the final name, so a
 * reader sees the old bytes or the new ones, never a mix; unchanged files are not touched at all
 * (file watchers in the pod stay quiet). All temp files are prepared before any rename, so a
 * failure or a cancelled call changes no final file. Nothing is ever written through a symlink.
 */
import { closeSync, constants, lstatSync, openSync, promises as fsp, readSync, type Stats } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { ProviderError } from '../errors.js';

/** One file of the mount. `path` is relative and was validated by spc/ (it is re-checked here). */
export interface FileToWrite {
  path: string;
  mode: number;
  contents: Uint8Array;
}

/** What a call did, by relative path. */
export interface WriteResult {
  written: string[];
  unchanged: string[];
  removed: string[];
}

export interface WriteMountOptions {
  signal: AbortSignal;
  /** Relative paths to delete if present (an optional object that disappeared, docs/extensions.md). */
  remove?: readonly string[];
}

/**
 * The mode bits a written file gets: `mode & 0o777`. A `filePermission` may carry setuid, setgid
 * or sticky bits ("4755" is a valid one); ASCP's Go chmod dropped them, and so do we: the
 * provider runs as root, so honouring setuid would let a SecretProviderClass plant a setuid-root
 * file with attacker-chosen bytes in a pod. Driver-writes mode sends the raw number (not ours).
 */
export const MODE_MASK = 0o777;
/** Mode of directories created for nested paths (docs/behaviour.md, "Files"). */
export const DIR_MODE = 0o755;

const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_RDONLY, O_DIRECTORY, O_NONBLOCK } = constants;
/** Reads never follow a final symlink, and never block on a FIFO planted in the mount. */
const READ_FLAGS = O_RDONLY | O_NOFOLLOW | O_NONBLOCK;
/** Linux NAME_MAX. */
const NAME_MAX = 255;

function abortError(signal: AbortSignal, when: string): ProviderError {
  const reason: unknown = signal.reason;
  if (reason instanceof ProviderError) return reason;
  const timedOut = reason instanceof Error && reason.name === 'TimeoutError';
  return new ProviderError(
    timedOut ? 'DEADLINE_EXCEEDED' : 'CANCELLED',
    `mount ${timedOut ? 'deadline exceeded' : 'cancelled'} ${when}; no file was changed`,
    {
      reason: timedOut ? 'Deadline' : 'Cancelled',
      cause: reason,
    },
  );
}

function errno(err: unknown): string {
  return (err as NodeJS.ErrnoException | undefined)?.code ?? 'error';
}

/** An OS failure on one file: names the relative path and the error code, never the contents. */
function osError(rel: string, action: string, err: unknown): ProviderError {
  return new ProviderError('INTERNAL', `cannot ${action} ${JSON.stringify(rel)} in the mount: ${errno(err)}`, {
    reason: 'WriteFailed',
    cause: err,
  });
}

function refused(rel: string, why: string): ProviderError {
  return new ProviderError('FAILED_PRECONDITION', `cannot write ${JSON.stringify(rel)} in the mount: ${why}`, {
    reason: 'WriteRefused',
  });
}

/**
 * `a/b/c` → `['a','b','c']`. Containment re-check of what spc/ already validated: relative, no
 * empty, `.` or `..` segment, no NUL. A violation is a bug upstream, hence INTERNAL.
 */
function segments(rel: string): string[] {
  const parts = rel.split('/');
  if (rel === '' || rel.includes('\0') || parts.some((p) => p === '' || p === '.' || p === '..')) {
    throw new ProviderError(
      'INTERNAL',
      `refusing file path ${JSON.stringify(rel)}: not a clean relative path inside the mount`,
      { reason: 'BadPath' },
    );
  }
  return parts;
}

async function lstatOrUndefined(p: string): Promise<Stats | undefined> {
  try {
    return await fsp.lstat(p);
  } catch (err) {
    if (errno(err) === 'ENOENT') return undefined;
    throw err;
  }
}

/** Checks the target directory and returns its real path (the base of every containment check). */
async function checkTarget(targetDir: string): Promise<string> {
  let st: Stats;
  try {
    st = await fsp.stat(targetDir);
  } catch (err) {
    throw new ProviderError('FAILED_PRECONDITION', `target path ${targetDir} cannot be used: ${errno(err)}`, {
      reason: 'TargetPath',
      cause: err,
    });
  }
  if (!st.isDirectory())
    throw new ProviderError('FAILED_PRECONDITION', `target path ${targetDir} is not a directory`, {
      reason: 'TargetPath',
    });
  return fsp.realpath(targetDir);
}

/**
 * Creates the missing directories of `dirs` under `root`, one segment at a time, refusing any
 * existing component that is a symlink or not a directory (lstat: never followed out of the mount).
 */
async function ensureDirs(root: string, dirs: readonly string[], rel: string, created: string[]): Promise<string> {
  let cur = root;
  for (let i = 0; i < dirs.length; i++) {
    cur = path.join(cur, dirs[i] as string);
    const shown = dirs.slice(0, i + 1).join('/');
    let st = await lstatOrUndefined(cur).catch((err: unknown) => {
      throw osError(rel, `inspect ${JSON.stringify(shown)} for`, err);
    });
    if (st === undefined) {
      try {
        await fsp.mkdir(cur, { mode: DIR_MODE });
        created.push(cur);
      } catch (err) {
        if (errno(err) !== 'EEXIST') throw osError(rel, `create directory ${JSON.stringify(shown)} for`, err);
      }
      st = await fsp.lstat(cur).catch((err: unknown) => {
        throw osError(rel, `inspect ${JSON.stringify(shown)} for`, err);
      });
      // mkdir's mode is filtered by the umask: set it exactly.
      if (st.isDirectory() && created[created.length - 1] === cur) {
        await fsp.chmod(cur, DIR_MODE).catch((err: unknown) => {
          throw osError(rel, `chmod directory ${JSON.stringify(shown)} for`, err);
        });
      }
    }
    if (st.isSymbolicLink()) throw refused(rel, `${JSON.stringify(shown)} is a symbolic link (not followed)`);
    if (!st.isDirectory()) throw refused(rel, `${JSON.stringify(shown)} exists and is not a directory`);
  }
  return cur;
}

/** True when `final` is a regular file with exactly these bytes and mode. */
/**
 * Same bytes and mode already there? Synchronous on purpose: this runs for every file of every
 * rotation poll (the hot path), on the kubelet's tmpfs volume, for files of at most a few KiB
 * (Secrets Manager caps values at 64 KiB); four thread-pool round trips per file cost more CPU
 * than the reads themselves (measured by `npm run bench`: 7.8 ms → well under 1 ms for 10 files).
 */
async function isUnchanged(final: string, rel: string, mode: number, contents: Uint8Array): Promise<boolean> {
  let st: Stats | undefined;
  try {
    st = lstatSync(final, { throwIfNoEntry: false });
  } catch (err) {
    throw osError(rel, 'inspect', err);
  }
  if (st === undefined || st.isSymbolicLink()) return false; // a symlink is replaced by the rename
  if (st.isDirectory()) throw refused(rel, 'a directory is in the way');
  if (!st.isFile() || (st.mode & 0o7777) !== mode || st.size !== contents.byteLength) return false;
  let fd: number | undefined;
  try {
    fd = openSync(final, READ_FLAGS);
    const current = Buffer.allocUnsafe(contents.byteLength + 1);
    let read = 0;
    for (;;) {
      const n = readSync(fd, current, read, current.length - read, null);
      if (n === 0) break;
      read += n;
      if (read === current.length) break;
    }
    return read === contents.byteLength && Buffer.compare(current.subarray(0, read), contents) === 0;
  } catch (err) {
    if (errno(err) === 'ENOENT' || errno(err) === 'ELOOP') return false;
    throw osError(rel, 'read', err);
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

function tempName(base: string): string {
  const suffix = `.tmp-${randomBytes(8).toString('hex')}`;
  const name = `.${base}${suffix}`;
  return Buffer.byteLength(name) <= NAME_MAX ? name : suffix;
}

/** Phase 1 for one file: a fully written, fsynced temp file beside the final name. */
async function writeTemp(dir: string, base: string, rel: string, mode: number, contents: Uint8Array): Promise<string> {
  for (let attempt = 0; ; attempt++) {
    const temp = path.join(dir, tempName(base));
    let handle: fsp.FileHandle;
    try {
      handle = await fsp.open(temp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
    } catch (err) {
      if (errno(err) === 'EEXIST' && attempt < 3) continue;
      throw osError(rel, 'create a temp file for', err);
    }
    try {
      // fchmod: exact, whatever the process umask.
      await handle.chmod(mode);
      await handle.writeFile(contents);
      await handle.sync();
      await handle.close();
      return temp;
    } catch (err) {
      await handle.close().catch(() => undefined);
      await fsp.unlink(temp).catch(() => undefined);
      throw osError(rel, 'write', err);
    }
  }
}

interface Prepared {
  rel: string;
  dir: string;
  /** `dir` relative to the target, '' for the target itself. */
  relDir: string;
  final: string;
  temp: string;
}

async function rollback(prepared: readonly Prepared[], created: readonly string[]): Promise<void> {
  await Promise.all(prepared.map((p) => fsp.unlink(p.temp).catch(() => undefined)));
  for (const dir of [...created].reverse()) await fsp.rmdir(dir).catch(() => undefined);
}

/** Best effort: some filesystems refuse fsync on a directory; the renames are done either way. */
async function syncDir(dir: string): Promise<void> {
  let handle: fsp.FileHandle | undefined;
  try {
    handle = await fsp.open(dir, O_RDONLY | O_DIRECTORY);
    await handle.sync();
  } catch {
    // EINVAL on some filesystems; durability of a tmpfs mount is moot anyway.
  } finally {
    await handle?.close().catch(() => undefined);
  }
}

/**
 * Writes `files` into `targetDir`, all or nothing as far as a filesystem allows, removes `remove`
 * paths, and sets the target directory's mtime to now (driver v1.6 times its next call from it,
 * docs/behaviour.md, "Rotation"). Cancellation is honoured until the first rename; after that the call
 * finishes.
 */
export async function writeMount(
  targetDir: string,
  files: readonly FileToWrite[],
  opts: WriteMountOptions,
): Promise<WriteResult> {
  const { signal } = opts;
  if (signal.aborted) throw abortError(signal, 'before writing');
  const root = await checkTarget(targetDir);
  const seen = new Set<string>();
  for (const f of files) {
    segments(f.path);
    if (seen.has(f.path))
      throw new ProviderError('INTERNAL', `file path ${JSON.stringify(f.path)} appears twice in one mount`, {
        reason: 'BadPath',
      });
    seen.add(f.path);
  }
  const removeList = (opts.remove ?? []).filter((r) => !seen.has(r));
  removeList.forEach((r) => segments(r));

  const created: string[] = [];
  const prepared: Prepared[] = [];
  const unchanged: string[] = [];
  // Phase 1: every temp file, no final file touched.
  try {
    for (const f of files) {
      if (signal.aborted) throw abortError(signal, 'while preparing files');
      const parts = segments(f.path);
      const base = parts[parts.length - 1] as string;
      const dirs = parts.slice(0, -1);
      const dir = await ensureDirs(root, dirs, f.path, created);
      const final = path.join(dir, base);
      const mode = f.mode & MODE_MASK;
      if (await isUnchanged(final, f.path, mode, f.contents)) {
        unchanged.push(f.path);
        continue;
      }
      const temp = await writeTemp(dir, base, f.path, mode, f.contents);
      prepared.push({ rel: f.path, dir, relDir: dirs.join('/'), final, temp });
    }
    // Containment re-check: no directory we write into was swapped for a symlink meanwhile.
    const dirs = new Map(prepared.map((p) => [p.dir, p]));
    for (const [dir, p] of dirs) {
      const real = await fsp.realpath(dir).catch((err: unknown) => {
        throw osError(p.rel, 'resolve the directory of', err);
      });
      if (real !== path.join(root, p.relDir)) throw refused(p.rel, 'its directory moved outside the mount');
    }
    if (signal.aborted) throw abortError(signal, 'before renaming');
  } catch (err) {
    await rollback(prepared, created);
    throw err;
  }

  // Phase 2: rename everything; once started, finish (a half-applied mount is worse than a late one).
  const written: string[] = [];
  let firstError: ProviderError | undefined;
  for (const p of prepared) {
    try {
      await fsp.rename(p.temp, p.final);
      written.push(p.rel);
    } catch (err) {
      await fsp.unlink(p.temp).catch(() => undefined);
      firstError ??= osError(p.rel, 'rename into place', err);
    }
  }
  const toSync = new Set(prepared.map((p) => p.dir));
  for (const dir of created) toSync.add(path.dirname(dir));
  await Promise.all([...toSync].map(syncDir));
  if (firstError !== undefined) throw firstError;

  const removed = await removeFiles(root, removeList);
  await touchMount(targetDir);
  return { written, unchanged, removed };
}

/** Deletes regular files or symlinks at `rels` inside `root`; anything else, or absent, is left alone. */
async function removeFiles(root: string, rels: readonly string[]): Promise<string[]> {
  const removed: string[] = [];
  for (const rel of rels) {
    const full = await resolveInside(root, rel);
    if (full === undefined) continue;
    const st = await lstatOrUndefined(full).catch((err: unknown) => {
      throw osError(rel, 'inspect', err);
    });
    if (st === undefined || !(st.isFile() || st.isSymbolicLink())) continue;
    try {
      await fsp.unlink(full);
      removed.push(rel);
    } catch (err) {
      if (errno(err) !== 'ENOENT') throw osError(rel, 'remove', err);
    }
  }
  return removed;
}

/**
 * The absolute path of `rel` under `root` when every directory on the way is a real directory
 * (lstat, no symlink followed); undefined when one is absent or is not a plain directory.
 */
async function resolveInside(root: string, rel: string): Promise<string | undefined> {
  const parts = segments(rel);
  let cur = root;
  for (const dir of parts.slice(0, -1)) {
    cur = path.join(cur, dir);
    const st = await lstatOrUndefined(cur).catch(() => undefined);
    if (st === undefined || !st.isDirectory()) return undefined;
  }
  return path.join(cur, parts[parts.length - 1] as string);
}

/**
 * Reads a file of the mount (rotation re-reads files instead of refetching, docs/behaviour.md, "Rotation").
 * Symlinks are not followed, anywhere on the path: undefined when absent or not a regular
 * file reached through plain directories.
 */
export async function readMountedFile(targetDir: string, rel: string): Promise<Buffer | undefined> {
  const full = await resolveInside(targetDir, rel);
  if (full === undefined) return undefined;
  let handle: fsp.FileHandle | undefined;
  try {
    handle = await fsp.open(full, READ_FLAGS);
    const st = await handle.stat();
    if (!st.isFile()) return undefined;
    return await handle.readFile();
  } catch (err) {
    const code = errno(err);
    if (code === 'ENOENT' || code === 'ELOOP' || code === 'ENOTDIR') return undefined;
    throw osError(rel, 'read', err);
  } finally {
    await handle?.close().catch(() => undefined);
  }
}

/** Sets the target directory's atime and mtime to now (after every successful mount, docs/behaviour.md, "Files"). */
export async function touchMount(targetDir: string): Promise<void> {
  const now = new Date();
  try {
    await fsp.utimes(targetDir, now, now);
  } catch (err) {
    throw new ProviderError('INTERNAL', `cannot set the modification time of target path ${targetDir}: ${errno(err)}`, {
      reason: 'WriteFailed',
      cause: err,
    });
  }
}

/**
 * Shared checks of the hardening suite (test/hardening/): gRPC outcomes, containment of a mount (nothing
 * outside the target), unhandled rejections, file descriptors, and secret markers in any text.
 */
import { lstat, readdir, readlink } from 'node:fs/promises';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { status } from '@grpc/grpc-js';

/** What one Mount call ended in: success, or a gRPC status with its message. */
export type Outcome = { ok: true } | { ok: false; code: number; details: string };

/** Status names by number, for failure messages. */
export const CODE_NAME: Record<number, string> = Object.fromEntries(
  Object.entries(status)
    .filter(([, v]) => typeof v === 'number')
    .map(([k, v]) => [v, k]),
);

/** The generic text server/ answers for an exception it did not expect (a bug, see toStatus). */
export const UNEXPECTED = /internal error in the provider \(error id/;

/** Runs a call and classifies its end; a rejection that is not a grpc-js status error is rethrown. */
export async function outcomeOf(call: Promise<unknown>): Promise<Outcome> {
  try {
    await call;
    return { ok: true };
  } catch (err) {
    const e = err as { code?: unknown; details?: unknown };
    if (typeof e?.code !== 'number' || typeof e.details !== 'string') throw err;
    return { ok: false, code: e.code, details: e.details };
  }
}

/**
 * A clear gRPC error: a status the provider chose on purpose (never UNKNOWN, never OK-with-error),
 * with a non-empty message that is not the generic "internal error" of an unexpected exception.
 */
export function clearError(o: Outcome): string | undefined {
  if (o.ok) return undefined;
  if (o.code === status.UNKNOWN) return `UNKNOWN status (an exception escaped the handler): ${o.details}`;
  if (o.code === status.OK) return 'error with status OK';
  if (o.details.trim() === '') return `${CODE_NAME[o.code]} with an empty message`;
  if (UNEXPECTED.test(o.details)) return `unexpected exception inside the mount: ${o.details}`;
  // grpc-js's own text when the answer never reached the client (e.g. trailers over HTTP/2 limits).
  if (/RST_STREAM|Protocol error|Call ended without gRPC status/.test(o.details))
    return `the provider's answer did not reach the client: ${o.details}`;
  return undefined;
}

export interface TreeEntry {
  /** Relative to the root. */
  rel: string;
  kind: 'file' | 'dir' | 'symlink' | 'other';
  /** Symlink target, as stored. */
  link?: string;
}

/** Every entry under `root` (lstat: symlinks are listed, never followed). */
export async function walk(root: string): Promise<TreeEntry[]> {
  const out: TreeEntry[] = [];
  const visit = async (dir: string): Promise<void> => {
    for (const name of await readdir(dir)) {
      const full = path.join(dir, name);
      const rel = path.relative(root, full);
      const st = await lstat(full);
      if (st.isSymbolicLink()) out.push({ rel, kind: 'symlink', link: await readlink(full) });
      else if (st.isDirectory()) {
        out.push({ rel, kind: 'dir' });
        await visit(full);
      } else out.push({ rel, kind: st.isFile() ? 'file' : 'other' });
    }
  };
  await visit(root);
  return out;
}

/**
 * Containment of one mount whose target is `<parent>/mount` in a fresh parent: the parent holds
 * only `mount` (and whatever the test planted, `planted`), the mount only regular files and
 * directories, and no temp file is left behind. Returns the problems found.
 */
export async function containmentProblems(target: string, planted: readonly string[] = []): Promise<string[]> {
  const problems: string[] = [];
  const parent = path.dirname(target);
  const siblings = (await readdir(parent)).filter((n) => n !== path.basename(target) && !planted.includes(n));
  if (siblings.length > 0) problems.push(`written outside the mount, beside it: ${JSON.stringify(siblings)}`);
  for (const e of await walk(target)) {
    if (planted.includes(e.rel)) continue;
    if (e.kind === 'symlink' || e.kind === 'other') problems.push(`${e.kind} in the mount: ${JSON.stringify(e.rel)}`);
    if (/(^|\/)\.[^/]*\.tmp-[0-9a-f]{16}$|(^|\/)\.tmp-[0-9a-f]{16}$/.test(e.rel))
      problems.push(`temp file left behind: ${JSON.stringify(e.rel)}`);
  }
  return problems;
}

/** Collects unhandled rejections and uncaught exceptions of this process until `stop()`. */
export function watchProcess(): { seen: string[]; stop(): void } {
  const seen: string[] = [];
  const onRejection = (reason: unknown): void => {
    seen.push(`unhandledRejection: ${reason instanceof Error ? (reason.stack ?? reason.message) : String(reason)}`);
  };
  const onException = (err: Error): void => {
    seen.push(`uncaughtException: ${err.stack ?? err.message}`);
  };
  process.on('unhandledRejection', onRejection);
  process.on('uncaughtExceptionMonitor', onException);
  return {
    seen,
    stop() {
      process.off('unhandledRejection', onRejection);
      process.off('uncaughtExceptionMonitor', onException);
    },
  };
}

/** Open file descriptors of a process (`/proc/<pid>/fd`), this one by default. */
export function fdCount(pid: number | 'self' = 'self'): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** Open sockets of a process (fds pointing at `socket:[…]`). */
export async function socketCount(pid: number | 'self' = 'self'): Promise<number> {
  const dir = `/proc/${pid}/fd`;
  let n = 0;
  for (const fd of readdirSync(dir)) {
    const link = await readlink(path.join(dir, fd)).catch(() => '');
    if (link.startsWith('socket:')) n++;
  }
  return n;
}

/** Resident set size of a process in bytes, from `/proc/<pid>/status` (VmRSS). */
export async function rssOf(pid: number): Promise<number> {
  const { readFile } = await import('node:fs/promises');
  const text = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = /VmRSS:\s+(\d+) kB/.exec(text)?.[1];
  return kb === undefined ? 0 : Number(kb) * 1024;
}

/**
 * Where a marker (secret value, token, or a recognisable part of one) appears in `texts`: one line
 * per hit naming which text and which marker (the marker is named by index, never printed).
 */
export function leaks(texts: Record<string, readonly string[]>, markers: readonly string[]): string[] {
  const hits: string[] = [];
  for (const [where, list] of Object.entries(texts)) {
    list.forEach((t, i) => {
      markers.forEach((m, j) => {
        if (m !== '' && t.includes(m)) hits.push(`${where}[${i}] contains marker #${j}`);
      });
    });
  }
  return hits;
}

/** The parts of a JWT that identify it: the whole token and its signature. */
export function tokenMarkers(token: string): string[] {
  const sig = token.split('.')[2] ?? '';
  return [token, sig].filter((s) => s.length >= 16);
}

/** Calls `fn` for each of `items` with at most `limit` running at once; results in order. */
export async function pool<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, i: number) => Promise<R>,
): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

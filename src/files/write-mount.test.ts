import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { readMountedFile, touchMount, writeMount, type FileToWrite } from './write-mount.js';
import { failure } from '../../test/helpers/failure.js';

let root: string;
let target: string;
let outside: string;
beforeEach(() => {
  root = mkdtempSync(path.join(tmpdir(), 'files-'));
  target = path.join(root, 'target');
  outside = path.join(root, 'outside');
  mkdirSync(target);
  mkdirSync(outside);
});
afterEach(() => {
  rmSync(root, { recursive: true, force: true });
});

const mkfifoSync = (p: string) => execFileSync('mkfifo', [p]);
const signal = () => new AbortController().signal;
const file = (p: string, contents: string, mode = 0o644): FileToWrite => ({
  path: p,
  mode,
  contents: Buffer.from(contents),
});
const modeOf = (p: string) => lstatSync(path.join(target, p)).mode & 0o7777;
const read = (p: string) => readFileSync(path.join(target, p), 'utf8');

/** Every entry under `dir`, recursively, as relative paths (temp files included). */
function tree(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string, prefix: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const rel = prefix === '' ? e.name : `${prefix}/${e.name}`;
      out.push(e.isDirectory() ? `${rel}/` : rel);
      if (e.isDirectory()) walk(path.join(d, e.name), rel);
    }
  };
  walk(dir, '');
  return out.sort();
}

/** A signal that reads as aborted once `when()` holds (to abort at a chosen point of phase 1). */
function abortWhen(when: () => boolean, reason?: unknown): AbortSignal {
  const ac = new AbortController();
  return new Proxy(ac.signal, {
    get(t, prop) {
      if (prop === 'aborted') return when();
      if (prop === 'reason') return reason;
      const v = Reflect.get(t, prop, t) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(t) : v;
    },
  });
}

describe('writeMount', () => {
  it('writes new files with exact modes regardless of the umask', async () => {
    const old = process.umask(0o077);
    try {
      const res = await writeMount(
        target,
        [file('a', 'A', 0o600), file('b', 'B', 0o777), file('c', 'C', 0o400), file('d', '', 0o644)],
        { signal: signal() },
      );
      expect(res).toEqual({ written: ['a', 'b', 'c', 'd'], unchanged: [], removed: [] });
    } finally {
      process.umask(old);
    }
    expect([modeOf('a'), modeOf('b'), modeOf('c'), modeOf('d')]).toEqual([0o600, 0o777, 0o400, 0o644]);
    expect([read('a'), read('b'), read('c'), read('d')]).toEqual(['A', 'B', 'C', '']);
    expect(tree(target)).toEqual(['a', 'b', 'c', 'd']);
  });

  it('drops setuid, setgid and sticky bits (as ASCP)', async () => {
    await writeMount(target, [file('s', 'x', 0o4755), file('t', 'y', 0o3644)], { signal: signal() });
    expect([modeOf('s'), modeOf('t')]).toEqual([0o755, 0o644]);
    // And the stripped mode counts as unchanged next time.
    expect((await writeMount(target, [file('s', 'x', 0o4755)], { signal: signal() })).unchanged).toEqual(['s']);
  });

  it('leaves unchanged files alone: same inode, same mtime', async () => {
    await writeMount(target, [file('a', 'same', 0o600), file('b', 'old')], { signal: signal() });
    const past = new Date('2020-01-01T00:00:00Z');
    utimesSync(path.join(target, 'a'), past, past);
    const before = statSync(path.join(target, 'a'));
    const res = await writeMount(target, [file('a', 'same', 0o600), file('b', 'new')], { signal: signal() });
    expect(res).toEqual({ written: ['b'], unchanged: ['a'], removed: [] });
    const after = statSync(path.join(target, 'a'));
    expect(after.ino).toBe(before.ino);
    expect(after.mtimeMs).toBe(past.getTime());
  });

  it.each([
    {
      name: 'changed content',
      first: file('a', 'v1', 0o600),
      second: file('a', 'v2', 0o600),
      mode: 0o600,
      contents: 'v2',
    },
    {
      name: 'same length, changed content',
      first: file('a', 'abc'),
      second: file('a', 'abd'),
      mode: 0o644,
      contents: 'abd',
    },
    {
      name: 'mode-only change',
      first: file('a', 'v', 0o600),
      second: file('a', 'v', 0o640),
      mode: 0o640,
      contents: 'v',
    },
  ])('$name → replaced atomically (new inode)', async ({ first, second, mode, contents }) => {
    await writeMount(target, [first], { signal: signal() });
    const ino = statSync(path.join(target, 'a')).ino;
    expect((await writeMount(target, [second], { signal: signal() })).written).toEqual(['a']);
    expect(statSync(path.join(target, 'a')).ino).not.toBe(ino);
    expect(modeOf('a')).toBe(mode);
    expect(read('a')).toBe(contents);
    expect(tree(target)).toEqual(['a']);
  });

  it('creates nested directories 0755 (whatever the umask) and rolls them back on failure', async () => {
    const old = process.umask(0o077);
    try {
      await writeMount(target, [file('x/y/z', 'deep', 0o600), file('x/w', 'w')], { signal: signal() });
    } finally {
      process.umask(old);
    }
    expect(tree(target)).toEqual(['x/', 'x/w', 'x/y/', 'x/y/z']);
    expect([modeOf('x'), modeOf('x/y'), modeOf('x/y/z')]).toEqual([0o755, 0o755, 0o600]);

    // A later file fails: the directories created for the earlier one are removed again.
    mkdirSync(path.join(target, 'blocker'));
    const err = await failure(writeMount(target, [file('new/dir/f', 'f'), file('blocker', 'b')], { signal: signal() }));
    expect(err.code).toBe('FAILED_PRECONDITION');
    expect(tree(target)).toEqual(['blocker/', 'x/', 'x/w', 'x/y/', 'x/y/z']);
  });

  it('a symlink planted at a file path is replaced, never written through', async () => {
    writeFileSync(path.join(outside, 'victim'), 'untouched');
    symlinkSync(path.join(outside, 'victim'), path.join(target, 'a'));
    await writeMount(target, [file('a', 'secret', 0o600)], { signal: signal() });
    expect(readFileSync(path.join(outside, 'victim'), 'utf8')).toBe('untouched');
    expect(lstatSync(path.join(target, 'a')).isFile()).toBe(true);
    expect(read('a')).toBe('secret');
  });

  it.each([
    {
      name: 'a symlink to a directory outside',
      plant: () => symlinkSync(outside, path.join(target, 'dir')),
      why: /"dir" is a symbolic link/,
    },
    {
      name: 'a dangling symlink',
      plant: () => symlinkSync(path.join(outside, 'nope'), path.join(target, 'dir')),
      why: /"dir" is a symbolic link/,
    },
    {
      name: 'a regular file',
      plant: () => writeFileSync(path.join(target, 'dir'), 'x'),
      why: /"dir" exists and is not a directory/,
    },
  ])('a directory component that is $name → refused, nothing written anywhere', async ({ plant, why }) => {
    plant();
    const before = tree(target);
    const err = await failure(writeMount(target, [file('ok', 'ok'), file('dir/leak', 'secret')], { signal: signal() }));
    expect(err.code).toBe('FAILED_PRECONDITION');
    expect(err.message).toMatch(why);
    expect(err.message).toContain('"dir/leak"');
    expect(err.message).not.toContain('secret"');
    expect(tree(outside)).toEqual([]);
    expect(tree(target)).toEqual(before);
  });

  it('a symlink deeper in the path is refused too', async () => {
    mkdirSync(path.join(target, 'a'));
    symlinkSync(outside, path.join(target, 'a', 'b'));
    const err = await failure(writeMount(target, [file('a/b/c', 'x')], { signal: signal() }));
    expect(err.message).toMatch(/"a\/b" is a symbolic link/);
    expect(tree(outside)).toEqual([]);
  });

  it('a failure mid-phase-1 (a directory where a file should go) changes nothing and leaves no temp file', async () => {
    await writeMount(target, [file('a', 'v1'), file('b', 'v1')], { signal: signal() });
    mkdirSync(path.join(target, 'c'));
    const err = await failure(
      writeMount(target, [file('a', 'v2'), file('b', 'v2'), file('c', 'v2')], { signal: signal() }),
    );
    expect(err.code).toBe('FAILED_PRECONDITION');
    expect(err.message).toBe('cannot write "c" in the mount: a directory is in the way');
    expect([read('a'), read('b')]).toEqual(['v1', 'v1']);
    expect(tree(target)).toEqual(['a', 'b', 'c/']);
  });

  // Root ignores directory permissions.
  it.skipIf(process.getuid?.() === 0)('an OS error names the file and the error code', async () => {
    mkdirSync(path.join(target, 'ro'));
    writeFileSync(path.join(target, 'ro', 'f'), 'old');
    chmodSync(path.join(target, 'ro'), 0o555);
    try {
      const err = await failure(writeMount(target, [file('ro/f', 'new')], { signal: signal() }));
      expect(err.code).toBe('INTERNAL');
      expect(err.message).toBe('cannot create a temp file for "ro/f" in the mount: EACCES');
    } finally {
      chmodSync(path.join(target, 'ro'), 0o755);
    }
  });

  it('a name over 255 bytes fails in phase 1 with its OS error code', async () => {
    await writeMount(target, [file('a', 'v1')], { signal: signal() });
    const err = await failure(writeMount(target, [file('a', 'v2'), file('n'.repeat(256), 'x')], { signal: signal() }));
    expect(err.code).toBe('INTERNAL');
    expect(err.message).toBe(`cannot inspect "${'n'.repeat(256)}" in the mount: ENAMETOOLONG`);
    expect(read('a')).toBe('v1');
    expect(tree(target)).toEqual(['a']);
  });

  it('an already aborted signal writes nothing', async () => {
    const ac = new AbortController();
    ac.abort();
    const err = await failure(writeMount(target, [file('a', 'x')], { signal: ac.signal }));
    expect(err.code).toBe('CANCELLED');
    expect(tree(target)).toEqual([]);
  });

  it('a deadline during phase 1 → DEADLINE_EXCEEDED, nothing changed, no temp file left', async () => {
    await writeMount(target, [file('a', 'v1'), file('b', 'v1')], { signal: signal() });
    // Abort as soon as the first temp file exists.
    const sig = abortWhen(
      () => readdirSync(target).some((n) => n.includes('.tmp-')),
      new DOMException('deadline', 'TimeoutError'),
    );
    const err = await failure(
      writeMount(target, [file('a', 'v2'), file('new/n', 'v2'), file('b', 'v2')], { signal: sig }),
    );
    expect(err.code).toBe('DEADLINE_EXCEEDED');
    expect(err.message).toBe('mount deadline exceeded while preparing files; no file was changed');
    expect([read('a'), read('b')]).toEqual(['v1', 'v1']);
    expect(tree(target)).toEqual(['a', 'b']);
  });

  it('an abort after the last file is prepared still changes nothing', async () => {
    await writeMount(target, [file('a', 'v1')], { signal: signal() });
    let reads = 0;
    // Reads: start, before file 1, before phase 2 → aborted at the third.
    const sig = abortWhen(() => ++reads >= 3);
    const err = await failure(writeMount(target, [file('a', 'v2')], { signal: sig }));
    expect(err.code).toBe('CANCELLED');
    expect(err.message).toContain('before renaming');
    expect(read('a')).toBe('v1');
    expect(tree(target)).toEqual(['a']);
  });

  it('removes listed regular files and symlinks inside the mount, nothing else', async () => {
    await writeMount(target, [file('gone', 'x'), file('d/gone2', 'y'), file('kept', 'z')], { signal: signal() });
    writeFileSync(path.join(outside, 'victim'), 'v');
    symlinkSync(path.join(outside, 'victim'), path.join(target, 'link'));
    mkdirSync(path.join(target, 'adir'));
    symlinkSync(outside, path.join(target, 'out'));
    writeFileSync(path.join(outside, 'f'), 'outside file');
    const res = await writeMount(target, [file('kept', 'z')], {
      signal: signal(),
      remove: ['gone', 'd/gone2', 'link', 'adir', 'out/f', 'never-there', 'kept'],
    });
    expect(res).toEqual({ written: [], unchanged: ['kept'], removed: ['gone', 'd/gone2', 'link'] });
    expect(tree(target)).toEqual(['adir/', 'd/', 'kept', 'out']);
    expect(readFileSync(path.join(outside, 'f'), 'utf8')).toBe('outside file');
    expect(readFileSync(path.join(outside, 'victim'), 'utf8')).toBe('v');
  });

  it('sets the target mtime to now after every successful call, even when nothing changed', async () => {
    await writeMount(target, [file('a', 'x')], { signal: signal() });
    const past = new Date('2020-01-01T00:00:00Z');
    utimesSync(target, past, past);
    const t0 = Date.now();
    const res = await writeMount(target, [file('a', 'x')], { signal: signal() });
    expect(res.unchanged).toEqual(['a']);
    expect(statSync(target).mtimeMs).toBeGreaterThanOrEqual(t0 - 1000);

    utimesSync(target, past, past);
    await writeMount(target, [], { signal: signal() });
    expect(statSync(target).mtimeMs).toBeGreaterThanOrEqual(t0 - 1000);

    utimesSync(target, past, past);
    await touchMount(target);
    expect(statSync(target).mtimeMs).toBeGreaterThanOrEqual(t0 - 1000);
  });

  it.each([
    {
      name: 'a missing target',
      setup: () => path.join(root, 'missing'),
      message: /target path .*missing cannot be used: ENOENT/,
    },
    {
      name: 'a target that is a file',
      setup: () => {
        writeFileSync(path.join(root, 'f'), '');
        return path.join(root, 'f');
      },
      message: /target path .*f is not a directory/,
    },
  ])('refuses $name', async ({ setup, message }) => {
    const err = await failure(writeMount(setup(), [file('a', 'x')], { signal: signal() }));
    expect(err.code).toBe('FAILED_PRECONDITION');
    expect(err.message).toMatch(message);
  });

  it.each(['', '/abs', '../up', 'a/../b', './a', 'a//b', 'a/', '.', '..', 'nul\0x'])(
    'refuses the unclean path %j (containment re-check)',
    async (p) => {
      const err = await failure(writeMount(target, [file(p, 'x')], { signal: signal() }));
      expect(err.code).toBe('INTERNAL');
      expect(tree(target)).toEqual([]);
      expect(tree(root)).toEqual(['outside/', 'target/']);
    },
  );

  it('refuses a path given twice', async () => {
    expect((await failure(writeMount(target, [file('a', '1'), file('a', '2')], { signal: signal() }))).code).toBe(
      'INTERNAL',
    );
  });

  it('a file name of 255 bytes still gets a temp file', async () => {
    const long = 'n'.repeat(255);
    await writeMount(target, [file(long, 'x')], { signal: signal() });
    expect(read(long)).toBe('x');
  });

  it('a concurrent reader never sees a partial file', async () => {
    const size = 256 * 1024;
    const a = Buffer.alloc(size, 'a');
    const b = Buffer.alloc(size, 'b');
    await writeMount(target, [{ path: 'big', mode: 0o644, contents: a }], { signal: signal() });
    let done = false;
    let reads = 0;
    const reader = (async () => {
      while (!done) {
        const got = readFileSync(path.join(target, 'big'));
        reads++;
        expect(got.length).toBe(size);
        expect(got.equals(a) || got.equals(b)).toBe(true);
        await new Promise((r) => setImmediate(r));
      }
    })();
    for (let i = 0; i < 16; i++) {
      await writeMount(target, [{ path: 'big', mode: 0o644, contents: i % 2 === 0 ? b : a }], { signal: signal() });
    }
    done = true;
    await reader;
    expect(reads).toBeGreaterThan(0);
    expect(tree(target)).toEqual(['big']);
  });
});

describe('readMountedFile', () => {
  it('reads a file, nested or not', async () => {
    await writeMount(target, [file('a', 'A'), file('d/b', 'B')], { signal: signal() });
    expect((await readMountedFile(target, 'a'))?.toString()).toBe('A');
    expect((await readMountedFile(target, 'd/b'))?.toString()).toBe('B');
  });

  it.each([
    { name: 'absent', setup: () => undefined, rel: 'nope' },
    { name: 'absent directory', setup: () => undefined, rel: 'nodir/f' },
    {
      name: 'a final symlink pointing outside',
      setup: () => symlinkSync(path.join(outside, 's'), path.join(target, 'l')),
      rel: 'l',
    },
    { name: 'a symlinked directory', setup: () => symlinkSync(outside, path.join(target, 'ld')), rel: 'ld/s' },
    { name: 'a directory', setup: () => mkdirSync(path.join(target, 'dd')), rel: 'dd' },
    { name: 'a file as a directory', setup: () => writeFileSync(path.join(target, 'ff'), 'x'), rel: 'ff/x' },
    { name: 'a FIFO (never blocks)', setup: () => mkfifoSync(path.join(target, 'fifo')), rel: 'fifo' },
  ])('undefined for $name', async ({ setup, rel }) => {
    writeFileSync(path.join(outside, 's'), 'outside secret');
    setup();
    expect(await readMountedFile(target, rel)).toBeUndefined();
  });

  it('undefined when the target itself is gone', async () => {
    expect(await readMountedFile(path.join(root, 'gone'), 'a')).toBeUndefined();
    expect(existsSync(path.join(root, 'gone'))).toBe(false);
  });
});

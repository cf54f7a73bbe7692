/**
 * Rotation safety: when a rotated secret fails to fetch, the files already mounted
 * stay exactly as they were (bytes, mode, inode, mtime; nothing truncated, removed or added); when it
 * succeeds, each file is replaced atomically: a reader looping in another thread during many
 * rotations never sees a missing, empty or partial file. Provider-writes mode (the driver's own
 * writer handles driver-writes mode).
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { outcomeOf, watchProcess } from './hardening-helpers.js';
import { REGION, startHarness, type Harness, type Pod } from '../helpers/harness.js';

let h: Harness;
const watcher = watchProcess();
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  watcher.stop();
  await h?.close();
});

interface Snapshot {
  [file: string]: { bytes: string; mode: number; ino: number; mtimeMs: number };
}

async function snapshot(dir: string): Promise<Snapshot> {
  const out: Snapshot = {};
  for (const name of (await readdir(dir)).sort()) {
    const p = path.join(dir, name);
    const st = await stat(p);
    out[name] = { bytes: (await readFile(p)).toString('base64'), mode: st.mode, ino: st.ino, mtimeMs: st.mtimeMs };
  }
  return out;
}

const CLASS = (p: string): string => `
- objectName: ${p}/json
  objectType: secretsmanager
  filePermission: "0600"
  jmesPath:
    - {path: user, objectAlias: user}
- {objectName: ${p}/plain, objectType: secretsmanager}
- {objectName: ${p}-param, objectType: ssmparameter}
`;

function seed(p: string, n: number): void {
  h.emu.putSecret(REGION, `${p}/json`, JSON.stringify({ user: `user-v${n}` }));
  h.emu.putSecret(REGION, `${p}/plain`, `plain-v${n}`);
  h.emu.putParameter(REGION, `${p}-param`, `param-v${n}`);
}

describe('a rotation that fails leaves the mounted files exactly as they were', () => {
  let prefixN = 0;
  it.each<[string, (p: string, pod: Pod) => void, number[]]>([
    [
      'Secrets Manager 5xx on one object',
      (p) => void h.emu.addFault({ service: 'secretsmanager', target: `${p}/plain`, code: 'InternalServiceError' }),
      [status.UNAVAILABLE, status.INTERNAL],
    ],
    [
      'throttling on every call',
      () => void h.emu.addFault({ service: 'secretsmanager', code: 'ThrottlingException' }),
      [status.UNAVAILABLE, status.RESOURCE_EXHAUSTED],
    ],
    [
      'access denied on SSM',
      (p) => void h.emu.addFault({ service: 'ssm', target: `${p}-param`, status: 400, code: 'AccessDeniedException' }),
      [status.PERMISSION_DENIED],
    ],
    ['the secret deleted', (p) => h.emu.deleteSecret(REGION, `${p}/plain`), [status.NOT_FOUND]],
    ['the parameter deleted', (p) => h.emu.deleteParameter(REGION, `${p}-param`), [status.NOT_FOUND]],
    [
      'the session expired under us (ExpiredTokenException)',
      () => void h.emu.addFault({ service: 'secretsmanager', status: 400, code: 'ExpiredTokenException' }),
      [status.UNAUTHENTICATED, status.PERMISSION_DENIED, status.UNAVAILABLE],
    ],
    [
      'the rotated JSON no longer has the jmesPath key',
      (p) => void h.emu.putSecret(REGION, `${p}/json`, JSON.stringify({ other: 'x' })),
      [status.FAILED_PRECONDITION, status.NOT_FOUND, status.INVALID_ARGUMENT],
    ],
    [
      'the rotated value is no longer JSON',
      (p) => void h.emu.putSecret(REGION, `${p}/json`, 'not json {'),
      [status.FAILED_PRECONDITION, status.INVALID_ARGUMENT],
    ],
    [
      'KMS refuses to decrypt the new version',
      (p) => void h.emu.putSecret(REGION, `${p}/plain`, 'never seen', { kmsFails: true }),
      [status.PERMISSION_DENIED, status.FAILED_PRECONDITION, status.INTERNAL],
    ],
    [
      'AWS never answers (the deadline passes)',
      () => void h.emu.addFault({ service: 'secretsmanager', hang: true }),
      [status.DEADLINE_EXCEEDED],
    ],
  ])(
    '%s',
    async (_name, breakIt, codes) => {
      const p = `rs${++prefixN}`;
      seed(p, 1);
      const pod = h.pod();
      const target = await h.target();
      const attributes = pod.attributes({ region: REGION, objects: CLASS(p) });
      await h.client.mount({ attributes, targetPath: target });
      const before = await snapshot(target);
      expect(Object.keys(before)).toEqual([`${p}-param`, `${p}_json`, `${p}_plain`, 'user']);

      // Everything rotates, then one thing breaks: the mount must fail and change nothing.
      seed(p, 2);
      breakIt(p, pod);
      const res = await outcomeOf(h.client.mount({ attributes, targetPath: target }, { deadlineMs: 5_000 }));
      h.emu.clearFaults();
      expect(res.ok).toBe(false);
      if (!res.ok) expect(codes, `${res.code}: ${res.details}`).toContain(res.code);
      expect(await snapshot(target)).toEqual(before);
    },
    30_000,
  );
});

/**
 * A reader in another thread: reads every file in a loop until told to stop, and counts reads that
 * are missing, empty or not a whole version (each version is `v<k>:` + padding + `:end<k>`).
 */
const READER = `
const { workerData, parentPort } = require('node:worker_threads');
const fs = require('node:fs');
const { files, size, stop } = workerData;
const flag = new Int32Array(stop);
let reads = 0, missing = 0, empty = 0, partial = 0, versions = new Set();
const samples = [];
while (Atomics.load(flag, 0) === 0) {
  for (const f of files) {
    let text;
    try { text = fs.readFileSync(f, 'utf8'); } catch (e) {
      missing++; if (samples.length < 5) samples.push(f + ': ' + e.code); continue;
    }
    reads++;
    if (text.length === 0) { empty++; continue; }
    const m = /^v(\\d+):/.exec(text);
    if (!m || text.length !== size || !text.endsWith(':end' + m[1])) {
      partial++; if (samples.length < 5) samples.push(f + ': ' + text.length + ' bytes'); continue;
    }
    versions.add(m[1]);
  }
}
parentPort.postMessage({ reads, missing, empty, partial, versions: versions.size, samples });
`;

describe('a rotation that succeeds replaces each file atomically', () => {
  it('a reader thread, over 40 rotations of four 256 KiB files, never sees one missing, empty or partial', async () => {
    const SIZE = 256 * 1024;
    const value = (k: number): string => {
      const head = `v${k}:`;
      const tail = `:end${k}`;
      return head + 'x'.repeat(SIZE - head.length - tail.length) + tail;
    };
    const names = ['atom/a', 'atom/b', 'atom/c'];
    const put = (k: number): void => {
      for (const n of names) h.emu.putSecret(REGION, n, value(k));
      h.emu.putParameter(REGION, 'atom-p', value(k));
    };
    put(0);
    const pod = h.pod();
    const target = await h.target();
    const attributes = pod.attributes({
      region: REGION,
      objects: [
        ...names.map((n) => `- {objectName: ${n}, objectType: secretsmanager}`),
        '- {objectName: atom-p, objectType: ssmparameter}',
      ].join('\n'),
    });
    await h.client.mount({ attributes, targetPath: target });

    const stop = new SharedArrayBuffer(4);
    const files = ['atom_a', 'atom_b', 'atom_c', 'atom-p'].map((f) => path.join(target, f));
    const worker = new Worker(READER, { eval: true, workerData: { files, size: SIZE, stop } });
    const result = new Promise<{
      reads: number;
      missing: number;
      empty: number;
      partial: number;
      versions: number;
      samples: string[];
    }>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    let failed = 0;
    for (let k = 1; k <= 40; k++) {
      put(k);
      // Every fourth rotation fails on one object: all or nothing, the reader still sees whole files.
      if (k % 4 === 0)
        h.emu.addFault({ service: 'secretsmanager', target: 'atom/b', code: 'InternalServiceError', times: 10 });
      const r = await outcomeOf(h.client.mount({ attributes, targetPath: target }));
      h.emu.clearFaults();
      if (!r.ok) failed++;
    }
    Atomics.store(new Int32Array(stop), 0, 1);
    const seen = await result;
    await worker.terminate();
    process.stdout.write(
      `[rotation] reader: ${seen.reads} reads, ${seen.versions} versions seen, ${failed} failed rotations\n`,
    );
    expect({ missing: seen.missing, empty: seen.empty, partial: seen.partial, samples: seen.samples }).toEqual({
      missing: 0,
      empty: 0,
      partial: 0,
      samples: [],
    });
    expect(failed).toBe(10);
    expect(seen.versions).toBeGreaterThan(5);
    expect(seen.reads).toBeGreaterThan(100);
    for (const f of files) expect(await readFile(f, 'utf8')).toBe(value(39));
    // No temp file left behind.
    expect((await readdir(target)).sort()).toEqual(['atom-p', 'atom_a', 'atom_b', 'atom_c']);
  }, 90_000);
});

it('no unhandled rejection', () => {
  expect(watcher.seen).toEqual([]);
});

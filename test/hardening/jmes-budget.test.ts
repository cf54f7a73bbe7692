/**
 * A tenant's costly jmesPath through the real server (provider-writes mode): a 190-byte expression
 * that would build 10^6 arrays, or run 10^8 filter steps, is refused with the budget error naming
 * the object and alias, while another pod mounts and /healthz answers; no secret value reaches an
 * error or a log line, and the provider keeps serving.
 */
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { clearError, containmentProblems, leaks, outcomeOf, watchProcess, type Outcome } from './hardening-helpers.js';
import { REGION, startHarness, type Harness, type Pod } from '../helpers/harness.js';

const SECRET = 'jb-VALUE-7f3a9c';
const AT = '@,'.repeat(9) + '@';
const MULTI_SELECT_BOMB = Array.from({ length: 7 }).reduce<string>((inner) => `[${AT}][*].[${inner}]`, '@');
const FILTER_BOMB = Array.from({ length: 8 }).reduce<string>((inner) => `[${AT}][?${inner}]`, '@');

let h: Harness;
const watcher = watchProcess();

beforeAll(async () => {
  h = await startHarness();
  h.emu.putSecret(
    REGION,
    'jb/json',
    JSON.stringify({
      password: SECRET,
      users: [
        { name: 'a', admin: false },
        { name: 'b', admin: true },
      ],
    }),
  );
  h.emu.putSecret(REGION, 'jb/plain', 'plain-value');
});
afterAll(async () => {
  watcher.stop();
  await h?.close();
});

async function mount(pod: Pod, objects: unknown[]): Promise<{ res: Outcome; target: string }> {
  const target = await h.target();
  const res = await outcomeOf(
    h.client.mount(
      { attributes: pod.attributes({ region: REGION, objects: stringify(objects) }), targetPath: target },
      { deadlineMs: 30_000 },
    ),
  );
  expect(clearError(res)).toBeUndefined();
  expect(await containmentProblems(target)).toEqual([]);
  return { res, target };
}

const bombClass = (bomb: string): unknown[] => [
  { objectName: 'jb/json', objectType: 'secretsmanager', jmesPath: [{ path: bomb, objectAlias: 'boom' }] },
];
const PLAIN = [{ objectName: 'jb/plain', objectType: 'secretsmanager' }];

describe('a costly jmesPath', () => {
  it.each([
    ['multi-select bomb', MULTI_SELECT_BOMB],
    ['nested-filter bomb', FILTER_BOMB],
  ])('%s: refused with the budget error while another pod mounts and /healthz answers', async (_name, bomb) => {
    const hostile = h.pod();
    const other = h.pod();
    const healthUrl = h.provider.healthUrl;
    if (healthUrl === undefined) throw new Error('no health endpoint');
    const [bad, good, health] = await Promise.all([
      mount(hostile, bombClass(bomb)),
      mount(other, PLAIN),
      fetch(`${healthUrl}/healthz`),
    ]);

    expect(bad.res.ok).toBe(false);
    if (!bad.res.ok) {
      expect(bad.res.code).toBe(status.INVALID_ARGUMENT);
      expect(bad.res.details).toMatch(
        /jmesPath path of boom in jb\/json exceeded the evaluation budget \((16 MiB of memory\)|100 ms of CPU )/,
      );
      expect(bad.res.details).not.toContain(SECRET);
    }
    expect(await readdir(bad.target)).toEqual([]);
    expect(good.res).toEqual({ ok: true });
    expect(await readFile(path.join(good.target, 'jb_plain'), 'utf8')).toBe('plain-value');
    expect(health.status).toBe(200);
  });

  it('the next poll of the same class is refused again (without evaluating it again)', async () => {
    const pod = h.pod();
    const first = await mount(pod, bombClass(FILTER_BOMB));
    const again = await mount(pod, bombClass(FILTER_BOMB));
    for (const { res } of [first, again]) expect(res.ok ? 0 : res.code).toBe(status.INVALID_ARGUMENT);
    if (!again.res.ok) expect(again.res.details).toMatch(/exceeded the evaluation budget .*not evaluated again until/);
  });

  it('a filter and a function (real uses of the worker) still mount their files', async () => {
    const { res, target } = await mount(h.pod(), [
      {
        objectName: 'jb/json',
        objectType: 'secretsmanager',
        jmesPath: [
          { path: 'users[?admin].name | [0]', objectAlias: 'admin' },
          { path: 'length(users)', objectAlias: 'count', render: 'json' },
          { path: 'password', objectAlias: 'password' },
        ],
      },
    ]);
    expect(res).toEqual({ ok: true });
    expect(await readFile(path.join(target, 'admin'), 'utf8')).toBe('b');
    expect(await readFile(path.join(target, 'count'), 'utf8')).toBe('2');
    expect(await readFile(path.join(target, 'password'), 'utf8')).toBe(SECRET);
  });

  it('no log line carries the secret value, and no unhandled rejection was seen', async () => {
    const { res } = await mount(h.pod(), PLAIN);
    expect(res).toEqual({ ok: true });
    expect(leaks({ logs: h.logs }, [SECRET])).toEqual([]);
    expect(watcher.seen).toEqual([]);
  });
});

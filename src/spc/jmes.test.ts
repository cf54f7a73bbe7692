/**
 * JMESPath bounds, with the real worker thread (no mocks): simple paths inline, everything else in
 * the worker under a CPU, heap and result-size budget, the main thread free meanwhile.
 */
import fc from 'fast-check';
import jmespath from 'jmespath';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { ConfigError, ProviderError } from '../errors.js';
import { configureJmes, forgetOverBudget, jmesStats, stopJmesWorker } from './jmes.js';
import { boundedJsonText } from './jmes-eval.js';
import { parseObjects } from './objects.js';
import type { SecretDescriptor } from './types.js';
import { deriveFiles } from './values.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);
const OPTS = { pathTranslation: '_' as const, defaultMode: 0o644, region: 'us-east-1', failoverRegion: '' };

/** One object `app/cfg` with one jmesPath entry per path (aliases e0, e1…). */
function descriptor(
  paths: readonly string[],
  render: 'string' | 'json' = 'string',
  objectName = 'app/cfg',
): SecretDescriptor {
  const entries = paths
    .map(
      (p, i) =>
        `    - path: ${JSON.stringify(p)}\n      objectAlias: ` +
        `e${i}\n${render === 'json' ? '      render: json\n' : ''}`,
    )
    .join('');
  const d = parseObjects(`- objectName: ${objectName}\n  objectType: secretsmanager\n  jmesPath:\n${entries}`, OPTS)[0];
  if (d === undefined) throw new Error('no descriptor');
  return d;
}

async function failure(p: Promise<unknown>): Promise<ProviderError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(ProviderError);
    return err as ProviderError;
  }
  throw new Error('expected a ProviderError');
}

/** Counts timer ticks while `p` runs: the main thread stayed free if it ticked. */
async function ticksDuring<T>(p: Promise<T>): Promise<{ ticks: number; settled: PromiseSettledResult<T> }> {
  let ticks = 0;
  const timer = setInterval(() => (ticks += 1), 5);
  const [settled] = await Promise.allSettled([p]);
  clearInterval(timer);
  return { ticks, settled: settled as PromiseSettledResult<T> };
}

const AT = '@,'.repeat(9) + '@';
/** ~190 bytes: 10^6 fresh arrays (each level a projection over a fresh multi-select list). */
const MULTI_SELECT_BOMB = Array.from({ length: 7 }).reduce<string>((inner) => `[${AT}][*].[${inner}]`, '@');
/** ~190 bytes, 10^8 filter steps and almost no memory: minutes of CPU. */
const FILTER_BOMB = Array.from({ length: 8 }).reduce<string>((inner) => `[${AT}][?${inner}]`, '@');
/** One array shared 10^7 times over: cheap to build, 70 MB as JSON text. */
const SHARED_BOMB = Array.from({ length: 7 }, () => `[${AT}][*]`).join('.');

const SECRET = 'hunter2-VERY-SECRET';
const DOC = JSON.stringify({
  username: 'app',
  'api-key': SECRET,
  nested: { list: ['first', 'second', 'third'] },
  items: [
    { name: 'a', enabled: false },
    { name: 'b', enabled: true },
    { name: 'c', enabled: true },
  ],
  n: 5,
});

let saved = configureJmes({});
beforeEach(() => {
  saved = configureJmes({});
  forgetOverBudget();
});
afterEach(async () => {
  configureJmes(saved);
  await stopJmesWorker();
});

describe('parse time', () => {
  const problemOf = (path: string): string => {
    try {
      parseObjects(
        `- objectName: app/cfg\n  objectType: secretsmanager\n  jmesPath:\n    - ` +
          `path: ${JSON.stringify(path)}\n      objectAlias: alias-1\n`,
        OPTS,
      );
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      return (err as ConfigError).message;
    }
    throw new Error('expected a ConfigError');
  };

  test('over 1 KiB: refused naming the object, the alias and the limit', () => {
    const long = 'a' + '.b'.repeat(512); // 1,025 bytes of a simple path
    const msg = problemOf(long);
    expect(msg).toContain(
      'object "app/cfg", jmesPath alias "alias-1" (objects[0].jmesPath[0].path): the path is 1025 bytes, more than ' +
        'the 1024 bytes this provider evaluates',
    );
    expect(msg).not.toContain(long);
  });

  test('over 256 nodes: refused naming the limit', () => {
    expect(problemOf('a' + '.a'.repeat(199))).toContain(
      'the path has more than 256 expression nodes, the most this provider evaluates',
    );
  });

  test("a syntax error keeps ASCP's text", () => {
    expect(problemOf('a.[')).toContain('Invalid JMES Path: a.[.');
  });

  test('the bombs are short and well-formed: refused only when evaluated', () => {
    for (const bomb of [MULTI_SELECT_BOMB, FILTER_BOMB, SHARED_BOMB]) {
      expect(bomb.length).toBeLessThan(200);
      expect(descriptor([bomb]).jmesPath[0]?.path).toBe(bomb);
    }
  });
});

describe('simple paths: inline, no worker', () => {
  test('fields, quoted names, sub-expressions and indexes never start the worker', async () => {
    const before = jmesStats();
    const d = descriptor(['username', '"api-key"', 'nested.list[0]', 'nested.list[-1]', 'nested."list"[1]']);
    const files = await deriveFiles(d, enc(DOC), 'v', 'r');
    expect(files.slice(1).map((f) => dec(f.contents))).toEqual(['app', SECRET, 'first', 'third', 'second']);
    const after = jmesStats();
    expect(after.inline - before.inline).toBe(5);
    expect(after.inWorker).toBe(before.inWorker);
    expect(after.workerStarts).toBe(before.workerStarts);
    expect(after.workerRunning).toBe(false);
  });

  test('a simple path to a value over the result limit is refused with its size', async () => {
    configureJmes({ resultBytes: 1000 });
    const e = await failure(deriveFiles(descriptor(['big']), enc(JSON.stringify({ big: 'x'.repeat(2000) })), 'v', 'r'));
    expect(e).toMatchObject({ code: 'FAILED_PRECONDITION', object: 'app/cfg', field: 'objects[0].jmesPath[0].path' });
    expect(e.message).toBe(
      'r: jmesPath result of e0 in app/cfg is 2000 bytes, more than the 1000 bytes this provider writes for one entry',
    );
  });
});

describe('result size', () => {
  test('counted while written, never more than the real text: a text of exactly the limit is kept', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        const text = JSON.stringify(v);
        const bytes = Buffer.byteLength(text);
        expect(boundedJsonText(v, new Map(), bytes)).toBe(text);
        expect(boundedJsonText(v, new Map(), bytes - 1)).toBeUndefined();
      }),
      { numRuns: 500 },
    );
  });
});

describe('other expressions: in the worker', () => {
  const cases: [string, 'string' | 'json', string][] = [
    ['items[?enabled].name | [0]', 'string', DOC],
    ['keys(@)', 'json', DOC],
    ['sort_by(items, &name)[*].name', 'json', DOC],
    ['items[?enabled] | length(@)', 'json', DOC],
    ['{user: username, count: n}', 'json', DOC],
    ['nested.list[1:]', 'json', DOC],
    ['ids[?@ > `2`]', 'json', '{"ids": [12345678901234567890, 1, -98765432109876543210, 7]}'],
  ];

  test.each(cases)('%s (render %s) gives what the library gives inline', async (path, render, doc) => {
    const before = jmesStats();
    const files = await deriveFiles(descriptor([path], render), enc(doc), 'v', 'r');
    const got = dec(files[1]?.contents ?? new Uint8Array());
    const r = jmespath.search(JSON.parse(doc), path) as unknown;
    const inline = typeof r === 'string' ? r : JSON.stringify(r);
    if (path.startsWith('ids'))
      expect(got).toBe('[12345678901234567890,7]'); // big integer written from its source
    else expect(got).toBe(inline);
    expect(jmesStats().inWorker - before.inWorker).toBe(1);
    expect(jmesStats().inline).toBe(before.inline);
  });

  test('the worker starts once, on first need, and is gone after idle', async () => {
    await stopJmesWorker();
    configureJmes({ idleMs: 100 });
    const before = jmesStats();
    await deriveFiles(descriptor(['keys(@)', 'length(keys(@))'], 'json'), enc(DOC), 'v', 'r');
    await deriveFiles(descriptor(['keys(@)'], 'json'), enc(DOC), 'v', 'r');
    expect(jmesStats().workerStarts - before.workerStarts).toBe(1);
    expect(jmesStats().workerRunning).toBe(true);
    await expect.poll(() => jmesStats().workerRunning, { timeout: 5_000, interval: 20 }).toBe(false);
  });

  test('a library failure says Invalid JMES Path, without the value', async () => {
    const e = await failure(deriveFiles(descriptor(['length(n)']), enc(DOC), 'v', 'r'));
    expect(e).toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(e.message).toBe('r: Invalid JMES Path: length(n). (evaluation failed on the JSON of app/cfg)');
  });
});

describe('budget', () => {
  const BUDGET = new RegExp(
    '^jmesPath path of e0 in app/cfg exceeded the evaluation budget ' +
      "\\((16 MiB of memory|100 ms of CPU for a mount's jmesPath evaluations)\\); use a simpler path$",
  );

  test.each([
    ['multi-select bomb', MULTI_SELECT_BOMB],
    ['nested-filter bomb', FILTER_BOMB],
  ])('%s: refused with the budget error while the main thread keeps running', async (_name, bomb) => {
    const before = jmesStats();
    const { ticks, settled } = await ticksDuring(deriveFiles(descriptor([bomb], 'json'), enc(DOC), 'v', 'us-east-1'));
    expect(settled.status).toBe('rejected');
    const e = (settled as PromiseRejectedResult).reason as ProviderError;
    expect(e).toBeInstanceOf(ProviderError);
    expect(e).toMatchObject({
      code: 'INVALID_ARGUMENT',
      object: 'app/cfg',
      region: 'us-east-1',
      field: 'objects[0].jmesPath[0].path',
      reason: 'JmesPathBudget',
    });
    expect(e.message).toMatch(BUDGET);
    expect(e.message).not.toContain(SECRET);
    expect(ticks).toBeGreaterThan(0);
    expect(jmesStats().overBudget - before.overBudget).toBe(1);
    // The worker that went over was terminated; the next evaluation gets a new one.
    expect(jmesStats().workerRunning).toBe(false);
    const files = await deriveFiles(descriptor(['items[?enabled].name | [0]']), enc(DOC), 'v', 'r');
    expect(dec(files[1]?.contents ?? new Uint8Array())).toBe('b');
  });

  test('the nested filter is stopped by the CPU bound (it needs almost no memory)', async () => {
    const e = await failure(deriveFiles(descriptor([FILTER_BOMB]), enc(DOC), 'v', 'r'));
    expect(e.message).toContain("(100 ms of CPU for a mount's jmesPath evaluations)");
  });

  test('the multi-select bomb is stopped by the heap bound (with CPU to spare)', async () => {
    configureJmes({ cpuMsPerMount: 60_000 });
    const e = await failure(deriveFiles(descriptor([MULTI_SELECT_BOMB]), enc(DOC), 'v', 'r'));
    expect(e.message).toContain('(16 MiB of memory)');
  });

  test('a result shared many times over is refused by size while it is written, not expanded', async () => {
    const e = await failure(deriveFiles(descriptor([SHARED_BOMB], 'json'), enc(DOC), 'v', 'r'));
    expect(e).toMatchObject({ code: 'FAILED_PRECONDITION', reason: 'SecretValue' });
    expect(e.message).toBe(
      'r: jmesPath result of e0 in app/cfg is over 1 MiB, more than the 1 MiB this provider writes for one entry',
    );
  });

  test('the same expression on the same value is then refused without running (rotation polls repeat it)', async () => {
    const d = descriptor([FILTER_BOMB]);
    await failure(deriveFiles(d, enc(DOC), 'v', 'r'));
    const before = jmesStats();
    const e = await failure(deriveFiles(d, enc(DOC), 'v', 'r'));
    expect(e.message).toMatch(
      new RegExp(
        "exceeded the evaluation budget \\(100 ms of CPU for a mount's jmesPath evaluations\\); use a simpler path; " +
          'it did on this same value before, and is not evaluated again until \\d{4}-',
      ),
    );
    expect(jmesStats().inWorker).toBe(before.inWorker);
    expect(jmesStats().remembered - before.remembered).toBe(1);
    // Another value is evaluated.
    await failure(deriveFiles(d, enc('{"other": 1}'), 'v', 'r'));
    expect(jmesStats().inWorker - before.inWorker).toBe(1);
  });

  test("one mount shares one budget: after an entry goes over, the mount's other entries do not run", async () => {
    const mount = new AbortController();
    await failure(deriveFiles(descriptor([FILTER_BOMB]), enc(DOC), 'v', 'r', { signal: mount.signal }));
    const before = jmesStats();
    const e = await failure(
      deriveFiles(descriptor(['keys(@)'], 'json', 'app/other'), enc(DOC), 'v', 'r', { signal: mount.signal }),
    );
    expect(e.message).toBe(
      "jmesPath path of e0 in app/other not evaluated: this mount's jmesPath evaluations already used the " +
        "evaluation budget (100 ms of CPU for a mount's jmesPath evaluations)",
    );
    expect(jmesStats().inWorker).toBe(before.inWorker);
    // Another mount has its own budget.
    expect(
      await deriveFiles(descriptor(['keys(@)'], 'json', 'app/other'), enc(DOC), 'v', 'r', {
        signal: new AbortController().signal,
      }),
    ).toHaveLength(2);
  });

  test("the mount's deadline ends an evaluation in progress", async () => {
    configureJmes({ cpuMsPerMount: 60_000 });
    // the worker is up: the deadline ends the evaluation, not the start
    await deriveFiles(descriptor(['keys(@)'], 'json'), enc(DOC), 'v', 'r');
    const e = await failure(
      deriveFiles(descriptor([FILTER_BOMB]), enc(DOC), 'v', 'r', { signal: AbortSignal.timeout(100) }),
    );
    expect(e).toMatchObject({ code: 'DEADLINE_EXCEEDED', reason: 'Deadline' });
    expect(e.message).toBe(
      'mount deadline exceeded during the evaluation of the jmesPath path of e0 in app/cfg; nothing was written',
    );
    expect(jmesStats().workerRunning).toBe(false);
  });

  test('evaluations wait in a bounded queue: past it, UNAVAILABLE', async () => {
    configureJmes({ queue: 1, cpuMsPerMount: 60_000 });
    await deriveFiles(descriptor(['keys(@)'], 'json'), enc(DOC), 'v', 'r');
    await new Promise((r) => setTimeout(r, 20)); // the worker is idle, nothing waits
    const slow = Array.from({ length: 5 }).reduce<string>((inner) => `[${AT}][?${inner}]`, '@'); // ~10^5 steps
    const runs = [0, 1, 2].map((i) => deriveFiles(descriptor([slow], 'string', `app/q${i}`), enc(DOC), 'v', 'r'));
    const settled = await Promise.allSettled(runs);
    const busy = settled.filter((s) => s.status === 'rejected' && (s.reason as ProviderError).code === 'UNAVAILABLE');
    expect(busy).toHaveLength(1);
    expect(((busy[0] as PromiseRejectedResult).reason as ProviderError).message).toMatch(
      /^provider at capacity: 1 jmesPath evaluations already waiting, jmesPath path of e0 in app\/q2 not evaluated/,
    );
  });
});

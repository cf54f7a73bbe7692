/**
 * The bench's pure parts (proc parsing, round-trip counting, tables, flags), and a smoke run of
 * `--quick` against the real provider (dist/main.js, built first when src/ is newer): it checks the
 * bench runs and prints every section. No timing assertions: tests check behaviour, not timings.
 */
import { describe, expect, it } from 'vitest';
import type { CallRecord } from '../emulator/index.js';
import { defaultProviderPath, parseBenchArgs } from './options.js';
import { parseStatTicks, parseStatusKb } from './proc.js';
import { footnoteColumn, median, quantile, slope, table, verdict, wrap } from './report.js';
import { profileCalls } from './rounds.js';
import { runBench, SECTIONS } from './run.js';
import { objectsYaml, secretName } from './scenario.js';
import { ensureBuilt } from '../../test/helpers/built.js';

const call = (service: CallRecord['service'], at: number, status = 200): CallRecord => ({
  service,
  operation: 'Op',
  region: 'us-east-1',
  names: [],
  status,
  at,
});

describe('parseStatTicks', () => {
  it.each([
    ['plain', '42 (node) S 1 42 42 0 -1 4194560 100 0 0 0 17 3 0 0 20 0 11 0 100 0 0', 20],
    ['spaces and parentheses in the name', '7 (a (b) c) R 1 7 7 0 -1 0 0 0 0 0 250 50 0 0 20 0 1 0 5 0 0', 300],
  ])('%s', (_, text, want) => {
    expect(parseStatTicks(text)).toBe(want);
  });
  it('refuses text without a command name', () => {
    expect(() => parseStatTicks('garbage')).toThrow(/stat format/);
  });
});

describe('parseStatusKb', () => {
  const status =
    'Name:\tnode\nVmHWM:\t   90000 kB\nVmRSS:\t   51234 kB\nRssAnon:\t   20000 kB\nRssFile:\t   31234 kB\n';
  it.each([
    ['VmRSS', 51234 * 1024],
    ['VmHWM', 90000 * 1024],
    ['RssAnon', 20000 * 1024],
    ['RssFile', 31234 * 1024],
  ] as const)('%s', (field, want) => {
    expect(parseStatusKb(status, field)).toBe(want);
  });
  it('is undefined when the line is absent (a zombie)', () => {
    expect(parseStatusKb('Name:\tnode\n', 'VmRSS')).toBeUndefined();
  });
});

describe('profileCalls', () => {
  it.each([
    {
      name: 'IRSA first mount: k8s, STS, then concurrent Secrets Manager calls',
      calls: [
        call('k8s', 1000),
        call('sts', 1021),
        call('secretsmanager', 1043),
        call('secretsmanager', 1043),
        call('secretsmanager', 1049),
      ],
      rounds: ['k8s×1', 'sts×1', 'secretsmanager×3'],
    },
    {
      name: 'warm poll: one round',
      calls: [call('secretsmanager', 5), call('secretsmanager', 6), call('secretsmanager', 19)],
      rounds: ['secretsmanager×3'],
    },
    {
      name: 'a call exactly one latency later starts a new round',
      calls: [call('secretsmanager', 0), call('secretsmanager', 20)],
      rounds: ['secretsmanager×1', 'secretsmanager×1'],
    },
    {
      name: 'unsorted input',
      calls: [call('secretsmanager', 50), call('k8s', 0), call('sts', 25)],
      rounds: ['k8s×1', 'sts×1', 'secretsmanager×1'],
    },
    { name: 'no calls', calls: [], rounds: [] },
  ])('$name', ({ calls, rounds }) => {
    const p = profileCalls(calls, 20);
    expect(p.rounds.map((r) => r.label)).toEqual(rounds);
    expect(p.total).toBe(calls.length);
  });

  it('counts calls, rounds and errors per service', () => {
    const p = profileCalls(
      [
        call('k8s', 0),
        call('sts', 30, 403),
        call('secretsmanager', 60),
        call('secretsmanager', 61),
        call('secretsmanager', 90),
      ],
      20,
    );
    expect(p.byService).toMatchObject({ k8s: 1, sts: 1, secretsmanager: 3, ssm: 0, 'pod-identity': 0 });
    expect(p.roundsOf).toMatchObject({ k8s: 1, sts: 1, secretsmanager: 2 });
    expect(p.errors).toBe(1);
    expect(p.operations).toBe('k8s:Op×1, sts:Op×1, secretsmanager:Op×3');
  });

  it('gives no rounds without latency', () => {
    expect(profileCalls([call('k8s', 0)], 0).rounds).toEqual([]);
  });
});

describe('report', () => {
  it('moves a column into numbered notes, one per distinct text', () => {
    const f = footnoteColumn(
      ['a', 'why'],
      [
        ['1', 'long reason'],
        ['2', '-'],
        ['3', 'other'],
        ['4', 'long reason'],
      ],
      'why',
    );
    expect(f.rows).toEqual([
      ['1', '[1]'],
      ['2', '-'],
      ['3', '[2]'],
      ['4', '[1]'],
    ]);
    expect(f.notes).toEqual(['[1] why: long reason', '[2] why: other']);
    expect(footnoteColumn(['a'], [['1']], 'missing')).toEqual({ rows: [['1']], notes: [] });
  });
  it('wraps words within a width, indenting the next lines', () => {
    expect(wrap('aa bb cc dd', 5, ' ')).toBe('aa bb\n cc\n dd');
    expect(wrap('averyveryverylongword x', 5)).toBe('averyveryverylongword\nx');
  });
  it('lays out a table', () => {
    expect(
      table(
        ['a', 'bb'],
        [
          ['1', 'xyz'],
          ['long', ''],
        ],
      ),
    ).toBe(['a    | bb', '-----+----', '1    | xyz', 'long |'].join('\n'));
  });
  it.each([
    [[3, 1, 2], 0.5, 2],
    [[1, 2, 3, 4], 0.95, 4],
    [[5], 0.5, 5],
  ])('quantile(%j, %d) = %d', (values, q, want) => {
    expect(quantile(values, q)).toBe(want);
  });
  it('median of nothing is NaN', () => {
    expect(median([])).toBeNaN();
  });
  it.each([
    [1, 2, 'ok'],
    [2, 2, 'ok'],
    [3, 2, 'MISSED'],
    [Number.NaN, 2, 'n/a'],
  ] as const)('verdict(%d, %d) = %s', (m, t, want) => {
    expect(verdict(m, t)).toBe(want);
  });
  it('slope of a line', () => {
    expect(
      slope([
        { x: 0, y: 1 },
        { x: 1, y: 3 },
        { x: 2, y: 5 },
      ]),
    ).toBeCloseTo(2);
    expect(slope([{ x: 0, y: 1 }])).toBe(0);
  });
});

describe('parseBenchArgs', () => {
  it('defaults to the sizes of the targets in docs/benchmarks.md', () => {
    const r = parseBenchArgs([]);
    expect(r.kind).toBe('run');
    if (r.kind !== 'run') return;
    expect(r.options).toMatchObject({
      quick: false,
      latencyMs: 20,
      objects: 10,
      burst: 110,
      soakPolls: 4_000,
      objectScale: [1, 10, 50, 100],
      podScale: [1, 10, 110],
    });
  });
  it('--quick shrinks sizes; explicit flags win', () => {
    const r = parseBenchArgs(['--quick', '--objects=5', '--pod-scale=1,2']);
    expect(r.kind === 'run' && r.options).toMatchObject({ quick: true, objects: 5, podScale: [1, 2], burst: 4 });
  });
  it.each([
    [['--objects=0'], /--objects=0: want an integer ≥ 1/],
    [['--pod-scale=1,x'], /comma-separated/],
    [['--nope=1'], /unknown flag --nope/],
    [['stray'], /unknown argument "stray"/],
  ])('refuses %j', (argv, message) => {
    const r = parseBenchArgs(argv);
    expect(r.kind).toBe('error');
    expect(r.kind === 'error' && r.message).toMatch(message);
  });
  it('--help', () => {
    expect(parseBenchArgs(['--help']).kind).toBe('help');
  });
  it('finds dist/main.js from tools/bench/ and from build/tools/bench/', () => {
    expect(defaultProviderPath('file:///repo/tools/bench/options.ts')).toBe('/repo/dist/main.js');
    expect(defaultProviderPath('file:///repo/build/tools/bench/options.js')).toBe('/repo/dist/main.js');
  });
});

describe('scenario', () => {
  it('names the first n secrets in the objects YAML', () => {
    expect(objectsYaml(2)).toBe(
      `- objectName: ${secretName(0)}\n  objectType: secretsmanager\n- objectName: ${secretName(1)}\n  objectType: ` +
        `secretsmanager\n`,
    );
    expect(secretName(7)).toBe('bench/secret-007');
  });
});

describe.skipIf(process.platform !== 'linux')('npm run bench -- --quick', () => {
  it('runs the provider as a child process and prints every section', { timeout: 300_000 }, async () => {
    const main = ensureBuilt();
    const out: string[] = [];
    const err: string[] = [];
    const code = await runBench(['--quick', `--provider=${main}`, `--node=${process.execPath}`], {
      stdout: (l) => out.push(l),
      stderr: (l) => err.push(l),
    });
    const text = out.join('\n');
    expect(code, err.join('\n')).toBe(0);
    for (const s of SECTIONS) expect(text).toContain(`## ${s}`);
    expect(text).toContain('QUICK MODE');
    // Every goal row carries a verdict, and the call counts came from the emulator.
    expect(text).toMatch(/first mount, 1 objects, IRSA +\| provider-writes +\| 1 +\| 1 +\| 1 /);
    expect(text).toMatch(/warm poll, 3 objects, no versions/);
    expect(text).toMatch(/cache-ttl/);
    expect(text).not.toMatch(/bench failed/);
    // Quick sizes judge counts only: no verdict on time, CPU or memory, so none can be false.
    expect(text).not.toMatch(/MISSED|GROWS/);
    expect(text).toMatch(/\| CPU ≤ 300 ms +\| -$/m);
    expect(text).toMatch(/first mount, 1 objects, IRSA .*\| ok$/m);
    // No extrapolated slope from a few dozen polls.
    expect(text).toMatch(/RSS slope: not computed from \d+ polls/);
    expect(text).not.toMatch(/KiB per 1000 polls/);
    // It cites nothing outside the repository, and fits a wide terminal.
    expect(text).not.toMatch(new RegExp(['\u00a7', 'issue \\d', 'ascp-' + 'behaviour'].join('|')));
    const widest = Math.max(...text.split('\n').map((l) => l.length));
    expect(
      widest,
      text.split('\n').find((l) => l.length === widest),
    ).toBeLessThanOrEqual(170);
  });
});

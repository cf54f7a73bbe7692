/**
 * Property-based fuzzing through the running provider's socket (the generated half of the hostile input):
 * the attributes JSON, the tokens JSON, the `objects` YAML, JMESPath expressions, permissions, file
 * names, the `secrets` field and current versions. Every call must end in a valid mount or a clear
 * gRPC error (never UNKNOWN, never the generic "internal error" of an unexpected exception), leave
 * nothing outside its target directory, and the provider must still answer a known-good mount
 * afterwards; no unhandled rejection anywhere. Both write modes.
 *
 * Case counts are bounded by `numRuns` and by time (`interruptAfterTimeLimit`), so the default
 * suite stays within its budget on 2 cores; FUZZ_RUNS=<n> raises every property to n runs.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { driverPathProblem } from '../../tools/emulator/index.js';
import {
  CODE_NAME,
  containmentProblems,
  clearError,
  outcomeOf,
  watchProcess,
  type Outcome,
} from '../hardening/hardening-helpers.js';
import { REGION, startHarness, type Harness, type Pod } from '../helpers/harness.js';

const RUNS = Number(process.env['FUZZ_RUNS'] ?? 0);
/** Per property: `n` runs (or FUZZ_RUNS), at most `seconds` of wall time. */
const budget = (n: number, seconds: number): fc.Parameters<unknown> => ({
  numRuns: RUNS > 0 ? RUNS : n,
  interruptAfterTimeLimit: RUNS > 0 ? 10 * 60_000 : seconds * 1000,
  markInterruptAsFailure: false,
});

const JSON_SECRET = JSON.stringify({
  a: 'x',
  b: { c: 'y', d: [1, 'z'] },
  'my-key': 'k',
  n: 5,
  t: true,
  nul: null,
  u: 'é',
  '..': 'dots',
  '/abs': 'abs',
});

interface Side {
  h: Harness;
  pod: Pod;
  driverWrites: boolean;
  cases: number;
  successes: number;
  /** Count and first message by status code. */
  errors: Map<number, { n: number; first: string }>;
}

async function side(driverWrites: boolean): Promise<Side> {
  const h = await startHarness(driverWrites ? { flags: ['--driver-writes-secrets'] } : {});
  h.emu.putSecret(REGION, 'fz/json', JSON_SECRET);
  h.emu.putSecret(REGION, 'fz/plain', 'plain');
  h.emu.putSecret(REGION, 'fz/bin', Buffer.from([0, 255, 1]));
  h.emu.putParameter(REGION, 'fz-param', 'param');
  h.emu.putParameter(REGION, '/fz/nested', 'nested');
  return { h, pod: h.pod(), driverWrites, cases: 0, successes: 0, errors: new Map() };
}

interface Call {
  attributes: Record<string, string> | string;
  secrets?: string;
  permission?: string;
  currentObjectVersion?: { id: string; version: string }[];
}

/** One mount through the socket, with every per-call invariant checked. */
async function mountChecked(s: Side, call: Call): Promise<Outcome> {
  const target = await s.h.target();
  s.cases++;
  const res = await outcomeOf(
    s.h.client.mount({ ...call, targetPath: target }, { deadlineMs: 20_000 }).then((r) => {
      for (const v of r.objectVersion) expect(typeof v.version).toBe('string');
      expect(r.objectVersion.length).toBeGreaterThan(0);
      if (s.driverWrites) {
        for (const f of r.files) expect(driverPathProblem(f.path), f.path).toBeUndefined();
      }
      return r;
    }),
  );
  const problem = clearError(res);
  expect(problem, JSON.stringify(call).slice(0, 2000)).toBeUndefined();
  if (res.ok) s.successes++;
  else {
    const seen = s.errors.get(res.code);
    if (seen) seen.n++;
    else s.errors.set(res.code, { n: 1, first: excerpt(res.details, 160) });
  }
  expect(await containmentProblems(target), JSON.stringify(call).slice(0, 2000)).toEqual([]);
  if (s.driverWrites) {
    const { readdir } = await import('node:fs/promises');
    expect(await readdir(target)).toEqual([]);
  }
  return res;
}

/** The known-good mount: the provider still serves after everything above. */
async function stillServes(s: Side): Promise<void> {
  const target = await s.h.target();
  const res = await s.h.client.mount({
    attributes: s.pod.attributes({ region: REGION, objects: '- {objectName: fz/plain, objectType: secretsmanager}' }),
    targetPath: target,
  });
  if (s.driverWrites) expect(res.files.map((f) => f.contents.toString())).toEqual(['plain']);
  else expect(await readFile(path.join(target, 'fz/plain'.replace('/', '_')), 'utf8')).toBe('plain');
}

// ---- generators ---------------------------------------------------------------------------------

const hostileName = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom('fz/json', 'fz/plain', 'fz/bin', 'fz-param', '/fz/nested') },
  {
    weight: 4,
    arbitrary: fc.constantFrom(
      '..',
      '.',
      '/',
      '//',
      '/etc/passwd',
      '../escape',
      '../../escape',
      'a/../../b',
      'a/./b',
      'a//b',
      'a/',
      './a',
      '~',
      '~/x',
      'a\u0000b',
      '\u0000',
      'nul\u0000/../x',
      'é',
      '名前',
      '🔑',
      'a\nb',
      ' ',
      '\t',
      '..data',
      '.hidden',
      'x'.repeat(256),
      'd/'.repeat(40) + 'x',
      'é'.repeat(200),
      '\u202eevil',
      'CON',
      'a\\..\\b',
      '%2e%2e',
      'arn:aws:secretsmanager:us-east-1:123456789012:secret:fz/plain',
      'arn:aws:secretsmanager:us-west-2:123456789012:secret:../x',
      'arn:aws:ssm:us-east-1:123456789012:parameter/fz-param',
      'arn:',
      'arn:aws:ssm:::',
    ),
  },
  { weight: 2, arbitrary: fc.string({ unit: 'grapheme', maxLength: 16 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 8 }) },
  {
    weight: 1,
    arbitrary: fc
      .array(fc.constantFrom('a', '..', '.', '', 'fz', '\u0000'), { minLength: 1, maxLength: 5 })
      .map((p) => p.join('/')),
  },
);

const permission = fc.oneof(
  fc.constantFrom(
    '0600',
    '0644',
    '0777',
    '0000',
    '4755',
    '7777',
    '0400',
    '0800',
    '600',
    '06444',
    '',
    ' 0644',
    '0x1a',
    '-001',
    '0644\u0000',
  ),
  fc.string({ maxLength: 6 }),
  fc.integer({ min: -1, max: 0o7777 }),
);

const jmesExpression = fc.oneof(
  fc.constantFrom(
    'a',
    'b.c',
    'b.d[1]',
    'b.d[0]',
    '"my-key"',
    'my-key',
    'n',
    't',
    'nul',
    'u',
    'missing',
    '"..“',
    '".."',
    '"/abs"',
    '@',
    '*',
    '[*]',
    'b.*',
    'to_string(n)',
    'length(a)',
    'b.d[?@ > `0`]',
    'sort_by(@, &a)',
    'max_by(b.d, &@)',
    'keys(@)',
    'values(@)[0]',
    'join(`,`, keys(@))',
    'a | b | c',
    '&a',
    '`{"x":1}`',
    "'lit'",
    'b.d[999999999999]',
    'b.d[-1]',
    'b.d[::-1]',
    'b.d[::0]',
    'not_null(nul, a)',
    'avg(b.d)',
    'merge(@, b)',
    'reverse(a)',
    'starts_with(a, `1`)',
    'contains(@, `1`)',
    'abs(a)',
    'ceil(`"x"`)',
    'map(&@, b.d)',
    '[',
    ']',
    '(',
    '||',
    '!',
    '`',
    '"',
    '\u0000',
    'a.'.repeat(200) + 'a',
    '['.repeat(500),
    '(' + 'a||'.repeat(300) + 'a)',
    'b.d[?' + '!'.repeat(200) + '@]',
  ),
  fc.string({ unit: fc.constantFrom(...'ab.[]*@|&!()`\'",:?<>=-0123456789 {}'.split('')), maxLength: 24 }),
  fc.string({ maxLength: 12 }),
);

const jmesEntry = fc.record(
  {
    path: jmesExpression,
    objectAlias: hostileName,
    filePermission: permission,
    render: fc.constantFrom('json', 'JSON', 'text', '', 'yes'),
    objectEncoding: fc.constantFrom('base64', 'HEX', 'utf-8', 'base32', '', 7),
  },
  { requiredKeys: [] },
);

const objectEntry = fc.record(
  {
    objectName: hostileName,
    objectType: fc.constantFrom('secretsmanager', 'ssmparameter', 'SecretsManager', 'bogus', ''),
    objectAlias: hostileName,
    objectVersion: fc.oneof(fc.constantFrom('1', '0', '-1', '99999999999999999999', 'v'), fc.string({ maxLength: 6 })),
    objectVersionLabel: fc.constantFrom('AWSCURRENT', 'AWSPREVIOUS', 'nope', ''),
    filePermission: permission,
    jmesPath: fc.oneof(fc.array(jmesEntry, { maxLength: 3 }), fc.constant('not-a-list'), fc.constant(null)),
    allKeys: fc.oneof(fc.boolean(), fc.constantFrom('yes', 'true', 1)),
    optional: fc.boolean(),
    objectEncoding: fc.constantFrom('base64', 'Base64', 'hex', 'UTF-8', 'latin1', '', null),
    failoverObject: fc.record({ objectName: hostileName }, { requiredKeys: [] }),
  },
  { requiredKeys: ['objectName'] },
);

const yamlBombs = fc.constantFrom(
  // billion laughs with aliases
  'a: &a ["x","x","x","x","x","x","x","x","x","x"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c ' +
    '[*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e ' +
    '[*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\n',
  '- &x {objectName: fz/plain, objectType: secretsmanager, jmesPath: &j [*x]}',
  '&a [*a]',
  '- *undefined',
  '- {objectName: fz/plain, <<: *m}',
  '- &m {objectName: fz/plain, objectType: secretsmanager}\n- {<<: *m, objectAlias: other}\n- {<<: [*m, *m], ' +
    'objectAlias: third}',
  // Deeper nesting is a named case in test/hardening/hostile-input.test.ts (it fails today).
  '['.repeat(60),
  '- '.repeat(60) + 'x',
  '{'.repeat(60) + '}'.repeat(60),
  '--- \n- a\n--- \n- b\n',
  '%YAML 1.2\n---\n- a',
  '!!binary AAAA',
  '- !!python/object:os.system {objectName: x}',
  '- {objectName: !!int 0x10, objectType: secretsmanager}',
  '\uFEFF- {objectName: fz/plain, objectType: secretsmanager}',
  '- objectName: fz/plain\n  objectType: secretsmanager\n\u0000',
);

const objectsYaml = fc.oneof(
  { weight: 6, arbitrary: fc.array(objectEntry, { minLength: 1, maxLength: 4 }).map((list) => stringify(list)) },
  { weight: 1, arbitrary: fc.array(objectEntry, { minLength: 1, maxLength: 3 }).map((list) => JSON.stringify(list)) },
  { weight: 1, arbitrary: yamlBombs },
  { weight: 1, arbitrary: fc.string({ maxLength: 80 }) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((v) => stringify(v)) },
);

// ---- properties ---------------------------------------------------------------------------------

/**
 * Defines the fuzz suite for one write mode in the calling test file (one harness per file: the
 * harness sets AWS_ENDPOINT_URL for the whole process). The envelope properties run in
 * provider-writes mode only: they never reach the writer.
 */
export function defineSocketFuzz(driverWrites: boolean): void {
  const watcher = watchProcess();
  let s: Side;
  const get = (): Side => s;
  beforeAll(async () => {
    s = await side(driverWrites);
  });
  afterAll(async () => {
    watcher.stop();
    if (s === undefined) return;
    const summary = [...s.errors]
      .map(([code, e]) => `\n  ${CODE_NAME[code]} ×${e.n}, e.g. ${JSON.stringify(e.first)}`)
      .join('');
    process.stdout.write(
      `[fuzz ${driverWrites ? 'driver-writes' : 'provider-writes'}] ` +
        `cases=${s.cases} mounted=${s.successes}${summary}\n`,
    );
    await s.h.close();
  });

  describe(`fuzz through the socket (${driverWrites ? 'driver writes' : 'provider writes'})`, () => {
    it('hostile objects (names, modes, jmesPath, allKeys, bombs): a mount in the target or a clear error', async () => {
      const s = get();
      await fc.assert(
        fc.asyncProperty(
          objectsYaml,
          fc.constantFrom('', '_', '-', 'False', 'false', '/', '\u0000', '..', 'é'),
          async (objects, pathTranslation) => {
            const params: Record<string, string> = { region: REGION, objects };
            if (pathTranslation !== '') params['pathTranslation'] = pathTranslation;
            await mountChecked(s, { attributes: s.pod.attributes(params) });
          },
        ),
        budget(600, 25),
      );
      await stillServes(s);
    }, 120_000);

    it('JMESPath expressions over a JSON secret (and over non-JSON values): a file, or a clear error', async () => {
      const s = get();
      await fc.assert(
        fc.asyncProperty(
          jmesExpression,
          fc.constantFrom('fz/json', 'fz/plain', 'fz/bin', 'fz-param'),
          fc.constantFrom('json', ''),
          async (expr, name, render) => {
            const entry: Record<string, string> = { path: expr, objectAlias: 'out' };
            if (render !== '') entry['render'] = render;
            const objects = stringify([
              {
                objectName: name,
                objectType: name === 'fz-param' ? 'ssmparameter' : 'secretsmanager',
                jmesPath: [entry],
              },
            ]);
            await mountChecked(s, { attributes: s.pod.attributes({ region: REGION, objects }) });
          },
        ),
        budget(400, 12),
      );
      await stillServes(s);
    }, 120_000);
  });

  describe.runIf(!driverWrites)('fuzz the request envelope', () => {
    const good = '- {objectName: fz/plain, objectType: secretsmanager}';

    it('attributes: any JSON text or value at all', async () => {
      const s = get();
      await fc.assert(
        fc.asyncProperty(
          fc.oneof(
            fc.string({ maxLength: 60 }),
            fc.json({ maxDepth: 4 }),
            fc.constantFrom(
              '',
              'null',
              '[]',
              '{}',
              '"x"',
              '1',
              'true',
              '{"a":',
              '{"objects":1}',
              '\u0000',
              '{"__proto__":{"objects":"x"}}',
              '{"constructor":{"prototype":{}}}',
              '['.repeat(100_000),
            ),
          ),
          async (attributes) => {
            await mountChecked(s, { attributes });
          },
        ),
        budget(500, 15),
      );
      await stillServes(s);
    }, 60_000);

    it('attributes map: each known key given a hostile value (tokens JSON included), the rest valid', async () => {
      const s = get();
      const tokensJson = fc.oneof(
        fc.json({ maxDepth: 3 }),
        fc.string({ maxLength: 30 }),
        fc
          .dictionary(
            fc.constantFrom('sts.amazonaws.com', 'pods.eks.amazonaws.com', 'other', '', '__proto__'),
            fc.oneof(
              fc.record(
                {
                  token: fc.oneof(
                    fc.string({ maxLength: 40 }),
                    fc.constant(s.pod.irsaToken),
                    fc.constant(s.pod.irsaToken + 'x'),
                    fc.integer(),
                  ),
                  expirationTimestamp: fc.string({ maxLength: 30 }),
                },
                { requiredKeys: [] },
              ),
              fc.jsonValue({ maxDepth: 2 }),
            ),
            { maxKeys: 3 },
          )
          .map((d) => JSON.stringify(d)),
      );
      const key = fc.constantFrom(
        'region',
        'failoverRegion',
        'pathTranslation',
        'usePodIdentity',
        'preferredAddressType',
        'assumeRoleArn',
        'assumeRoleExternalId',
        'assumeRoleDurationSeconds',
        'csi.storage.k8s.io/pod.name',
        'csi.storage.k8s.io/pod.namespace',
        'csi.storage.k8s.io/serviceAccount.name',
        'secretProviderClass',
        'objects',
        'csi.storage.k8s.io/ephemeral',
      );
      const hostileValue = fc.oneof(
        fc.string({ maxLength: 30 }),
        fc.constantFrom(
          '',
          'us-west-2',
          'us-east-1',
          '../../etc',
          'a\u0000b',
          'True',
          'maybe',
          'ipv6',
          'x'.repeat(70_000),
          'arn:aws:iam::123456789012:role/x',
          '3601',
          '900',
          'é',
        ),
      );
      await fc.assert(
        fc.asyncProperty(
          fc.array(fc.tuple(key, hostileValue), { maxLength: 3 }),
          fc.option(tokensJson),
          fc.constantFrom(['delete'], []),
          async (edits, tokens, drop) => {
            const attributes = s.pod.attributes({ region: REGION, objects: good });
            for (const [k, v] of edits) attributes[k] = v;
            if (tokens !== null) attributes['csi.storage.k8s.io/serviceAccount.tokens'] = tokens;
            if (drop.length > 0 && edits[0] !== undefined) delete attributes[edits[0][0]];
            await mountChecked(s, { attributes });
          },
        ),
        budget(400, 20),
      );
      await stillServes(s);
    }, 60_000);

    it('permission, secrets and current_object_version: any text', async () => {
      const s = get();
      await fc.assert(
        fc.asyncProperty(
          fc.oneof(
            fc.constantFrom(
              '420',
              '384',
              '0',
              '511',
              '4095',
              '4096',
              '-1',
              '1e3',
              '0x1a4',
              '',
              ' 420',
              '420 ',
              'null',
              '9'.repeat(400),
            ),
            fc.string({ maxLength: 8 }),
          ),
          fc.oneof(fc.constant('null'), fc.json({ maxDepth: 3 }), fc.string({ maxLength: 40 })),
          fc.array(fc.record({ id: hostileName, version: fc.string({ maxLength: 12 }) }), { maxLength: 4 }),
          async (perm, secrets, currentObjectVersion) => {
            await mountChecked(s, {
              attributes: s.pod.attributes({ region: REGION, objects: good }),
              permission: perm,
              secrets,
              currentObjectVersion,
            });
          },
        ),
        budget(300, 15),
      );
      await stillServes(s);
    }, 60_000);
  });

  it('no unhandled rejection or uncaught exception during the fuzz run', () => {
    expect(watcher.seen).toEqual([]);
  });
}

/** At most `max` characters of a message, cut at a word boundary and marked with "…", never mid-word. */
export function excerpt(text: string, max: number): string {
  if (text.length <= max) return text;
  const cut = text.slice(0, max);
  const space = cut.lastIndexOf(' ');
  return `${(space > max / 2 ? cut.slice(0, space) : cut).replace(/[\s,;:(]+$/, '')} …`;
}

// `check`: golden outputs (text and JSON) for the example manifests and our fixtures, exit codes,
// and the positions of findings inside the `objects` string, table-style.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { CommandIO } from './io.js';
import { checkManifest, run } from './check.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const GOLDEN = new URL('./testdata/golden/', import.meta.url);
const UPDATE = process.env['UPDATE_GOLDEN'] === '1';

async function check(args: string[], stdin?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const io: CommandIO = { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t), env: {}, cwd: ROOT };
  if (stdin !== undefined) io.readStdin = () => Promise.resolve(stdin);
  const code = await run(args, io);
  return { code, stdout, stderr };
}

function golden(name: string, actual: string): void {
  const file = new URL(name, GOLDEN);
  if (UPDATE || !existsSync(file)) writeFileSync(file, actual);
  expect(actual).toBe(readFileSync(file, 'utf8'));
}

const CASES: [golden: string, files: string[], code: number][] = [
  ['broken-class', ['manifests/examples/broken-class.yaml'], 1],
  ['examples', ['manifests/examples/irsa.yaml', 'manifests/examples/pod-identity.yaml'], 0],
  ['many-mistakes', ['src/cli/testdata/many-mistakes.yaml'], 1],
  ['kubectl-list', ['src/cli/testdata/kubectl-list.yaml'], 1],
  ['good', ['src/cli/testdata/good.yaml'], 0],
  ['unreadable', ['src/cli/testdata/syntax-error.yaml', 'src/cli/testdata/no-such-file.yaml'], 1],
];

describe.each(CASES)('check %s', (name, files, code) => {
  it('text output matches the golden file', async () => {
    const r = await check(files);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(code);
    golden(`${name}.txt`, r.stdout);
  });
  it('--format json matches the golden file and counts agree', async () => {
    const r = await check(['--format', 'json', ...files]);
    expect(r.code).toBe(code);
    const doc = JSON.parse(r.stdout) as { errors: number; warnings: number; findings: { severity: string }[] };
    expect(doc.errors).toBe(doc.findings.filter((f) => f.severity === 'error').length);
    expect(doc.warnings).toBe(doc.findings.filter((f) => f.severity === 'warning').length);
    expect(doc.errors > 0).toBe(code === 1);
    golden(`${name}.json`, r.stdout);
  });
});

describe('broken-class.yaml', () => {
  it('reports exactly the four advertised mistakes, at their lines', async () => {
    const text = readFileSync(`${ROOT}manifests/examples/broken-class.yaml`, 'utf8');
    const lines = text.split('\n');
    const { findings } = checkManifest(text, 'broken-class.yaml');
    const errors = findings.filter((f) => f.severity === 'error');
    expect(errors).toHaveLength(4);
    for (const [n, f] of errors.entries()) {
      expect(lines[(f.line ?? 0) - 1], f.message).toContain(`MISTAKE ${n + 1}`);
    }
    expect(errors.map((f) => f.path)).toEqual([
      'objects[0].filePermission',
      'objects[0].jmesPath[0].path',
      'objects[1].objectName',
      'objects[2].objectAlias',
    ]);
    expect(errors[0]?.message).toContain('write "0644"');
  });
});

describe('positions inside objects', () => {
  const wrap = (parameters: string): string =>
    `apiVersion: secrets-store.csi.x-k8s.io/v1\nkind: SecretProviderClass\nmetadata:\n  name: p\nspec:\n  provider: ` +
    `aws\n  parameters:\n    region: us-east-1\n${parameters}`;
  // [case, parameters YAML (from line 9), finding path, expected line, column]
  const TABLE: [string, string, string, number, number][] = [
    [
      'literal block',
      '    objects: |\n      - objectName: a\n        objectType: nope\n',
      'objects[0].objectType',
      11,
      21,
    ],
    [
      'literal strip, extra indent',
      '    objects: |-\n        - objectName: a\n          objectType: nope\n',
      'objects[0].objectType',
      11,
      23,
    ],
    [
      'indentation indicator',
      '    objects: |2\n        - objectName: a\n          objectType: nope\n',
      'objects[0].objectType',
      11,
      23,
    ],
    [
      'second entry, case-insensitive key',
      '    objects: |\n      - {objectName: a, objectType: secretsmanager}\n      - ObjectName: b\n        ' +
        'ObjectType: nope\n',
      'objects[1].objectType',
      12,
      21,
    ],
    [
      'jmesPath entry',
      '    objects: |\n      - objectName: a\n        objectType: secretsmanager\n        jmesPath:\n          - ' +
        'path: a-b\n            objectAlias: x\n',
      'objects[0].jmesPath[0].path',
      13,
      19,
    ],
    [
      'CRLF line ends',
      '    objects: |\r\n      - objectName: a\r\n        objectType: nope\r\n',
      'objects[0].objectType',
      11,
      21,
    ],
    ['double-quoted one line', '    objects: "- {objectName: a, objectType: nope}"\n', 'objects[0].objectType', 9, 45],
    ['single-quoted one line', "    objects: '- {objectName: a, objectType: nope}'\n", 'objects[0].objectType', 9, 45],
    [
      'folded block: the value start',
      '    objects: >\n      - objectName: a\n        objectType: nope\n',
      'objects[0].objectType',
      9,
      14,
    ],
    [
      'missing field: its entry',
      '    objects: |\n      - objectType: secretsmanager\n',
      'objects[0].objectName',
      10,
      9,
    ],
  ];
  it.each(TABLE)('%s', (_name, parameters, path, line, column) => {
    const { findings } = checkManifest(wrap(parameters), 'p.yaml');
    const f = findings.find((x) => x.path === path && x.severity === 'error');
    expect(f, JSON.stringify(findings)).toBeDefined();
    expect([f?.line, f?.column]).toEqual([line, column]);
  });
});

describe('rules beyond the objects parser', () => {
  const one = (yaml: string) => checkManifest(yaml, 'x.yaml');
  it('a parameter that is not a string is an error naming the fix', () => {
    const { findings } = one(
      'apiVersion: secrets-store.csi.x-k8s.io/v1\nkind: SecretProviderClass\nmetadata: {name: a}\nspec:\n  ' +
        'provider: aws\n  parameters:\n    region: us-east-1\n    usePodIdentity: yes\n    objects: "- {objectName: ' +
        'a, objectType: secretsmanager}"\n',
    );
    expect(findings.map((f) => [f.severity, f.path, f.line, f.column])).toEqual([['error', 'usePodIdentity', 8, 21]]);
    expect(findings[0]?.message).toContain('quote it, usePodIdentity: "yes"');
  });
  it('other kinds and other providers are skipped, a List is walked', () => {
    const { findings, report } = one(
      'kind: List\napiVersion: v1\nitems:\n- {apiVersion: v1, kind: Secret, metadata: {name: s}}\n- apiVersion: ' +
        'secrets-store.csi.x-k8s.io/v1\n  kind: SecretProviderClass\n  metadata: {name: az}\n  spec: {provider: ' +
        'azure, parameters: {keyvaultName: k}}\n',
    );
    expect(findings).toEqual([]);
    expect(report).toEqual({ file: 'x.yaml', classes: [], skipped: 1, otherProviders: ['az (azure)'] });
  });
  it('a class without objects, without provider, or of an unknown apiVersion is an error', () => {
    const { findings } = one(
      'apiVersion: secrets-store.csi.k8s.io/v1\nkind: SecretProviderClass\nmetadata: {name: a}\nspec:\n  ' +
        'parameters: {region: us-east-1}\n',
    );
    expect(findings.map((f) => f.path).sort()).toEqual(['apiVersion', 'objects', 'spec.provider']);
  });
  it('no region, an ARN: warns the ARN region is checked only at mount time (not that the region is missing)', () => {
    const { findings } = one(
      'apiVersion: secrets-store.csi.x-k8s.io/v1\nkind: SecretProviderClass\nmetadata: {name: a}\nspec:\n  ' +
        'provider: aws\n  parameters:\n    objects: "- {objectName: ' +
        '\\"arn:aws:ssm:eu-west-1:123456789012:parameter/p\\"}"\n',
    );
    expect(findings.map((f) => f.severity)).toEqual(['warning']);
    expect(findings.map((f) => f.message).join('\n')).toMatch(/an ARN in objects cannot be checked/);
    expect(findings.map((f) => f.message).join('\n')).not.toMatch(/no region/);
  });
  it('allKeys: a secretObjects name that may be a key is only a soft warning', () => {
    const { findings } = one(
      'apiVersion: secrets-store.csi.x-k8s.io/v1\nkind: SecretProviderClass\nmetadata: {name: a}\nspec:\n  ' +
        'provider: aws\n  parameters:\n    region: us-east-1\n    objects: "- {objectName: db, objectType: ' +
        'secretsmanager, allKeys: true}"\n  secretObjects:\n  - {secretName: db, type: Opaque, data: ' +
        '[{objectName: password, key: password}, {objectName: db, key: all}]}\n',
    );
    expect(findings.map((f) => [f.path, f.message.slice(0, 40)])).toEqual([
      ['objects[0].allKeys', 'allKeys is our extension: ASCP ignores i'],
      ['spec.secretObjects[0].data[0].objectName', '"password" is no file the class names; i'],
    ]);
  });
  it('every problem in one run: a wrong objectType and a secretObjects name that matches no file, both found', () => {
    const { findings } = one(
      'apiVersion: secrets-store.csi.x-k8s.io/v1\nkind: SecretProviderClass\nmetadata: {name: a}\nspec:\n  ' +
        'provider: aws\n  parameters:\n    region: us-east-1\n' +
        '    objects: "- {objectName: db, objectType: secretManager, objectAlias: db-creds}\\n- {objectName: api, ' +
        'objectType: secretsmanager}"\n' +
        '  secretObjects:\n  - {secretName: db, type: Opaque, data: [{objectName: db, key: password}, {objectName: ' +
        'api, key: api}]}\n',
    );
    expect(findings.map((f) => [f.severity, f.path])).toEqual([
      ['error', 'objects[0].objectType'],
      ['warning', 'spec.secretObjects[0].data[0].objectName'],
    ]);
    expect(findings[0]?.message).toContain('object "db": Invalid objectType: secretManager');
    // The file of db is its alias, known although db itself is refused.
    expect(findings[1]?.message).toContain('(the file of db is named "db-creds": use that)');
  });
  it('a spec-only fragment (as users paste it) is checked as a class, and says so', () => {
    const { findings, report } = one(
      'spec:\n  provider: aws\n  parameters:\n    region: us-east-1\n    objects: |\n      - objectName: ' +
        'db\n        objectType: secretsmanager\n        jmesPath:\n          - {path: api-key, objectAlias: k}\n',
    );
    expect(findings.map((f) => [f.severity, f.path, f.line])).toEqual([
      ['warning', 'spec', 2],
      ['error', 'objects[0].jmesPath[0].path', 9],
    ]);
    expect(findings[0]?.message).toContain('checked as the spec of a SecretProviderClass');
    expect(report.classes).toEqual(['(spec of document 1)']);
    // A document with metadata is an object, not a fragment: without kind it is skipped as before.
    expect(one('metadata: {name: a}\nspec:\n  provider: aws\n').report.skipped).toBe(1);
  });
  it('names that cannot all be known (an entry without objectName) leave secretObjects to the next run', () => {
    const { findings } = one(
      'apiVersion: secrets-store.csi.x-k8s.io/v1\nkind: SecretProviderClass\nmetadata: {name: a}\nspec:\n  ' +
        'provider: aws\n  parameters:\n    region: us-east-1\n' +
        '    objects: "- {objectType: secretsmanager}\\n- {objectName: api, objectType: secretsmanager}"\n' +
        '  secretObjects:\n  - {secretName: db, type: Opaque, data: [{objectName: nothing, key: password}]}\n',
    );
    expect(findings.map((f) => f.path)).toEqual(['objects[0].objectName']);
  });
});

describe('standard input', () => {
  it('`-` checks standard input, named <stdin>, with the same findings as the file', async () => {
    const file = 'manifests/examples/broken-class.yaml';
    const fromFile = await check([file]);
    const fromStdin = await check(['-'], readFileSync(new URL(file, `file://${ROOT}`), 'utf8'));
    expect(fromStdin.code).toBe(1);
    expect(fromStdin.stdout).toBe(fromFile.stdout.replaceAll(file, '<stdin>'));
    expect(fromStdin.stdout).not.toContain('cannot read');
  });
  it('`-` beside files reads standard input once', async () => {
    let reads = 0;
    const io: CommandIO = {
      stdout: () => undefined,
      stderr: () => undefined,
      env: {},
      cwd: ROOT,
      readStdin: () => Promise.resolve(`${reads++ === 0 ? '' : 'x'}`),
    };
    expect(await run(['-', 'manifests/examples/irsa.yaml', '-'], io)).toBe(0);
    expect(reads).toBe(1);
  });
  it('through the real binary: a pipe into `check -`', async () => {
    const { ensureBuilt } = await import('../../test/helpers/built.js');
    ensureBuilt();
    const { spawnSync } = await import('node:child_process');
    const r = spawnSync(process.execPath, ['dist/main.js', 'check', '-'], {
      cwd: ROOT,
      input: readFileSync(new URL('manifests/examples/irsa.yaml', `file://${ROOT}`)),
      encoding: 'utf8',
    });
    expect(r.stdout).toContain('checked 1 SecretProviderClass in 1 file: 0 errors');
    expect(r.status).toBe(0);
  }, 120_000);
});

describe('usage', () => {
  it.each([
    [[], 2],
    [['--format', 'yaml', 'a.yaml'], 2],
    [['--bogus', 'a.yaml'], 2],
    [['--help'], 0],
  ])('%j → exit %i', async (args, code) => {
    expect((await check(args)).code).toBe(code);
  });
});

describe('through the dispatcher', () => {
  it('the dispatcher runs check', async () => {
    const { main } = await import('./index.js');
    let stdout = '';
    const code = await main(['check', 'src/cli/testdata/good.yaml'], {
      stdout: (t) => (stdout += t),
      stderr: () => {},
      env: {},
      cwd: ROOT,
    });
    expect(code).toBe(0);
    expect(stdout).toBe('checked 1 SecretProviderClass in 1 file: 0 errors, 0 warnings\n');
  });
});

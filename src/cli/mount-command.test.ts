// The mount command's pure parts: argument rules, the file table, Secret rendering (docs/behaviour.md,
// "secretObjects").
import { describe, expect, it } from 'vitest';
import { formatFiles, parseMountArgs, renderSecrets } from './mount-command.js';

const REQUIRED = ['--class', 'c.yaml', '--pod-namespace', 'ns', '--service-account', 'sa'];

describe('parseMountArgs', () => {
  it.each<[string, string[], string]>([
    ['missing required flags', ['--class', 'c.yaml'], 'missing --pod-namespace, --service-account'],
    ['unknown flag', [...REQUIRED, '--nope'], 'unknown option --nope'],
    ['flag without value', [...REQUIRED, '--out'], '--out needs a value'],
    ['bad role ARN', [...REQUIRED, '--role-arn', 'reader'], '--role-arn must be an IAM role ARN'],
    ['bad timeout', [...REQUIRED, '--timeout', '0'], '--timeout must be a positive number'],
    ['stray argument', [...REQUIRED, 'extra'], 'unexpected argument "extra"'],
  ])('%s', (_name, argv, message) => {
    const r = parseMountArgs(argv);
    expect(r.kind).toBe('error');
    if (r.kind === 'error') expect(r.message).toContain(message);
  });

  it('reads every flag, = or space separated', () => {
    const r = parseMountArgs([
      ...REQUIRED,
      '--out=dir',
      '--show-values',
      '--role-arn',
      'arn:aws:iam::123456789012:role/r',
      '--region=eu-west-1',
      '--pod',
      'p',
      '--name',
      'n',
      '--driver-writes-secrets',
      '--timeout',
      '5',
    ]);
    expect(r).toEqual({
      kind: 'run',
      options: {
        classFile: 'c.yaml',
        name: 'n',
        podNamespace: 'ns',
        serviceAccount: 'sa',
        pod: 'p',
        out: 'dir',
        showValues: true,
        roleArn: 'arn:aws:iam::123456789012:role/r',
        region: 'eu-west-1',
        driverWritesSecrets: true,
        timeoutMs: 5000,
      },
    });
    expect(parseMountArgs(['--help'])).toEqual({ kind: 'help' });
  });
});

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

describe('formatFiles', () => {
  const outcome = {
    files: [
      { path: 'a', mode: 0o440, contents: enc('hello') },
      { path: 'bin', mode: 0o644, contents: new Uint8Array([0, 255]) },
    ],
    objectVersions: [
      { id: 'a', version: 'v1' },
      { id: 'bin', version: '3' },
      { id: 'gone', version: 'absent' },
    ],
  };
  it('lists path, mode, size and version; an absent optional object has no file', () => {
    expect(formatFiles(outcome, false)).toBe(
      'PATH  MODE  SIZE  VERSION\na     0440  5     v1\nbin   0644  2     3\ngone  -     -     absent (optional ' +
        'object not found: no file)\n',
    );
  });
  it('prints values only when asked, binary as base64', () => {
    expect(formatFiles(outcome, true)).toContain('==> a <==\nhello\n\n==> bin <==\n(binary, base64) AP8=\n');
  });
});

describe('renderSecrets', () => {
  const files = [
    { path: 'user', mode: 0o644, contents: enc('app') },
    { path: 'nested/pw', mode: 0o644, contents: enc('pw') },
  ];
  it('adds the managed label to user labels, keeps annotations, data base64 only with showValues', () => {
    const so = [
      {
        secretName: 's',
        type: 'Opaque',
        labels: { app: 'x' },
        annotations: { a: 'b' },
        data: [
          { objectName: 'user', key: 'u' },
          { objectName: 'nested/pw', key: 'p' },
        ],
      },
    ];
    const shown = renderSecrets(so, files, 'ns', true);
    expect(shown.problems).toEqual([]);
    expect(shown.yaml).toBe(
      '---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: s\n  namespace: ns\n  labels:\n    app: x\n    ' +
        'secrets-store.csi.k8s.io/managed: "true"\n  annotations:\n    a: b\ntype: Opaque\ndata:\n  u: YXBw\n  p: ' +
        'cHc=\n',
    );
    expect(renderSecrets(so, files, 'ns', false).yaml).toContain('u: "<hidden: 3 bytes, --show-values to print>"');
  });
  it.each<[string, unknown[], string]>([
    [
      'a missing file',
      [{ secretName: 's', type: 'Opaque', data: [{ objectName: 'nope', key: 'k' }] }],
      'secretObjects[0] (s): file matching objectName nope not found in the pod',
    ],
    [
      'no type',
      [{ secretName: 's', data: [{ objectName: 'user', key: 'k' }] }],
      'secretObjects[0]: secretName, type and data are required',
    ],
    [
      'an entry without key',
      [{ secretName: 's', type: 'Opaque', data: [{ objectName: 'user' }] }],
      'every data entry needs objectName and key',
    ],
  ])("%s: no Secret, the driver's reason", (_name, list, problem) => {
    const r = renderSecrets(list as Parameters<typeof renderSecrets>[0], files, 'ns', false);
    expect(r.yaml).toBe('');
    expect(r.problems).toEqual([expect.stringContaining(problem)]);
  });
});

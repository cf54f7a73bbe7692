import { describe, expect, it } from 'vitest';
import { secretObjectsProblems, type SecretObjectSpec } from './secret-objects.js';
import type { DeclaredFile } from './types.js';

const file = (fileName: string, objectName = fileName, o: Partial<DeclaredFile> = {}): DeclaredFile => ({
  fileName,
  objectName,
  optional: false,
  allKeys: false,
  ...o,
});
const so = (o: Partial<SecretObjectSpec>): SecretObjectSpec => ({
  secretName: 'db',
  type: 'Opaque',
  labels: undefined,
  annotations: undefined,
  data: [],
  ...o,
});

describe('secretObjectsProblems', () => {
  it('a valid sync of a declared file: nothing', () => {
    expect(
      secretObjectsProblems([so({ data: [{ objectName: 'db-creds', key: 'password' }] })], false, [
        file('db-creds', 'prod/db'),
      ]),
    ).toEqual([]);
  });

  it("each problem at its place: bad name, a tls key, a file the class lacks (naming the object's actual file)", () => {
    const problems = secretObjectsProblems(
      [
        so({ secretName: 'Bad_Name', data: [{ objectName: 'x', key: 'k' }] }),
        so({ secretName: 'tls', type: 'kubernetes.io/tls', data: [{ objectName: 'x', key: 'cert' }] }),
        so({ secretName: 'db2', data: [{ objectName: 'prod/db', key: 'password' }] }),
      ],
      false,
      [file('x'), file('db-creds', 'prod/db')],
    );
    expect(problems.map((p) => [p.severity, p.path, p.steps.join('.')])).toEqual([
      ['error', 'spec.secretObjects[0].secretName', 'spec.secretObjects.0.secretName'],
      ['error', 'spec.secretObjects[1].data[0].key', 'spec.secretObjects.1.data.0.key'],
      ['warning', 'spec.secretObjects[2].data[0].objectName', 'spec.secretObjects.2.data.0.objectName'],
    ]);
    expect(problems[2]?.message).toContain('(the file of prod/db is named "db-creds": use that)');
  });

  it('file names unknown (the class has errors that hide them): names are not checked, the rest is', () => {
    const problems = secretObjectsProblems(
      [so({ type: '', data: [{ objectName: 'nothing', key: 'k' }] })],
      false,
      undefined,
    );
    expect(problems.map((p) => p.path)).toEqual(['spec.secretObjects[0].type']);
  });

  it('not a list', () => {
    expect(secretObjectsProblems(undefined, true, [])).toMatchObject([
      { severity: 'error', path: 'spec.secretObjects' },
    ]);
  });
});

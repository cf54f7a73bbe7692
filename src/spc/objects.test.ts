import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { stringify } from 'yaml';
import { ConfigError } from '../errors.js';
import { checkArnRegions, parseObjects, type ParseObjectsOptions } from './objects.js';
import type { SecretDescriptor } from './types.js';

const fixture = (name: string): string => readFileSync(new URL(`./testdata/${name}`, import.meta.url), 'utf8');

const base: ParseObjectsOptions = { pathTranslation: '_', defaultMode: 0o644, region: 'us-west-2', failoverRegion: '' };

function parse(objects: unknown, opts: Partial<ParseObjectsOptions> = {}): SecretDescriptor[] {
  return parseObjects(typeof objects === 'string' ? objects : stringify(objects), { ...base, ...opts });
}

/** The problems' texts without their `objects[i].field: ` prefix (ASCP's exact texts). */
function errorsOf(objects: unknown, opts: Partial<ParseObjectsOptions> = {}): string[] {
  try {
    parse(objects, opts);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    // ASCP's text, without where it is: `objects[0].objectType: `, or `object "name" (objects[0].objectType): ` with an
    // alias for an entry.
    return (err as ConfigError).problems.map((p) => {
      if (p.path === undefined) return p.message;
      const at =
        p.message.indexOf(`${p.path}: `) === 0
          ? `${p.path}: `
          : /^object "(?:[^"\\]|\\.)*"(?:, jmesPath alias "(?:[^"\\]|\\.)*")? \(([^)]*)\): /.exec(p.message)?.[0];
      return at !== undefined && at.includes(p.path) ? p.message.slice(at.length) : p.message;
    });
  }
  return [];
}

const SM_ARN = 'arn:aws:secretsmanager:us-west-2:123456789012:secret:/feaw';
const SSM_ARN = 'arn:aws:ssm:us-west-2:123456789012:parameter/feaw';
const usw1 = (n: string): string => `arn:aws:secretsmanager:us-west-1:123456789012:secret:${n}`;
const usw2 = (n: string): string => `arn:aws:secretsmanager:us-west-2:123456789012:secret:${n}`;

// ASCP's descriptor tests (docs/behaviour.md, "ASCP's test cases"): `exact` = the whole text; otherwise the text must
// contain it.
interface Case {
  id: string;
  objects: unknown;
  opts?: Partial<ParseObjectsOptions>;
  exact?: string;
  contains?: string;
}

const refusals: Case[] = [
  { id: 'P04 no name', objects: [{}], exact: 'Object name must be specified' },
  { id: 'P05 bad ARN', objects: [{ objectName: 'arn::' }], exact: 'Invalid ARN format in object name: arn::' },
  {
    id: 'P06 unknown service',
    objects: [{ objectName: 'arn:aws:sts:us-west-2:123456789012:parameter/feaw' }],
    exact: 'Invalid service in ARN: sts',
  },
  {
    id: 'P08 no type, not ARN',
    objects: [{ objectName: 'SomeSecret' }],
    exact: 'Must use objectType when a full ARN is not specified: SomeSecret',
  },
  { id: 'P09 type sts', objects: [{ objectName: 'x', objectType: 'sts' }], exact: 'Invalid objectType: sts' },
  { id: 'P10 type ssm', objects: [{ objectName: 'x', objectType: 'ssm' }], exact: 'Invalid objectType: ssm' },
  {
    id: 'P11 type vs ARN',
    objects: [{ objectName: SM_ARN, objectType: 'ssmparameter' }],
    exact: `objectType does not match ARN: ${SM_ARN}`,
  },
  {
    id: 'P12 SSM version+label',
    objects: [
      {
        objectName: 'SomeParameter',
        objectType: 'ssmparameter',
        objectVersionLabel: 'SomeLabel',
        objectVersion: 'VersionId',
      },
    ],
    exact: 'ssm parameters can not specify both objectVersion and objectVersionLabel: SomeParameter',
  },
  {
    id: 'P22 conflicting alias',
    objects: [
      { objectName: 'secret1', objectType: 'secretsmanager', objectAlias: 'aliasOne' },
      { objectName: 'secret2', objectType: 'secretsmanager', objectAlias: 'aliasOne' },
    ],
    exact: 'found duplicate object alias aliasOne',
  },
  {
    id: 'P23 alias vs jmes alias',
    objects: [
      { objectName: 'secret1', objectType: 'secretsmanager', objectAlias: 'aliasOne' },
      {
        objectName: 'secret2',
        objectType: 'secretsmanager',
        jmesPath: [{ path: '.username', objectAlias: 'aliasOne' }],
      },
    ],
    exact: 'Name already in use for objectAlias: found duplicate object alias aliasOne in JMES path entry .username',
  },
  {
    id: 'P24 jmes without alias',
    objects: [{ objectName: 's', objectType: 'secretsmanager', jmesPath: [{ path: 'username' }] }],
    exact: 'Object alias must be specified for JMES object',
  },
  {
    id: 'P25 jmes without path',
    objects: [{ objectName: 's', objectType: 'secretsmanager', jmesPath: [{ objectAlias: 'aliasOne' }] }],
    exact: 'Path must be specified for JMES object',
  },
  {
    id: 'P27 bare -',
    objects: '- objectName: a\n  objectType: ssmparameter\n-\n- objectName: b\n  objectType: ssmparameter\n',
    exact: 'Empty descriptor entry in SecretProviderClass',
  },
  {
    id: 'P28 bad YAML',
    objects: '- objectName: a\n  objectType: ssmparameter\n- {\n',
    contains: 'Failed to load SecretProviderClass',
  },
  { id: 'P29 no type', objects: '- objectName: secret1\n', contains: 'Must use objectType' },
  {
    id: 'P35 failover needs alias',
    objects: [{ objectName: usw1('a'), failoverObject: { objectName: usw2('a') } }],
    opts: { region: 'us-west-1', failoverRegion: 'us-west-2' },
    contains: 'object alias must be specified for objects with failover entries',
  },
  {
    id: 'P36 failover non-ARN needs objectType',
    objects: [{ objectName: usw1('a'), objectAlias: 'test', failoverObject: { objectName: 'MySecret' } }],
    opts: { region: 'us-west-1', failoverRegion: 'us-west-2' },
    contains: 'Must use objectType when a full ARN is not specified',
  },
  {
    id: 'P37 primary non-ARN needs objectType',
    objects: [{ objectName: 'MySecret', objectAlias: 'test', failoverObject: { objectName: usw1('a') } }],
    opts: { region: 'us-west-2', failoverRegion: 'us-west-1' },
    contains: 'Must use objectType when a full ARN is not specified',
  },
  {
    id: 'P38 failover ARN vs type',
    objects: [
      {
        objectName: usw1('secret1'),
        objectType: 'secretsmanager',
        objectAlias: 'test',
        failoverObject: { objectName: 'arn:aws:bad:us-west-2:123456789012:secret:secret1' },
      },
    ],
    opts: { region: 'us-west-1', failoverRegion: 'us-west-2' },
    contains: 'objectType does not match ARN',
  },
  {
    id: 'P39 failover ARN bad service',
    objects: [
      {
        objectName: usw1('secret1'),
        objectAlias: 'test',
        failoverObject: { objectName: 'arn:aws:bad:us-west-2:123456789012:secret:secret1' },
      },
    ],
    opts: { region: 'us-west-1', failoverRegion: 'us-west-2' },
    contains: 'Invalid service in ARN',
  },
  {
    id: 'P41 primary ARN region',
    objects: [{ objectName: usw1('a') }],
    contains: 'ARN region must match region us-west-2',
  },
  {
    id: 'P42 failover ARN region',
    objects: [{ objectName: usw1('a'), objectAlias: 'test', failoverObject: { objectName: usw2('a') } }],
    opts: { region: 'us-west-1', failoverRegion: 'us-east-2' },
    contains: 'ARN region must match region us-east-2',
  },
  {
    id: 'P43 failover needs failover region',
    objects: [{ objectName: usw1('a'), objectAlias: 'test', failoverObject: { objectName: usw2('a') } }],
    opts: { region: 'us-west-1' },
    contains: 'failover object allowed only when failover region',
  },
  {
    id: 'P44 failover SSM version+label',
    objects: [
      {
        objectName: 'MySecret1',
        objectType: 'ssmparameter',
        objectAlias: 'test',
        failoverObject: {
          objectName: 'MySecretInAnotherRegion',
          objectVersion: 'VersionId',
          objectVersionLabel: 'MyLabel',
        },
      },
    ],
    opts: { region: 'us-west-1', failoverRegion: 'us-west-2' },
    contains: 'ssm parameters can not specify both objectVersion and objectVersionLabel',
  },
  {
    id: 'P46 versions must match',
    objects: [
      {
        objectName: 'MySecret1',
        objectType: 'ssmparameter',
        objectAlias: 'test',
        objectVersion: 'OldVersionId',
        failoverObject: { objectName: 'MySecretInAnotherRegion', objectVersion: 'ADifferentVersionId' },
      },
    ],
    opts: { region: 'us-west-1', failoverRegion: 'us-west-2' },
    contains: 'object versions must match between primary and failover regions',
  },
  ...['abc9', '000', '00000', 'abcd', '0900', '420'].map((v) => ({
    id: `P49 permission ${v}`,
    objects: [{ objectName: 'foo', objectType: 'secretsmanager', filePermission: v }],
    exact: `Invalid File Permission: ${v}`,
  })),
  {
    id: 'P51 jmes permission',
    objects: [
      {
        objectName: 'foo',
        objectType: 'secretsmanager',
        jmesPath: [{ path: 'bar', objectAlias: 'foobar', filePermission: 'efgh' }],
      },
    ],
    exact: 'Invalid File Permission: efgh',
  },
];

describe('parseObjects refusals (ASCP secret_descriptor_test.go)', () => {
  test.each(refusals)('$id', ({ objects, opts, exact, contains }) => {
    const errs = errorsOf(objects, opts);
    expect(errs.length).toBeGreaterThan(0);
    if (exact !== undefined) expect(errs).toContain(exact);
    if (contains !== undefined) expect(errs.some((e) => e.includes(contains))).toBe(true);
  });
});

describe('duplicate-name table P13–P21', () => {
  const two = (a: { alias?: string; label?: string }, b: { alias?: string; label?: string }): unknown[] =>
    [a, b].map((x) => ({
      objectName: 'secret1',
      objectType: 'ssmparameter',
      ...(x.alias === undefined ? {} : { objectAlias: x.alias }),
      ...(x.label === undefined ? {} : { objectVersionLabel: x.label }),
    }));
  const cases: { id: string; objects: unknown[]; error?: string }[] = [
    {
      id: 'P13',
      objects: two({}, {}),
      error: 'found descriptor with duplicate object name secret1, no object alias, and no version label',
    },
    {
      id: 'P14',
      objects: two({ alias: 'aliasOne' }, { alias: 'aliasOne' }),
      error:
        'found descriptor with duplicate object name secret1, duplicate object alias aliasOne, and no version label',
    },
    {
      id: 'P15',
      objects: two({ alias: 'aliasOne', label: 'AWSCURRENT' }, { alias: 'aliasOne', label: 'AWSPREVIOUS' }),
      error: 'found duplicate object alias aliasOne',
    },
    { id: 'P16', objects: two({ alias: 'aliasOne' }, { alias: 'aliasTwo' }) },
    {
      id: 'P17',
      objects: two({ alias: 'aliasOne', label: 'AWSCURRENT' }, { alias: 'aliasTwo', label: 'AWSPREVIOUS' }),
    },
    {
      id: 'P18',
      objects: two({ label: 'AWSCURRENT' }, { label: 'AWSCURRENT' }),
      error:
        'found descriptor with duplicate object name secret1, no object alias, and duplicate version label AWSCURRENT',
    },
    {
      id: 'P19',
      objects: two({ alias: 'aliasOne', label: 'AWSCURRENT' }, { alias: 'aliasOne', label: 'AWSCURRENT' }),
      error:
        'found descriptor with duplicate object name secret1, duplicate object alias aliasOne, and duplicate ' +
        'version label AWSCURRENT',
    },
    {
      id: 'P21',
      objects: two({ alias: 'aliasOne', label: 'AWSCURRENT' }, { alias: 'aliasTwo', label: 'AWSPREVIOUS' }),
    },
  ];
  test.each(cases)('$id', ({ objects, error }) => {
    const errs = errorsOf(objects);
    if (error === undefined) expect(errs).toEqual([]);
    else expect(errs).toEqual([error]); // ASCP's text alone: no second "same file" report
  });

  test('P20 same name, no aliases, different labels: ASCP accepts; both land on one file, we refuse (better)', () => {
    const errs = errorsOf(two({ label: 'AWSCURRENT' }, { label: 'AWSPREVIOUS' }));
    expect(errs).toHaveLength(1);
    expect(errs[0]).toContain('same file "secret1"');
  });
});

describe('parseObjects successes', () => {
  test('P01/P02/P07 type from ARN', () => {
    expect(parse([{ objectName: SM_ARN }])[0]?.objectType).toBe('secretsmanager');
    expect(parse([{ objectName: SSM_ARN }])[0]?.objectType).toBe('ssmparameter');
  });

  test('P03/P48 default mode and filePermission', () => {
    expect(parse([{ objectName: 'a', objectType: 'secretsmanager' }], { defaultMode: 0o777 })[0]?.mode).toBe(0o777);
    expect(parse([{ objectName: 'a', objectType: 'secretsmanager' }])[0]?.mode).toBe(0o644);
    expect(parse([{ objectName: 'a', objectType: 'secretsmanager', filePermission: '0600' }])[0]?.mode).toBe(0o600);
    expect(parse([{ objectName: 'a', objectType: 'secretsmanager', filePermission: '4755' }])[0]?.mode).toBe(0o4755);
  });

  test('P26 list order, types and file names', () => {
    const d = parse([
      { objectName: 'secret1', objectType: 'secretsmanager' },
      { objectName: 'secret2', objectType: 'ssmparameter' },
      { objectName: 'secret3', objectType: 'ssmparameter', objectAlias: 'myParm' },
    ]);
    expect(d.map((x) => [x.index, x.objectType, x.fileName])).toEqual([
      [0, 'secretsmanager', 'secret1'],
      [1, 'ssmparameter', 'secret2'],
      [2, 'ssmparameter', 'myParm'],
    ]);
  });

  test('P32/P45/P47 file names (alias wins; ARN with alias)', () => {
    expect(
      parse([
        { objectName: usw2('secret1'), objectAlias: 'secret1' },
        { objectName: 'parm1', objectType: 'ssmparameter' },
      ]).map((x) => x.fileName),
    ).toEqual(['secret1', 'parm1']);
    const multi = parse(
      [
        {
          objectName: 'MySecret1',
          objectType: 'ssmparameter',
          objectAlias: 'test',
          objectVersion: 'VersionId',
          failoverObject: { objectName: 'Other', objectVersion: 'VersionId' },
        },
      ],
      { region: 'us-west-1', failoverRegion: 'us-west-2' },
    );
    expect(multi[0]?.fileName).toBe('test');
    expect(multi[0]?.failoverObject).toEqual({
      objectName: 'Other',
      objectVersion: 'VersionId',
      objectVersionLabel: '',
    });
  });

  test('P40 failover ARN pair', () => {
    const d = parse([{ objectName: usw1('a'), objectAlias: 'test', failoverObject: { objectName: usw2('a') } }], {
      region: 'us-west-1',
      failoverRegion: 'us-west-2',
    });
    expect(d[0]?.failoverObject?.objectName).toBe(usw2('a'));
  });

  test('path translation', () => {
    const names = (t: string | false): string[] =>
      parse(
        [
          { objectName: 'mypath/TestSecret1', objectType: 'secretsmanager' },
          { objectName: '/TestSecret2', objectType: 'secretsmanager' },
          { objectName: '///a/b', objectType: 'secretsmanager' },
        ],
        { pathTranslation: t },
      ).map((x) => x.fileName);
    expect(names('_')).toEqual(['mypath_TestSecret1', '_TestSecret2', '___a_b']);
    expect(names('-')).toEqual(['mypath-TestSecret1', '-TestSecret2', '---a-b']);
    expect(names(false)).toEqual(['mypath/TestSecret1', 'TestSecret2', 'a/b']);
  });

  test('P50 jmesPath mode: entry, else parent string, else default', () => {
    const mode = (parent?: string, entry?: string): number | undefined =>
      parse([
        {
          objectName: 'foo',
          objectType: 'secretsmanager',
          ...(parent === undefined ? {} : { filePermission: parent }),
          jmesPath: [{ path: 'bar', objectAlias: 'foobar', ...(entry === undefined ? {} : { filePermission: entry }) }],
        },
      ])[0]?.jmesPath[0]?.mode;
    expect(mode()).toBe(0o644);
    expect(mode('0600')).toBe(0o600);
    expect(mode('0600', '0777')).toBe(0o777);
    expect(mode('0600', '0700')).toBe(0o700); // P51 valid pair
  });

  test('ASCP integration class (Path:/ObjectAlias: keys) parses', () => {
    const d = parse(fixture('ascp-integration.yaml'), { region: 'us-west-2', failoverRegion: 'us-east-2' });
    expect(d).toHaveLength(9);
    expect(d[5]).toMatchObject({ objectType: 'secretsmanager', fileName: 'SecretsManagerTest2' });
    expect(d[7]?.jmesPath.map((e) => [e.path, e.fileName])).toEqual([
      ['username', 'ssmUsername'],
      ['password', 'ssmPassword'],
    ]);
  });

  test('extensions: optional, allKeys (YAML or Go bools), render: json', () => {
    const d = parse(
      '- objectName: a\n  objectType: secretsmanager\n  optional: yes\n  allKeys: "True"\n  jmesPath:\n    - path: ' +
        'n\n      objectAlias: n\n      render: json\n' +
        '- objectName: b\n  objectType: secretsmanager\n',
    );
    expect(d[0]).toMatchObject({ optional: true, allKeys: true });
    expect(d[0]?.jmesPath[0]?.render).toBe('json');
    expect(d[1]).toMatchObject({ optional: false, allKeys: false });
    expect(errorsOf('- objectName: a\n  objectType: secretsmanager\n  optional: maybe\n')).toEqual([
      'optional must be true or false, got "maybe"',
    ]);
    expect(
      errorsOf(
        '- objectName: a\n  objectType: secretsmanager\n  jmesPath: [{path: a, objectAlias: b, render: yaml}]\n',
      )[0],
    ).toContain('render must be "json"');
  });

  test('objectEncoding (objects and jmesPath entries): any case of key and value, default utf-8, not inherited', () => {
    const d = parse(
      '- objectName: a\n  objectType: secretsmanager\n  objectEncoding: Base64\n  jmesPath:\n    - {path: x, ' +
        'objectAlias: x}\n    - {path: y, objectAlias: y, ObjectEncoding: HEX}\n' +
        '- objectName: b\n  objectType: secretsmanager\n  ObjectEncoding: UTF-8\n' +
        '- objectName: c\n  objectType: secretsmanager\n  OBJECTENCODING: hex\n' +
        "- objectName: d\n  objectType: secretsmanager\n  objectEncoding: ''\n" +
        '- objectName: e\n  objectType: secretsmanager\n',
    );
    expect(d.map((x) => x.objectEncoding)).toEqual(['base64', 'utf-8', 'hex', 'utf-8', 'utf-8']);
    // The entry's own setting only: the object's base64 decoded the JSON this entry reads.
    expect(d[0]?.jmesPath.map((e) => e.objectEncoding)).toEqual(['utf-8', 'hex']);
  });

  test('an unknown objectEncoding is a class problem naming the object, the field and the allowed values', () => {
    expect(errorsOf('- objectName: prod/cert\n  objectType: secretsmanager\n  objectEncoding: base32\n')).toEqual([
      'objectEncoding must be one of utf-8, base64, hex (how the value is stored), got "base32"',
    ]);
    try {
      parse(
        '- objectName: prod/cert\n  objectType: secretsmanager\n  jmesPath: [{path: k, objectAlias: k, ' +
          'objectEncoding: 7}]\n',
      );
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      const p = (err as ConfigError).problems[0];
      expect(p?.path).toBe('objects[0].jmesPath[0].objectEncoding');
      expect(p?.message).toContain('object "prod/cert"');
      expect(p?.message).toContain('got 7');
      expect((err as ConfigError).code).toBe('INVALID_ARGUMENT');
    }
    expect(errorsOf('- objectName: a\n  objectType: secretsmanager\n  objectEncoding: [base64]\n')[0]).toContain(
      'got a array',
    );
  });

  test('objectEncoding is refused with allKeys on the object, and with render: json on the entry', () => {
    expect(
      errorsOf('- objectName: a\n  objectType: secretsmanager\n  allKeys: true\n  objectEncoding: base64\n'),
    ).toEqual([
      'objectEncoding base64 cannot be used with allKeys (to decode a key, list it as a jmesPath entry with its own ' +
        'objectEncoding)',
    ]);
    expect(
      errorsOf(
        '- objectName: a\n  objectType: secretsmanager\n  jmesPath: [{path: k, objectAlias: k, render: json, ' +
          'objectEncoding: hex}]\n',
      ),
    ).toEqual(['objectEncoding hex cannot be used with render: json (only a string result can be decoded)']);
    // utf-8 (the default, spelled out) changes nothing, so it goes with both.
    expect(
      parse(
        '- objectName: a\n  objectType: secretsmanager\n  allKeys: true\n  objectEncoding: utf-8\n  jmesPath: ' +
          '[{path: k, objectAlias: k, render: json, objectEncoding: UTF-8}]\n',
      ),
    ).toHaveLength(1);
  });
});

describe('YAML decoding as ASCP', () => {
  test('YAML 1.1 coercions and case-insensitive keys', () => {
    const d = parse(fixture('coercions.yaml'));
    expect(d.map((x) => [x.objectName, x.objectType, x.objectAlias, x.objectVersion, x.objectVersionLabel])).toEqual([
      ['secret-one', 'secretsmanager', '1.1', '2', 'true'],
      ['1000', 'ssmparameter', '1:30', '31', ''],
      ['third', 'ssmparameter', '1000', '', ''],
    ]);
  });

  test.each([
    ['0644', '420'],
    ['0o17', '15'],
    ['0b101', '5'],
    ['+12', '12'],
    ['-0x10', '-16'],
    ['18446744073709551615', '18446744073709551615'],
    ['3.14159265', '3.1415927'],
    ['1e6', '1e+06'],
    ['.5', '0.5'],
    ['.inf', '+Inf'],
    ['on', 'true'],
    ['n', 'false'],
    ['2001-12-14', '2001-12-14'],
    ['09', '9'],
    ['"0644"', '0644'],
    ["'yes'", 'yes'],
  ])('objectVersion: %s → %s', (scalar, expected) => {
    expect(parse(`- objectName: a\n  objectType: secretsmanager\n  objectVersion: ${scalar}\n`)[0]?.objectVersion).toBe(
      expected,
    );
  });

  test('the bytewise-later of two case-variant keys wins; exact duplicates: last wins', () => {
    expect(
      parse('- objectName: a\n  objectType: secretsmanager\n  objectAlias: one\n  ObjectAlias: two\n')[0]?.objectAlias,
    ).toBe('one');
    expect(
      parse('- objectName: a\n  objectType: secretsmanager\n  ObjectAlias: two\n  objectAlias: one\n')[0]?.objectAlias,
    ).toBe('one');
    expect(
      parse('- objectName: a\n  objectType: secretsmanager\n  objectAlias: first\n  objectAlias: second\n')[0]
        ?.objectAlias,
    ).toBe('second');
  });

  test('anchors and merge keys', () => {
    const d = parse(fixture('anchors.yaml'));
    expect(d.map((x) => [x.objectName, x.objectType, x.mode])).toEqual([
      ['first', 'secretsmanager', 0o600],
      ['second', 'secretsmanager', 0o600],
    ]);
  });

  test('a YAML bomb is refused fast', () => {
    const start = performance.now();
    const errs = errorsOf(fixture('bomb.yaml'));
    expect(performance.now() - start).toBeLessThan(1000);
    expect(errs).toEqual([
      'Failed to load SecretProviderClass: error converting YAML to JSON: yaml: document contains excessive aliasing',
    ]);
  });

  test.each([
    [
      'top-level mapping',
      'objectName: a\n',
      'cannot unmarshal object into Go value of type []*provider.SecretDescriptor',
    ],
    ['top-level scalar', 'hello\n', 'cannot unmarshal string into Go value of type []*provider.SecretDescriptor'],
    ['scalar item', '- hello\n', 'cannot unmarshal string into Go value of type provider.SecretDescriptor'],
    [
      'jmesPath scalar',
      '- {objectName: a, objectType: secretsmanager, jmesPath: foo}\n',
      'Go struct field SecretDescriptor.jmesPath of type []provider.JMESPathEntry',
    ],
    [
      'failoverObject scalar',
      '- {objectName: a, objectType: secretsmanager, failoverObject: x}\n',
      'of type provider.FailoverObjectEntry',
    ],
    [
      'list as a string',
      '- {objectName: [a], objectType: secretsmanager}\n',
      'cannot unmarshal array into Go struct field SecretDescriptor.objectName of type string',
    ],
    [
      'map in jmes path',
      '- {objectName: a, objectType: secretsmanager, jmesPath: [{path: {a: 1}, objectAlias: b}]}\n',
      'JMESPathEntry.jmesPath.path of type string',
    ],
    [
      'Inf in an unknown key',
      '- {objectName: a, objectType: secretsmanager, extra: .inf}\n',
      'json: unsupported value: +Inf',
    ],
    ['null key', '- {objectName: a, objectType: secretsmanager, ~: x}\n', 'unsupported map key'],
  ])('load error: %s', (_name, yaml, text) => {
    const errs = errorsOf(yaml);
    expect(errs).toHaveLength(1);
    expect(errs[0]).toContain('Failed to load SecretProviderClass: ');
    expect(errs[0]).toContain(text);
  });

  test.each(['', '   \n\t', '~', 'null', '[]', '# only a comment\n'])(
    'empty objects %j is refused (better)',
    (yaml) => {
      expect(errorsOf(yaml)).toEqual([
        '`objects` is empty: nothing to mount (list at least one object with objectName and objectType)',
      ]);
    },
  );
});

describe('all problems reported together, in list order', () => {
  test('many-problems.yaml', () => {
    let err: unknown;
    try {
      parse(fixture('many-problems.yaml'));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const problems = (err as ConfigError).problems;
    expect(problems.map((p) => [p.index, p.path])).toEqual([
      [0, 'objects[0].objectName'],
      [1, 'objects[1].objectType'],
      [2, 'objects[2].filePermission'],
      [3, 'objects[3].jmesPath[0].path'],
      [3, 'objects[3].jmesPath[1].path'],
      [4, 'objects[4]'],
      [6, 'objects[6].objectAlias'],
    ]);
    expect(problems[3]?.message).toContain(`Invalid JMES Path: my-key. (quote names with hyphens: path: '"my-key"')`);
    expect((err as ConfigError).message).toMatch(
      /^invalid SecretProviderClass: 7 problems: objects\[0\]\.objectName: Object name must be specified; /,
    );
  });
});

describe('path rules (better than ASCP)', () => {
  const one = (name: string, t: string | false = false): string[] =>
    errorsOf([{ objectName: name, objectType: 'ssmparameter' }], { pathTranslation: t });
  const alias = (a: string, t: string | false = false): string[] =>
    errorsOf([{ objectName: 'x', objectType: 'secretsmanager', jmesPath: [{ path: 'k', objectAlias: a }] }], {
      pathTranslation: t,
    });

  test.each([
    // P33: ASCP's own traversal cases, its text
    ['/../pathTest-abc123', 'path can not contain ../'],
    ['mypath/../../pathTest-abc123', 'path can not contain ../'],
    ['mypath/..', 'path can not contain ../'],
    ['../mypath', 'path can not contain ../'],
    ['mypath/../../param', 'path can not contain ../'],
    // ASCP misses these (its check sees only `../`)
    ['..', 'path can not contain ../'],
    ['/..', 'path can not contain ../'],
    ['.', 'can not be "."'],
    ['a//b', 'not in clean form'],
    ['a/./b', 'not in clean form'],
    ['a/', 'not in clean form'],
    ['a\u0000b', 'NUL'],
    [`${'x'.repeat(256)}`, 'longer than 255 bytes'],
    [`${'é'.repeat(128)}`, 'longer than 255 bytes'],
    [`${'abcdefgh/'.repeat(456)}x`, 'longer than 4096 bytes'],
  ])('objectName %j refused', (name, text) => {
    const errs = one(name);
    expect(errs).toHaveLength(1);
    expect(errs[0]).toContain(text);
  });

  test('P33 with ARNs and the secretsmanager type', () => {
    for (const n of ['/../pathTest-abc123', 'mypath/../../pathTest-abc123', 'mypath/..']) {
      expect(one(usw2(n)).some((e) => e.startsWith(`path can not contain ../: ${usw2(n)}`))).toBe(true);
    }
    expect(errorsOf([{ objectName: '../mypath', objectType: 'secretsmanager' }], { pathTranslation: false })[0]).toBe(
      'path can not contain ../: ../mypath',
    );
  });

  test.each([
    '/..pathTest-abc123',
    '..pathTest-abc123',
    'mypath../pathTest-abc123',
    'mypath..',
    '/..mypath',
    'mypath../param',
    'ünïcødé/秘密',
    'a\\..\\b',
  ])('P34 and friends: %j accepted', (name) => {
    expect(one(name)).toEqual([]);
    expect(errorsOf([{ objectName: usw2(name) }], { pathTranslation: false })).toEqual([]);
  });

  test('absolute path only reachable with pathTranslation "/"', () => {
    expect(one('/abs', '/')[0]).toContain('must be relative');
  });

  test.each([
    ['..', 'path can not contain ../'],
    ['a/../../b', 'path can not contain ../'],
    ['a//b', 'not in clean form'],
  ])('jmesPath alias %j refused (ASCP checks none)', (a, text) => {
    expect(alias(a)[0]).toContain(text);
  });

  test('a jmesPath alias is translated like object names', () => {
    expect(
      parse([{ objectName: 'x', objectType: 'secretsmanager', jmesPath: [{ path: 'k', objectAlias: 'a/b' }] }])[0]
        ?.jmesPath[0]?.fileName,
    ).toBe('a_b');
  });

  test.each([
    [
      'object name vs jmesPath alias',
      [
        { objectName: 'u', objectType: 'secretsmanager' },
        { objectName: 'j', objectType: 'secretsmanager', jmesPath: [{ path: 'k', objectAlias: 'u' }] },
      ],
      '_',
      'object "j", jmesPath alias "u" (objects[1].jmesPath[0].objectAlias): two outputs would be written to the ' +
        'same file "u" (also written by object "u", objects[0].objectName)',
    ],
    [
      'translated name vs alias',
      [
        { objectName: 'a/b', objectType: 'secretsmanager' },
        { objectName: 'c', objectType: 'secretsmanager', objectAlias: 'a_b' },
      ],
      '_',
      'object "c" (objects[1].objectAlias): two outputs would be written to the same file "a_b" (also written by ' +
        'object "a/b", objects[0].objectName)',
    ],
    [
      'file vs directory',
      [
        { objectName: 'a', objectType: 'secretsmanager' },
        { objectName: 'a/b', objectType: 'secretsmanager' },
      ],
      false,
      'object "a/b" (objects[1].objectName): "a" is written as a file but "a/b" needs it to be a directory (also ' +
        'written by object "a", objects[0].objectName)',
    ],
    [
      'jmesPath alias vs its own object',
      [{ objectName: 'same', objectType: 'secretsmanager', jmesPath: [{ path: 'k', objectAlias: 'same' }] }],
      '_',
      'object "same", jmesPath alias "same" (objects[0].jmesPath[0].objectAlias): two outputs would be written to ' +
        'the same file "same" (also written by object "same", objects[0].objectName)',
    ],
  ] as const)('collision: %s', (_n, objects, t, message) => {
    let err: unknown;
    try {
      parse(objects, { pathTranslation: t });
    } catch (e) {
      err = e;
    }
    expect((err as ConfigError).problems.map((p) => p.message)).toEqual([message]);
  });
});

describe('checkArnRegions (region known only after parsing)', () => {
  test('region unknown at parse time: rule deferred, then applied', () => {
    const d = parse(
      [
        { objectName: usw1('a'), objectAlias: 'a', failoverObject: { objectName: usw2('a') } },
        { objectName: 'plain', objectType: 'ssmparameter' },
      ],
      { region: '', failoverRegion: 'us-west-2' },
    );
    expect(checkArnRegions(d, 'us-west-1', 'us-west-2')).toEqual([]);
    expect(checkArnRegions(d, 'eu-west-1', 'us-east-2').map((p) => [p.path, p.message])).toEqual([
      ['objects[0].objectName', `objects[0].objectName: ARN region must match region eu-west-1: ${usw1('a')}`],
      [
        'objects[0].failoverObject.objectName',
        `objects[0].failoverObject.objectName: ARN region must match region us-east-2: ${usw2('a')}`,
      ],
    ]);
  });
});

describe('bounds checked before the YAML parser runs', () => {
  const one = '- {objectName: a, objectType: secretsmanager}\n';

  test('only the first document is read: later documents, broken or huge, are never parsed', () => {
    const later = `---\n${'- ['.repeat(1_000)}\n---\n: : : bad\n`.repeat(20);
    expect(parse(one + later).map((d) => d.objectName)).toEqual(['a']);
  });

  test.each([
    ['flow sequences', '['.repeat(65) + ']'.repeat(65)],
    ['flow maps', '{a: '.repeat(65) + '}'.repeat(65)],
    ['compact block lists on one line', '- '.repeat(65) + 'x'],
    ['depth hidden in a second object', `${one}- objectName: ${'['.repeat(100)}`],
  ])('%s nested deeper than 64: refused without parsing', (_name, text) => {
    expect(errorsOf(text)).toEqual([
      'Failed to load SecretProviderClass: error converting YAML to JSON: yaml: document nested too deeply',
    ]);
  });

  test('brackets inside quoted scalars and comments do not count as nesting', () => {
    const text = `- objectName: "${'['.repeat(200)}"\n  objectType: secretsmanager  # ${'{'.repeat(200)}\n`;
    expect(parse(text)[0]?.objectName).toBe('['.repeat(200));
  });

  test('more than 500 objectName keys are refused before parsing, naming the count and the limit; 500 parse', () => {
    const list = (n: number, key = 'objectName'): string =>
      Array.from({ length: n }, (_, i) => `- {${key}: s${i}, objectType: secretsmanager}`).join('\n');
    expect(parse(list(500))).toHaveLength(500);
    const refusal =
      'the text names 501 objects (objectName keys), more than the 500 this provider reads in one class (real ' +
      'classes name a few dozen): split the class';
    expect(errorsOf(list(501))).toEqual([refusal]);
    expect(errorsOf(list(501, 'OBJECTNAME'))).toEqual([refusal]);
    // Only the first document is read, so only its names count (an explicit `---` start included).
    expect(parse(`---\n${list(3)}\n---\n${list(600)}\n`)).toHaveLength(3);
    expect(parse(`# c\n${list(2)}\n...\n${list(600)}\n`)).toHaveLength(2);
  });

  test('objects over 128 KiB are refused, naming the size and the limit', () => {
    expect(errorsOf(`${one}# ${'c'.repeat(140 * 1024)}\n`)).toEqual([
      'the text is 141 KiB, more than the 128 KiB this provider reads (real classes take a few KiB)',
    ]);
  });
});

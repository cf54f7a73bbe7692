import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { stringify } from 'yaml';
import { ConfigError } from '../errors.js';
import { parseAttributes, parsePermission } from './attributes.js';
import { parseObjects } from './objects.js';
import { filePathProblem } from './paths.js';

// P52, and fuzzing the parser with fast-check: whatever the input, the parser returns descriptors whose every file name
// passes the path rules, or throws ConfigError; never anything else.
const names = fc.oneof(
  fc.constantFrom(
    'a',
    'a/b',
    '/a',
    '..',
    '.',
    '../x',
    'x/..',
    'a//b',
    '',
    'arn:aws:secretsmanager:us-west-2:1:secret:s',
    'arn::',
    'é',
    'a\u0000b',
  ),
  fc.string({ maxLength: 12 }),
);
const scalar = fc.oneof(
  names,
  fc.integer(),
  fc.boolean(),
  fc.constant(null),
  fc.double(),
  fc.constantFrom('0600', '0644', 'json', 'yes'),
);
const entry = fc.dictionary(
  fc.constantFrom('path', 'Path', 'objectAlias', 'ObjectAlias', 'filePermission', 'render', 'x'),
  scalar,
  { maxKeys: 4 },
);
const descriptor = fc.dictionary(
  fc.constantFrom(
    'objectName',
    'ObjectName',
    'objectType',
    'objectAlias',
    'objectVersion',
    'objectVersionLabel',
    'filePermission',
    'optional',
    'allKeys',
    'jmesPath',
    'failoverObject',
    'other',
  ),
  fc.oneof(
    scalar,
    fc.constantFrom('secretsmanager', 'ssmparameter'),
    fc.array(fc.oneof(entry, scalar), { maxLength: 3 }),
    fc.dictionary(fc.constantFrom('objectName', 'objectVersion', 'objectVersionLabel'), scalar, { maxKeys: 3 }),
  ),
  { maxKeys: 8 },
);
const objectsYaml = fc.oneof(
  fc.array(fc.oneof(descriptor, fc.constant(null)), { maxLength: 5 }).map((list) => stringify(list)),
  fc.string({ maxLength: 60 }),
  fc.constantFrom(
    '- {',
    'not valid yaml [',
    '- objectName: a\n  objectType: secretsmanager\n',
    '*x',
    '&a [*a]',
    'a: &a\n  b: *a\n',
  ),
);
const attributeMap = fc.dictionary(
  fc.constantFrom(
    'region',
    'failoverRegion',
    'pathTranslation',
    'usePodIdentity',
    'preferredAddressType',
    'assumeRoleArn',
    'assumeRoleDurationSeconds',
    'csi.storage.k8s.io/serviceAccount.tokens',
    'objects',
  ),
  fc.oneof(
    fc.string({ maxLength: 10 }),
    fc.constantFrom('False', '/', '-', 'us-west-2', 'us-east-1', 'true', '{}', 'null'),
  ),
);

function onlyConfigErrors<T>(fn: () => T): T | undefined {
  try {
    return fn();
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return undefined;
  }
}

describe('parser properties', () => {
  test('attributes + objects: valid file names or ConfigError, nothing else', () => {
    fc.assert(
      fc.property(
        attributeMap,
        objectsYaml,
        fc.constantFrom('420', 'null', '384', '-1', ''),
        (attrs, yaml, permission) => {
          const a = onlyConfigErrors(() => parseAttributes(JSON.stringify(attrs)));
          const mode = onlyConfigErrors(() => parsePermission(permission)) ?? 0o644;
          const descriptors = onlyConfigErrors(() =>
            parseObjects(yaml, {
              pathTranslation: a?.pathTranslation ?? '_',
              defaultMode: mode,
              region: a?.region ?? '',
              failoverRegion: a?.failoverRegion ?? '',
            }),
          );
          for (const d of descriptors ?? []) {
            expect(filePathProblem(d.fileName)).toBeUndefined();
            for (const e of d.jmesPath) expect(filePathProblem(e.fileName)).toBeUndefined();
          }
        },
      ),
      { numRuns: 1500 },
    );
  });

  test('ConfigError problems all carry a path', () => {
    fc.assert(
      fc.property(objectsYaml, (yaml) => {
        try {
          parseObjects(yaml, {
            pathTranslation: false,
            defaultMode: 0o644,
            region: 'us-west-2',
            failoverRegion: 'us-east-1',
          });
        } catch (err) {
          expect(err).toBeInstanceOf(ConfigError);
          for (const p of (err as ConfigError).problems) expect(p.path).toMatch(/^objects/);
        }
      }),
      { numRuns: 500 },
    );
  });
});

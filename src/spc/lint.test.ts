import { expect, test } from 'vitest';
import { parseAttributes } from './attributes.js';
import { lintObjects } from './lint.js';
import { parseObjects } from './objects.js';

test('lintObjects warnings', () => {
  const raw = {
    preferredAddressType: 'ipv5',
    assumeRoleArn: 'arn:aws:iam::123456789012:role/r',
    objects:
      "- objectName: a\n  objectType: secretsmanager\n  filePermission: '0666'\n  optional: true\n  allKeys: true\n" +
      '  jmesPath:\n    - {path: k, objectAlias: \'"quoted-alias"\', render: json}\n- objectName: ..hidden\n  ' +
      'objectType: ssmparameter\n',
  };
  const attrs = parseAttributes(JSON.stringify(raw));
  const d = parseObjects(attrs.objects, {
    pathTranslation: attrs.pathTranslation,
    defaultMode: 0o644,
    region: '',
    failoverRegion: '',
  });
  const warnings = lintObjects(d, attrs, raw);
  expect(warnings.every((w) => w.severity === 'warning')).toBe(true);
  expect(warnings.map((w) => w.path)).toEqual([
    'preferredAddressType',
    'preferredAddressType',
    'assumeRoleArn',
    'objects[0].filePermission',
    'objects[0].optional',
    'objects[0].allKeys',
    'objects[0].jmesPath[0].filePermission',
    'objects[0].jmesPath[0].render',
    'objects[0].jmesPath[0].objectAlias',
    'objects[1].objectName',
  ]);
});

test("a class without region has no warning for it (the provider finds the node's region once)", () => {
  const attrs = parseAttributes(JSON.stringify({ objects: '- {objectName: a, objectType: secretsmanager}\n' }));
  const d = parseObjects(attrs.objects, { pathTranslation: '_', defaultMode: 0o644, region: '', failoverRegion: '' });
  expect(lintObjects(d, attrs)).toEqual([]);
});

test('a clean class has no warnings', () => {
  const attrs = parseAttributes(
    JSON.stringify({ region: 'us-west-2', objects: '- {objectName: a, objectType: secretsmanager}\n' }),
  );
  const d = parseObjects(attrs.objects, {
    pathTranslation: '_',
    defaultMode: 0o644,
    region: 'us-west-2',
    failoverRegion: '',
  });
  expect(lintObjects(d, attrs)).toEqual([]);
});

test('objectEncoding other than utf-8 warns that ASCP mounts the encoded text', () => {
  const raw = {
    region: 'us-west-2',
    objects:
      '- objectName: a\n  objectType: secretsmanager\n  ObjectEncoding: Base64\n  jmesPath: [{path: k, objectAlias: ' +
      'k, objectEncoding: hex}]\n' +
      '- objectName: b\n  objectType: secretsmanager\n  objectEncoding: utf-8\n',
  };
  const attrs = parseAttributes(JSON.stringify(raw));
  const d = parseObjects(attrs.objects, {
    pathTranslation: '_',
    defaultMode: 0o644,
    region: 'us-west-2',
    failoverRegion: '',
  });
  const warnings = lintObjects(d, attrs, raw);
  expect(warnings.map((w) => [w.path, w.severity])).toEqual([
    ['objects[0].objectEncoding', 'warning'],
    ['objects[0].jmesPath[0].objectEncoding', 'warning'],
  ]);
  expect(warnings[0]?.message).toContain('ASCP ignores it and mounts the base64 text as stored');
});

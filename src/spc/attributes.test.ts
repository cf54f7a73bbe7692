import { describe, expect, test } from 'vitest';
import { ConfigError, ProviderError } from '../errors.js';
import { failoverRegionProblem, parseAttributes, parsePermission, tokenFor } from './attributes.js';
import { regionLabel } from './regions.js';

const TOKENS = JSON.stringify({
  'sts.amazonaws.com': { token: 'test-irsa-token', expirationTimestamp: '2099-01-15T10:30:00Z' },
  'pods.eks.amazonaws.com': { token: 'test-pod-identity-token', expirationTimestamp: '2099-01-15T10:30:00Z' },
});

const attrs = (extra: Record<string, unknown> = {}): string =>
  JSON.stringify({
    'csi.storage.k8s.io/pod.name': 'fakePod',
    'csi.storage.k8s.io/pod.namespace': 'fakeNS',
    'csi.storage.k8s.io/pod.uid': 'uid-1',
    'csi.storage.k8s.io/serviceAccount.name': 'fakeSvcAcc',
    'csi.storage.k8s.io/serviceAccount.tokens': TOKENS,
    secretProviderClass: 'spc',
    objects: '- objectName: a\n  objectType: ssmparameter\n',
    ...extra,
  });

function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems.map((p) => p.message);
  }
  return [];
}

describe('parseAttributes', () => {
  test('reads every attribute with defaults', () => {
    const a = parseAttributes(attrs());
    expect(a).toMatchObject({
      podName: 'fakePod',
      podNamespace: 'fakeNS',
      podUid: 'uid-1',
      serviceAccountName: 'fakeSvcAcc',
      secretProviderClass: 'spc',
      region: '',
      failoverRegion: '',
      pathTranslation: '_',
      usePodIdentity: false,
      preferredAddressType: 'auto',
      assumeRole: undefined,
    });
    expect(a.tokens?.get('sts.amazonaws.com')?.token).toBe('test-irsa-token');
  });

  test.each([
    ['', 'failed to unmarshal attributes, error: unexpected end of JSON input'],
    [
      '{"region": 5}',
      'failed to unmarshal attributes, error: json: cannot unmarshal number into Go value of type string',
    ],
    [
      '[]',
      'failed to unmarshal attributes, error: json: cannot unmarshal array into Go value of type map[string]string',
    ],
    ['{not json', 'failed to unmarshal attributes, error: '],
  ])('attributes %j refused', (json, text) => {
    expect(problemsOf(() => parseAttributes(json))[0]).toContain(text);
  });

  test('null is an empty map', () => {
    expect(parseAttributes('null').podName).toBe('');
  });

  test.each([
    ['', '_'],
    ['False', false],
    ['FALSE', false],
    ['false', false],
    ['-', '-'],
    ['/', '/'],
  ] as const)('pathTranslation %j', (v, expected) => {
    expect(parseAttributes(attrs({ pathTranslation: v })).pathTranslation).toBe(expected);
  });

  test.each(['--', 'é', 'ab'])('P31 pathTranslation %j refused', (v) => {
    expect(problemsOf(() => parseAttributes(attrs({ pathTranslation: v })))).toEqual([
      "pathTranslation must be either 'False' or a single character string",
    ]);
  });

  test.each([
    ['1', true],
    ['t', true],
    ['T', true],
    ['TRUE', true],
    ['true', true],
    ['True', true],
    ['0', false],
    ['f', false],
    ['F', false],
    ['FALSE', false],
    ['false', false],
    ['False', false],
    ['', false],
  ] as const)('usePodIdentity %j → %s', (v, b) => {
    expect(parseAttributes(attrs({ usePodIdentity: v })).usePodIdentity).toBe(b);
  });

  test.each(['yes', 'tRUE', ' true', 'on'])('usePodIdentity %j refused with Go text', (v) => {
    expect(problemsOf(() => parseAttributes(attrs({ usePodIdentity: v })))).toEqual([
      `failed to parse usePodIdentity value, error: strconv.ParseBool: parsing ${JSON.stringify(v)}: invalid syntax`,
    ]);
  });

  test.each([
    ['', 'auto'],
    ['auto', 'auto'],
    ['ipv4', 'ipv4'],
    ['IPv4', 'ipv4'],
    ['ipv6', 'ipv6'],
    ['IPv6', 'ipv6'],
    ['invalid', 'auto'],
  ])('C04 preferredAddressType %j → %s', (v, expected) => {
    expect(parseAttributes(attrs({ preferredAddressType: v })).preferredAddressType).toBe(expected);
  });

  test('failover region equal to the primary', () => {
    expect(problemsOf(() => parseAttributes(attrs({ region: 'us-west-2', failoverRegion: 'us-west-2' })))).toEqual([
      'us-west-2: failover region cannot be the same as the primary region',
    ]);
    expect(failoverRegionProblem('eu-west-1', 'eu-west-1')?.message).toBe(
      'eu-west-1: failover region cannot be the same as the primary region',
    );
    expect(failoverRegionProblem('', 'eu-west-1')).toBeUndefined();
  });

  test('tokens: absent/empty → undefined; null → empty map', () => {
    expect(parseAttributes(attrs({ 'csi.storage.k8s.io/serviceAccount.tokens': undefined })).tokens).toBeUndefined();
    expect(parseAttributes(attrs({ 'csi.storage.k8s.io/serviceAccount.tokens': '' })).tokens).toBeUndefined();
    expect(parseAttributes(attrs({ 'csi.storage.k8s.io/serviceAccount.tokens': 'null' })).tokens?.size).toBe(0);
  });

  test('tokens: Go field names match case-insensitively', () => {
    const a = parseAttributes(
      attrs({ 'csi.storage.k8s.io/serviceAccount.tokens': '{"sts.amazonaws.com":{"Token":"abc","extra":1}}' }),
    );
    expect(a.tokens?.get('sts.amazonaws.com')).toEqual({ token: 'abc', expirationTimestamp: '' });
  });

  test.each([
    'not json',
    '{"sts.amazonaws.com": "secret-token-text"}',
    '{"sts.amazonaws.com": {"token": 42}}',
    '["secret-token-text"]',
  ])('malformed tokens %j refused without echoing them', (v) => {
    const msgs = problemsOf(() => parseAttributes(attrs({ 'csi.storage.k8s.io/serviceAccount.tokens': v })));
    expect(msgs).toHaveLength(1);
    expect(msgs[0]).toContain('CSI token error: failed to parse serviceAccount.tokens: ');
    expect(msgs[0]).not.toContain('secret-token-text');
    expect(msgs[0]).not.toContain('42');
  });

  test('assume-role extension', () => {
    const ok = parseAttributes(
      attrs({
        assumeRoleArn: 'arn:aws:iam::123456789012:role/reader',
        assumeRoleExternalId: 'ext-id_1',
        assumeRoleDurationSeconds: '900',
      }),
    );
    expect(ok.assumeRole).toEqual({
      roleArn: 'arn:aws:iam::123456789012:role/reader',
      externalId: 'ext-id_1',
      durationSeconds: 900,
    });
    expect(
      parseAttributes(attrs({ assumeRoleArn: 'arn:aws-cn:iam::123456789012:role/path/r' })).assumeRole?.roleArn,
    ).toContain('aws-cn');
  });

  test('every attribute problem is reported together', () => {
    const msgs = problemsOf(() =>
      parseAttributes(
        attrs({
          pathTranslation: '--',
          usePodIdentity: 'yes',
          region: 'us-east-1',
          failoverRegion: 'us-east-1',
          assumeRoleArn: 'arn:aws:iam::12345:role/x',
          assumeRoleExternalId: 'x',
          assumeRoleDurationSeconds: '3601',
        }),
      ),
    );
    expect(msgs).toHaveLength(6);
    expect(msgs.join('\n')).toMatch(/failover region cannot be the same/);
    expect(msgs.join('\n')).toMatch(/pathTranslation must be either/);
    expect(msgs.join('\n')).toMatch(/usePodIdentity/);
    expect(msgs.join('\n')).toMatch(/assumeRoleArn must be an IAM role ARN/);
    expect(msgs.join('\n')).toMatch(/assumeRoleExternalId must be 2–1224 characters .*got 1 characters/);
    expect(msgs.join('\n')).toMatch(/assumeRoleDurationSeconds must be a whole number of seconds from 900 to 3600/);
  });

  test.each([
    'us-east-1',
    'ap-southeast-9',
    'cn-northwest-1',
    'us-gov-west-1',
    'us-isob-east-1',
    'eu-isoe-west-1',
    'eusc-de-east-1',
  ])("region %s has the form of an AWS partition's region: accepted", (region) => {
    expect(parseAttributes(attrs({ region })).region).toBe(region);
  });

  test.each(['zz-nowhere-1', 'us-east-1a', 'localhost', 'us-east-100', 'US-EAST-1', 'a'.repeat(63)])(
    'region %s is refused as a class problem',
    (region) => {
      expect(
        problemsOf(() => parseAttributes(attrs({ region, failoverRegion: region === 'localhost' ? '' : 'us-west-2' }))),
      ).toEqual([
        expect.stringMatching(
          /^region: .* is not an AWS region name \(such as us-east-1; the operator can allow others with --extra-regi/,
        ),
      ]);
    },
  );

  test('an operator-allowed region (--extra-regions) is accepted; metrics label only known or allowed regions', () => {
    const extra = new Set(['zz-nowhere-1']);
    expect(parseAttributes(attrs({ region: 'zz-nowhere-1' }), { extraRegions: extra }).region).toBe('zz-nowhere-1');
    expect(regionLabel('eu-west-1')).toBe('eu-west-1');
    expect(regionLabel('ap-southeast-9')).toBe('other');
    expect(regionLabel('zz-nowhere-1', extra)).toBe('zz-nowhere-1');
  });

  test('assume-role options need assumeRoleArn', () => {
    expect(
      problemsOf(() => parseAttributes(attrs({ assumeRoleDurationSeconds: '900', assumeRoleExternalId: 'abc' }))),
    ).toHaveLength(2);
  });
});

describe('parsePermission (Go json → uint32)', () => {
  test.each([
    ['420', 420],
    [' 420 ', 420],
    ['\n420\t', 420],
    ['0', 0],
    ['null', 0],
    ['4294967295', 4294967295],
  ])('%j → %d', (v, n) => {
    expect(parsePermission(v)).toBe(n);
  });

  test.each([
    ['', 'unexpected end of JSON input'],
    ['-1', 'json: cannot unmarshal number -1 into Go value of type fs.FileMode'],
    ['420.0', 'json: cannot unmarshal number 420.0 into Go value of type fs.FileMode'],
    ['1e3', 'json: cannot unmarshal number 1e3 into Go value of type fs.FileMode'],
    ['4294967296', 'json: cannot unmarshal number 4294967296 into Go value of type fs.FileMode'],
    ['"420"', 'json: cannot unmarshal string into Go value of type fs.FileMode'],
    ['0644', "invalid character '6' after top-level value"],
    ['true', 'json: cannot unmarshal bool into Go value of type fs.FileMode'],
    ['abc', "invalid character 'a' looking for beginning of value"],
  ])('%j refused', (v, text) => {
    expect(problemsOf(() => parsePermission(v))).toEqual([`failed to unmarshal file permission, error: ${text}`]);
  });
});

describe('tokenFor (U03)', () => {
  const a = parseAttributes(attrs());
  test('finds each audience', () => {
    expect(tokenFor(a, 'sts.amazonaws.com')).toBe('test-irsa-token');
    expect(tokenFor(a, 'pods.eks.amazonaws.com')).toBe('test-pod-identity-token');
  });

  const cases: {
    name: string;
    tokens: string | undefined;
    audience: 'sts.amazonaws.com' | 'pods.eks.amazonaws.com';
    code: string;
    message: string;
  }[] = [
    {
      name: 'no tokens attribute',
      tokens: undefined,
      audience: 'sts.amazonaws.com',
      code: 'INVALID_ARGUMENT',
      message: 'CSI token error: serviceAccount.tokens not provided - ensure tokenRequests is configured in CSIDriver',
    },
    {
      name: 'audience missing (IRSA)',
      tokens: '{"pods.eks.amazonaws.com":{"token":"x"}}',
      audience: 'sts.amazonaws.com',
      code: 'INVALID_ARGUMENT',
      message:
        'IRSA token extraction failed: token for audience "sts.amazonaws.com" not found - ensure tokenRequests ' +
        'includes this audience in CSIDriver',
    },
    {
      name: 'empty token (Pod Identity)',
      tokens: '{"pods.eks.amazonaws.com":{"token":""}}',
      audience: 'pods.eks.amazonaws.com',
      code: 'UNAUTHENTICATED',
      message: 'Pod Identity token extraction failed: token for audience "pods.eks.amazonaws.com" is empty',
    },
  ];
  test.each(cases)('$name', ({ tokens, audience, code, message }) => {
    const parsed = parseAttributes(attrs({ 'csi.storage.k8s.io/serviceAccount.tokens': tokens }));
    let err: unknown;
    try {
      tokenFor(parsed, audience);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ProviderError);
    expect((err as ProviderError).code).toBe(code);
    expect((err as ProviderError).message).toBe(message);
  });
});

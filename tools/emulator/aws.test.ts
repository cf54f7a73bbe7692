// The AWS side of the emulator, through the real SDK v3 clients: STS web identity and role
// chaining, Secrets Manager, SSM, the IAM, EKS and KMS reads `doctor` makes, SigV4 checks, region
// separation and the call log.
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import {
  AssumeRoleCommand,
  AssumeRoleWithWebIdentityCommand,
  GetCallerIdentityCommand,
  STSClient,
} from '@aws-sdk/client-sts';
import {
  BatchGetSecretValueCommand,
  DescribeSecretCommand,
  GetSecretValueCommand,
  PutSecretValueCommand,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import {
  GetParameterCommand,
  GetParametersCommand,
  LabelParameterVersionCommand,
  PutParameterCommand,
  SSMClient,
} from '@aws-sdk/client-ssm';
import {
  GetRoleCommand,
  IAMClient,
  ListOpenIDConnectProvidersCommand,
  SimulatePrincipalPolicyCommand,
} from '@aws-sdk/client-iam';
import {
  DescribePodIdentityAssociationCommand,
  EKSClient,
  ListPodIdentityAssociationsCommand,
} from '@aws-sdk/client-eks';
import { DescribeKeyCommand, GetKeyPolicyCommand, KMSClient } from '@aws-sdk/client-kms';
import { CLUSTER_NAME, DEFAULT_ISSUER, startEmulator, type Emulator } from './emulator.js';

const READER = 'arn:aws:iam::123456789012:role/app-reader';
const OTHER = 'arn:aws:iam::123456789012:role/other-app';
const WRITER = 'arn:aws:iam::123456789012:role/writer';
const CROSS = 'arn:aws:iam::210987654321:role/cross-account';
const SUB = 'system:serviceaccount:default:app';

interface Creds {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
}

let clock = Date.UTC(2026, 0, 1);
let emu: Emulator;

function sts(credentials?: Creds): STSClient {
  return new STSClient({
    region: 'us-east-1',
    endpoint: emu.url,
    maxAttempts: 1,
    ...(credentials ? { credentials } : {}),
  });
}
function sm(credentials: Creds, region = 'us-east-1'): SecretsManagerClient {
  return new SecretsManagerClient({ region, endpoint: emu.url, credentials, maxAttempts: 1 });
}
function ssm(credentials: Creds, region = 'us-east-1'): SSMClient {
  return new SSMClient({ region, endpoint: emu.url, credentials, maxAttempts: 1 });
}

async function webIdentity(roleArn = READER, token?: string, extra: { DurationSeconds?: number } = {}): Promise<Creds> {
  const t = token ?? emu.issueToken({ namespace: 'default', serviceAccount: 'app', audience: 'sts.amazonaws.com' });
  const out = await sts().send(
    new AssumeRoleWithWebIdentityCommand({
      RoleArn: roleArn,
      RoleSessionName: 'test-session',
      WebIdentityToken: t,
      ...extra,
    }),
  );
  const c = out.Credentials;
  if (c?.AccessKeyId === undefined || c.SecretAccessKey === undefined || c.SessionToken === undefined)
    throw new Error('no credentials');
  return { accessKeyId: c.AccessKeyId, secretAccessKey: c.SecretAccessKey, sessionToken: c.SessionToken };
}

async function rejection(p: Promise<unknown>): Promise<{ name: string; message: string; status: number | undefined }> {
  try {
    await p;
  } catch (e) {
    const err = e as { name: string; message: string; $metadata?: { httpStatusCode?: number } };
    return { name: err.name, message: err.message, status: err.$metadata?.httpStatusCode };
  }
  throw new Error('expected a rejection');
}

beforeAll(async () => {
  emu = await startEmulator({ now: () => clock });
  emu.addRole({
    arn: READER,
    trust: { subjects: [SUB] },
    allow: { secretsmanager: ['prod/*', 'bin/*'], ssm: ['/app/*', 'plain'] },
  });
  emu.addRole({
    arn: OTHER,
    trust: { subjects: ['system:serviceaccount:default:other'] },
    allow: { secretsmanager: ['other/*'], batchGetSecretValue: true },
  });
  emu.addRole({ arn: WRITER, allow: { secretsmanager: ['*'], ssm: ['*'], write: true } });
  emu.addRole({ arn: CROSS, trustedRoles: [READER], externalId: 'ext-123', allow: { secretsmanager: ['*'] } });
  emu.putSecret('us-east-1', 'prod/db-creds', '{"username":"app","password":"pw"}', { versionId: 'v1' });
  emu.putSecret('us-east-1', 'bin/blob', new Uint8Array([0, 1, 2, 255]));
  emu.putSecret('us-east-1', 'other/secret', 'nope');
  emu.putSecret('us-east-1', 'prod/kms-broken', 'x', { kmsFails: true });
  emu.putSecret('us-east-1', 'prod/cmk', 'y', { kmsKeyId: 'arn:aws:kms:us-east-1:123456789012:key/cmk-1' });
  emu.putSecret('us-west-2', 'prod/db-creds', 'west-value', { versionId: 'w1' });
  emu.putParameter('us-east-1', '/app/flag', 'on');
  emu.putParameter('us-east-1', '/app/flag', 'off', { labels: ['prod'] });
  emu.putParameter('us-east-1', '/app/db-host', 'db.internal', { type: 'SecureString' });
  emu.putParameter('us-east-1', '/app/kms', 'k', { type: 'SecureString', kmsFails: true });
  emu.putParameter('us-east-1', 'plain', 'p');
});
afterAll(async () => {
  await emu.close();
});
beforeEach(() => {
  emu.resetCalls();
});

describe('STS AssumeRoleWithWebIdentity', () => {
  test('accepts a trusted token and the session can call GetCallerIdentity', async () => {
    const creds = await webIdentity();
    expect(creds.accessKeyId).toMatch(/^ASIA[A-Z2-7]{16}$/);
    const who = await sts(creds).send(new GetCallerIdentityCommand({}));
    expect(who.Arn).toBe('arn:aws:sts::123456789012:assumed-role/app-reader/test-session');
    expect(who.Account).toBe('123456789012');
  });

  const cases: Array<[string, () => string, string, string, number]> = [
    [
      'wrong sub',
      () => emu.issueToken({ namespace: 'default', serviceAccount: 'intruder', audience: 'sts.amazonaws.com' }),
      'AccessDenied',
      'Not authorized to perform sts:AssumeRoleWithWebIdentity',
      403,
    ],
    [
      'wrong aud',
      () => emu.issueToken({ namespace: 'default', serviceAccount: 'app', audience: 'pods.eks.amazonaws.com' }),
      'InvalidIdentityTokenException',
      'Incorrect token audience',
      400,
    ],
    [
      'expired',
      () =>
        emu.issueToken({
          namespace: 'default',
          serviceAccount: 'app',
          audience: 'sts.amazonaws.com',
          expiresInSeconds: -5,
        }),
      'ExpiredTokenException',
      'Token expired',
      400,
    ],
    [
      'bad signature',
      () => {
        const t = emu.issueToken({ namespace: 'default', serviceAccount: 'app', audience: 'sts.amazonaws.com' });
        return t.slice(0, -4) + (t.endsWith('AAAA') ? 'BBBB' : 'AAAA');
      },
      'InvalidIdentityTokenException',
      'could not be validated',
      400,
    ],
    [
      'unknown issuer',
      () =>
        emu.issueToken({
          namespace: 'default',
          serviceAccount: 'app',
          audience: 'sts.amazonaws.com',
          issuer: 'https://evil.example',
        }),
      'InvalidIdentityTokenException',
      'No OpenIDConnect provider',
      400,
    ],
    ['not a JWT', () => 'not-a-jwt', 'InvalidIdentityTokenException', 'not a valid JWT', 400],
  ];
  test.each(cases)('refuses %s', async (_, token, name, message, status) => {
    const err = await rejection(webIdentity(READER, token()));
    expect(err).toMatchObject({ name, status });
    expect(err.message).toContain(message);
  });

  test('refuses an unknown role the way AWS does (AccessDenied)', async () => {
    const err = await rejection(webIdentity('arn:aws:iam::123456789012:role/missing'));
    expect(err.name).toBe('AccessDenied');
  });

  test.each([
    ['a', 'length greater than or equal to 2'],
    ['x'.repeat(65), 'length less than or equal to 64'],
    ['bad name!', 'regular expression pattern'],
  ])('validates RoleSessionName %j', async (name, message) => {
    const token = emu.issueToken({ namespace: 'default', serviceAccount: 'app', audience: 'sts.amazonaws.com' });
    const err = await rejection(
      sts().send(
        new AssumeRoleWithWebIdentityCommand({ RoleArn: READER, RoleSessionName: name, WebIdentityToken: token }),
      ),
    );
    expect(err.name).toBe('ValidationError');
    expect(err.message).toContain(message);
  });

  test('DurationSeconds sets the expiration; beyond MaxSessionDuration is refused', async () => {
    const token = emu.issueToken({ namespace: 'default', serviceAccount: 'app', audience: 'sts.amazonaws.com' });
    const out = await sts().send(
      new AssumeRoleWithWebIdentityCommand({
        RoleArn: READER,
        RoleSessionName: 's1',
        WebIdentityToken: token,
        DurationSeconds: 900,
      }),
    );
    expect(out.Credentials?.Expiration?.getTime()).toBe(clock + 900_000);
    expect(out.SubjectFromWebIdentityToken).toBe(SUB);
    const err = await rejection(
      sts().send(
        new AssumeRoleWithWebIdentityCommand({
          RoleArn: READER,
          RoleSessionName: 's1',
          WebIdentityToken: token,
          DurationSeconds: 7200,
        }),
      ),
    );
    expect(err.name).toBe('ValidationError');
  });
});

describe('STS AssumeRole (chaining)', () => {
  test('trusted source role with the right ExternalId gets cross-account credentials', async () => {
    const src = await webIdentity();
    const out = await sts(src).send(
      new AssumeRoleCommand({ RoleArn: CROSS, RoleSessionName: 'chain', ExternalId: 'ext-123', DurationSeconds: 3600 }),
    );
    expect(out.AssumedRoleUser?.Arn).toBe('arn:aws:sts::210987654321:assumed-role/cross-account/chain');
    const c = out.Credentials;
    const who = await sts({
      accessKeyId: c?.AccessKeyId ?? '',
      secretAccessKey: c?.SecretAccessKey ?? '',
      sessionToken: c?.SessionToken ?? '',
    }).send(new GetCallerIdentityCommand({}));
    expect(who.Account).toBe('210987654321');
  });

  test.each([
    ['wrong ExternalId', { ExternalId: 'nope' }, 'AccessDenied'],
    ['missing ExternalId', {}, 'AccessDenied'],
    ['DurationSeconds above the 1 h chaining cap', { ExternalId: 'ext-123', DurationSeconds: 3601 }, 'ValidationError'],
    ['DurationSeconds below 900', { ExternalId: 'ext-123', DurationSeconds: 899 }, 'ValidationError'],
  ])('refuses %s', async (_, extra, name) => {
    const src = await webIdentity();
    const err = await rejection(
      sts(src).send(new AssumeRoleCommand({ RoleArn: CROSS, RoleSessionName: 'chain', ...extra })),
    );
    expect(err.name).toBe(name);
  });

  test('refuses a source role the target does not trust', async () => {
    const src = emu.issueCredentials(OTHER);
    const err = await rejection(
      sts(src).send(new AssumeRoleCommand({ RoleArn: CROSS, RoleSessionName: 'chain', ExternalId: 'ext-123' })),
    );
    expect(err.name).toBe('AccessDenied');
    expect(err.message).toContain('is not authorized to perform: sts:AssumeRole on resource: ' + CROSS);
  });
});

describe('Secrets Manager', () => {
  let creds: Creds;
  let arn: string;
  beforeAll(async () => {
    creds = await webIdentity();
    arn = (await sm(creds).send(new DescribeSecretCommand({ SecretId: 'prod/db-creds' }))).ARN ?? '';
  });

  test('GetSecretValue by name, full ARN, partial ARN, VersionId and VersionStage', async () => {
    expect(arn).toMatch(/^arn:aws:secretsmanager:us-east-1:123456789012:secret:prod\/db-creds-[A-Za-z]{6}$/);
    const partial = arn.slice(0, -7);
    for (const input of [
      { SecretId: 'prod/db-creds' },
      { SecretId: arn },
      { SecretId: partial },
      { SecretId: 'prod/db-creds', VersionId: 'v1' },
      { SecretId: 'prod/db-creds', VersionStage: 'AWSCURRENT' },
    ]) {
      const out = await sm(creds).send(new GetSecretValueCommand(input));
      expect(out).toMatchObject({
        Name: 'prod/db-creds',
        ARN: arn,
        VersionId: 'v1',
        SecretString: '{"username":"app","password":"pw"}',
        VersionStages: ['AWSCURRENT'],
      });
      expect(out.CreatedDate).toBeInstanceOf(Date);
    }
  });

  test('binary secrets come back as bytes', async () => {
    const out = await sm(creds).send(new GetSecretValueCommand({ SecretId: 'bin/blob' }));
    expect(out.SecretString).toBeUndefined();
    expect(Buffer.from(out.SecretBinary ?? new Uint8Array())).toEqual(Buffer.from([0, 1, 2, 255]));
  });

  test.each([
    [
      'a missing secret',
      { SecretId: 'prod/missing' },
      'ResourceNotFoundException',
      "Secrets Manager can't find the specified secret.",
    ],
    [
      'a missing version',
      { SecretId: 'prod/db-creds', VersionId: 'nope' },
      'ResourceNotFoundException',
      'VersionId: nope',
    ],
    [
      'a missing stage',
      { SecretId: 'prod/db-creds', VersionStage: 'AWSPENDING' },
      'ResourceNotFoundException',
      'staging label: AWSPENDING',
    ],
    [
      'an ARN of another region',
      { SecretId: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-creds' },
      'ResourceNotFoundException',
      "can't find",
    ],
    ['KMS refusing', { SecretId: 'prod/kms-broken' }, 'DecryptionFailure', "can't decrypt"],
    [
      'a customer managed key the role may not kms:Decrypt with',
      { SecretId: 'prod/cmk' },
      'AccessDeniedException',
      'Access to KMS is not allowed',
    ],
    [
      "another role's secret",
      { SecretId: 'other/secret' },
      'AccessDeniedException',
      'User: arn:aws:sts::123456789012:assumed-role/app-reader/test-session is not authorized to perform: ' +
        'secretsmanager:GetSecretValue on resource: other/secret because no identity-based policy allows the ' +
        'secretsmanager:GetSecretValue action',
    ],
  ])('GetSecretValue refuses %s', async (_, input, name, message) => {
    const err = await rejection(sm(creds).send(new GetSecretValueCommand(input)));
    expect(err).toMatchObject({ name, status: 400 });
    expect(err.message).toContain(message);
  });

  test('DescribeSecret lists VersionIdsToStages; a least-privilege role is refused', async () => {
    const out = await sm(creds).send(new DescribeSecretCommand({ SecretId: 'prod/db-creds' }));
    expect(out.VersionIdsToStages).toEqual({ v1: ['AWSCURRENT'] });
    emu.addRole({
      arn: 'arn:aws:iam::123456789012:role/least',
      allow: { secretsmanager: ['prod/*'], describeSecret: false },
    });
    const least = emu.issueCredentials('arn:aws:iam::123456789012:role/least');
    const err = await rejection(sm(least).send(new DescribeSecretCommand({ SecretId: 'prod/db-creds' })));
    expect(err.name).toBe('AccessDeniedException');
    expect(err.message).toContain('secretsmanager:DescribeSecret');
    expect((await sm(least).send(new GetSecretValueCommand({ SecretId: 'prod/db-creds' }))).VersionId).toBe('v1');
  });

  test('BatchGetSecretValue needs its own permission, and reports per-secret errors', async () => {
    const denied = await rejection(sm(creds).send(new BatchGetSecretValueCommand({ SecretIdList: ['prod/db-creds'] })));
    expect(denied.name).toBe('AccessDeniedException');
    expect(denied.message).toContain('secretsmanager:BatchGetSecretValue');
    const other = emu.issueCredentials(OTHER);
    const out = await sm(other).send(
      new BatchGetSecretValueCommand({ SecretIdList: ['other/secret', 'prod/db-creds', 'other/missing'] }),
    );
    expect(out.SecretValues?.map((v) => v.Name)).toEqual(['other/secret']);
    expect(out.Errors?.map((e) => [e.SecretId, e.ErrorCode])).toEqual([
      ['prod/db-creds', 'AccessDeniedException'],
      ['other/missing', 'ResourceNotFoundException'],
    ]);
  });

  test('PutSecretValue rotates: new AWSCURRENT, old AWSPREVIOUS', async () => {
    emu.putSecret('us-east-1', 'prod/rotating', 'one', { versionId: 'r1' });
    const writer = emu.issueCredentials(WRITER);
    const put = await sm(writer).send(
      new PutSecretValueCommand({
        SecretId: 'prod/rotating',
        SecretString: 'two',
        ClientRequestToken: 'r2-000000000000000000000000000000000',
      }),
    );
    expect(put.VersionStages).toEqual(['AWSCURRENT']);
    const cur = await sm(creds).send(new GetSecretValueCommand({ SecretId: 'prod/rotating' }));
    expect([cur.SecretString, cur.VersionId]).toEqual(['two', 'r2-000000000000000000000000000000000']);
    const prev = await sm(creds).send(
      new GetSecretValueCommand({ SecretId: 'prod/rotating', VersionStage: 'AWSPREVIOUS' }),
    );
    expect([prev.SecretString, prev.VersionId]).toEqual(['one', 'r1']);
    const d = await sm(creds).send(new DescribeSecretCommand({ SecretId: 'prod/rotating' }));
    expect(d.VersionIdsToStages).toEqual({
      r1: ['AWSPREVIOUS'],
      'r2-000000000000000000000000000000000': ['AWSCURRENT'],
    });
    // A reader may not write.
    expect(
      (await rejection(sm(creds).send(new PutSecretValueCommand({ SecretId: 'prod/rotating', SecretString: 'x' }))))
        .name,
    ).toBe('AccessDeniedException');
  });

  test('deleteSecret makes it ResourceNotFound', async () => {
    emu.putSecret('us-east-1', 'prod/temp', 't');
    emu.deleteSecret('us-east-1', 'prod/temp');
    expect((await rejection(sm(creds).send(new GetSecretValueCommand({ SecretId: 'prod/temp' })))).name).toBe(
      'ResourceNotFoundException',
    );
  });
});

describe('SSM', () => {
  let creds: Creds;
  beforeAll(async () => {
    creds = await webIdentity();
  });

  test('GetParameters: selectors, ARNs, decryption, and InvalidParameters echoing the request', async () => {
    const out = await ssm(creds).send(
      new GetParametersCommand({
        Names: [
          '/app/flag',
          '/app/flag:1',
          '/app/flag:prod',
          'arn:aws:ssm:us-east-1:123456789012:parameter/app/db-host',
          'plain',
          '/app/missing',
          '/app/flag:9',
          '/app/flag:nolabel',
        ],
        WithDecryption: true,
      }),
    );
    expect(out.Parameters?.map((p) => [p.Name, p.Selector, p.Value, p.Version, p.Type])).toEqual([
      ['/app/flag', undefined, 'off', 2, 'String'],
      ['/app/flag', ':1', 'on', 1, 'String'],
      ['/app/flag', ':prod', 'off', 2, 'String'],
      ['/app/db-host', undefined, 'db.internal', 1, 'SecureString'],
      ['plain', undefined, 'p', 1, 'String'],
    ]);
    expect(out.Parameters?.[3]?.ARN).toBe('arn:aws:ssm:us-east-1:123456789012:parameter/app/db-host');
    expect(out.Parameters?.[0]?.LastModifiedDate).toBeInstanceOf(Date);
    expect(out.InvalidParameters).toEqual(['/app/missing', '/app/flag:9', '/app/flag:nolabel']);
  });

  test('SecureString without decryption is not the plaintext', async () => {
    const out = await ssm(creds).send(new GetParametersCommand({ Names: ['/app/db-host'], WithDecryption: false }));
    expect(out.Parameters?.[0]?.Value).not.toBe('db.internal');
    expect(out.Parameters?.[0]?.Value).toMatch(/^AQICAH/);
  });

  test.each([
    [
      'more than 10 names',
      { Names: Array.from({ length: 11 }, (_, i) => `/app/p${i}`) },
      'ValidationException',
      'less than or equal to 10',
    ],
    ['a KMS failure', { Names: ['/app/kms'], WithDecryption: true }, 'InvalidKeyId', ''],
    [
      'an unreadable name',
      { Names: ['/app/flag', '/secret/x'] },
      'AccessDeniedException',
      'is not authorized to perform: ssm:GetParameters on resource: ' +
        'arn:aws:ssm:us-east-1:123456789012:parameter/secret/x',
    ],
  ])('GetParameters refuses %s', async (_, input, name, message) => {
    const err = await rejection(ssm(creds).send(new GetParametersCommand(input)));
    expect(err.name).toBe(name);
    expect(err.message).toContain(message);
  });

  test('GetParameter, PutParameter (Overwrite → new version), LabelParameterVersion', async () => {
    const writer = emu.issueCredentials(WRITER);
    await ssm(writer).send(new PutParameterCommand({ Name: '/app/new', Value: 'a', Type: 'String' }));
    expect((await rejection(ssm(writer).send(new PutParameterCommand({ Name: '/app/new', Value: 'b' })))).name).toBe(
      'ParameterAlreadyExists',
    );
    expect(
      (await ssm(writer).send(new PutParameterCommand({ Name: '/app/new', Value: 'b', Overwrite: true }))).Version,
    ).toBe(2);
    await ssm(writer).send(
      new LabelParameterVersionCommand({ Name: '/app/new', ParameterVersion: 1, Labels: ['old'] }),
    );
    expect((await ssm(creds).send(new GetParameterCommand({ Name: '/app/new:old' }))).Parameter?.Value).toBe('a');
    expect((await ssm(creds).send(new GetParameterCommand({ Name: '/app/new' }))).Parameter?.Value).toBe('b');
    expect((await rejection(ssm(creds).send(new GetParameterCommand({ Name: '/app/none' })))).name).toBe(
      'ParameterNotFound',
    );
  });
});

describe("doctor's reads: IAM (Query), EKS (REST-JSON), KMS (JSON 1.1)", () => {
  const OPERATOR = 'arn:aws:iam::123456789012:role/operator';
  const KEY = 'arn:aws:kms:us-east-1:123456789012:key/0b7e5c1d-1111-4222-8333-444455556666';
  let creds: Creds;
  beforeAll(() => {
    emu.addRole({ arn: OPERATOR, allow: { iamRead: true, eksRead: true, kmsRead: true } });
    emu.addKmsKey({ arn: KEY, aliases: ['alias/app-secrets'] });
    emu.addPodIdentityAssociation({ namespace: 'default', serviceAccount: 'app', roleArn: READER });
    creds = emu.issueCredentials(OPERATOR);
  });
  const iam = (): IAMClient =>
    new IAMClient({ region: 'us-east-1', endpoint: emu.url, credentials: creds, maxAttempts: 1 });

  test('IAM GetRole (the trust policy URL-encoded), ListOpenIDConnectProviders, SimulatePrincipalPolicy', async () => {
    const role = (await iam().send(new GetRoleCommand({ RoleName: 'app-reader' }))).Role;
    expect(role?.Arn).toBe(READER);
    const trust = JSON.parse(decodeURIComponent(role?.AssumeRolePolicyDocument ?? '')) as { Statement: unknown[] };
    expect(JSON.stringify(trust.Statement[0])).toContain(SUB);
    expect((await rejection(iam().send(new GetRoleCommand({ RoleName: 'missing' })))).name).toBe(
      'NoSuchEntityException',
    );
    const providers = await iam().send(new ListOpenIDConnectProvidersCommand({}));
    expect(providers.OpenIDConnectProviderList?.map((p) => p.Arn)).toEqual([
      `arn:aws:iam::123456789012:oidc-provider/${DEFAULT_ISSUER.replace('https://', '')}`,
    ]);
    const simulate = async (action: string, resource: string): Promise<string | undefined> =>
      (
        await iam().send(
          new SimulatePrincipalPolicyCommand({
            PolicySourceArn: READER,
            ActionNames: [action],
            ResourceArns: [resource],
            ContextEntries: [{ ContextKeyName: 'kms:ViaService', ContextKeyType: 'string', ContextKeyValues: ['x'] }],
          }),
        )
      ).EvaluationResults?.[0]?.EvalDecision;
    expect(
      await simulate(
        'secretsmanager:GetSecretValue',
        'arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/x-AbCdEf',
      ),
    ).toBe('allowed');
    expect(await simulate('kms:Decrypt', KEY)).toBe('implicitDeny');
    expect(emu.calls.filter((c) => c.service === 'iam').map((c) => c.status)).toEqual([200, 404, 200, 200, 200]);
  });

  test('EKS ListPodIdentityAssociations and DescribePodIdentityAssociation; another cluster is not found', async () => {
    const eks = new EKSClient({ region: 'us-east-1', endpoint: emu.url, credentials: creds, maxAttempts: 1 });
    const list = await eks.send(
      new ListPodIdentityAssociationsCommand({
        clusterName: CLUSTER_NAME,
        namespace: 'default',
        serviceAccount: 'app',
      }),
    );
    const id = list.associations?.[0]?.associationId ?? '';
    expect(list.associations).toHaveLength(1);
    const one = await eks.send(
      new DescribePodIdentityAssociationCommand({ clusterName: CLUSTER_NAME, associationId: id }),
    );
    expect(one.association?.roleArn).toBe(READER);
    expect((await rejection(eks.send(new ListPodIdentityAssociationsCommand({ clusterName: 'other' })))).name).toBe(
      'ResourceNotFoundException',
    );
  });

  test('KMS DescribeKey: key ARN, key ID, alias, alias ARN name one key; AWS managed; not found; denied', async () => {
    const kms = (c: Creds = creds): KMSClient =>
      new KMSClient({ region: 'us-east-1', endpoint: emu.url, credentials: c, maxAttempts: 1 });
    const id = KEY.slice(KEY.indexOf('key/') + 4);
    for (const keyId of [KEY, id, 'alias/app-secrets', 'arn:aws:kms:us-east-1:123456789012:alias/app-secrets']) {
      const m = (await kms().send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata;
      expect([m?.Arn, m?.KeyId, m?.KeyManager, m?.KeyState]).toEqual([KEY, id, 'CUSTOMER', 'Enabled']);
    }
    const managed = (await kms().send(new DescribeKeyCommand({ KeyId: 'alias/aws/secretsmanager' }))).KeyMetadata;
    expect(managed?.KeyManager).toBe('AWS');
    // A key a secret names by ARN exists from then on.
    expect(
      (await kms().send(new DescribeKeyCommand({ KeyId: 'arn:aws:kms:us-east-1:123456789012:key/cmk-1' }))).KeyMetadata
        ?.KeyManager,
    ).toBe('CUSTOMER');
    expect((await rejection(kms().send(new DescribeKeyCommand({ KeyId: 'alias/none' })))).name).toBe(
      'NotFoundException',
    );
    // Keys are regional: the same ARN asked in another region is not found.
    const west = new KMSClient({ region: 'us-west-2', endpoint: emu.url, credentials: creds, maxAttempts: 1 });
    expect((await rejection(west.send(new DescribeKeyCommand({ KeyId: KEY })))).name).toBe('NotFoundException');
    const denied = await rejection(kms(await webIdentity()).send(new DescribeKeyCommand({ KeyId: KEY })));
    expect(denied.name).toBe('AccessDeniedException');
    expect(emu.calls.filter((c) => c.service === 'kms').every((c) => c.operation === 'DescribeKey')).toBe(true);
  });

  test('a secret and a SecureString under a customer managed key (or its alias) need kms:Decrypt on it', async () => {
    emu.putSecret('us-east-1', 'prod/aliased', 'z', { kmsKeyId: 'alias/app-secrets' });
    emu.putParameter('us-east-1', '/app/cmk', 'c', { type: 'SecureString', kmsKeyId: KEY });
    const reader = await webIdentity();
    expect((await rejection(sm(reader).send(new GetSecretValueCommand({ SecretId: 'prod/aliased' })))).message).toBe(
      'Access to KMS is not allowed',
    );
    expect(
      (await rejection(ssm(reader).send(new GetParametersCommand({ Names: ['/app/cmk'], WithDecryption: true })))).name,
    ).toBe('AccessDeniedException');
    // Without decryption SSM does not use the key.
    expect((await ssm(reader).send(new GetParametersCommand({ Names: ['/app/cmk'] }))).Parameters).toHaveLength(1);
    const withKey = 'arn:aws:iam::123456789012:role/with-key';
    emu.addRole({ arn: withKey, allow: { secretsmanager: ['prod/*'], ssm: ['/app/*'], kms: [KEY] } });
    const c = emu.issueCredentials(withKey);
    expect((await sm(c).send(new GetSecretValueCommand({ SecretId: 'prod/aliased' }))).SecretString).toBe('z');
    const p = await ssm(c).send(new GetParametersCommand({ Names: ['/app/cmk'], WithDecryption: true }));
    expect(p.Parameters?.[0]?.Value).toBe('c');
  });

  test('the key policy first: the default lets IAM decide; the role named is enough; no mention, no read', async () => {
    const kms = new KMSClient({ region: 'us-east-1', endpoint: emu.url, credentials: creds, maxAttempts: 1 });
    const doc = (keyId: string): Promise<unknown> =>
      kms.send(new GetKeyPolicyCommand({ KeyId: keyId })).then((o) => JSON.parse(o.Policy ?? '') as unknown);
    expect(await doc(KEY)).toMatchObject({
      Statement: [{ Effect: 'Allow', Principal: { AWS: 'arn:aws:iam::123456789012:root' }, Action: 'kms:*' }],
    });
    const direct = 'arn:aws:kms:us-east-1:123456789012:key/1d1d1d1d-1111-4222-8333-444455556666';
    const closed = 'arn:aws:kms:us-east-1:123456789012:key/2e2e2e2e-1111-4222-8333-444455556666';
    const onlyRole = 'arn:aws:iam::123456789012:role/key-user';
    emu.addKmsKey({
      arn: direct,
      policy: { Statement: [{ Effect: 'Allow', Principal: { AWS: onlyRole }, Action: 'kms:Decrypt', Resource: '*' }] },
    });
    emu.addKmsKey({
      arn: closed,
      policy: { Statement: [{ Effect: 'Allow', Principal: { AWS: OPERATOR }, Action: 'kms:*', Resource: '*' }] },
    });
    expect(await doc(direct)).toMatchObject({ Statement: [{ Principal: { AWS: onlyRole } }] });
    emu.putSecret('us-east-1', 'prod/direct', 'd', { kmsKeyId: direct });
    emu.putSecret('us-east-1', 'prod/closed', 'e', { kmsKeyId: closed });
    // The role has no kms rule of its own: the key policy naming it is enough.
    emu.addRole({ arn: onlyRole, allow: { secretsmanager: ['prod/*'] } });
    const user = emu.issueCredentials(onlyRole);
    expect((await sm(user).send(new GetSecretValueCommand({ SecretId: 'prod/direct' }))).SecretString).toBe('d');
    // A kms rule of the role's own does not open a key whose policy names neither it nor the account.
    const everyKey = 'arn:aws:iam::123456789012:role/every-key';
    emu.addRole({ arn: everyKey, allow: { secretsmanager: ['prod/*'], kms: ['*'] } });
    const c = emu.issueCredentials(everyKey);
    expect((await rejection(sm(c).send(new GetSecretValueCommand({ SecretId: 'prod/closed' })))).message).toBe(
      'Access to KMS is not allowed',
    );
    const denied = await rejection(
      new KMSClient({ region: 'us-east-1', endpoint: emu.url, credentials: c, maxAttempts: 1 }).send(
        new GetKeyPolicyCommand({ KeyId: KEY }),
      ),
    );
    expect(denied.name).toBe('AccessDeniedException');
  });
});

describe('SigV4 and sessions', () => {
  test('a tampered body after signing is InvalidSignatureException', async () => {
    const creds = await webIdentity();
    const client = sm(creds);
    client.middlewareStack.add(
      (next) => async (args) => {
        // The SDK's JSON body is bytes (a Uint8Array); read it as bytes, not through string methods.
        const req = args.request as { body?: string | Uint8Array };
        // (Buffer.from(body) would call the body's valueOf, a string method; its ArrayBuffer does not.)
        const body = req.body ?? new Uint8Array();
        const text =
          typeof body === 'string' ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8');
        req.body = text.replace('prod/db-creds', 'prod/db-crede');
        return next(args);
      },
      { step: 'deserialize', name: 'tamper' },
    );
    const err = await rejection(client.send(new GetSecretValueCommand({ SecretId: 'prod/db-creds' })));
    expect(err.name).toBe('InvalidSignatureException');
  });

  test.each([
    [
      'a wrong secret key',
      (c: Creds) => ({ ...c, secretAccessKey: c.secretAccessKey.replace(/.$/, (x) => (x === 'A' ? 'B' : 'A')) }),
      'InvalidSignatureException',
    ],
    ['an unknown key', (c: Creds) => ({ ...c, accessKeyId: 'ASIAAAAAAAAAAAAAAAAA' }), 'UnrecognizedClientException'],
    [
      'a session token of another session',
      (c: Creds) => ({ ...c, sessionToken: 'IQoJ-forged' }),
      'UnrecognizedClientException',
    ],
  ])('refuses %s', async (_, change, name) => {
    const creds = change(await webIdentity());
    expect((await rejection(sm(creds).send(new GetSecretValueCommand({ SecretId: 'prod/db-creds' })))).name).toBe(name);
    expect((await rejection(ssm(creds).send(new GetParametersCommand({ Names: ['plain'] })))).name).toBe(name);
  });

  test('a wrong STS signature is SignatureDoesNotMatch (403)', async () => {
    const creds = await webIdentity();
    const err = await rejection(sts({ ...creds, secretAccessKey: 'wrong' }).send(new GetCallerIdentityCommand({})));
    expect(err).toMatchObject({ name: 'SignatureDoesNotMatch', status: 403 });
  });

  test('an expired session is ExpiredTokenException', async () => {
    const creds = await webIdentity(READER, undefined, { DurationSeconds: 900 });
    clock += 901_000;
    try {
      expect((await rejection(sm(creds).send(new GetSecretValueCommand({ SecretId: 'prod/db-creds' })))).name).toBe(
        'ExpiredTokenException',
      );
      expect((await rejection(sts(creds).send(new GetCallerIdentityCommand({})))).name).toBe('ExpiredToken');
    } finally {
      clock -= 901_000;
    }
  });
});

describe('regions and the call log', () => {
  test('each region has its own data; the region comes from the credential scope', async () => {
    const creds = await webIdentity();
    expect(
      (await sm(creds, 'us-west-2').send(new GetSecretValueCommand({ SecretId: 'prod/db-creds' }))).SecretString,
    ).toBe('west-value');
    expect(
      (await sm(creds, 'us-east-1').send(new GetSecretValueCommand({ SecretId: 'prod/db-creds' }))).VersionId,
    ).toBe('v1');
    expect(
      (await rejection(sm(creds, 'eu-west-1').send(new GetSecretValueCommand({ SecretId: 'prod/db-creds' })))).name,
    ).toBe('ResourceNotFoundException');
    expect(emu.callCount({ service: 'secretsmanager', region: 'us-west-2' })).toBe(1);
    expect(emu.callCount({ service: 'secretsmanager', operation: 'GetSecretValue' })).toBe(3);
    expect(emu.callCount({ service: 'sts', operation: 'AssumeRoleWithWebIdentity' })).toBe(1);
  });

  test('records role, session, names, status and error code, never values or tokens', async () => {
    const creds = await webIdentity();
    await sm(creds).send(new GetSecretValueCommand({ SecretId: 'prod/db-creds' }));
    await rejection(sm(creds).send(new GetSecretValueCommand({ SecretId: 'other/secret' })));
    const smCalls = emu.calls.filter((c) => c.service === 'secretsmanager');
    expect(smCalls.map((c) => [c.operation, c.names, c.status, c.errorCode, c.roleArn, c.sessionName])).toEqual([
      ['GetSecretValue', ['prod/db-creds'], 200, undefined, READER, 'test-session'],
      ['GetSecretValue', ['other/secret'], 400, 'AccessDeniedException', READER, 'test-session'],
    ]);
    expect(smCalls[0]?.userAgent).toContain('aws-sdk-js');
    const text = JSON.stringify(emu.calls);
    expect(text).not.toContain('"password"');
    expect(text).not.toContain(creds.sessionToken);
    expect(text).not.toContain('eyJ');
  });
});

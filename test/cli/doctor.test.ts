// `doctor` end to end against the emulator: the real SDK clients (Secrets Manager, SSM, IAM, EKS,
// KMS) and the Kubernetes reads reach it through AWS_ENDPOINT_URL and KUBECONFIG, as they would
// reach AWS and a cluster. Each check passes on a healthy setup and fails on its broken one;
// no value, token or key shows in the output.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { CommandIO } from '../../src/cli/index.js';
import { main } from '../../src/cli/index.js';
import { DEFAULT_PROVIDER_SELECTOR, DRIVER_NAME, type DoctorReport } from '../../src/cli/doctor.js';
import {
  CLUSTER_NAME,
  DEFAULT_ISSUER,
  pointAwsSdkAt,
  startEmulator,
  type Emulator,
} from '../../tools/emulator/index.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const IRSA = 'manifests/examples/irsa.yaml';
const POD_IDENTITY = 'manifests/examples/pod-identity.yaml';
const ACCOUNT = '111122223333';
const REGION = 'us-east-1';
const READER = `arn:aws:iam::${ACCOUNT}:role/app-secrets-reader`;
const OPERATOR = `arn:aws:iam::${ACCOUNT}:role/operator`;
const PASSWORD = 'pa55-w0rd-never-printed';
const FLAG = 'flag-value-never-printed';

const SPC_SPEC = {
  provider: 'aws',
  parameters: {
    objects:
      '- objectName: "prod/db-creds"\n  objectType: "secretsmanager"\n- objectName: "/app/feature-flag"\n  ' +
      'objectType: "ssmparameter"\n',
  },
};

function secretsVolume(spc: string): unknown {
  return {
    name: 'secrets-store',
    csi: { driver: 'secrets-store.csi.k8s.io', readOnly: true, volumeAttributes: { secretProviderClass: spc } },
  };
}

let emu: Emulator;
let tmp: string;
let kubeconfig: string;
let env: Record<string, string>;
let secrets: string[];
let undoEnv: () => void;

beforeAll(async () => {
  emu = await startEmulator({ accountId: ACCOUNT });
  tmp = await mkdtemp(path.join(os.tmpdir(), 'doctor-'));
  undoEnv = pointAwsSdkAt(emu.url, tmp);
  kubeconfig = path.join(tmp, 'kubeconfig');
  await emu.writeKubeconfig(kubeconfig);
  emu.addRole({
    arn: READER,
    trust: { subjects: ['system:serviceaccount:default:app-irsa'] },
    allow: { secretsmanager: ['prod/db-creds*'], ssm: ['/app/feature-flag'] },
  });
  emu.addRole({
    arn: OPERATOR,
    allow: { iamRead: true, eksRead: true, kmsRead: true, secretsmanager: ['*'], describeParameters: true },
  });
  emu.addServiceAccount('default', 'app-irsa', { 'eks.amazonaws.com/role-arn': READER });
  emu.addCsiDriver(DRIVER_NAME, {
    tokenRequests: [{ audience: 'sts.amazonaws.com' }, { audience: 'pods.eks.amazonaws.com' }],
  });
  emu.addNode('node-1', { 'topology.kubernetes.io/region': REGION });
  emu.addNode('node-2', { 'topology.kubernetes.io/region': REGION });
  emu.addSecretProviderClass('default', 'app-irsa-secrets', SPC_SPEC);
  emu.addPod('default', 'app', 'node-1', {
    serviceAccountName: 'app-irsa',
    volumes: [secretsVolume('app-irsa-secrets')],
  });
  emu.addPod('kube-system', 'csi-secrets-provider-aws-x1', 'node-1', {
    labels: { 'app.kubernetes.io/name': 'csi-secrets-provider-aws' },
  });
  emu.putSecret(
    REGION,
    'prod/db-creds',
    JSON.stringify({ username: 'app', password: PASSWORD, 'db-host': 'db.internal' }),
  );
  emu.putParameter(REGION, '/app/feature-flag', FLAG);
  const c = emu.issueCredentials(OPERATOR);
  env = {
    AWS_ACCESS_KEY_ID: c.accessKeyId,
    AWS_SECRET_ACCESS_KEY: c.secretAccessKey,
    AWS_SESSION_TOKEN: c.sessionToken,
    AWS_ENDPOINT_URL: emu.url,
    KUBECONFIG: kubeconfig,
  };
  secrets = [
    PASSWORD,
    FLAG,
    emu.apiToken,
    c.secretAccessKey,
    c.sessionToken,
    emu.issueToken({ namespace: 'default', serviceAccount: 'app-irsa', audience: 'sts.amazonaws.com' }),
  ];
}, 30_000);

afterAll(async () => {
  undoEnv?.();
  await emu?.close();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

afterEach(() => {
  // Each test that breaks something shared puts it back here.
  emu.addCsiDriver(DRIVER_NAME, {
    tokenRequests: [{ audience: 'sts.amazonaws.com' }, { audience: 'pods.eks.amazonaws.com' }],
  });
  emu.addOidcProvider(DEFAULT_ISSUER);
  emu.addPod('kube-system', 'csi-secrets-provider-aws-x1', 'node-1', {
    labels: { 'app.kubernetes.io/name': 'csi-secrets-provider-aws' },
  });
});

async function doctor(
  args: string[],
  extraEnv: Record<string, string | undefined> = {},
): Promise<{ code: number; out: string; err: string; report?: DoctorReport }> {
  let out = '';
  let err = '';
  const io: CommandIO = {
    stdout: (t) => (out += t),
    stderr: (t) => (err += t),
    env: { ...env, ...extraEnv },
    cwd: ROOT,
  };
  const code = await main(['doctor', ...args], io);
  for (const s of secrets) {
    expect(out).not.toContain(s);
    expect(err).not.toContain(s);
  }
  return {
    code,
    out,
    err,
    ...(args.includes('json') && out !== '' ? { report: JSON.parse(out) as DoctorReport } : {}),
  };
}

const irsa = (sa = 'app-irsa', more: string[] = []): string[] => [
  '--class',
  IRSA,
  '--namespace',
  'default',
  '--service-account',
  sa,
  '--region',
  REGION,
  '--format',
  'json',
  ...more,
];

function row(r: DoctorReport | undefined, check: string, subject?: string) {
  const found = r?.checks.find((c) => c.check === check && (subject === undefined || c.subject.includes(subject)));
  if (found === undefined) throw new Error(`no ${check} row in ${JSON.stringify(r?.checks)}`);
  return found;
}

describe('doctor on a healthy IRSA setup', () => {
  it('passes every check, exit 0, in a table', async () => {
    const { code, out } = await doctor([
      '--class',
      IRSA,
      '--namespace',
      'default',
      '--service-account',
      'app-irsa',
      '--region',
      REGION,
    ]);
    expect(code).toBe(0);
    const lines = out.split('\n');
    expect(lines[0]).toMatch(/^STATUS\s+CHECK\s+SUBJECT\s+RESULT$/);
    for (const check of [
      'class',
      'csi-driver',
      'provider',
      'service-account',
      'iam-role',
      'oidc-provider',
      'trust-policy',
    ]) {
      expect(lines.some((l) => new RegExp(`^PASS\\s+${check}\\s`).test(l))).toBe(true);
    }
    expect(lines.filter((l) => /^PASS\s+object\s/.test(l))).toHaveLength(2);
    expect(lines.filter((l) => /^PASS\s+access\s/.test(l))).toHaveLength(2);
    expect(out).toContain('11 passed, 0 warnings, 0 failed, 0 skipped');
  });

  it('--format json: every check with status, subject, cause and fix', async () => {
    const { code, report } = await doctor(irsa());
    expect(code).toBe(0);
    expect(report?.summary).toEqual({ pass: 11, warn: 0, fail: 0, skip: 0 });
    expect(row(report, 'access', '/app/feature-flag')).toMatchObject({
      status: 'PASS',
      cause: 'app-secrets-reader may ssm:GetParameters (IAM policy simulation)',
    });
    expect(row(report, 'trust-policy')).toEqual({
      check: 'trust-policy',
      status: 'PASS',
      subject: 'app-secrets-reader',
      cause: 'trusts system:serviceaccount:default:app-irsa with audience sts.amazonaws.com',
      fix: '',
    });
    expect(row(report, 'object', '/app/feature-flag').subject).toBe(`ssmparameter /app/feature-flag in ${REGION}`);
    // No value was read: only DescribeSecret and DescribeParameters reached the services.
    expect(
      emu.calls.filter((c) => c.service === 'secretsmanager' || c.service === 'ssm').map((c) => c.operation),
    ).not.toContain('GetSecretValue');
    expect(emu.calls.map((c) => c.operation)).not.toContain('GetParameters');
  });

  it('reads the cluster through a kubeconfig exec plugin (what `aws eks update-kubeconfig` writes)', async () => {
    // The plugin prints an ExecCredential as `aws eks get-token` does, with the API server's token.
    const plugin = path.join(tmp, 'get-token.cjs');
    await writeFile(
      plugin,
      'process.stdout.write(JSON.stringify({ apiVersion: "client.authentication.k8s.io/v1beta1", ' +
        'kind: "ExecCredential", status: { token: process.env.API_TOKEN } }));',
    );
    const execKubeconfig = path.join(tmp, 'exec-kubeconfig');
    await writeFile(
      execKubeconfig,
      [
        'apiVersion: v1',
        'kind: Config',
        'current-context: eks',
        'contexts: [{name: eks, context: {cluster: emulator, user: eks-user}}]',
        `clusters: [{name: emulator, cluster: {server: ${JSON.stringify(emu.url)}}}]`,
        'users:',
        '- name: eks-user',
        '  user:',
        '    exec:',
        '      apiVersion: client.authentication.k8s.io/v1beta1',
        `      command: ${JSON.stringify(process.execPath)}`,
        `      args: [${JSON.stringify(plugin)}]`,
        `      env: [{name: API_TOKEN, value: ${JSON.stringify(emu.apiToken)}}]`,
      ].join('\n'),
    );
    const { code, report } = await doctor(irsa(), { KUBECONFIG: execKubeconfig });
    expect(code).toBe(0);
    expect(row(report, 'csi-driver').status).toBe('PASS');
    expect(row(report, 'service-account').status).toBe('PASS');
  });
});

describe('doctor finds what breaks a mount', () => {
  it('a trust policy naming another service account', async () => {
    emu.addServiceAccount('default', 'other-sa', { 'eks.amazonaws.com/role-arn': READER });
    const { code, report } = await doctor(irsa('other-sa'));
    expect(code).toBe(1);
    const t = row(report, 'trust-policy');
    expect(t.status).toBe('FAIL');
    expect(t.cause).toContain(
      '"system:serviceaccount:default:app-irsa", not the service account "system:serviceaccount:default:other-sa"',
    );
    expect(t.fix).toContain(`${DEFAULT_ISSUER.slice('https://'.length)}:sub = system:serviceaccount:default:other-sa`);
  });

  it('a trust policy for another audience', async () => {
    const arn = `arn:aws:iam::${ACCOUNT}:role/wrong-audience`;
    emu.addRole({
      arn,
      trust: { subjects: ['system:serviceaccount:default:aud-sa'], audience: 'sts.amazonaws.com.cn' },
      allow: {},
    });
    emu.addServiceAccount('default', 'aud-sa', { 'eks.amazonaws.com/role-arn': arn });
    const { code, report } = await doctor(irsa('aud-sa'));
    expect(code).toBe(1);
    expect(row(report, 'trust-policy').cause).toContain('not the audience "sts.amazonaws.com"');
  });

  it("a trust policy of another cluster's OIDC provider, and a StringLike one that matches", async () => {
    const other = `arn:aws:iam::${ACCOUNT}:role/other-cluster`;
    emu.addRole({
      arn: other,
      allow: {},
      trustPolicy: {
        Version: '2012-10-17',
        Statement: [
          {
            Effect: 'Allow',
            Principal: { Federated: `arn:aws:iam::${ACCOUNT}:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/OTHER` },
            Action: 'sts:AssumeRoleWithWebIdentity',
          },
        ],
      },
    });
    emu.addServiceAccount('default', 'other-cluster-sa', { 'eks.amazonaws.com/role-arn': other });
    const bad = await doctor(irsa('other-cluster-sa'));
    expect(row(bad.report, 'trust-policy').status).toBe('FAIL');
    expect(row(bad.report, 'trust-policy').cause).toContain('oidc.eks.eu-west-1.amazonaws.com/id/OTHER');

    const like = `arn:aws:iam::${ACCOUNT}:role/like`;
    emu.addRole({ arn: like, trust: { subjects: ['system:serviceaccount:default:*'] }, allow: {} });
    emu.addServiceAccount('default', 'like-sa', { 'eks.amazonaws.com/role-arn': like });
    const ok = await doctor(irsa('like-sa'));
    expect(row(ok.report, 'trust-policy').status).toBe('PASS');
  });

  it("the cluster's issuer not registered as an IAM OIDC provider", async () => {
    emu.removeOidcProvider(DEFAULT_ISSUER);
    const { code, report } = await doctor(irsa());
    expect(code).toBe(1);
    const o = row(report, 'oidc-provider');
    expect(o.status).toBe('FAIL');
    expect(o.cause.startsWith(`${DEFAULT_ISSUER} is not an IAM OIDC provider of account ${ACCOUNT}`)).toBe(true);
    expect(o.fix).toContain('associate-iam-oidc-provider');
  });

  it("--issuer replaces the API server's: another issuer is not registered", async () => {
    const { report } = await doctor(
      irsa('app-irsa', ['--issuer', 'https://oidc.eks.us-east-1.amazonaws.com/id/NOTREGISTERED']),
    );
    expect(row(report, 'oidc-provider').status).toBe('FAIL');
  });

  it('a role that does not exist, an annotation missing or not an ARN, a service account missing', async () => {
    emu.addServiceAccount('default', 'ghost-role', {
      'eks.amazonaws.com/role-arn': `arn:aws:iam::${ACCOUNT}:role/ghost`,
    });
    emu.addServiceAccount('default', 'bare', {});
    emu.addServiceAccount('default', 'not-arn', { 'eks.amazonaws.com/role-arn': 'app-secrets-reader' });
    const ghost = await doctor(irsa('ghost-role'));
    expect(ghost.code).toBe(1);
    expect(row(ghost.report, 'iam-role')).toMatchObject({
      status: 'FAIL',
      cause: 'no role ghost in the account of your credentials',
    });
    expect(row((await doctor(irsa('bare'))).report, 'service-account')).toMatchObject({
      status: 'FAIL',
      cause: 'no eks.amazonaws.com/role-arn annotation: IRSA has no role to assume',
    });
    expect(row((await doctor(irsa('not-arn'))).report, 'service-account').cause).toContain('not an IAM role ARN');
    expect(row((await doctor(irsa('nobody'))).report, 'service-account')).toMatchObject({
      status: 'FAIL',
      cause: 'not found',
    });
  });

  it('a role not allowed to read an object (IAM policy simulation)', async () => {
    const narrow = `arn:aws:iam::${ACCOUNT}:role/narrow`;
    emu.addRole({
      arn: narrow,
      trust: { subjects: ['system:serviceaccount:default:narrow-sa'] },
      allow: { secretsmanager: ['prod/db-creds*'] },
    });
    emu.addServiceAccount('default', 'narrow-sa', { 'eks.amazonaws.com/role-arn': narrow });
    const { code, report } = await doctor(irsa('narrow-sa'));
    expect(code).toBe(1);
    expect(row(report, 'access', 'prod/db-creds').status).toBe('PASS');
    const denied = row(report, 'access', '/app/feature-flag');
    expect(denied).toMatchObject({
      status: 'FAIL',
      cause: 'narrow may not ssm:GetParameters on it (IAM policy simulation: no policy allows it)',
    });
    expect(denied.fix).toBe(
      `allow ssm:GetParameters on arn:aws:ssm:${REGION}:${ACCOUNT}:parameter/app/feature-flag in a policy of narrow`,
    );
  });

  it('a secret under a customer managed KMS key the role may not use: FAIL; with kms:Decrypt: PASS', async () => {
    const key = `arn:aws:kms:${REGION}:${ACCOUNT}:key/1111-2222-3333`;
    emu.putSecret(REGION, 'prod/kms-secret', 'never-shown-kms-value', { kmsKeyId: key });
    secrets.push('never-shown-kms-value');
    const file = path.join(tmp, 'kms.yaml');
    await writeFile(
      file,
      [
        'apiVersion: secrets-store.csi.x-k8s.io/v1',
        'kind: SecretProviderClass',
        'metadata: {name: kms, namespace: default}',
        'spec:',
        '  provider: aws',
        '  parameters:',
        `    region: ${REGION}`,
        '    objects: |',
        '      - {objectName: prod/kms-secret, objectType: secretsmanager}',
        '',
      ].join('\n'),
    );
    const noKms = `arn:aws:iam::${ACCOUNT}:role/no-kms`;
    emu.addRole({
      arn: noKms,
      trust: { subjects: ['system:serviceaccount:default:no-kms'] },
      allow: { secretsmanager: ['prod/kms-secret*'] },
    });
    emu.addServiceAccount('default', 'no-kms', { 'eks.amazonaws.com/role-arn': noKms });
    const bad = await doctor([
      '--class',
      file,
      '--namespace',
      'default',
      '--service-account',
      'no-kms',
      '--format',
      'json',
    ]);
    expect(bad.code).toBe(1);
    expect(row(bad.report, 'access').status).toBe('PASS');
    expect(row(bad.report, 'kms')).toMatchObject({
      status: 'FAIL',
      fix: `allow kms:Decrypt on ${key} in a policy of no-kms`,
    });

    const withKms = `arn:aws:iam::${ACCOUNT}:role/with-kms`;
    emu.addRole({
      arn: withKms,
      trust: { subjects: ['system:serviceaccount:default:with-kms'] },
      allow: { secretsmanager: ['prod/kms-secret*'], kms: [key] },
    });
    emu.addServiceAccount('default', 'with-kms', { 'eks.amazonaws.com/role-arn': withKms });
    const good = await doctor([
      '--class',
      file,
      '--namespace',
      'default',
      '--service-account',
      'with-kms',
      '--format',
      'json',
    ]);
    expect(good.code).toBe(0);
    expect(row(good.report, 'kms').status).toBe('PASS');
  });

  /** A class of these objects in REGION, for the service account `sa` (annotated with `role`). */
  async function kmsClass(name: string, objects: string[], sa: string, role: string): Promise<string[]> {
    const file = path.join(tmp, `${name}.yaml`);
    await writeFile(
      file,
      [
        'apiVersion: secrets-store.csi.x-k8s.io/v1',
        'kind: SecretProviderClass',
        `metadata: {name: ${name}, namespace: default}`,
        'spec:',
        '  provider: aws',
        '  parameters:',
        `    region: ${REGION}`,
        '    objects: |',
        ...objects.map((o) => `      - ${o}`),
        '',
      ].join('\n'),
    );
    emu.addServiceAccount('default', sa, { 'eks.amazonaws.com/role-arn': role });
    return ['--class', file, '--namespace', 'default', '--service-account', sa, '--format', 'json'];
  }

  it('an alias is checked as its key; a disabled or missing key: FAIL; an AWS managed key: no row', async () => {
    const team = `arn:aws:kms:${REGION}:${ACCOUNT}:key/5e6f7a8b-1111-4222-8333-444455556666`;
    const retired = `arn:aws:kms:${REGION}:${ACCOUNT}:key/5e6f7a8b-9999-4222-8333-444455556666`;
    emu.addKmsKey({ arn: team, aliases: ['alias/team-secrets'] });
    emu.addKmsKey({ arn: retired, aliases: ['alias/retired'], state: 'Disabled' });
    for (const [name, kmsKeyId] of [
      ['prod/aliased', 'alias/team-secrets'],
      ['prod/retired', 'alias/retired'],
      ['prod/lost-key', 'alias/deleted'],
      ['prod/default-key', 'alias/aws/secretsmanager'],
    ] as const) {
      emu.putSecret(REGION, name, `never-shown ${name}`, { kmsKeyId });
      secrets.push(`never-shown ${name}`);
    }
    const role = `arn:aws:iam::${ACCOUNT}:role/team`;
    emu.addRole({
      arn: role,
      trust: { subjects: ['system:serviceaccount:default:team'] },
      allow: { secretsmanager: ['prod/*'], kms: [team, retired] },
    });
    const args = await kmsClass(
      'kms-keys',
      ['prod/aliased', 'prod/retired', 'prod/lost-key', 'prod/default-key'].map(
        (n) => `{objectName: ${n}, objectType: secretsmanager}`,
      ),
      'team',
      role,
    );
    const { code, report } = await doctor(args);
    expect(code).toBe(1);
    expect(row(report, 'kms', 'prod/aliased')).toMatchObject({
      status: 'PASS',
      cause:
        `team may kms:Decrypt with its key ${team} ` +
        "(IAM policy simulation; the key policy lets the account's IAM policies decide)",
    });
    expect(row(report, 'kms', 'prod/retired')).toMatchObject({
      status: 'FAIL',
      cause: `its KMS key ${retired} is Disabled: Secrets Manager cannot decrypt it, the mount fails`,
    });
    expect(row(report, 'kms', 'prod/lost-key')).toMatchObject({
      status: 'FAIL',
      cause:
        `its KMS key alias/deleted does not exist in ${REGION}: ` +
        'Secrets Manager cannot decrypt it, the mount fails',
    });
    expect(report?.checks.filter((c) => c.check === 'kms' && c.subject.includes('prod/default-key'))).toEqual([]);
    expect(row(report, 'access', 'prod/default-key').status).toBe('PASS');
  });

  it('a SecureString under a customer managed key needs kms:Decrypt; under alias/aws/ssm: no row', async () => {
    const key = `arn:aws:kms:${REGION}:${ACCOUNT}:key/7a7a7a7a-1111-4222-8333-444455556666`;
    emu.addKmsKey({ arn: key, aliases: ['alias/params'] });
    emu.putParameter(REGION, '/app/cmk-param', 'never-shown-cmk-param', {
      type: 'SecureString',
      kmsKeyId: 'alias/params',
    });
    emu.putParameter(REGION, '/app/default-secure', 'never-shown-default-secure', { type: 'SecureString' });
    secrets.push('never-shown-cmk-param', 'never-shown-default-secure');
    const objects = ['/app/cmk-param', '/app/default-secure'].map(
      (n) => `{objectName: "${n}", objectType: ssmparameter}`,
    );
    const without = `arn:aws:iam::${ACCOUNT}:role/params-no-kms`;
    emu.addRole({
      arn: without,
      trust: { subjects: ['system:serviceaccount:default:params-no-kms'] },
      allow: { ssm: ['/app/*'] },
    });
    const bad = await doctor(await kmsClass('params', objects, 'params-no-kms', without));
    expect(bad.code).toBe(1);
    expect(row(bad.report, 'kms', '/app/cmk-param')).toMatchObject({
      status: 'FAIL',
      cause:
        `params-no-kms may not kms:Decrypt with its key ${key}: ` +
        "SSM cannot decrypt it for the role, the mount fails; the key policy lets the account's IAM policies decide",
      fix: `allow kms:Decrypt on ${key} in a policy of params-no-kms`,
    });
    expect(bad.report?.checks.filter((c) => c.check === 'kms' && c.subject.includes('default-secure'))).toEqual([]);
    const withKey = `arn:aws:iam::${ACCOUNT}:role/params-kms`;
    emu.addRole({
      arn: withKey,
      trust: { subjects: ['system:serviceaccount:default:params-kms'] },
      allow: { ssm: ['/app/*'], kms: [key] },
    });
    const good = await doctor(await kmsClass('params', objects, 'params-kms', withKey));
    expect(good.code).toBe(0);
    expect(row(good.report, 'kms', '/app/cmk-param').status).toBe('PASS');
  });

  it('without kms:DescribeKey: an alias is a WARN naming the permission, a key ARN is still simulated', async () => {
    const key = `arn:aws:kms:${REGION}:${ACCOUNT}:key/8b8b8b8b-1111-4222-8333-444455556666`;
    emu.addKmsKey({ arn: key, aliases: ['alias/blind'] });
    emu.putSecret(REGION, 'prod/blind-alias', 'never-shown-blind-alias', { kmsKeyId: 'alias/blind' });
    emu.putSecret(REGION, 'prod/blind-arn', 'never-shown-blind-arn', { kmsKeyId: key });
    secrets.push('never-shown-blind-alias', 'never-shown-blind-arn');
    const role = `arn:aws:iam::${ACCOUNT}:role/blind`;
    emu.addRole({
      arn: role,
      trust: { subjects: ['system:serviceaccount:default:blind'] },
      allow: { secretsmanager: ['prod/*'], kms: [key] },
    });
    const noDescribe = `arn:aws:iam::${ACCOUNT}:role/operator-no-kms`;
    emu.addRole({ arn: noDescribe, allow: { iamRead: true, secretsmanager: ['*'], describeParameters: true } });
    const c = emu.issueCredentials(noDescribe);
    secrets.push(c.secretAccessKey, c.sessionToken);
    const args = await kmsClass(
      'blind',
      ['prod/blind-alias', 'prod/blind-arn'].map((n) => `{objectName: ${n}, objectType: secretsmanager}`),
      'blind',
      role,
    );
    const { code, report } = await doctor(args, {
      AWS_ACCESS_KEY_ID: c.accessKeyId,
      AWS_SECRET_ACCESS_KEY: c.secretAccessKey,
      AWS_SESSION_TOKEN: c.sessionToken,
    });
    expect(code).toBe(0);
    expect(row(report, 'kms', 'prod/blind-alias')).toMatchObject({
      status: 'WARN',
      fix: 'run doctor with credentials allowed kms:DescribeKey',
    });
    expect(row(report, 'kms', 'prod/blind-alias').cause).toContain('AccessDeniedException');
    expect(row(report, 'kms', 'prod/blind-arn')).toMatchObject({
      status: 'PASS',
      cause:
        `blind may kms:Decrypt with its key ${key} (IAM policy simulation; its key policy could not be read ` +
        '(kms:GetKeyPolicy: AccessDeniedException) and must allow it too; ' +
        'the key could not be described (kms:DescribeKey), so it is taken as customer managed)',
    });
  });

  it('a key policy naming neither role nor account: FAIL whatever IAM says; naming the role, PASS', async () => {
    const closed = `arn:aws:kms:${REGION}:${ACCOUNT}:key/9c9c9c9c-1111-4222-8333-444455556666`;
    const direct = `arn:aws:kms:${REGION}:${ACCOUNT}:key/9d9d9d9d-1111-4222-8333-444455556666`;
    const role = `arn:aws:iam::${ACCOUNT}:role/policy-reader`;
    const admin = `arn:aws:iam::${ACCOUNT}:role/key-admin`;
    const statement = (principal: string, action: string) => ({
      Effect: 'Allow',
      Principal: { AWS: principal },
      Action: action,
      Resource: '*',
    });
    emu.addKmsKey({ arn: closed, policy: { Statement: [statement(admin, 'kms:*')] } });
    emu.addKmsKey({ arn: direct, policy: { Statement: [statement(admin, 'kms:*'), statement(role, 'kms:Decrypt')] } });
    emu.putSecret(REGION, 'prod/closed-key', 'never-shown-closed', { kmsKeyId: closed });
    emu.putSecret(REGION, 'prod/direct-key', 'never-shown-direct', { kmsKeyId: direct });
    secrets.push('never-shown-closed', 'never-shown-direct');
    // Its IAM policy allows every key: the key policies decide.
    emu.addRole({
      arn: role,
      trust: { subjects: ['system:serviceaccount:default:policy-reader'] },
      allow: { secretsmanager: ['prod/*'], kms: ['*'] },
    });
    const args = await kmsClass(
      'key-policies',
      ['prod/closed-key', 'prod/direct-key'].map((n) => `{objectName: ${n}, objectType: secretsmanager}`),
      'policy-reader',
      role,
    );
    const { code, report } = await doctor(args);
    expect(code).toBe(1);
    expect(row(report, 'kms', 'prod/closed-key')).toEqual({
      check: 'kms',
      status: 'FAIL',
      subject: `secretsmanager prod/closed-key in ${REGION}`,
      cause:
        `the key policy of ${closed} does not let policy-reader decrypt (no statement allows kms:Decrypt to ` +
        `${role} or to its account (arn:aws:iam::${ACCOUNT}:root)): ` +
        'Secrets Manager answers "Access to KMS is not allowed"',
      fix:
        `add to the key policy a statement allowing kms:Decrypt for ${role}, or one for the account's root so ` +
        'that its IAM policies decide (aws kms put-key-policy)',
    });
    expect(row(report, 'kms', 'prod/direct-key')).toMatchObject({
      status: 'PASS',
      cause: `the key policy of ${direct} allows policy-reader kms:Decrypt`,
    });
  });

  it('credentials without iam:GetRole: a WARN that says which permission, not a FAIL', async () => {
    const weak = `arn:aws:iam::${ACCOUNT}:role/weak-operator`;
    emu.addRole({ arn: weak, allow: { secretsmanager: ['*'], describeParameters: true } });
    const c = emu.issueCredentials(weak);
    secrets.push(c.secretAccessKey, c.sessionToken);
    const { code, report } = await doctor(irsa(), {
      AWS_ACCESS_KEY_ID: c.accessKeyId,
      AWS_SECRET_ACCESS_KEY: c.secretAccessKey,
      AWS_SESSION_TOKEN: c.sessionToken,
    });
    expect(code).toBe(0);
    expect(row(report, 'iam-role')).toMatchObject({
      status: 'WARN',
      fix: 'run doctor with credentials allowed iam:GetRole and iam:ListOpenIDConnectProviders',
    });
    expect(row(report, 'iam-role').cause).toContain('AccessDenied');
    expect(row(report, 'access', 'prod/db-creds')).toMatchObject({
      status: 'WARN',
      fix: 'run doctor with credentials allowed iam:SimulatePrincipalPolicy',
    });
  });

  it('a CSIDriver without tokenRequests, or with another audience, or none at all', async () => {
    emu.addCsiDriver(DRIVER_NAME);
    const none = await doctor(irsa());
    expect(none.code).toBe(1);
    expect(row(none.report, 'csi-driver')).toMatchObject({
      status: 'FAIL',
      fix:
        'install the driver with a token request for sts.amazonaws.com (helm: --set ' +
        'tokenRequests[0].audience=sts.amazonaws.com)',
    });
    expect(row(none.report, 'csi-driver').cause).toContain('has no tokenRequests');

    emu.addCsiDriver(DRIVER_NAME, { tokenRequests: [{ audience: 'sts.amazonaws.com' }] });
    const podIdentity = await doctor([
      '--class',
      POD_IDENTITY,
      '--namespace',
      'default',
      '--service-account',
      'app-pod-identity',
      '--region',
      REGION,
      '--format',
      'json',
    ]);
    expect(row(podIdentity.report, 'csi-driver').cause).toContain('not pods.eks.amazonaws.com');
    expect(row(podIdentity.report, 'pod-identity').status).toBe('SKIP');
  });

  it('no provider pod ready', async () => {
    emu.addPod('kube-system', 'csi-secrets-provider-aws-x1', 'node-1', {
      labels: { 'app.kubernetes.io/name': 'csi-secrets-provider-aws' },
      ready: false,
    });
    const { code, report } = await doctor(irsa());
    expect(code).toBe(1);
    expect(row(report, 'provider')).toMatchObject({
      status: 'FAIL',
      cause: '1 provider pods, none ready',
      fix: 'see why: kubectl -n kube-system describe pod csi-secrets-provider-aws-x1',
    });
    const other = await doctor(irsa('app-irsa', ['--provider-selector', 'app=secrets-store-csi-driver-provider-aws']));
    expect(row(other.report, 'provider').cause).toContain('no provider pod');
    expect(DEFAULT_PROVIDER_SELECTOR).toBe('app.kubernetes.io/name=csi-secrets-provider-aws');
  });

  it('an object missing in the region: FAIL; in the failover region: WARN', async () => {
    const file = path.join(tmp, 'missing.yaml');
    await writeFile(
      file,
      [
        'apiVersion: secrets-store.csi.x-k8s.io/v1',
        'kind: SecretProviderClass',
        'metadata: {name: missing, namespace: default}',
        'spec:',
        '  provider: aws',
        '  parameters:',
        `    region: ${REGION}`,
        '    failoverRegion: us-west-2',
        '    objects: |',
        '      - objectName: "prod/db-creds"',
        '        objectType: "secretsmanager"',
        '      - objectName: "/app/nope"',
        '        objectType: "ssmparameter"',
        '',
      ].join('\n'),
    );
    const { code, report } = await doctor([
      '--class',
      file,
      '--namespace',
      'default',
      '--service-account',
      'app-irsa',
      '--format',
      'json',
    ]);
    expect(code).toBe(1);
    expect(row(report, 'object', `secretsmanager prod/db-creds in ${REGION}`).status).toBe('PASS');
    // The failover region is asked only when the primary cannot answer: a WARN, not a FAIL.
    expect(row(report, 'object', 'secretsmanager prod/db-creds in us-west-2')).toMatchObject({
      status: 'WARN',
      cause: `not found: a mount fails when ${REGION} cannot answer and the failover region is asked`,
      fix: 'create it in us-west-2, or correct objectName or failoverRegion in the class',
    });
    expect(row(report, 'object', `ssmparameter /app/nope in ${REGION}`)).toMatchObject({
      status: 'FAIL',
      cause: 'not found: the mount fails',
    });
  });

  it("a class with errors: FAIL with check's first finding, the checks that need it skipped", async () => {
    const file = path.join(tmp, 'bad.yaml');
    await writeFile(
      file,
      [
        'apiVersion: secrets-store.csi.x-k8s.io/v1',
        'kind: SecretProviderClass',
        'metadata: {name: bad, namespace: default}',
        'spec:',
        '  provider: aws',
        '  parameters:',
        '    objects: |',
        '      - objectName: "x"',
        '        objectType: "vault"',
        '',
      ].join('\n'),
    );
    const { code, report } = await doctor([
      '--class',
      file,
      '--namespace',
      'default',
      '--service-account',
      'app-irsa',
      '--region',
      REGION,
      '--format',
      'json',
    ]);
    expect(code).toBe(1);
    const c = row(report, 'class');
    expect(c.status).toBe('FAIL');
    expect(c.cause).toMatch(/^1 error, first: objects\[0\]\.objectType: .*\(line \d+\)$/);
    expect(c.fix).toBe(`run \`check ${file}\` for every finding with its position`);
    // The identity does not depend on the objects: still checked.
    expect(row(report, 'trust-policy').status).toBe('PASS');
    expect(row(report, 'object')).toMatchObject({ status: 'SKIP', cause: 'the class has errors' });
  });

  it('no region anywhere', async () => {
    const { code, report } = await doctor([
      '--class',
      IRSA,
      '--namespace',
      'default',
      '--service-account',
      'app-irsa',
      '--format',
      'json',
    ]);
    expect(code).toBe(1);
    expect(row(report, 'region').status).toBe('FAIL');
  });
});

describe('doctor and role chaining', () => {
  async function chainedClass(roleArn: string, externalId: string | undefined): Promise<string> {
    const file = path.join(tmp, `chain-${roleArn.split('/')[1]}-${externalId ?? 'none'}.yaml`);
    const lines = [
      'apiVersion: secrets-store.csi.x-k8s.io/v1',
      'kind: SecretProviderClass',
      'metadata: {name: chained, namespace: default}',
      'spec:',
      '  provider: aws',
      '  parameters:',
      `    region: ${REGION}`,
      `    assumeRoleArn: ${roleArn}`,
      ...(externalId === undefined ? [] : [`    assumeRoleExternalId: ${externalId}`]),
      '    objects: |',
      '      - objectName: "prod/db-creds"',
      '        objectType: "secretsmanager"',
      '',
    ];
    await writeFile(file, lines.join('\n'));
    return file;
  }
  const run = (file: string) =>
    doctor(['--class', file, '--namespace', 'default', '--service-account', 'app-irsa', '--format', 'json']);

  it("the chained role trusts the pod's role with the ExternalId: PASS; access is the chained role's", async () => {
    const chained = `arn:aws:iam::${ACCOUNT}:role/chained`;
    emu.addRole({ arn: chained, trustedRoles: [READER], externalId: 'ext-1', allow: { secretsmanager: ['prod/*'] } });
    const { report } = await run(await chainedClass(chained, 'ext-1'));
    expect(row(report, 'assume-role')).toMatchObject({
      status: 'PASS',
      cause: `trusts ${READER} with the class's ExternalId`,
    });
    expect(row(report, 'access').cause).toBe('chained may secretsmanager:GetSecretValue (IAM policy simulation)');
  });

  it('a wrong or missing ExternalId, a role that trusts another, a role that does not exist: FAIL', async () => {
    const chained = `arn:aws:iam::${ACCOUNT}:role/chained-ext`;
    emu.addRole({ arn: chained, trustedRoles: [READER], externalId: 'ext-1', allow: {} });
    const wrong = await run(await chainedClass(chained, 'ext-2'));
    expect(wrong.code).toBe(1);
    expect(row(wrong.report, 'assume-role').cause).toContain(
      "its ExternalId condition does not match the class's assumeRoleExternalId",
    );
    expect(row((await run(await chainedClass(chained, undefined))).report, 'assume-role').cause).toContain(
      'the class sets no assumeRoleExternalId',
    );
    const other = `arn:aws:iam::${ACCOUNT}:role/trusts-other`;
    emu.addRole({ arn: other, trustedRoles: [OPERATOR], allow: {} });
    const notTrusted = await run(await chainedClass(other, undefined));
    expect(row(notTrusted.report, 'assume-role')).toMatchObject({
      status: 'FAIL',
      fix: `the trust policy of trusts-other needs a statement allowing sts:AssumeRole for Principal AWS ${READER}`,
    });
    const missing = await run(await chainedClass(`arn:aws:iam::${ACCOUNT}:role/nowhere`, undefined));
    expect(row(missing.report, 'assume-role')).toMatchObject({
      status: 'FAIL',
      cause: 'no role nowhere in the account of your credentials',
    });
  });
});

describe('doctor and Pod Identity', () => {
  const pi = (sa: string, more: string[] = []): string[] => [
    '--class',
    POD_IDENTITY,
    '--namespace',
    'default',
    '--service-account',
    sa,
    '--region',
    REGION,
    '--format',
    'json',
    ...more,
  ];

  it('--cluster: the association names a role, which may read the objects', async () => {
    const role = `arn:aws:iam::${ACCOUNT}:role/pod-identity-reader`;
    emu.addRole({ arn: role, allow: { secretsmanager: ['prod/db-creds*'], ssm: ['/app/*'] } });
    emu.addPodIdentityAssociation({ namespace: 'default', serviceAccount: 'app-pod-identity', roleArn: role });
    const { code, report } = await doctor(pi('app-pod-identity', ['--cluster', CLUSTER_NAME]));
    expect(report?.checks.filter((c) => c.status === 'FAIL')).toEqual([]);
    expect(code).toBe(0);
    expect(row(report, 'pod-identity').status).toBe('PASS');
    expect(row(report, 'pod-identity').cause).toContain(`associated with ${role}`);
    expect(row(report, 'pod-identity-trust')).toMatchObject({
      status: 'PASS',
      cause: 'trusts pods.eks.amazonaws.com (sts:AssumeRole, sts:TagSession)',
    });
    expect(row(report, 'access', 'prod/db-creds')).toMatchObject({
      status: 'PASS',
      cause: 'pod-identity-reader may secretsmanager:GetSecretValue (IAM policy simulation)',
    });
    // No IRSA rows: the class uses Pod Identity.
    expect(report?.checks.some((c) => c.check === 'trust-policy')).toBe(false);
  });

  it('an associated role that does not trust the EKS service, or not for sts:TagSession: FAIL', async () => {
    const untrusting = `arn:aws:iam::${ACCOUNT}:role/untrusting`;
    emu.addRole({ arn: untrusting, podIdentityTrust: false, allow: {} });
    emu.addPodIdentityAssociation({ namespace: 'default', serviceAccount: 'untrusted-sa', roleArn: untrusting });
    const bad = await doctor(pi('untrusted-sa', ['--cluster', CLUSTER_NAME]));
    expect(bad.code).toBe(1);
    expect(row(bad.report, 'pod-identity-trust')).toMatchObject({
      status: 'FAIL',
      cause: 'the agent cannot assume it: no statement allows sts:AssumeRole for the service pods.eks.amazonaws.com',
    });
    const noTag = `arn:aws:iam::${ACCOUNT}:role/no-tag`;
    emu.addRole({
      arn: noTag,
      allow: {},
      trustPolicy: {
        Version: '2012-10-17',
        Statement: [{ Effect: 'Allow', Principal: { Service: 'pods.eks.amazonaws.com' }, Action: 'sts:AssumeRole' }],
      },
    });
    emu.addPodIdentityAssociation({ namespace: 'default', serviceAccount: 'no-tag-sa', roleArn: noTag });
    const tagless = await doctor(pi('no-tag-sa', ['--cluster', CLUSTER_NAME]));
    expect(row(tagless.report, 'pod-identity-trust').cause).toContain('sts:TagSession is not allowed');
  });

  it('no association: FAIL with the command that makes one; another cluster: WARN; no cluster name: SKIP', async () => {
    const none = await doctor(pi('lonely', ['--cluster', CLUSTER_NAME]));
    expect(none.code).toBe(1);
    expect(row(none.report, 'pod-identity')).toMatchObject({
      status: 'FAIL',
      fix:
        `aws eks create-pod-identity-association --cluster-name ${CLUSTER_NAME} --namespace default ` +
        `--service-account lonely --role-arn <role ARN>`,
    });
    const other = await doctor(pi('lonely', ['--cluster', 'other']));
    expect(row(other.report, 'pod-identity')).toMatchObject({
      status: 'WARN',
      fix: `check --cluster and --region (cluster other in ${REGION})`,
    });
    expect(row((await doctor(pi('lonely'))).report, 'pod-identity')).toMatchObject({
      status: 'SKIP',
      cause:
        'the association is checked with --cluster NAME: no EKS Pod Identity agent pod ' +
        '(app.kubernetes.io/name=eks-pod-identity-agent) to read its name from',
    });
  });

  it("without --cluster: the cluster is the one the EKS Pod Identity agent's --cluster-name names", async () => {
    const role = `arn:aws:iam::${ACCOUNT}:role/agent-named`;
    emu.addRole({ arn: role, allow: { secretsmanager: ['prod/db-creds*'], ssm: ['/app/*'] } });
    emu.addPodIdentityAssociation({ namespace: 'default', serviceAccount: 'agent-sa', roleArn: role });
    const agent = (node: string, cluster: string): void =>
      emu.addPod('kube-system', `eks-pod-identity-agent-${node}`, node, {
        labels: { 'app.kubernetes.io/name': 'eks-pod-identity-agent' },
        containers: [
          {
            name: 'eks-pod-identity-agent',
            args: ['--port', '80', '--cluster-name', cluster, '--probe-port', '2703'],
          },
        ],
      });
    agent('node-1', CLUSTER_NAME);
    try {
      const found = await doctor(pi('agent-sa'));
      expect(found.code).toBe(0);
      expect(row(found.report, 'pod-identity')).toMatchObject({
        status: 'PASS',
        cause: expect.stringContaining(
          `in cluster ${CLUSTER_NAME} (named by the --cluster-name of the EKS Pod Identity agent ` +
            'kube-system/eks-pod-identity-agent-node-1)',
        ) as unknown,
      });
      // --cluster wins over the agent.
      const other = await doctor(pi('agent-sa', ['--cluster', 'other']));
      expect(row(other.report, 'pod-identity').status).toBe('WARN');
      // Agents that disagree name no cluster (a --pod run reads the one on its node).
      agent('node-2', 'another-cluster');
      expect(row((await doctor(pi('agent-sa'))).report, 'pod-identity')).toMatchObject({
        status: 'SKIP',
        cause: expect.stringContaining(`name several clusters (${CLUSTER_NAME}, another-cluster)`) as unknown,
      });
      emu.addSecretProviderClass('default', 'pi-secrets', {
        provider: 'aws',
        parameters: { ...SPC_SPEC.parameters, usePodIdentity: 'true', region: REGION },
      });
      emu.addPod('default', 'pi-app', 'node-1', {
        serviceAccountName: 'agent-sa',
        volumes: [secretsVolume('pi-secrets')],
      });
      const onNode = await doctor(['--pod', 'default/pi-app', '--format', 'json']);
      expect(row(onNode.report, 'pod-identity')).toMatchObject({
        status: 'PASS',
        cause: expect.stringContaining(`kube-system/eks-pod-identity-agent-node-1`) as unknown,
      });
      expect(onNode.code).toBe(0);
    } finally {
      emu.removePod('kube-system', 'eks-pod-identity-agent-node-1');
      emu.removePod('kube-system', 'eks-pod-identity-agent-node-2');
      emu.removePod('default', 'pi-app');
    }
  });
});

describe('doctor --pod', () => {
  it("reads the pod, its service account, node and class from the cluster: all pass, the node's region", async () => {
    const { code, report } = await doctor(['--pod', 'default/app', '--format', 'json']);
    expect(code).toBe(0);
    expect(row(report, 'pod')).toMatchObject({
      status: 'PASS',
      cause: 'service account app-irsa, node node-1, 1 secrets-store volume',
    });
    expect(row(report, 'class')).toMatchObject({ status: 'PASS', subject: 'default/app-irsa-secrets' });
    expect(row(report, 'provider')).toMatchObject({
      status: 'PASS',
      subject: 'pods app.kubernetes.io/name=csi-secrets-provider-aws on node-1',
    });
    expect(row(report, 'trust-policy').status).toBe('PASS');
    expect(row(report, 'object', `secretsmanager prod/db-creds in ${REGION}`).status).toBe('PASS');
    expect(report?.summary.fail).toBe(0);
  });

  it("no provider on the pod's node, a class missing or with errors, no secrets-store volume, no pod", async () => {
    emu.addPod('default', 'elsewhere', 'node-2', {
      serviceAccountName: 'app-irsa',
      volumes: [secretsVolume('app-irsa-secrets')],
    });
    const elsewhere = await doctor(['--pod', 'default/elsewhere', '--format', 'json']);
    expect(elsewhere.code).toBe(1);
    expect(row(elsewhere.report, 'provider')).toMatchObject({
      status: 'FAIL',
      cause: "no provider pod on the pod's node (1 on other nodes): the driver finds no provider there",
    });

    emu.addPod('default', 'no-class', 'node-1', { serviceAccountName: 'app-irsa', volumes: [secretsVolume('nope')] });
    const noClass = await doctor(['--pod', 'default/no-class', '--format', 'json']);
    expect(row(noClass.report, 'class')).toMatchObject({
      status: 'FAIL',
      subject: 'default/nope',
      cause: 'not found in namespace default: the driver fails the mount',
    });

    emu.addSecretProviderClass('default', 'broken', {
      provider: 'aws',
      parameters: { objects: '- objectName: x\n  objectType: vault\n' },
    });
    emu.addPod('default', 'broken-class', 'node-1', {
      serviceAccountName: 'app-irsa',
      volumes: [secretsVolume('broken')],
    });
    const broken = await doctor(['--pod', 'default/broken-class', '--format', 'json']);
    expect(row(broken.report, 'class')).toMatchObject({
      status: 'FAIL',
      fix:
        'run `kubectl get secretproviderclass -n default broken -o yaml | csi-secrets-provider-aws check -` for ' +
        'every finding with its position',
    });
    expect(row(broken.report, 'class').cause).toContain('objects[0].objectType');

    emu.addPod('default', 'plain', 'node-1', { serviceAccountName: 'app-irsa' });
    expect(row((await doctor(['--pod', 'default/plain', '--format', 'json'])).report, 'pod').status).toBe('FAIL');
    const ghost = await doctor(['--pod', 'default/ghost', '--format', 'json']);
    expect(ghost.code).toBe(1);
    expect(ghost.report?.checks).toEqual([
      {
        check: 'pod',
        status: 'FAIL',
        subject: 'pod default/ghost',
        cause: 'not found',
        fix: 'check the name: kubectl get pods -n default',
      },
    ]);
  });

  it('usage: NS/NAME, and not with --class / --namespace / --service-account', async () => {
    expect((await doctor(['--pod', 'app'])).code).toBe(2);
    const both = await doctor(['--pod', 'default/app', '--class', IRSA]);
    expect(both).toMatchObject({ code: 2 });
    expect(both.err).toContain('drop --class');
  });
});

describe('doctor usage', () => {
  it('exit 2 on a missing flag, an unknown one, a bad format, an unreadable class or no class in it', async () => {
    expect((await doctor(['--class', IRSA])).code).toBe(2);
    expect((await doctor([...irsa(), '--bogus', 'x'])).err).toContain('unknown option --bogus');
    expect(
      (await doctor(['--class', IRSA, '--namespace', 'default', '--service-account', 'a', '--format', 'yaml'])).code,
    ).toBe(2);
    const unreadable = await doctor(['--class', 'no/such.yaml', '--namespace', 'default', '--service-account', 'a']);
    expect(unreadable).toMatchObject({ code: 2, err: 'doctor: cannot read no/such.yaml (ENOENT)\n' });
    expect((await doctor(['--class', 'package.json', '--namespace', 'default', '--service-account', 'a'])).code).toBe(
      2,
    );
    expect((await doctor(['--help'])).out).toContain('Usage: doctor');
  });

  it('the dispatcher lists it', async () => {
    let out = '';
    await main(['help'], { stdout: (t) => (out += t), stderr: () => undefined, env: {}, cwd: ROOT });
    expect(out).toContain('doctor --class FILE --namespace NS --service-account SA');
  });
});

// doctor's table, whole, for fixed emulator setups: a healthy IRSA service account, one its role's
// trust policy does not name (README's example), and a Pod Identity pod with a mix of findings.
// The files under testdata/ are what an operator sees; UPDATE_GOLDEN=1 rewrites them.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main, type CommandIO } from '../../src/cli/index.js';
import { CLUSTER_NAME, pointAwsSdkAt, startEmulator, type Emulator } from '../../tools/emulator/index.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const TESTDATA = new URL('testdata/', import.meta.url);
const ACCOUNT = '111122223333';
const REGION = 'us-east-1';
const READER = `arn:aws:iam::${ACCOUNT}:role/app-secrets-reader`;
const PI_ROLE = `arn:aws:iam::${ACCOUNT}:role/app-pod-identity`;
const KEY = `arn:aws:kms:${REGION}:${ACCOUNT}:key/0b7e5c1d-1111-4222-8333-444455556666`;

let emu: Emulator;
let tmp: string;
let env: Record<string, string>;
let undoEnv: () => void;

beforeAll(async () => {
  emu = await startEmulator({ accountId: ACCOUNT });
  tmp = await mkdtemp(path.join(os.tmpdir(), 'doctor-golden-'));
  undoEnv = pointAwsSdkAt(emu.url, tmp);
  const kubeconfig = path.join(tmp, 'kubeconfig');
  await emu.writeKubeconfig(kubeconfig);
  emu.addRole({
    arn: READER,
    trust: { subjects: ['system:serviceaccount:default:app-irsa'] },
    allow: { secretsmanager: ['prod/db-creds*'], ssm: ['/app/feature-flag'] },
  });
  const operator = `arn:aws:iam::${ACCOUNT}:role/operator`;
  emu.addRole({
    arn: operator,
    allow: { iamRead: true, eksRead: true, kmsRead: true, secretsmanager: ['*'], describeParameters: true },
  });
  emu.addServiceAccount('default', 'app-irsa', { 'eks.amazonaws.com/role-arn': READER });
  emu.addServiceAccount('default', 'other-sa', { 'eks.amazonaws.com/role-arn': READER });
  emu.addCsiDriver('secrets-store.csi.k8s.io', {
    tokenRequests: [{ audience: 'sts.amazonaws.com' }, { audience: 'pods.eks.amazonaws.com' }],
  });
  emu.addNode('node-1', { 'topology.kubernetes.io/region': REGION });
  emu.addPod('kube-system', 'csi-secrets-provider-aws-x1', 'node-1', {
    labels: { 'app.kubernetes.io/name': 'csi-secrets-provider-aws' },
  });
  emu.addPod('kube-system', 'eks-pod-identity-agent-x1', 'node-1', {
    labels: { 'app.kubernetes.io/name': 'eks-pod-identity-agent' },
    containers: [{ name: 'eks-pod-identity-agent', args: ['--port', '80', '--cluster-name', CLUSTER_NAME] }],
  });
  emu.putSecret(REGION, 'prod/db-creds', JSON.stringify({ username: 'app', password: 'pw', 'db-host': 'db' }));
  emu.putParameter(REGION, '/app/feature-flag', 'on');

  // The Pod Identity pod: its role may read the secret but not decrypt the parameter's key; the
  // class's failover region holds neither (a WARN: it is asked only when the primary cannot answer).
  emu.addKmsKey({ arn: KEY, aliases: ['alias/app-params'] });
  emu.putParameter(REGION, '/app/api-key', 'k', { type: 'SecureString', kmsKeyId: 'alias/app-params' });
  emu.addRole({ arn: PI_ROLE, allow: { secretsmanager: ['prod/db-creds*'], ssm: ['/app/*'] } });
  emu.addPodIdentityAssociation({ namespace: 'shop', serviceAccount: 'shop-app', roleArn: PI_ROLE });
  emu.addSecretProviderClass('shop', 'shop-secrets', {
    provider: 'aws',
    parameters: {
      usePodIdentity: 'true',
      region: REGION,
      failoverRegion: 'us-west-2',
      objects:
        '- objectName: "prod/db-creds"\n  objectType: "secretsmanager"\n' +
        '- objectName: "/app/api-key"\n  objectType: "ssmparameter"\n',
    },
  });
  emu.addPod('shop', 'shop-app-1', 'node-1', {
    serviceAccountName: 'shop-app',
    volumes: [
      {
        name: 'secrets',
        csi: { driver: 'secrets-store.csi.k8s.io', volumeAttributes: { secretProviderClass: 'shop-secrets' } },
      },
    ],
  });
  const c = emu.issueCredentials(operator);
  env = {
    AWS_ACCESS_KEY_ID: c.accessKeyId,
    AWS_SECRET_ACCESS_KEY: c.secretAccessKey,
    AWS_SESSION_TOKEN: c.sessionToken,
    AWS_ENDPOINT_URL: emu.url,
    KUBECONFIG: kubeconfig,
  };
}, 30_000);

afterAll(async () => {
  undoEnv?.();
  await emu?.close();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

async function table(args: string[]): Promise<{ code: number; out: string }> {
  let out = '';
  const io: CommandIO = { stdout: (t) => (out += t), stderr: (t) => (out += t), env, cwd: ROOT };
  return { code: await main(['doctor', ...args], io), out };
}

function golden(name: string, actual: string): void {
  const file = new URL(name, TESTDATA);
  if (process.env['UPDATE_GOLDEN'] === '1' || !existsSync(file)) writeFileSync(file, actual);
  expect(actual).toBe(readFileSync(file, 'utf8'));
}

const irsa = (sa: string): string[] => [
  ...['--class', 'manifests/examples/irsa.yaml', '--namespace', 'default'],
  ...['--service-account', sa, '--region', REGION],
];

describe("doctor's table", () => {
  it('a healthy IRSA service account: every check passes', async () => {
    const { code, out } = await table(irsa('app-irsa'));
    expect(code).toBe(0);
    golden('doctor-healthy.txt', out);
  });

  it("a service account its role's trust policy does not name: the trust-policy row fails, with the fix", async () => {
    const { code, out } = await table(irsa('other-sa'));
    expect(code).toBe(1);
    golden('doctor-wrong-service-account.txt', out);
  });

  it('--pod, Pod Identity: the agent names the cluster; a key the role may not use; no failover copies', async () => {
    const { code, out } = await table(['--pod', 'shop/shop-app-1']);
    expect(code).toBe(1);
    golden('doctor-pod-identity.txt', out);
  });
});

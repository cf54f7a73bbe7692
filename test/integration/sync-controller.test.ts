/**
 * Secrets without a pod: the Secrets Store Sync Controller's calls, played against the built
 * provider started as the controller's sidecar runs it (`node dist/main.js --driver-writes-secrets`,
 * the socket in the directory the two containers share, NODE_NAME of the controller's node) and the
 * AWS + Kubernetes emulator.
 *
 * What the controller sends (README, "Sync without a pod"): the class's parameters plus the
 * `csi.storage.k8s.io/` attributes, where pod.name and pod.uid are the controller's OWN pod,
 * pod.namespace and serviceAccount.name the SecretSync's, and serviceAccount.tokens the tokens it
 * requested for that service account (not bound to any pod, so no `kubernetes.io.pod` claim);
 * secrets `{}`, permission "420", target path "/mnt/secrets-store" (no kubelet volume), and the
 * object versions of its last sync. It fails a sync whose answer has no object versions, takes the
 * files by path, and builds the Secret from `secretObject.data` (sourcePath → targetKey).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createDriverClient, startEmulator, type DriverClient, type Emulator } from '../../tools/emulator/index.js';
import { ensureBuilt, MAIN, ROOT } from '../helpers/built.js';
import { refused } from '../helpers/failure.js';
import { parseDocuments } from '../manifests/helm.js';

const REGION = 'us-east-1';
const CONTROLLER_NAMESPACE = 'secrets-store-sync-controller';
const CONTROLLER_POD = 'secrets-store-sync-controller-manager-6b8f9d7c4-x2v7q';
const CONTROLLER_UID = '3f6d2a40-7c1e-4b8a-9d35-0c2e5f1a7b94';
const CONTROLLER_NODE = 'node-ctrl';
/** The controller's fixed target path (no pod volume: a directory of its own container). */
const SYNC_TARGET = '/mnt/secrets-store';

interface SecretSync {
  namespace: string;
  serviceAccount: string;
  /** The SecretProviderClass's parameters. */
  parameters: Record<string, string>;
  /** secretObject.data */
  data: { sourcePath: string; targetKey: string }[];
  /** The controller's token audience (--token-request-audience); default sts.amazonaws.com. */
  audience?: string;
}

interface Synced {
  versions: { id: string; version: string }[];
  files: Map<string, Buffer>;
  /** The Secret's data the controller would write. */
  secret: Record<string, string>;
}

interface Sidecar {
  child: ChildProcess;
  client: DriverClient;
  stderr(): string;
}

let dir: string;
let emu: Emulator;
let sidecar: Sidecar;
let providerWrites: Sidecar;
const mntExisted = existsSync(SYNC_TARGET);

async function startSidecar(name: string, o: { driverWrites: boolean }): Promise<Sidecar> {
  const volume = path.join(dir, name);
  await mkdir(volume);
  // The emulator's Pod Identity agent stands in for the node's (169.254.170.23 on EKS).
  const args = [
    MAIN,
    `--provider-volume=${volume}`,
    '--health-addr=',
    '--metrics-addr=',
    `--pod-identity-endpoint=${emu.podIdentityUrl}`,
    ...(o.driverWrites ? ['--driver-writes-secrets'] : []),
  ];
  const env = {
    PATH: process.env['PATH'] ?? '',
    KUBECONFIG: path.join(dir, 'kubeconfig'),
    AWS_ENDPOINT_URL: emu.url,
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_CONFIG_FILE: '/nonexistent',
    AWS_SHARED_CREDENTIALS_FILE: '/nonexistent',
    NODE_NAME: CONTROLLER_NODE,
  };
  const child = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const deadline = Date.now() + 20_000;
  while (!stderr.includes('"msg":"listening"')) {
    if (child.exitCode !== null || Date.now() > deadline)
      throw new Error(`provider did not start:\n${stderr.slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
  return { child, client: createDriverClient(path.join(volume, 'aws.sock')), stderr: () => stderr };
}

async function stopSidecar(s: Sidecar | undefined): Promise<void> {
  if (!s) return;
  s.client.close();
  if (s.child.exitCode !== null) return;
  const exited = new Promise((r) => s.child.once('close', r));
  s.child.kill('SIGTERM');
  await exited;
}

/** The tokens the controller requests for a SecretSync's service account: its one audience, 10 minutes, bound to no
 * pod. */
function tokensFor(ss: Pick<SecretSync, 'namespace' | 'serviceAccount' | 'audience'>): string {
  const audience = ss.audience ?? 'sts.amazonaws.com';
  const token = emu.issueToken({
    namespace: ss.namespace,
    serviceAccount: ss.serviceAccount,
    audience,
    expiresInSeconds: 600,
  });
  const exp = new Date(Date.now() + 600_000).toISOString().replace(/\.\d{3}Z$/, 'Z');
  return JSON.stringify({ [audience]: { token, expirationTimestamp: exp } });
}

/** One reconcile's provider call, and what the controller makes of the answer. */
async function sync(s: Sidecar, ss: SecretSync, lastVersions: { id: string; version: string }[] = []): Promise<Synced> {
  const attributes = {
    ...ss.parameters,
    'csi.storage.k8s.io/pod.name': CONTROLLER_POD,
    'csi.storage.k8s.io/pod.uid': CONTROLLER_UID,
    'csi.storage.k8s.io/pod.namespace': ss.namespace,
    'csi.storage.k8s.io/serviceAccount.name': ss.serviceAccount,
    'csi.storage.k8s.io/serviceAccount.tokens': tokensFor(ss),
  };
  const res = await s.client.mount(
    { attributes, secrets: '{}', permission: '420', targetPath: SYNC_TARGET, currentObjectVersion: lastVersions },
    { deadlineMs: 30_000 },
  );
  // The controller refuses an answer without object versions ("missing object versions").
  if (res.objectVersion.length === 0) throw new Error('missing object versions');
  const files = new Map(res.files.map((f) => [f.path, f.contents]));
  const secret: Record<string, string> = {};
  for (const d of ss.data) {
    const content = files.get(d.sourcePath);
    if (content === undefined) throw new Error(`file matching sourcePath ${d.sourcePath} not found`);
    secret[d.targetKey] = content.toString('utf8');
  }
  return { versions: res.objectVersion, files, secret };
}

// The example: manifests/examples/secret-sync.yaml, as the controller would read it.
const example = parseDocuments(
  readFileSync(new URL('../../manifests/examples/secret-sync.yaml', import.meta.url), 'utf8'),
  'secret-sync.yaml',
);
const exampleSa = example.find((o) => o.kind === 'ServiceAccount')!;
const exampleClass = example.find((o) => o.kind === 'SecretProviderClass') as unknown as {
  spec: { parameters: Record<string, string> };
};
const exampleSync = example.find((o) => o.kind === 'SecretSync') as unknown as {
  metadata: { namespace: string };
  spec: { serviceAccountName: string; secretObject: { data: { sourcePath: string; targetKey: string }[] } };
};
const EXAMPLE: SecretSync = {
  namespace: exampleSync.metadata.namespace,
  serviceAccount: exampleSync.spec.serviceAccountName,
  parameters: exampleClass.spec.parameters,
  data: exampleSync.spec.secretObject.data,
};
const EXAMPLE_ROLE = exampleSa.metadata.annotations?.['eks.amazonaws.com/role-arn'] ?? '';

/** A tenant: a namespace whose service account's role may read only its own secrets. */
function tenant(
  ns: string,
  sa: string,
  o: { roleOf?: string } = {},
): { role: string; ss: (objects: string) => SecretSync } {
  const role = o.roleOf ?? `arn:aws:iam::123456789012:role/${ns}-sync`;
  if (o.roleOf === undefined) {
    emu.addRole({
      arn: role,
      trust: { subjects: [`system:serviceaccount:${ns}:${sa}`] },
      allow: { secretsmanager: [`${ns}/*`], ssm: [] },
    });
  }
  emu.addServiceAccount(ns, sa, { 'eks.amazonaws.com/role-arn': role });
  return { role, ss: (objects) => ({ namespace: ns, serviceAccount: sa, parameters: { objects }, data: [] }) };
}

beforeAll(async () => {
  ensureBuilt();
  dir = await mkdtemp(path.join(os.tmpdir(), 'csi-aws-sync-'));
  emu = await startEmulator();
  await emu.writeKubeconfig(path.join(dir, 'kubeconfig'));
  emu.addNode(CONTROLLER_NODE, { 'topology.kubernetes.io/region': REGION });
  // The controller's pod lives in its own namespace, never in the SecretSyncs' namespaces.
  emu.addPod(CONTROLLER_NAMESPACE, CONTROLLER_POD, CONTROLLER_NODE);
  emu.addRole({
    arn: EXAMPLE_ROLE,
    trust: { subjects: [`system:serviceaccount:${EXAMPLE.namespace}:${EXAMPLE.serviceAccount}`] },
    allow: { secretsmanager: ['prod/db-creds*'], ssm: ['/app/feature-flag'] },
  });
  emu.addServiceAccount(EXAMPLE.namespace, EXAMPLE.serviceAccount, { 'eks.amazonaws.com/role-arn': EXAMPLE_ROLE });
  emu.putSecret(REGION, 'prod/db-creds', JSON.stringify({ username: 'app', password: 'first-password' }), {
    versionId: 'a1b2c3d4-0000-4000-8000-000000000001',
  });
  emu.putParameter(REGION, '/app/feature-flag', 'on');
  [sidecar, providerWrites] = await Promise.all([
    startSidecar('provider', { driverWrites: true }),
    startSidecar('provider-writes', { driverWrites: false }),
  ]);
}, 60_000);

afterAll(async () => {
  await stopSidecar(sidecar);
  await stopSidecar(providerWrites);
  await emu?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

beforeEach(() => emu.resetCalls());

describe("as the Secrets Store Sync Controller's provider (driver-writes sidecar)", () => {
  let first: Synced;

  it("example SecretSync's first sync: every file and version answered, Secret built, nothing written", async () => {
    first = await sync(sidecar, EXAMPLE);
    expect(first.versions).toEqual([
      { id: 'db-creds.json', version: 'a1b2c3d4-0000-4000-8000-000000000001' },
      { id: 'db-username', version: 'a1b2c3d4-0000-4000-8000-000000000001' },
      { id: 'db-password', version: 'a1b2c3d4-0000-4000-8000-000000000001' },
      { id: 'feature-flag', version: '1' },
    ]);
    expect([...first.files.keys()]).toEqual(['db-creds.json', 'db-username', 'db-password', 'feature-flag']);
    expect(first.files.get('feature-flag')?.toString()).toBe('on');
    expect(first.secret).toEqual({ username: 'app', password: 'first-password' });
    // As the example's service account, through its role: no lookup of the pod the attributes name.
    expect(emu.calls.filter((c) => c.service === 'sts').map((c) => [c.operation, c.roleArn, c.sessionName])).toEqual([
      ['AssumeRoleWithWebIdentity', EXAMPLE_ROLE, 'default.app-sync'],
    ]);
    expect(
      emu.calls
        .filter((c) => c.service === 'k8s')
        .map((c) => `${c.operation} ${c.names.join(',')}`)
        .sort(),
    ).toEqual(['GetServiceAccount default/app-sync']);
    expect(existsSync(SYNC_TARGET)).toBe(mntExisted);
  });

  it('unchanged secrets: same versions and bytes, with or without the previous versions; no new exchange', async () => {
    const again = await sync(sidecar, EXAMPLE);
    const withLast = await sync(sidecar, EXAMPLE, first.versions);
    for (const s of [again, withLast]) {
      expect(s.versions).toEqual(first.versions);
      expect(s.files).toEqual(first.files);
      expect(s.secret).toEqual(first.secret);
    }
    expect(emu.callCount({ service: 'sts' })).toBe(0);
  });

  it("secret rotated: its 3 files get new versions, the parameter's not; the Secret has the new password", async () => {
    emu.putSecret(REGION, 'prod/db-creds', JSON.stringify({ username: 'app', password: 'rotated-password' }), {
      versionId: 'a1b2c3d4-0000-4000-8000-000000000002',
    });
    const rotated = await sync(sidecar, EXAMPLE, first.versions);
    const byId = Object.fromEntries(rotated.versions.map((v) => [v.id, v.version]));
    expect(byId).toEqual({
      'db-creds.json': 'a1b2c3d4-0000-4000-8000-000000000002',
      'db-username': 'a1b2c3d4-0000-4000-8000-000000000002',
      'db-password': 'a1b2c3d4-0000-4000-8000-000000000002',
      'feature-flag': '1',
    });
    expect(rotated.secret).toEqual({ username: 'app', password: 'rotated-password' });
    expect(rotated.files.get('feature-flag')).toEqual(first.files.get('feature-flag'));
  });

  it('a refused class: broken objects → INVALID_ARGUMENT before any AWS or Kubernetes call; no files', async () => {
    const e = await refused(
      sync(sidecar, {
        ...EXAMPLE,
        parameters: { objects: '- objectName: "prod/db-creds"\n  objectAlias: "../escape"' },
      }),
    );
    expect(e.code).toBe(status.INVALID_ARGUMENT);
    expect(e.details).toMatch(/objectType|objectAlias/);
    expect(emu.calls).toEqual([]);
  });

  it("a refused class: a secret the service account's role may not read is PERMISSION_DENIED naming it", async () => {
    emu.putSecret(REGION, 'other/secret', 'not for app-sync');
    const e = await refused(
      sync(sidecar, {
        ...EXAMPLE,
        parameters: { region: REGION, objects: '- {objectName: "other/secret", objectType: "secretsmanager"}' },
      }),
    );
    expect(e.code).toBe(status.PERMISSION_DENIED);
    expect(e.details).toContain('other/secret');
    expect(e.details).not.toContain('not for app-sync');
  });

  it('no token and no secret value in any log line of the sidecar', () => {
    const log = sidecar.stderr();
    expect(log).toContain('"msg":"mount"');
    for (const forbidden of ['first-password', 'rotated-password', 'eyJ']) expect(log).not.toContain(forbidden);
  });
});

describe('two SecretSyncs of different service accounts never share credentials', () => {
  it("each sync's token gets only its own role and secrets; a third naming the first's role: STS refuses", async () => {
    const a = tenant('team-a', 'app-a');
    const b = tenant('team-b', 'app-b');
    emu.putSecret(REGION, 'team-a/db', 'secret of a');
    emu.putSecret(REGION, 'team-b/db', 'secret of b');
    const SM = (name: string): string => `- {objectName: "${name}", objectType: "secretsmanager", objectAlias: "db"}`;
    const ssA = { ...a.ss(SM('team-a/db')), data: [{ sourcePath: 'db', targetKey: 'db' }] };
    const ssB = { ...b.ss(SM('team-b/db')), data: [{ sourcePath: 'db', targetKey: 'db' }] };

    // Concurrently and in turn, as the controller's workers reconcile them.
    const [ra, rb] = await Promise.all([sync(sidecar, ssA), sync(sidecar, ssB)]);
    expect(ra.secret).toEqual({ db: 'secret of a' });
    expect(rb.secret).toEqual({ db: 'secret of b' });
    expect((await sync(sidecar, ssB)).secret).toEqual({ db: 'secret of b' });
    expect((await sync(sidecar, ssA)).secret).toEqual({ db: 'secret of a' });

    // One exchange per service account, each for its own role and session; every read by its own role.
    const exchanges = emu.calls
      .filter((c) => c.service === 'sts')
      .map((c) => `${c.operation} ${c.roleArn} ${c.sessionName}`)
      .sort();
    expect(exchanges).toEqual([
      `AssumeRoleWithWebIdentity ${a.role} team-a.app-a`,
      `AssumeRoleWithWebIdentity ${b.role} team-b.app-b`,
    ]);
    // The region from the sidecar's own node (NODE_NAME), never from the pod the attributes name.
    expect(
      emu.calls
        .filter((x) => x.service === 'k8s')
        .map((x) => x.operation)
        .sort(),
    ).toEqual(['GetNode', 'GetServiceAccount', 'GetServiceAccount']);
    for (const c of emu.calls.filter((x) => x.service === 'secretsmanager')) {
      expect(c.roleArn, c.names.join(',')).toBe(c.names[0]?.startsWith('team-a/') ? a.role : b.role);
    }

    // B's class naming A's secret: B's own credentials, refused (not A's, cached a moment ago).
    const cross = await refused(sync(sidecar, { ...ssB, parameters: { objects: SM('team-a/db') } }));
    expect(cross.code).toBe(status.PERMISSION_DENIED);
    expect(cross.details).not.toContain('secret of a');
    const denied = emu.calls.filter((c) => c.service === 'secretsmanager' && c.errorCode === 'AccessDeniedException');
    expect(denied.map((c) => c.roleArn)).toEqual([b.role]);

    // A third service account annotated with A's role: STS decides on its own token (A's role does not
    // trust it), however fresh A's credentials for that role are.
    const c = tenant('team-c', 'app-c', { roleOf: a.role });
    const third = await refused(sync(sidecar, { ...c.ss(SM('team-a/db')), data: [] }));
    expect(third.code).toBe(status.PERMISSION_DENIED);
    expect(emu.calls.filter((x) => x.service === 'sts').at(-1)).toMatchObject({
      operation: 'AssumeRoleWithWebIdentity',
      errorCode: 'AccessDenied',
    });
    expect(
      emu.calls
        .filter((x) => x.service === 'secretsmanager' && x.names[0] === 'team-a/db' && x.status === 200)
        .every((x) => x.roleArn === a.role),
    ).toBe(true);
  });
});

describe('Pod Identity through the controller (audience pods.eks.amazonaws.com)', () => {
  it("the agent gets the SecretSync's token (no pod claim): a session; no STS, no service-account lookup", async () => {
    const role = 'arn:aws:iam::123456789012:role/team-p-sync';
    emu.addRole({
      arn: role,
      trust: { subjects: ['system:serviceaccount:team-p:app-p'], audience: 'pods.eks.amazonaws.com' },
      allow: { secretsmanager: ['team-p/*'] },
    });
    emu.addPodIdentityAssociation({ namespace: 'team-p', serviceAccount: 'app-p', roleArn: role });
    emu.putSecret(REGION, 'team-p/db', 'secret of p');
    const ss: SecretSync = {
      namespace: 'team-p',
      serviceAccount: 'app-p',
      audience: 'pods.eks.amazonaws.com',
      parameters: {
        usePodIdentity: 'true',
        objects: '- {objectName: "team-p/db", objectType: "secretsmanager", objectAlias: "db"}',
      },
      data: [{ sourcePath: 'db', targetKey: 'db' }],
    };
    expect((await sync(sidecar, ss)).secret).toEqual({ db: 'secret of p' });
    expect(emu.calls.filter((c) => c.service === 'pod-identity').map((c) => [c.names, c.roleArn])).toEqual([
      [['team-p/app-p'], role],
    ]);
    expect(emu.callCount({ service: 'sts' })).toBe(0);
    expect(emu.callCount({ service: 'k8s', operation: 'GetServiceAccount' })).toBe(0);
    const session = emu.sessions().at(-1);
    expect(session?.tags).toMatchObject({ 'kubernetes-namespace': 'team-p', 'kubernetes-service-account': 'app-p' });
    expect(session?.tags['kubernetes-pod-name']).toBeUndefined();
  });
});

describe('a provider in provider-writes mode, called by the controller', () => {
  it('INVALID_ARGUMENT naming --driver-writes-secrets, before any call; no file in /mnt/secrets-store', async () => {
    const e = await refused(sync(providerWrites, EXAMPLE));
    expect(e.code).toBe(status.INVALID_ARGUMENT);
    expect(e.details).toContain(`target path "${SYNC_TARGET}" refused`);
    expect(e.details).toContain('--driver-writes-secrets');
    expect(e.details).toContain('Secrets Store Sync Controller');
    expect(emu.calls).toEqual([]);
    expect(existsSync(SYNC_TARGET)).toBe(mntExisted);
  });
});

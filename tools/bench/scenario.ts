/**
 * @module bench/scenario
 * The bench's cluster in the emulator: one node, N Secrets Manager secrets (`bench/secret-000`, …),
 * and pods made on demand, each with its own service account, IAM role (IRSA annotation, or a Pod
 * Identity association) and tokens, as test/helpers/harness.ts sets them up. A pod mounts through
 * the driver client exactly as the driver would.
 */
import { mkdir } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { mountAttributes, type DriverClient, type Emulator, type ObjectVersion } from '../emulator/index.js';

export const REGION = 'us-east-1';
export const NODE = 'node-1';

export interface BenchPod {
  readonly name: string;
  readonly namespace: string;
  readonly serviceAccount: string;
  readonly target: string;
  /** Objects in this pod's class. */
  readonly objects: number;
  readonly podIdentity: boolean;
  /** JSON attributes as the driver sends them. */
  readonly attributes: string;
  /** Versions returned by the last successful mount. */
  versions: ObjectVersion[];
}

export function secretName(i: number): string {
  return `bench/secret-${String(i).padStart(3, '0')}`;
}

/** The class's `objects` YAML naming the first `n` secrets. */
export function objectsYaml(n: number): string {
  const lines: string[] = [];
  for (let i = 0; i < n; i++) lines.push(`- objectName: ${secretName(i)}`, '  objectType: secretsmanager');
  return lines.join('\n') + '\n';
}

/** A 256-byte JSON secret value, distinct per secret (fake data). */
function secretValue(i: number): string {
  const head = `{"username":"bench-user-${i}","password":"`;
  const tail = '"}';
  return head + 'x'.repeat(256 - head.length - tail.length) + tail;
}

export class Scenario {
  private counter = 0;

  constructor(
    readonly emu: Emulator,
    private readonly dir: string,
  ) {}

  /** The kubelet root the pods' targets are under: the provider runs with `--kubelet-root` set to it. */
  get kubeletRoot(): string {
    return path.join(this.dir, 'kubelet');
  }

  /** Seeds the node and `secrets` secrets. */
  seed(secrets: number): void {
    this.emu.addNode(NODE, { 'topology.kubernetes.io/region': REGION });
    for (let i = 0; i < secrets; i++) this.emu.putSecret(REGION, secretName(i), secretValue(i));
  }

  /** A new pod (new service account, role and tokens) whose class names `objects` secrets. */
  async pod(objects: number, o: { podIdentity?: boolean; allowBatch?: boolean } = {}): Promise<BenchPod> {
    const n = ++this.counter;
    const namespace = `bench-${n}`;
    const serviceAccount = `sa-${n}`;
    const name = `pod-${n}`;
    const roleArn = `arn:aws:iam::${this.emu.accountId}:role/bench-reader-${n}`;
    const podIdentity = o.podIdentity === true;
    this.emu.addRole({
      arn: roleArn,
      trust: { subjects: [`system:serviceaccount:${namespace}:${serviceAccount}`] },
      allow: { secretsmanager: ['*'], ssm: ['*'], ...(o.allowBatch === true ? { batchGetSecretValue: true } : {}) },
    });
    if (podIdentity) {
      this.emu.addServiceAccount(namespace, serviceAccount, {});
      this.emu.addPodIdentityAssociation({ namespace, serviceAccount, roleArn });
    } else {
      this.emu.addServiceAccount(namespace, serviceAccount, { 'eks.amazonaws.com/role-arn': roleArn });
    }
    this.emu.addPod(namespace, name, NODE);
    const tokens = {
      'sts.amazonaws.com': this.emu.issueToken({
        namespace,
        serviceAccount,
        audience: 'sts.amazonaws.com',
        podName: name,
      }),
      'pods.eks.amazonaws.com': this.emu.issueToken({
        namespace,
        serviceAccount,
        audience: 'pods.eks.amazonaws.com',
        podName: name,
      }),
    };
    const parameters: Record<string, string> = { region: REGION, objects: objectsYaml(objects) };
    if (podIdentity) parameters['usePodIdentity'] = 'true';
    // Shaped as the kubelet makes it: the provider refuses targets outside <kubelet-root>/pods/<uid>/….
    const uid = randomUUID();
    const target = path.join(this.kubeletRoot, 'pods', uid, 'volumes', 'kubernetes.io~csi', 'secrets-store', 'mount');
    await mkdir(target, { recursive: true });
    const attributes = JSON.stringify(
      mountAttributes({
        podName: name,
        namespace,
        serviceAccount,
        podUid: uid,
        tokens,
        parameters,
        secretProviderClass: `bench-${objects}`,
      }),
    );
    return { name, namespace, serviceAccount, target, objects, podIdentity, attributes, versions: [] };
  }
}

export interface MountTiming {
  wallMs: number;
  versions: number;
}

function describe(err: unknown): string {
  const e = err as { code?: unknown; details?: unknown };
  if (typeof e?.details === 'string' && e.details !== '') return `gRPC status ${String(e.code)}: ${e.details}`;
  return err instanceof Error ? err.message : String(err);
}

/**
 * One Mount as the driver sends it: `withVersions` false = driver v1.6 (no versions), true = the
 * versions of the pod's last mount (driver ≤ 1.5's reconciler). Throws with the gRPC status on failure.
 */
export async function mountPod(
  client: DriverClient,
  pod: BenchPod,
  withVersions: boolean,
  deadlineMs = 120_000,
): Promise<MountTiming> {
  const t0 = performance.now();
  try {
    const res = await client.mount(
      { attributes: pod.attributes, targetPath: pod.target, currentObjectVersion: withVersions ? pod.versions : [] },
      { deadlineMs },
    );
    pod.versions = res.objectVersion;
    return { wallMs: performance.now() - t0, versions: res.objectVersion.length };
  } catch (err) {
    throw new Error(`mount of ${pod.namespace}/${pod.name} (${pod.objects} objects) failed: ${describe(err)}`, {
      cause: err,
    });
  }
}

export { mapLimit } from '../../src/map-limit.js';

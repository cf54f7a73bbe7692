/**
 * @module bench/box-scenario
 * The cluster of the box scenario, shaped like a full node under the Helm chart: one node `node-1`
 * labelled with its region, a few teams (a namespace and a service account each, with its own IAM
 * role through the IRSA annotation, trusted only by that service account), and pods of those teams,
 * **each with its own pod-bound tokens** (both audiences, as the kubelet issues them to the driver
 * for every pod: a token names the pod and its uid). A team's class names its own Secrets Manager
 * secrets (~1 KB of JSON each), the first one split with `jmesPath`, and has **no `region`**: the
 * provider takes the region from its own node (NODE_NAME), as the chart starts it.
 *
 * Pods come in bursts: `pods(n, tag)` makes n new pods spread round-robin over the teams, each with
 * its own target directory. `expectedFiles(pod)` is what the pod's volume must hold.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { mountAttributes, type Emulator } from '../emulator/index.js';
import type { BenchPod } from './scenario.js';

export const BOX_REGION = 'us-east-1';
export const BOX_NODE = 'node-1';
/** The jmesPath entry of every team's first secret: `username` → file `user`. */
export const JMES_ALIAS = 'user';

export interface BoxClusterShape {
  /** Teams: a namespace, service account and IAM role each (11 for the chart's 110 pods). */
  teams: number;
  /** Secrets in each team's class. */
  objects: number;
  /** Size of each secret's JSON value, bytes (about). */
  secretBytes: number;
}

export interface BoxPod extends BenchPod {
  readonly uid: string;
  readonly team: number;
  /** The pod's own tokens (they must never appear in the provider's output). */
  readonly tokens: readonly string[];
}

interface Team {
  namespace: string;
  serviceAccount: string;
  roleArn: string;
  /** Secret names, in class order. */
  secrets: string[];
  objectsYaml: string;
}

/** `team-03/secret-07` → the file name the provider writes (default pathTranslation `_`). */
export function fileNameOf(secret: string): string {
  return secret.replace(/\//g, '_');
}

/** The class's `objects`: every secret of the team, the first split with jmesPath. */
export function teamObjectsYaml(secrets: readonly string[]): string {
  const lines: string[] = [];
  secrets.forEach((s, i) => {
    lines.push(`- objectName: ${s}`, '  objectType: secretsmanager');
    if (i === 0) lines.push('  jmesPath:', '    - path: username', `      objectAlias: ${JMES_ALIAS}`);
  });
  return lines.join('\n') + '\n';
}

/** A JSON secret of about `bytes` bytes with a unique, random password (fake data). */
function secretValue(username: string, bytes: number): string {
  const head = `{"username":"${username}","password":"`;
  const tail = '"}';
  const fill = Math.max(16, bytes - head.length - tail.length);
  return (
    head +
    randomBytes(Math.ceil(fill / 2))
      .toString('hex')
      .slice(0, fill) +
    tail
  );
}

export class BoxCluster {
  private readonly teams: Team[] = [];
  /** Current value of every secret. */
  private readonly values = new Map<string, string>();
  private made = 0;

  /**
   * `kubeletRoot` is where pods' target directories go, shaped as the kubelet makes them
   * (`<root>/pods/<uid>/volumes/kubernetes.io~csi/<volume>/mount`; a tmpfs, as the driver mounts
   * each volume, when there is one). The provider runs with `--kubelet-root` set to it.
   */
  constructor(
    readonly emu: Emulator,
    readonly kubeletRoot: string,
    readonly shape: BoxClusterShape,
  ) {
    emu.addNode(BOX_NODE, { 'topology.kubernetes.io/region': BOX_REGION });
    for (let t = 0; t < shape.teams; t++) {
      const id = String(t).padStart(2, '0');
      const namespace = `team-${id}`;
      const serviceAccount = 'app';
      const roleArn = `arn:aws:iam::${emu.accountId}:role/team-${id}-reader`;
      const secrets = Array.from(
        { length: shape.objects },
        (_, k) => `team-${id}/secret-${String(k).padStart(2, '0')}`,
      );
      // Each role reads only its team's secrets: a cross-wired mount would fail, not pass silently.
      emu.addRole({
        arn: roleArn,
        trust: { subjects: [`system:serviceaccount:${namespace}:${serviceAccount}`] },
        allow: { secretsmanager: [`team-${id}/*`] },
      });
      emu.addServiceAccount(namespace, serviceAccount, { 'eks.amazonaws.com/role-arn': roleArn });
      for (const s of secrets) this.put(s, `user-${s.replace('/', '-')}`);
      this.teams.push({ namespace, serviceAccount, roleArn, secrets, objectsYaml: teamObjectsYaml(secrets) });
    }
  }

  private put(secret: string, username: string): void {
    const value = secretValue(username, this.shape.secretBytes);
    this.emu.putSecret(BOX_REGION, secret, value);
    this.values.set(secret, value);
  }

  /** A new version of a team's k-th secret (a rotation); returns its name. */
  rotate(team: number, k: number): string {
    const t = this.teams[team];
    const s = t?.secrets[k];
    if (t === undefined || s === undefined) throw new RangeError(`rotate: no secret ${k} in team ${team}`);
    this.put(s, `user-${s.replace('/', '-')}-rotated-${randomBytes(3).toString('hex')}`);
    return s;
  }

  /** Every secret value there is or was, for leak checks. */
  secretValues(): string[] {
    return [...this.values.values()];
  }

  /** `n` new pods spread round-robin over the teams, each with its own tokens and target dir. */
  async pods(n: number, tag: string): Promise<BoxPod[]> {
    const out: BoxPod[] = [];
    for (let i = 0; i < n; i++) {
      const team = i % this.teams.length;
      const t = this.teams[team] as Team;
      const name = `${tag}-${++this.made}`;
      const uid = randomUUID();
      this.emu.addPod(t.namespace, name, BOX_NODE);
      // The kubelet requests one token per pod and audience (the driver's tokenRequests), bound to the pod.
      const issue = (audience: string): string =>
        this.emu.issueToken({
          namespace: t.namespace,
          serviceAccount: t.serviceAccount,
          audience,
          podName: name,
          podUid: uid,
        });
      const tokens = {
        'sts.amazonaws.com': issue('sts.amazonaws.com'),
        'pods.eks.amazonaws.com': issue('pods.eks.amazonaws.com'),
      };
      const target = path.join(this.kubeletRoot, 'pods', uid, 'volumes', 'kubernetes.io~csi', 'secrets-store', 'mount');
      await mkdir(target, { recursive: true });
      const attributes = JSON.stringify(
        mountAttributes({
          podName: name,
          namespace: t.namespace,
          serviceAccount: t.serviceAccount,
          podUid: uid,
          tokens,
          parameters: { objects: t.objectsYaml },
          secretProviderClass: `${t.namespace}-secrets`,
        }),
      );
      out.push({
        name,
        namespace: t.namespace,
        serviceAccount: t.serviceAccount,
        target,
        objects: t.secrets.length,
        podIdentity: false,
        attributes,
        versions: [],
        uid,
        team,
        tokens: Object.values(tokens),
      });
    }
    return out;
  }

  /** File name → contents the pod's volume must hold now. */
  expectedFiles(pod: BoxPod): Record<string, string> {
    const t = this.teams[pod.team] as Team;
    const files: Record<string, string> = {};
    for (const s of t.secrets) files[fileNameOf(s)] = this.values.get(s) ?? '';
    const first = t.secrets[0];
    if (first !== undefined)
      files[JMES_ALIAS] = (JSON.parse(this.values.get(first) ?? '{}') as { username?: string }).username ?? '';
    return files;
  }
}

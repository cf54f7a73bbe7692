/**
 * Starts what an integration test needs, for real: the AWS/Kubernetes emulator on a loopback port,
 * the provider (the same `start()` main uses) on a unix socket in a temp dir, and the driver-side
 * gRPC client. The provider reaches the emulator only the way it reaches AWS: AWS_ENDPOINT_URL and a
 * KUBECONFIG. Every log line is captured, so tests can check that no secret or token leaked.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseFlags } from '../../src/cli/flags.js';
import {
  createDriverClient,
  mountAttributes,
  writeFilesLikeDriver,
  type DriverClient,
} from '../../tools/emulator/driver-client.js';
import { expect } from 'vitest';
import { pointAwsSdkAt, startEmulator, type Emulator, type EmulatorOptions } from '../../tools/emulator/index.js';
import { start, type Running } from '../../src/cli/serve.js';
import { createLogger } from '../../src/observability/logger.js';

export const ACCOUNT = '123456789012';
export const REGION = 'us-east-1';
export const FAILOVER_REGION = 'us-west-2';

export interface HarnessOptions {
  /** Extra provider flags (`--driver-writes-secrets`, …), or built once the emulator listens (to name it). */
  flags?: string[] | ((emu: Emulator) => string[] | Promise<string[]>);
  /** Labels of `node-1` (default: the region label of REGION). */
  nodeLabels?: Record<string, string>;
  /** Provider env on top of the defaults (NODE_NAME, AWS_REGION…). */
  env?: Record<string, string>;
  emulator?: EmulatorOptions;
}

export interface PodSpec {
  namespace?: string;
  serviceAccount?: string;
  pod?: string;
  node?: string;
  /** The IAM role of the service account (annotation) and its read permissions. */
  role?: string;
  allowSecrets?: string[];
  allowParameters?: string[];
  /** Give the service account no role annotation. */
  noAnnotation?: boolean;
  /** Annotate with `role` but do not create it (another pod's role, which does not trust this one). */
  foreignRole?: boolean;
  /** The role may also call secretsmanager:BatchGetSecretValue. */
  allowBatch?: boolean;
  /** Also associate the role with the service account for EKS Pod Identity. */
  podIdentity?: boolean;
  /** Lifetime of the pod's tokens (default 1 h). */
  tokenSeconds?: number;
}

export interface Pod {
  namespace: string;
  serviceAccount: string;
  pod: string;
  roleArn: string;
  irsaToken: string;
  podIdentityToken: string;
  /** Attributes as the driver sends them, with these SecretProviderClass parameters. */
  attributes(
    parameters: Record<string, string>,
    o?: { tokens?: 'both' | 'irsa' | 'pod-identity' | 'none' },
  ): Record<string, string>;
}

export interface Harness {
  emu: Emulator;
  provider: Running;
  client: DriverClient;
  socketPath: string;
  /** Every provider log line (JSON). */
  logs: string[];
  /**
   * A fresh, empty target directory shaped as the kubelet makes it,
   * `<kubeletRoot>/pods/<uid>/volumes/kubernetes.io~csi/<volume>/mount` (the provider refuses others).
   */
  target(): Promise<string>;
  /** The temporary kubelet root the provider runs with (`--kubelet-root`). */
  kubeletRoot: string;
  /**
   * A Mount as the driver makes it, then what the driver does with the answer: in driver-writes
   * mode it writes the returned files with the driver's atomic writer; in provider-writes mode the
   * answer must carry no files (the provider wrote them).
   */
  mountAndWrite(
    attributes: Record<string, string>,
    targetPath: string,
    currentObjectVersion?: { id: string; version: string }[],
  ): ReturnType<DriverClient['mount']>;
  pod(spec?: PodSpec): Pod;
  close(): Promise<void>;
}

let counter = 0;

/** Makes `<kubeletRoot>/pods/<new uid>/volumes/kubernetes.io~csi/<volume>/mount`, as the kubelet does. */
export async function kubeletTarget(kubeletRoot: string, volume = 'secrets-store'): Promise<string> {
  const t = path.join(kubeletRoot, 'pods', randomUUID(), 'volumes', 'kubernetes.io~csi', volume, 'mount');
  await mkdir(t, { recursive: true });
  return t;
}

export async function startHarness(o: HarnessOptions = {}): Promise<Harness> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'csi-aws-it-'));
  const emu = await startEmulator(o.emulator ?? {});
  const kubeconfig = path.join(dir, 'kubeconfig');
  await emu.writeKubeconfig(kubeconfig);

  // The SDK reads these from process.env; each test file runs in its own process (vitest forks).
  const restoreEnv = pointAwsSdkAt(emu.url, dir);

  const env: Record<string, string | undefined> = { KUBECONFIG: kubeconfig, ...o.env };
  const volume = path.join(dir, 'providers');
  await mkdir(volume);
  emu.addNode('node-1', o.nodeLabels ?? { 'topology.kubernetes.io/region': REGION });
  const kubeletRoot = path.join(dir, 'kubelet');
  await mkdir(path.join(kubeletRoot, 'pods'), { recursive: true });
  const extra = typeof o.flags === 'function' ? await o.flags(emu) : (o.flags ?? []);
  const parsed = parseFlags(
    [
      `--provider-volume=${volume}`,
      `--kubelet-root=${kubeletRoot}`,
      '--metrics-addr=127.0.0.1:0',
      '--health-addr=127.0.0.1:0',
      ...extra,
    ],
    env,
  );
  if (parsed.kind !== 'run') throw new Error(`bad test flags: ${JSON.stringify(parsed)}`);
  const logs: string[] = [];
  const logger = createLogger({ level: 'debug', write: (line) => logs.push(line) });
  const provider = await start(parsed.flags, env, logger);
  const client = createDriverClient(provider.socketPath);

  return {
    emu,
    provider,
    client,
    socketPath: provider.socketPath,
    logs,
    kubeletRoot,
    target: () => kubeletTarget(kubeletRoot, `secrets-store-${++counter}`),
    async mountAndWrite(attributes, targetPath, currentObjectVersion = []) {
      const res = await client.mount({ attributes, targetPath, currentObjectVersion });
      if (parsed.flags.driverWritesSecrets) await writeFilesLikeDriver(targetPath, res.files);
      else expect(res.files).toEqual([]);
      return res;
    },
    pod(spec: PodSpec = {}) {
      const n = ++counter;
      const namespace = spec.namespace ?? `ns-${n}`;
      const serviceAccount = spec.serviceAccount ?? `sa-${n}`;
      const pod = spec.pod ?? `pod-${n}`;
      const roleArn = spec.role ?? `arn:aws:iam::${ACCOUNT}:role/reader-${n}`;
      const sub = `system:serviceaccount:${namespace}:${serviceAccount}`;
      if (!spec.foreignRole)
        emu.addRole({
          arn: roleArn,
          trust: { subjects: [sub] },
          allow: {
            secretsmanager: spec.allowSecrets ?? ['*'],
            ssm: spec.allowParameters ?? ['*'],
            ...(spec.allowBatch ? { batchGetSecretValue: true } : {}),
          },
        });
      if (spec.podIdentity) emu.addPodIdentityAssociation({ namespace, serviceAccount, roleArn });
      emu.addServiceAccount(
        namespace,
        serviceAccount,
        spec.noAnnotation ? {} : { 'eks.amazonaws.com/role-arn': roleArn },
      );
      emu.addPod(namespace, pod, spec.node ?? 'node-1');
      const life = spec.tokenSeconds === undefined ? {} : { expiresInSeconds: spec.tokenSeconds };
      const irsaToken = emu.issueToken({
        namespace,
        serviceAccount,
        audience: 'sts.amazonaws.com',
        podName: pod,
        ...life,
      });
      const podIdentityToken = emu.issueToken({
        namespace,
        serviceAccount,
        audience: 'pods.eks.amazonaws.com',
        podName: pod,
        ...life,
      });
      return {
        namespace,
        serviceAccount,
        pod,
        roleArn,
        irsaToken,
        podIdentityToken,
        attributes(parameters, a = {}) {
          const which = a.tokens ?? 'both';
          const tokens: Record<string, string> = {};
          if (which === 'both' || which === 'irsa') tokens['sts.amazonaws.com'] = irsaToken;
          if (which === 'both' || which === 'pod-identity') tokens['pods.eks.amazonaws.com'] = podIdentityToken;
          return mountAttributes({
            podName: pod,
            namespace,
            serviceAccount,
            ...(which === 'none' ? {} : { tokens }),
            parameters,
          });
        },
      };
    },
    async close() {
      client.close();
      await provider.stop();
      await emu.close();
      restoreEnv();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

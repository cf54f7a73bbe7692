/**
 * The integration harness for identity, failover and caching tests: like `harness.ts`, but the
 * emulator starts first, so provider flags may name it (`--pod-identity-endpoint=<emu agent URL>`,
 * or an agent listener that can fail or start late), and the provider env may carry NODE_NAME.
 * Pods may be given an EKS Pod Identity association and tokens of a chosen lifetime.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseFlags } from '../../src/cli/flags.js';
import { createDriverClient, mountAttributes, type DriverClient } from '../../src/emulator/driver-client.js';
import { startEmulator, type Emulator, type EmulatorOptions } from '../../src/emulator/index.js';
import { start, type Running } from '../../src/main.js';
import { createLogger } from '../../src/observability/logger.js';
import { ACCOUNT, FAILOVER_REGION, REGION, type Pod, type PodSpec } from './harness.js';

export { ACCOUNT, FAILOVER_REGION, REGION };
export type { Pod };

export interface IdentityHarnessOptions {
  /** Provider flags, built once the emulator listens. Default: `--pod-identity-endpoint=<emu.podIdentityUrl>`. */
  flags?: (emu: Emulator) => string[] | Promise<string[]>;
  /** Provider env on top of KUBECONFIG (NODE_NAME, AWS_REGION…). */
  env?: Record<string, string>;
  emulator?: EmulatorOptions;
  /** Labels of `node-1` (default: the region label of REGION). Added before the provider starts. */
  nodeLabels?: Record<string, string>;
}

export interface IdentityPodSpec extends PodSpec {
  /** Also associate the role with the service account for EKS Pod Identity. */
  podIdentity?: boolean;
  /** Lifetime of the pod's tokens (default 1 h). */
  tokenSeconds?: number;
}

export interface IdentityHarness {
  emu: Emulator;
  provider: Running;
  client: DriverClient;
  logs: string[];
  target(): Promise<string>;
  pod(spec?: IdentityPodSpec): Pod;
  close(): Promise<void>;
}

let counter = 0;

export async function startIdentityHarness(o: IdentityHarnessOptions = {}): Promise<IdentityHarness> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'csi-aws-id-'));
  const emu = await startEmulator(o.emulator ?? {});
  const kubeconfig = path.join(dir, 'kubeconfig');
  await emu.writeKubeconfig(kubeconfig);
  emu.addNode('node-1', o.nodeLabels ?? { 'topology.kubernetes.io/region': REGION });

  process.env['AWS_ENDPOINT_URL'] = emu.url;
  process.env['AWS_EC2_METADATA_DISABLED'] = 'true';
  process.env['AWS_CONFIG_FILE'] = path.join(dir, 'no-aws-config');
  process.env['AWS_SHARED_CREDENTIALS_FILE'] = path.join(dir, 'no-aws-credentials');
  delete process.env['AWS_REGION'];
  delete process.env['AWS_PROFILE'];

  const env: Record<string, string | undefined> = { KUBECONFIG: kubeconfig, ...o.env };
  const volume = path.join(dir, 'providers');
  await mkdir(volume);
  const extra = o.flags ? await o.flags(emu) : [`--pod-identity-endpoint=${emu.podIdentityUrl}`];
  const parsed = parseFlags([`--provider-volume=${volume}`, '--metrics-addr=127.0.0.1:0', '--health-addr=127.0.0.1:0', ...extra], env);
  if (parsed.kind !== 'run') throw new Error(`bad test flags: ${JSON.stringify(parsed)}`);
  const logs: string[] = [];
  const logger = createLogger({ level: 'debug', write: (line) => logs.push(line) });
  const provider = await start(parsed.flags, env, logger);
  const client = createDriverClient(provider.socketPath);

  return {
    emu,
    provider,
    client,
    logs,
    async target() {
      const t = path.join(dir, 'pods', `pod-${++counter}`, 'mount');
      await mkdir(t, { recursive: true });
      return t;
    },
    pod(spec: IdentityPodSpec = {}) {
      const n = ++counter;
      const namespace = spec.namespace ?? `ns-${n}`;
      const serviceAccount = spec.serviceAccount ?? `sa-${n}`;
      const pod = spec.pod ?? `pod-${n}`;
      const roleArn = spec.role ?? `arn:aws:iam::${ACCOUNT}:role/reader-${n}`;
      const sub = `system:serviceaccount:${namespace}:${serviceAccount}`;
      if (!spec.foreignRole) {
        emu.addRole({ arn: roleArn, trust: { subjects: [sub] }, allow: { secretsmanager: spec.allowSecrets ?? ['*'], ssm: spec.allowParameters ?? ['*'] } });
      }
      if (spec.podIdentity) emu.addPodIdentityAssociation({ namespace, serviceAccount, roleArn });
      emu.addServiceAccount(namespace, serviceAccount, spec.noAnnotation ? {} : { 'eks.amazonaws.com/role-arn': roleArn });
      emu.addPod(namespace, pod, spec.node ?? 'node-1');
      const life = spec.tokenSeconds === undefined ? {} : { expiresInSeconds: spec.tokenSeconds };
      const irsaToken = emu.issueToken({ namespace, serviceAccount, audience: 'sts.amazonaws.com', podName: pod, ...life });
      const podIdentityToken = emu.issueToken({ namespace, serviceAccount, audience: 'pods.eks.amazonaws.com', podName: pod, ...life });
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
          return mountAttributes({ podName: pod, namespace, serviceAccount, ...(which === 'none' ? {} : { tokens }), parameters });
        },
      };
    },
    async close() {
      client.close();
      await provider.stop();
      await emu.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

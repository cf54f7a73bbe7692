/**
 * A Mount whose target is no pod's volume (the Secrets Store Sync Controller's fixed
 * /mnt/secrets-store): the pod its attributes name is the controller's own, with the SecretSync's
 * namespace, so the region must not come from looking that pod up. The pipeline with every outside
 * part faked, counting what it is asked.
 */
import { describe, expect, it } from 'vitest';
import type { FetchOutcome, FetchPlan } from '../aws/index.js';
import { ProviderError } from '../errors.js';
import { createLogger } from '../observability/logger.js';
import { createMount, type MountDeps } from './mount.js';

const TOKEN = 'header.eyJzdWIiOiJ4In0.sig';

function deps(o: { nodeName?: string; podVolume: boolean }): { deps: MountDeps; asked: string[] } {
  const asked: string[] = [];
  return {
    asked,
    deps: {
      driverWritesSecrets: true,
      awsRegion: '',
      nodeName: o.nodeName ?? '',
      podVolume: () => o.podVolume,
      kube: {
        roleArn: async (ns, sa) => {
          asked.push(`role ${ns}/${sa}`);
          return 'arn:aws:iam::123456789012:role/r';
        },
        nodeRegion: async (node) => {
          asked.push(`node ${node}`);
          return 'eu-west-1';
        },
        podRegion: async (ns, pod) => {
          asked.push(`pod ${ns}/${pod}`);
          return 'eu-west-1';
        },
      },
      identity: { credentials: async () => ({ accessKeyId: 'AKIA', secretAccessKey: 'x' }), forget: () => {} },
      fetcher: {
        async fetchAll(plan: FetchPlan): Promise<FetchOutcome> {
          asked.push(`fetch ${plan.primary.region}`);
          return {
            values: new Map(
              plan.descriptors.map(
                (d) => [d.index, { value: Buffer.from('v'), version: 'v1', region: plan.primary.region }] as const,
              ),
            ),
            missing: [],
            failures: [],
            warnings: [],
          };
        },
      },
      writer: {
        writeMount: async () => {
          throw new Error('driver-writes mode writes nothing');
        },
        touchMount: async () => {},
      },
      logger: createLogger({ level: 'error', write: () => {} }),
    },
  };
}

const attributes = (params: Record<string, string>): string =>
  JSON.stringify({
    ...params,
    objects: '- {objectName: db, objectType: secretsmanager}',
    'csi.storage.k8s.io/pod.name': 'secrets-store-sync-controller-manager-5d9c8-abcde',
    'csi.storage.k8s.io/pod.uid': '0b9f4c1e-0000-4000-8000-000000000001',
    'csi.storage.k8s.io/pod.namespace': 'team-a',
    'csi.storage.k8s.io/serviceAccount.name': 'app-a',
    'csi.storage.k8s.io/serviceAccount.tokens': JSON.stringify({
      'sts.amazonaws.com': { token: TOKEN, expirationTimestamp: '2030-01-01T00:00:00Z' },
    }),
  });

const input = (params: Record<string, string> = {}): Parameters<ReturnType<typeof createMount>>[0] => ({
  attributes: attributes(params),
  secrets: '{}',
  targetPath: '/mnt/secrets-store',
  permission: '420',
  currentObjectVersion: [],
});

describe('a Mount with no pod volume (Secrets Store Sync Controller)', () => {
  it('no region, AWS_REGION or NODE_NAME: FAILED_PRECONDITION naming the three, before any lookup', async () => {
    const d = deps({ podVolume: false });
    const err = await createMount(d.deps)(input(), new AbortController().signal).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderError);
    expect(err).toMatchObject({ code: 'FAILED_PRECONDITION', reason: 'RegionNotFound', field: 'region' });
    const message = (err as Error).message;
    expect(message).toContain('names no pod volume (target path "/mnt/secrets-store")');
    expect(message).toContain('set region in the SecretProviderClass, or AWS_REGION or NODE_NAME');
    expect(message).not.toContain(TOKEN);
    expect(d.asked).toEqual([]);
  });

  it("with NODE_NAME: the region from the provider's own node; the role from the named service account", async () => {
    const d = deps({ podVolume: false, nodeName: 'node-7' });
    const res = await createMount(d.deps)(input(), new AbortController().signal);
    expect(res.files.map((f) => f.path)).toEqual(['db']);
    expect(res.objectVersions).toEqual([{ id: 'db', version: 'v1' }]);
    expect(d.asked).toEqual(['node node-7', 'role team-a/app-a', 'fetch eu-west-1']);
  });

  it('with region in the class: no node or pod lookup at all', async () => {
    const d = deps({ podVolume: false });
    await createMount(d.deps)(input({ region: 'us-west-2' }), new AbortController().signal);
    expect(d.asked).toEqual(['role team-a/app-a', 'fetch us-west-2']);
  });

  it("a pod volume (the driver's Mounts) still takes the region from the pod's node", async () => {
    const d = deps({ podVolume: true });
    await createMount(d.deps)(input(), new AbortController().signal);
    expect(d.asked[0]).toBe('pod team-a/secrets-store-sync-controller-manager-5d9c8-abcde');
  });
});

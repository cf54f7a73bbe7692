// manifests/sync-controller/: the values that run this provider as the Secrets Store Sync
// Controller's provider container, rendered by the real Helm (helm.ts) through a chart that
// consumes them as the controller's chart does (the provider containers listed under `containers`
// next to the manager, which gets --provider-volume=/provider and --token-request-audience from the
// audiences joined with ", ", and mounts the socket directory `providervol` at /provider). The
// controller's chart is not fetched (no network in tests): this stand-in keeps to those few lines.
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseFlags } from '../../src/cli/flags.js';
import { helm, parseDocuments, parseYaml11, readChartYaml, removeTempDir, type K8sObject } from './helm.js';
import { unknownFields, validateObject } from './validate.js';

const DIR = new URL('../../manifests/sync-controller/', import.meta.url);
const VALUES = new URL('values.yaml', DIR).pathname;

interface Container {
  name: string;
  image: string;
  args: string[];
  env?: { name: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[];
  resources?: unknown;
  securityContext?: Record<string, unknown>;
  volumeMounts?: { name: string; mountPath: string }[];
  ports?: { containerPort: number }[];
}
type Deployment = K8sObject & {
  spec: { template: { spec: { containers: Container[]; volumes: { name: string; hostPath?: { path: string } }[] } } };
};

const CONTROLLER_TEMPLATE = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: secrets-store-sync-controller-manager
  namespace: {{ .Release.Namespace }}
spec:
  selector:
    matchLabels:
      control-plane: controller-manager
  template:
    metadata:
      labels:
        control-plane: controller-manager
    spec:
      serviceAccountName: secrets-store-sync-controller-manager
      containers:
      {{- if .Values.providerContainer }}
      {{- toYaml .Values.providerContainer | nindent 6 }}
      {{- end }}
      - name: manager
        image: registry.k8s.io/secrets-store-sync/controller:stand-in
        args:
        - --provider-volume=/provider
        {{- $audiences := list }}
        {{- range .Values.tokenRequestAudience }}{{ $audiences = append $audiences .audience }}{{ end }}
        - --token-request-audience={{ join ", " $audiences }}
        - --health-probe-bind-address=:8081
        - --metrics-bind-address=:8085
        volumeMounts:
        - mountPath: /provider
          name: providervol
      volumes:
      - name: providervol
        hostPath:
          path: /var/run/secrets-store-sync-providers
          type: DirectoryOrCreate
`;

let chartDir: string | undefined;

function render(): Deployment {
  const base = mkdtempSync(join(tmpdir(), 'chart-'));
  chartDir = join(base, 'secrets-store-sync-controller');
  mkdirSync(join(chartDir, 'templates'), { recursive: true });
  writeFileSync(
    join(chartDir, 'Chart.yaml'),
    'apiVersion: v2\nname: secrets-store-sync-controller\nversion: 0.0.0\ndescription: stand-in for tests\n',
  );
  writeFileSync(join(chartDir, 'values.yaml'), 'tokenRequestAudience: []\nproviderContainer: []\n');
  writeFileSync(join(chartDir, 'templates', 'deployment.yaml'), CONTROLLER_TEMPLATE);
  const out = helm([
    'template',
    'secrets-store-sync-controller',
    chartDir,
    '-n',
    'secrets-store-sync-controller',
    '-f',
    VALUES,
  ]);
  const objects = parseDocuments(out, 'helm template');
  expect(objects.map((o) => o.kind)).toEqual(['Deployment']);
  return objects[0] as Deployment;
}

afterAll(() => {
  if (chartDir) removeTempDir(dirname(chartDir));
});

describe("manifests/sync-controller/values.yaml in the controller's chart (real Helm)", () => {
  const deployment = render();
  const containers = deployment.spec.template.spec.containers;
  const provider = containers.find((c) => c.name === 'provider-aws')!;
  const manager = containers.find((c) => c.name === 'manager')!;

  it('renders a valid Deployment with no unknown fields: our provider next to the manager', async () => {
    expect(containers.map((c) => c.name)).toEqual(['provider-aws', 'manager']);
    expect(validateObject(deployment)).toEqual([]);
    expect(await unknownFields([{ source: 'sync-controller values', obj: deployment }])).toEqual([]);
  }, 60_000);

  it('the socket is where the manager looks: <its --provider-volume>/aws.sock, on the volume both mount', () => {
    const flags = parseFlags(provider.args, {});
    if (flags.kind !== 'run') throw new Error(JSON.stringify(flags));
    const managerDir = manager.args.find((a) => a.startsWith('--provider-volume='))?.split('=')[1];
    const mountOf = (c: Container, dir: string | undefined): string | undefined =>
      c.volumeMounts?.find((m) => m.mountPath === dir)?.name;
    expect(flags.flags.providerVolume).toBe(managerDir);
    expect(mountOf(provider, flags.flags.providerVolume)).toBe('providervol');
    expect(mountOf(manager, managerDir)).toBe('providervol');
    expect(deployment.spec.template.spec.volumes.map((v) => v.name)).toEqual(['providervol']);
  });

  it("driver-writes mode on, its own ports (not the manager's 8081 and 8085), NODE_NAME from the downward API", () => {
    const flags = parseFlags(provider.args, { NODE_NAME: 'node-1' });
    if (flags.kind !== 'run') throw new Error(JSON.stringify(flags));
    expect(flags.flags.driverWritesSecrets).toBe(true);
    const ports = [flags.flags.healthAddr, flags.flags.metricsAddr].map((a) => Number(a.split(':').at(-1)));
    for (const p of ports) expect([8081, 8085]).not.toContain(p);
    expect(provider.env?.find((e) => e.name === 'NODE_NAME')?.valueFrom?.fieldRef?.fieldPath).toBe('spec.nodeName');
  });

  it('resources 50m / 100Mi, requests = limits; no capability, read-only root filesystem', () => {
    expect(provider.resources).toEqual({
      requests: { cpu: '50m', memory: '100Mi' },
      limits: { cpu: '50m', memory: '100Mi' },
    });
    expect(provider.securityContext).toMatchObject({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
    });
  });

  it('one token audience, sts.amazonaws.com, exactly (the manager splits on "," without trimming)', () => {
    expect(manager.args).toContain('--token-request-audience=sts.amazonaws.com');
  });

  it("the image is this provider at the chart's appVersion", () => {
    expect(provider.image).toBe(
      `ghcr.io/csi-secrets-provider-aws/csi-secrets-provider-aws:${String(readChartYaml().appVersion)}`,
    );
  });
});

describe('manifests/sync-controller/rbac.yaml', () => {
  const objects = parseDocuments(readFileSync(new URL('rbac.yaml', DIR), 'utf8'), 'rbac.yaml');

  it("is valid, read-only (service accounts and nodes, get), for the controller's service account", async () => {
    expect(objects.flatMap(validateObject)).toEqual([]);
    expect(await unknownFields(objects.map((obj) => ({ source: 'rbac.yaml', obj })))).toEqual([]);
    const role = objects.find((o) => o.kind === 'ClusterRole') as K8sObject & {
      rules: { resources: string[]; verbs: string[] }[];
    };
    expect(role.rules.map((r) => [r.resources, r.verbs])).toEqual([
      [['serviceaccounts'], ['get']],
      [['nodes'], ['get']],
    ]);
    const binding = objects.find((o) => o.kind === 'ClusterRoleBinding') as K8sObject & {
      subjects: { name: string }[];
      roleRef: { name: string };
    };
    expect(binding.roleRef.name).toBe(role.metadata.name);
    expect(binding.subjects.map((s) => s.name)).toEqual(['secrets-store-sync-controller-manager']);
  }, 60_000);

  it("values.yaml parses as YAML 1.1 with only the two keys the controller's chart reads", () => {
    expect(Object.keys(parseYaml11(readFileSync(VALUES, 'utf8')) as object)).toEqual([
      'tokenRequestAudience',
      'providerContainer',
    ]);
  });
});

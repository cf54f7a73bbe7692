// The Helm chart, rendered by the real Helm (helm.ts): ASCP's values keep their meaning, the
// defaults are the hardened, working ones, and every rendering is a valid API object.
import { createHash } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  CHART_DIR,
  chartWithStubbedDriver,
  cleanUpHelm,
  helm,
  parseDocuments,
  parseYaml11,
  readChartLock,
  readChartYaml,
  readDefaultValues,
  removeTempDir,
  renderChart,
  type K8sObject,
} from './helm.js';
import { INSTALLER_PATH } from './installer.js';
import { unknownFields, validateObject } from './validate.js';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
  name: string;
  version: string;
};
const ascpValues = parseYaml11(readFileSync(new URL('testdata/ascp-values.yaml', import.meta.url), 'utf8'));
const defaults = readDefaultValues();

interface Container {
  name: string;
  image: string;
  args: string[];
  env: { name: string; value?: string; valueFrom?: unknown }[];
  ports?: { name: string; containerPort: number }[];
  volumeMounts: { name: string; mountPath: string; mountPropagation?: string }[];
  securityContext: Record<string, unknown>;
  resources: unknown;
  livenessProbe?: { httpGet: { path: string; port: string } };
  readinessProbe?: { httpGet: { path: string; port: string } };
  imagePullPolicy: string;
}
interface PodSpec {
  containers: Container[];
  volumes: { name: string; hostPath: { path: string; type?: string } }[];
  securityContext?: Record<string, unknown>;
  serviceAccountName: string;
  [k: string]: unknown;
}
type DaemonSet = K8sObject & {
  spec: {
    selector: { matchLabels: Record<string, string> };
    updateStrategy: unknown;
    template: { metadata: { labels: Record<string, string>; annotations?: Record<string, string> }; spec: PodSpec };
  };
};
type Rules = { apiGroups: string[]; resources: string[]; verbs: string[] }[];

function get(v: unknown, path: string): unknown {
  return path
    .split('.')
    .reduce<unknown>(
      (cur, k) => (cur !== null && typeof cur === 'object' ? (cur as Record<string, unknown>)[k] : undefined),
      v,
    );
}
function daemonSet(objects: readonly K8sObject[]): DaemonSet {
  const d = objects.find((o) => o.kind === 'DaemonSet');
  if (!d) throw new Error('no DaemonSet rendered');
  return d as DaemonSet;
}
function container(objects: readonly K8sObject[]): Container {
  return daemonSet(objects).spec.template.spec.containers[0]!;
}
function rules(objects: readonly K8sObject[]): Rules {
  return (objects.find((o) => o.kind === 'ClusterRole') as K8sObject & { rules: Rules }).rules;
}
const kinds = (objects: readonly K8sObject[]): string[] => objects.map((o) => `${o.kind}/${o.metadata.name}`);
/** A NetworkPolicy peer: the namespace a Prometheus would run in. */
const monitoring = { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } };

describe('Chart.yaml', () => {
  const chart = readChartYaml();
  it('is named after the package and versioned with it', () => {
    expect(chart.name).toBe(pkg.name);
    expect(chart.version).toBe(pkg.version);
    expect(chart.appVersion).toBe(pkg.version);
    expect(chart.apiVersion).toBe('v2');
  });
  it("depends on the driver chart as ASCP's does, pinned to one version", () => {
    expect(chart.dependencies).toEqual([
      {
        name: 'secrets-store-csi-driver',
        repository: 'https://kubernetes-sigs.github.io/secrets-store-csi-driver/charts',
        version: '1.6.0',
        condition: 'secrets-store-csi-driver.install',
      },
    ]);
  });
  it('Chart.lock records that version, with the digest Helm computes (sha256 of the JSON of both lists)', () => {
    const lock = readChartLock();
    const deps = chart.dependencies as { name: string; repository: string; version: string; condition: string }[];
    expect(lock.dependencies).toEqual(deps.map(({ name, repository, version }) => ({ name, repository, version })));
    // Helm: json.Marshal([2][]*Dependency{Chart.yaml's, Chart.lock's}), fields in struct order.
    const json = JSON.stringify([
      deps.map(({ name, version, repository, condition }) => ({ name, version, repository, condition })),
      lock.dependencies.map(({ name, version, repository }) => ({ name, version, repository })),
    ]);
    expect(lock.digest).toBe(`sha256:${createHash('sha256').update(json).digest('hex')}`);
  });
  it('Helm finds Chart.lock in sync with Chart.yaml (dependency build gets past the check to the repository)', () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'chart-lock-')), 'c');
    try {
      cpSync(CHART_DIR, dir, { recursive: true, filter: (src) => !src.startsWith(join(CHART_DIR, 'charts')) });
      expect(() => helm(['dependency', 'build', dir])).toThrow(
        /no repository definition for https:\/\/kubernetes-sigs\.github\.io/,
      );
      // and a stale lock is caught, so the check above can fail
      cpSync(join(CHART_DIR, 'Chart.lock'), join(dir, 'Chart.lock'));
      const stale = readFileSync(join(dir, 'Chart.lock'), 'utf8').replace(/digest: sha256:./, 'digest: sha256:x');
      writeFileSync(join(dir, 'Chart.lock'), stale);
      expect(() => helm(['dependency', 'build', dir])).toThrow(/out of sync/);
    } finally {
      removeTempDir(dirname(dir));
    }
  });
});

afterAll(cleanUpHelm);

describe('values.yaml keeps every ASCP key with a compatible default', () => {
  const ascpAffinity = {
    nodeAffinity: {
      requiredDuringSchedulingIgnoredDuringExecution: {
        nodeSelectorTerms: [
          { matchExpressions: [{ key: 'eks.amazonaws.com/compute-type', operator: 'NotIn', values: ['fargate'] }] },
        ],
      },
    },
  };
  it.each<[string, (v: unknown) => boolean, string]>([
    ['image.repository', (v) => v === 'ghcr.io/csi-secrets-provider-aws/csi-secrets-provider-aws', 'our image'],
    ['image.pullPolicy', (v) => v === 'IfNotPresent', 'IfNotPresent'],
    ['image.tag', (v) => v === '', 'empty = appVersion'],
    ['awsRegion', (v) => v === '', 'empty'],
    ['nameOverride', (v) => v === '', 'empty'],
    ['fullnameOverride', (v) => v === '', 'empty'],
    ['providerVolume', (v) => v === '/var/run/secrets-store-csi-providers', "the driver's providers dir"],
    ['kubeletPath', (v) => v === '/var/lib/kubelet', '/var/lib/kubelet'],
    ['driverWritesSecrets', (v) => v === false, 'false'],
    ['commonLabels', (v) => JSON.stringify(v) === '{}', '{}'],
    ['podLabels', (v) => JSON.stringify(v) === '{}', '{}'],
    ['podAnnotations', (v) => JSON.stringify(v) === '{}', '{}'],
    ['affinity', (v) => JSON.stringify(v) === JSON.stringify(ascpAffinity), 'not on Fargate'],
    [
      'resources',
      (v) =>
        JSON.stringify(v) ===
        JSON.stringify({ requests: { cpu: '50m', memory: '100Mi' }, limits: { cpu: '50m', memory: '100Mi' } }),
      '50m/100Mi',
    ],
    ['priorityClassName', (v) => v === '', 'empty'],
    ['nodeSelector', (v) => JSON.stringify(v) === '{}', '{}'],
    [
      'tolerations',
      (v) => JSON.stringify(v) === '[{"operator":"Exists"}]',
      'everything (ASCP: none; its installer: everything)',
    ],
    ['port', (v) => v === 8989, '8989'],
    ['updateStrategy', (v) => JSON.stringify(v) === '{"type":"RollingUpdate"}', 'RollingUpdate'],
    ['imagePullSecrets', (v) => JSON.stringify(v) === '[]', '[]'],
    ['rbac.install', (v) => v === true, 'true'],
    ['rbac.serviceAccountName', (v) => v === '', 'empty = full name'],
    ['securityContext.privileged', (v) => v === false, 'false'],
    ['securityContext.allowPrivilegeEscalation', (v) => v === false, 'false'],
    ['useFipsEndpoint', (v) => v === false, 'false'],
    ['podIdentityHttpTimeout', (v) => v === '' || v === null, 'unset'],
    ['k8sThrottlingParams.qps', (v) => v === '', 'unset (provider default 5)'],
    ['k8sThrottlingParams.burst', (v) => v === '', 'unset (provider default 10)'],
    ['eksAddonVersion', (v) => v === '', 'unset'],
    ['dnsConfig', (v) => JSON.stringify(v) === '{}', '{}'],
    ['dnsPolicy', (v) => v === '', 'unset'],
    ['secrets-store-csi-driver.install', (v) => v === true, 'true'],
    ['secrets-store-csi-driver.fullnameOverride', (v) => v === 'secrets-store-csi-driver', 'secrets-store-csi-driver'],
    [
      'secrets-store-csi-driver.tokenRequests',
      (v) => JSON.stringify(v) === '[{"audience":"sts.amazonaws.com"},{"audience":"pods.eks.amazonaws.com"}]',
      'both audiences',
    ],
    [
      'secrets-store-csi-driver.linux.providersDir',
      (v) => v === get(defaults, 'providerVolume'),
      'equal to providerVolume',
    ],
    [
      'secrets-store-csi-driver.linux.affinity',
      (v) => JSON.stringify(v).includes('virtual-kubelet') && JSON.stringify(v).includes('fargate'),
      'not on virtual-kubelet or Fargate',
    ],
  ])('%s', (path, ok, what) => {
    const v = get(defaults, path);
    expect(ok(v), `${path} = ${JSON.stringify(v)}, want ${what}`).toBe(true);
  });

  it('every key of the ASCP values file exists in values.yaml (no key silently ignored)', () => {
    const walk = (v: unknown, prefix: string): string[] =>
      v !== null &&
      typeof v === 'object' &&
      !Array.isArray(v) &&
      Object.keys(v).length > 0 &&
      ![
        'commonLabels',
        'podLabels',
        'podAnnotations',
        'nodeSelector',
        'resources',
        'dnsConfig',
        'updateStrategy',
        'securityContext',
        'secrets-store-csi-driver',
      ].includes(prefix)
        ? Object.entries(v).flatMap(([k, x]) => walk(x, prefix ? `${prefix}.${k}` : k))
        : [prefix];
    const missing = walk(ascpValues, '').filter(
      (p) =>
        !(
          p
            .split('.')
            .reduce<unknown>(
              (cur, k) =>
                cur !== null && typeof cur === 'object' && k in cur ? (cur as Record<string, unknown>)[k] : undefined,
              defaults,
            ) !== undefined
        ),
    );
    expect(missing).toEqual([]);
  });
});

describe('helm lint --strict', () => {
  it.each<[string, unknown]>([
    ['default values', {}],
    ['the ASCP values file', ascpValues],
  ])('passes with %s', (_name, values) => {
    const file = join(mkdtempSync(join(tmpdir(), 'lint-')), 'values.json');
    writeFileSync(file, JSON.stringify(values));
    const out = helm(['lint', '--strict', chartWithStubbedDriver(), '-f', file]);
    expect(out).toContain('1 chart(s) linted, 0 chart(s) failed');
    removeTempDir(dirname(file));
  });
  it('fails on a value values.schema.json refuses (so the passes above mean something)', () => {
    expect(() => helm(['lint', '--strict', chartWithStubbedDriver(), '--set', 'logFormat=xml'])).toThrow(/logFormat/);
  });
});

describe('rendered with default values', () => {
  const { objects, notes } = renderChart({ releaseName: 'csi-secrets-provider-aws', namespace: 'kube-system' });
  const c = container(objects);
  const ds = daemonSet(objects);
  const pod = ds.spec.template.spec;

  it('makes the ServiceAccount, ClusterRole, ClusterRoleBinding and DaemonSet', () => {
    expect(kinds(objects).sort()).toEqual([
      'ClusterRole/csi-secrets-provider-aws-cluster-role',
      'ClusterRoleBinding/csi-secrets-provider-aws-cluster-role-binding',
      'DaemonSet/csi-secrets-provider-aws',
      'ServiceAccount/csi-secrets-provider-aws',
    ]);
  });

  it("runs the image of this version with the socket in the driver's providers directory", () => {
    expect(c.image).toBe(`ghcr.io/csi-secrets-provider-aws/csi-secrets-provider-aws:${pkg.version}`);
    expect(c.args).toEqual([
      '--provider-volume=/var/run/secrets-store-csi-providers',
      '--kubelet-root=/var/lib/kubelet',
      '--metrics-addr=127.0.0.1:8989',
      '--health-addr=0.0.0.0:8990',
      '--log-level=info',
      '--log-format=json',
      '--max-concurrent-mounts=8',
      '--max-queued-mounts=512',
      '--max-mount-bytes=4Mi',
      '--max-mount-files=5000',
    ]);
  });

  it('mounts the socket directory and the kubelet pods directory with HostToContainer propagation', () => {
    expect(c.volumeMounts).toEqual([
      { name: 'providervol', mountPath: '/var/run/secrets-store-csi-providers' },
      { name: 'mountpoint-dir', mountPath: '/var/lib/kubelet/pods', mountPropagation: 'HostToContainer' },
    ]);
    expect(pod.volumes).toEqual([
      { name: 'providervol', hostPath: { path: '/var/run/secrets-store-csi-providers', type: 'DirectoryOrCreate' } },
      { name: 'mountpoint-dir', hostPath: { path: '/var/lib/kubelet/pods', type: 'DirectoryOrCreate' } },
    ]);
  });

  it('gives the provider its node name from the downward API, and no region', () => {
    expect(c.env).toEqual([{ name: 'NODE_NAME', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } }]);
  });

  it('is hardened: uid 0 only, read-only root, no escalation, no capabilities, RuntimeDefault seccomp', () => {
    expect(c.securityContext).toEqual({
      privileged: false,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
    });
    expect(pod.securityContext).toEqual({
      runAsUser: 0,
      runAsGroup: 0,
      runAsNonRoot: false,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(pod.hostNetwork).toBe(false);
  });

  it("probes /healthz and /readyz on the pod IP's health port; metrics only inside the pod, no object names", () => {
    expect(c.livenessProbe?.httpGet).toEqual({ path: '/healthz', port: 'health' });
    expect(c.readinessProbe?.httpGet).toEqual({ path: '/readyz', port: 'health' });
    // hostNetwork stays off: the pod IP is the pod's own, so health on 0.0.0.0 is not the node's.
    expect(pod.hostNetwork).toBe(false);
    expect(c.args).toContain('--health-addr=0.0.0.0:8990');
    expect(c.ports?.map((p) => [p.name, p.containerPort])).toEqual([['health', 8990]]);
    expect(c.args.filter((a) => a.startsWith('--metrics-object-names'))).toEqual([]);
    expect(kinds(objects).filter((k) => k.startsWith('NetworkPolicy/'))).toEqual([]);
    expect(notes).toContain('port-forward daemonset/csi-secrets-provider-aws 8989');
  });

  it('schedules on every Linux node, whatever its taints, except Fargate', () => {
    expect(pod.tolerations).toEqual([{ operator: 'Exists' }]);
    expect(pod.nodeSelector).toEqual({ 'kubernetes.io/os': 'linux' });
    expect(pod.affinity).toEqual(get(defaults, 'affinity'));
    expect(c.resources).toEqual(get(defaults, 'resources'));
  });

  it('selects its own pods', () => {
    for (const [k, v] of Object.entries(ds.spec.selector.matchLabels))
      expect(ds.spec.template.metadata.labels[k]).toBe(v);
  });

  it('grants get on serviceaccounts, pods and nodes, and binds it to its ServiceAccount', () => {
    expect(rules(objects)).toEqual(
      ['serviceaccounts', 'pods', 'nodes'].map((r) => ({ apiGroups: [''], resources: [r], verbs: ['get'] })),
    );
    const crb = objects.find((o) => o.kind === 'ClusterRoleBinding') as K8sObject & { subjects: unknown };
    expect(crb.subjects).toEqual([{ kind: 'ServiceAccount', name: pod.serviceAccountName, namespace: 'kube-system' }]);
  });

  it('prints NOTES naming the DaemonSet', () => {
    expect(notes).toContain('daemonset/csi-secrets-provider-aws');
  });
});

describe('rendered with an ASCP values file (testdata/ascp-values.yaml)', () => {
  const { objects } = renderChart({ values: [ascpValues], releaseName: 'my-release', namespace: 'secrets' });
  const c = container(objects);
  const pod = daemonSet(objects).spec.template.spec;
  const installer = parseDocuments(readFileSync(INSTALLER_PATH, 'utf8'), 'installer');

  it("keeps the installer's kinds, with names from the release", () => {
    expect(kinds(objects).sort()).toEqual(
      kinds(installer)
        .sort()
        .map((k) =>
          k
            .replace('/csi-secrets-provider-aws', '/my-release-csi-secrets-provider-aws')
            .replace('ServiceAccount/my-release-csi-secrets-provider-aws', 'ServiceAccount/aws-provider'),
        ),
    );
  });

  it("passes every ASCP flag the values ask for, after the installer's", () => {
    expect(c.args).toEqual([
      '--provider-volume=/var/run/secrets-store-csi-providers',
      '--driver-writes-secrets=true',
      '--qps=20',
      '--burst=40',
      '--eks-addon-version=v3.1.1-eksbuild.1',
      '--pod-identity-http-timeout=500ms',
      ...container(installer).args.slice(1),
    ]);
  });

  it('sets AWS_REGION and AWS_USE_FIPS_ENDPOINT beside NODE_NAME', () => {
    expect(c.env).toEqual([
      ...container(installer).env,
      { name: 'AWS_REGION', value: 'eu-west-1' },
      { name: 'AWS_USE_FIPS_ENDPOINT', value: 'true' },
    ]);
  });

  it("keeps the installer's volumes and mounts", () => {
    expect(pod.volumes).toEqual(daemonSet(installer).spec.template.spec.volumes);
    expect(c.volumeMounts).toEqual(container(installer).volumeMounts);
  });

  it('omits pods and nodes from the ClusterRole when awsRegion is set (as ASCP)', () => {
    expect(rules(objects)).toEqual([{ apiGroups: [''], resources: ['serviceaccounts'], verbs: ['get'] }]);
  });

  it('applies the pod-level keys', () => {
    expect(pod.tolerations).toEqual(get(ascpValues, 'tolerations'));
    expect(pod.priorityClassName).toBe('system-node-critical');
    expect(pod.dnsPolicy).toBe('ClusterFirstWithHostNet');
    expect(pod.dnsConfig).toEqual(get(ascpValues, 'dnsConfig'));
    expect(pod.imagePullSecrets).toEqual([{ name: 'regcred' }]);
    expect(pod.nodeSelector).toEqual({ 'kubernetes.io/os': 'linux', 'node.kubernetes.io/instance-type': 'm6i.large' });
    expect(pod.serviceAccountName).toBe('aws-provider');
    expect(daemonSet(objects).spec.updateStrategy).toEqual(get(ascpValues, 'updateStrategy'));
    expect(daemonSet(objects).spec.template.metadata.labels).toMatchObject({ team: 'platform', 'cost-centre': '1234' });
    expect(daemonSet(objects).spec.template.metadata.annotations).toEqual(get(ascpValues, 'podAnnotations'));
    expect(c.imagePullPolicy).toBe('Always');
    expect(c.resources).toEqual(get(ascpValues, 'resources'));
  });

  it("keeps the hardening: Helm merges ASCP's two-key securityContext into ours, and uid 0 sits at pod level", () => {
    expect(c.securityContext).toEqual(get(defaults, 'securityContext'));
    expect(pod.securityContext).toMatchObject({ runAsUser: 0, seccompProfile: { type: 'RuntimeDefault' } });
  });
});

describe('value variants', () => {
  it.each<[string, unknown, (objects: readonly K8sObject[]) => void]>([
    [
      'rbac.install=false creates no ServiceAccount or RBAC (as ASCP)',
      { rbac: { install: false } },
      (o) => expect(kinds(o)).toEqual(['DaemonSet/r-csi-secrets-provider-aws']),
    ],
    [
      'fullnameOverride names everything',
      { fullnameOverride: 'aws-provider' },
      (o) => expect(kinds(o)).toContain('ClusterRole/aws-provider-cluster-role'),
    ],
    [
      'nameOverride changes the app label',
      { nameOverride: 'ascp' },
      (o) => expect(daemonSet(o).spec.selector.matchLabels).toEqual({ app: 'ascp' }),
    ],
    ['image.tag as a number', { image: { tag: 2 } }, (o) => expect(container(o).image).toMatch(/:2$/)],
    [
      'metrics disabled',
      { metrics: { enabled: false } },
      (o) => {
        expect(container(o).args).toContain('--metrics-addr=');
        expect(container(o).ports?.map((p) => p.name)).toEqual(['health']);
      },
    ],
    [
      'metrics exposed: on the pod IP, with a NetworkPolicy letting only the listed peers scrape',
      { metrics: { expose: true, networkPolicy: { from: [monitoring] } } },
      (o) => {
        expect(container(o).args).toContain('--metrics-addr=0.0.0.0:8989');
        expect(container(o).ports?.map((p) => [p.name, p.containerPort])).toEqual([
          ['metrics', 8989],
          ['health', 8990],
        ]);
        const np = o.find((x) => x.kind === 'NetworkPolicy') as K8sObject & { spec: Record<string, unknown> };
        expect(np.metadata.name).toBe('r-csi-secrets-provider-aws');
        expect(np.spec).toEqual({
          podSelector: { matchLabels: daemonSet(o).spec.selector.matchLabels },
          policyTypes: ['Ingress'],
          ingress: [
            { ports: [{ port: 'metrics', protocol: 'TCP' }], from: [monitoring] },
            { ports: [{ port: 'health', protocol: 'TCP' }] },
          ],
        });
      },
    ],
    [
      'metrics exposed without the policy: no NetworkPolicy',
      { metrics: { expose: true, networkPolicy: { enabled: false } } },
      (o) => {
        expect(container(o).args).toContain('--metrics-addr=0.0.0.0:8989');
        expect(kinds(o).filter((k) => k.startsWith('NetworkPolicy/'))).toEqual([]);
      },
    ],
    [
      'metric object names on, cache on, log settings, extra args and env',
      {
        metrics: { objectNames: true },
        cacheTtl: '5m',
        logLevel: 'debug',
        logFormat: 'text',
        podIdentityEndpoint: 'http://127.0.0.1:2703/v1/credentials',
        extraArgs: ['--x=y'],
        env: [{ name: 'HTTPS_PROXY', value: 'http://proxy:3128' }],
      },
      (o) => {
        expect(container(o).args).toEqual(
          expect.arrayContaining([
            '--metrics-object-names=true',
            '--cache-ttl=5m',
            '--log-level=debug',
            '--log-format=text',
            '--pod-identity-endpoint=http://127.0.0.1:2703/v1/credentials',
            '--x=y',
          ]),
        );
        expect(container(o).env.at(-1)).toEqual({ name: 'HTTPS_PROXY', value: 'http://proxy:3128' });
      },
    ],
    [
      'probes can be turned off with null',
      { livenessProbe: null, readinessProbe: null },
      (o) => {
        expect(container(o).livenessProbe).toBeUndefined();
        expect(container(o).readinessProbe).toBeUndefined();
      },
    ],
    [
      'serviceMonitor adds a headless Service and a ServiceMonitor, and exposes the metrics it scrapes',
      {
        metrics: {
          serviceMonitor: { enabled: true, labels: { release: 'prom' } },
          networkPolicy: { from: [monitoring] },
        },
      },
      (o) => {
        expect(kinds(o)).toEqual(
          expect.arrayContaining([
            'Service/r-csi-secrets-provider-aws-metrics',
            'ServiceMonitor/r-csi-secrets-provider-aws',
            'NetworkPolicy/r-csi-secrets-provider-aws',
          ]),
        );
        expect(o.find((x) => x.kind === 'ServiceMonitor')?.metadata.labels?.release).toBe('prom');
        expect(container(o).args).toContain('--metrics-addr=0.0.0.0:8989');
        expect(container(o).ports?.map((p) => p.name)).toContain('metrics');
      },
    ],
    [
      'a custom kubelet path moves the pods mount and the targets the provider accepts',
      { kubeletPath: '/var/snap/microk8s/common/var/lib/kubelet' },
      (o) => {
        expect(container(o).volumeMounts[1]?.mountPath).toBe('/var/snap/microk8s/common/var/lib/kubelet/pods');
        expect(container(o).args).toContain('--kubelet-root=/var/snap/microk8s/common/var/lib/kubelet');
      },
    ],
    [
      "a providerVolume among the driver's additionalProvidersDirs is accepted",
      {
        providerVolume: '/etc/kubernetes/secrets-store-csi-providers',
        'secrets-store-csi-driver': {
          linux: { additionalProvidersDirs: ['/etc/kubernetes/secrets-store-csi-providers'] },
        },
      },
      (o) => expect(container(o).args[0]).toBe('--provider-volume=/etc/kubernetes/secrets-store-csi-providers'),
    ],
    [
      'any providerVolume when the driver is installed separately',
      { providerVolume: '/etc/kubernetes/secrets-store-csi-providers', 'secrets-store-csi-driver': { install: false } },
      (o) => expect(container(o).args[0]).toBe('--provider-volume=/etc/kubernetes/secrets-store-csi-providers'),
    ],
    [
      'non-root for driver-writes with a prepared socket directory',
      { driverWritesSecrets: true, podSecurityContext: { runAsUser: 65532, runAsGroup: 65532, runAsNonRoot: true } },
      (o) =>
        expect(daemonSet(o).spec.template.spec.securityContext).toMatchObject({ runAsUser: 65532, runAsNonRoot: true }),
    ],
  ])('%s', (_name, values, check) => {
    const { objects } = renderChart({ values: [values], releaseName: 'r' });
    check(objects);
    expect(objects.flatMap(validateObject)).toEqual([]);
  });

  it('truncates names to 63 characters for the longest release name Helm accepts (53)', () => {
    const releaseName = 'a-very-long-release-name-for-the-provider-of-aws-abcd';
    expect(releaseName).toHaveLength(53);
    const { objects } = renderChart({ releaseName, namespace: 'x' });
    const name = daemonSet(objects).metadata.name;
    expect(name).toBe(`${releaseName}-csi-secre`);
    expect(name.endsWith('-')).toBe(false);
    expect(objects.flatMap(validateObject)).toEqual([]);
  });

  it('refuses to expose metrics behind a NetworkPolicy that names nobody who may scrape', () => {
    for (const metrics of [{ expose: true }, { serviceMonitor: { enabled: true } }]) {
      expect(() => renderChart({ values: [{ metrics }] })).toThrow(
        /list who may scrape them in metrics\.networkPolicy\.from .* or set metrics\.networkPolicy\.enabled=false/,
      );
    }
  });

  it('refuses a socket directory the driver it installs would not search', () => {
    expect(() => renderChart({ values: [{ providerVolume: '/etc/kubernetes/secrets-store-csi-providers' }] })).toThrow(
      /providerVolume "\/etc\/kubernetes\/secrets-store-csi-providers" is not a directory the driver searches .*same/,
    );
  });
});

describe('schemas', () => {
  it('renderings (defaults, ASCP file, ServiceMonitor) and the installer: no field unknown to the API', async () => {
    const sets = [
      renderChart().objects,
      renderChart({ values: [ascpValues] }).objects,
      renderChart({
        values: [{ metrics: { serviceMonitor: { enabled: true }, networkPolicy: { from: [monitoring] } } }],
      }).objects,
      parseDocuments(readFileSync(INSTALLER_PATH, 'utf8'), 'installer'),
    ];
    const all = sets.flatMap((objs, i) => objs.map((obj) => ({ source: `set ${i}`, obj })));
    expect(all.flatMap(({ obj }) => validateObject(obj))).toEqual([]);
    expect(await unknownFields(all)).toEqual([]);
  }, 60_000);

  it('the unknown-field check catches a misspelt field', async () => {
    const ds = JSON.parse(JSON.stringify(daemonSet(renderChart().objects))) as DaemonSet;
    (ds.spec.template.spec.containers[0]!.volumeMounts[1] as Record<string, unknown>).mountPropogation =
      'HostToContainer';
    expect(await unknownFields([{ source: 'typo', obj: ds }])).toEqual([
      expect.stringContaining('\'"mountPropogation"\' does not exist'),
    ]);
  }, 60_000);
});

describe('the provider accepts what the chart passes', () => {
  it.each<[string, unknown]>([
    ['defaults', {}],
    ['ASCP values file', ascpValues],
    [
      'every flag of ours',
      {
        metrics: { enabled: false, objectNames: true },
        cacheTtl: '90s',
        logLevel: 'warn',
        logFormat: 'text',
        podIdentityEndpoint: 'http://127.0.0.1:2703/v1/credentials',
        podIdentityHttpTimeout: '2s',
        mounts: { maxConcurrent: 4, maxQueued: 100, maxBytes: '8Mi', maxFiles: 100 },
      },
    ],
    [
      'metrics exposed, with object names',
      { metrics: { expose: true, objectNames: true, networkPolicy: { from: [monitoring] } } },
    ],
    ['a kubelet path of k0s', { kubeletPath: '/var/lib/k0s/kubelet' }],
  ])('%s: args parse with src/cli/flags.ts and env matches', async (_name, values) => {
    const { parseFlags } = await import('../../src/cli/flags.js');
    const c = container(renderChart({ values: [values] }).objects);
    const env = Object.fromEntries(c.env.map((e) => [e.name, e.value ?? 'node-a']));
    const result = parseFlags(c.args, env);
    expect(result.kind, JSON.stringify(result)).toBe('run');
    if (result.kind !== 'run') return;
    const v = mergeAll(values);
    expect(result.flags.providerVolume).toBe(get(v, 'providerVolume'));
    expect(result.flags.driverWritesSecrets).toBe(get(v, 'driverWritesSecrets'));
    expect(result.flags.healthAddr).toBe('0.0.0.0:8990');
    expect(result.flags.kubeletRoot).toBe(get(v, 'kubeletPath'));
    const exposed = get(v, 'metrics.expose') === true || get(v, 'metrics.serviceMonitor.enabled') === true;
    expect(result.flags.metricsAddr).toBe(
      get(v, 'metrics.enabled') ? (exposed ? '0.0.0.0:8989' : '127.0.0.1:8989') : '',
    );
    expect(result.flags.metricsObjectNames).toBe(
      get(v, 'metrics.enabled') === true && get(v, 'metrics.objectNames') === true,
    );
    expect(result.flags.logLevel).toBe(get(v, 'logLevel'));
    expect(result.flags.nodeName).toBe('node-a');
    expect(result.flags.awsRegion).toBe(get(v, 'awsRegion'));
    expect(result.flags.maxConcurrentMounts).toBe(get(v, 'mounts.maxConcurrent'));
    expect(result.flags.maxQueuedMounts).toBe(get(v, 'mounts.maxQueued'));
    expect(result.flags.maxMountFiles).toBe(get(v, 'mounts.maxFiles'));
    const { parseSize } = await import('../../src/cli/flags.js');
    expect(result.flags.maxMountBytes).toBe(parseSize(String(get(v, 'mounts.maxBytes'))));
  });
});

function mergeAll(values: unknown): unknown {
  return renderChart({ values: [values] }).values;
}

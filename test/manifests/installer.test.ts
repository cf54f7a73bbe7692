// The kubectl installer: generated from the chart's defaults, valid, and what ASCP's installer holds.
import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { cleanUpHelm, parseDocuments, renderChart, type K8sObject } from './helm.js';
import { HELM_ONLY_LABELS, INSTALLER_PATH, installerText } from './installer.js';
import { validateObject } from './validate.js';

afterAll(cleanUpHelm);

if (process.env.UPDATE_MANIFESTS === '1') writeFileSync(INSTALLER_PATH, installerText());

const text = readFileSync(INSTALLER_PATH, 'utf8');
const objects = parseDocuments(text, 'provider-installer.yaml');
const byKind = (kind: string): K8sObject => {
  const o = objects.find((x) => x.kind === kind);
  if (!o) throw new Error(`installer has no ${kind}`);
  return o;
};

function stripHelmLabels(o: K8sObject): unknown {
  return JSON.parse(JSON.stringify(o), (k, v: unknown) => (HELM_ONLY_LABELS.includes(k) ? undefined : v)) as unknown;
}

describe('provider-installer.yaml', () => {
  it('is exactly `helm template` of the chart with default values (regenerate with npm run manifests)', () => {
    expect(text).toBe(installerText());
  });

  it("holds the chart defaults' objects, Helm labels aside", () => {
    const rendered = renderChart({ releaseName: 'csi-secrets-provider-aws', namespace: 'kube-system' }).objects;
    expect(objects.map(stripHelmLabels)).toEqual(
      ['ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'DaemonSet'].map((k) =>
        stripHelmLabels(rendered.find((o) => o.kind === k)!),
      ),
    );
  });

  it("installs SA, ClusterRole, ClusterRoleBinding and DaemonSet in kube-system, as ASCP's installer", () => {
    expect(objects.map((o) => `${o.kind}/${o.metadata.name}`)).toEqual([
      'ServiceAccount/csi-secrets-provider-aws',
      'ClusterRole/csi-secrets-provider-aws-cluster-role',
      'ClusterRoleBinding/csi-secrets-provider-aws-cluster-role-binding',
      'DaemonSet/csi-secrets-provider-aws',
    ]);
    for (const o of objects)
      if (o.kind === 'ServiceAccount' || o.kind === 'DaemonSet') expect(o.metadata.namespace).toBe('kube-system');
    const crb = byKind('ClusterRoleBinding') as K8sObject & { subjects: unknown[]; roleRef: { name: string } };
    expect(crb.roleRef.name).toBe('csi-secrets-provider-aws-cluster-role');
    expect(crb.subjects).toEqual([
      { kind: 'ServiceAccount', name: 'csi-secrets-provider-aws', namespace: 'kube-system' },
    ]);
  });

  it('grants get on serviceaccounts, pods and nodes, nothing else', () => {
    const cr = byKind('ClusterRole') as K8sObject & {
      rules: { apiGroups: string[]; resources: string[]; verbs: string[] }[];
    };
    expect(cr.rules).toEqual(
      ['serviceaccounts', 'pods', 'nodes'].map((r) => ({ apiGroups: [''], resources: [r], verbs: ['get'] })),
    );
  });

  it('tolerates every taint and runs only on Linux, off Fargate', () => {
    const spec = (byKind('DaemonSet') as unknown as { spec: { template: { spec: Record<string, unknown> } } }).spec
      .template.spec;
    expect(spec.tolerations).toEqual([{ operator: 'Exists' }]);
    expect(spec.nodeSelector).toEqual({ 'kubernetes.io/os': 'linux' });
    expect(JSON.stringify(spec.affinity)).toContain(
      '"key":"eks.amazonaws.com/compute-type","operator":"NotIn","values":["fargate"]',
    );
  });

  it('validates against the Kubernetes API schemas', () => {
    expect(objects.flatMap(validateObject)).toEqual([]);
  });
});

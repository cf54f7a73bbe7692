/**
 * @module test/manifests/installer
 * manifests/deployment/provider-installer.yaml is the chart rendered with its defaults (release
 * csi-secrets-provider-aws, namespace kube-system), minus the Helm-only labels, so the two cannot
 * drift. `UPDATE_MANIFESTS=1 vitest run test/manifests` rewrites it; the test fails on any difference.
 */
import { renderChart } from './helm.js';

export const INSTALLER_PATH = new URL('../../manifests/deployment/provider-installer.yaml', import.meta.url).pathname;

/** Labels only Helm sets (a kubectl install is not managed by Helm). */
export const HELM_ONLY_LABELS = ['helm.sh/chart', 'app.kubernetes.io/managed-by'];

const HEADER = `# csi-secrets-provider-aws: kubectl installer (does not install the Secrets Store CSI driver).
#
#   kubectl apply -f manifests/deployment/provider-installer.yaml
#
# The same objects as the Helm chart with its default values, in kube-system. The driver must be
# installed with tokenRequests for the audiences sts.amazonaws.com and pods.eks.amazonaws.com and
# with its providers directory (linux.providersDir) set to /var/run/secrets-store-csi-providers.
#
# Generated from manifests/charts/csi-secrets-provider-aws: do not edit by hand; run
# UPDATE_MANIFESTS=1 npx vitest run test/manifests  (a test fails when this file and the chart differ).
`;

/** The installer's text, generated from the chart. */
export function installerText(): string {
  const r = renderChart({ releaseName: 'csi-secrets-provider-aws', namespace: 'kube-system' });
  const docs = ['templates/rbac.yaml', 'templates/daemonset.yaml'].map((f) => {
    const text = r.files.get(f);
    if (text === undefined) throw new Error(`chart has no ${f}`);
    return text
      .split('\n')
      .filter((line) => !HELM_ONLY_LABELS.some((l) => line.trimStart().startsWith(`${l}:`)))
      .join('\n')
      .trim();
  });
  return `${HEADER}---\n${docs.join('\n---\n')}\n`;
}

/**
 * @module k8s
 * Kubernetes API access: kubeconfig / in-cluster settings, the three GETs (service account, pod,
 * node) with rate limit and retries, and the cached lookups a Mount needs.
 */
export { loadKubeConfig, loadKubeConfigFile, SERVICE_ACCOUNT_DIR } from './kubeconfig.js';
export type { KubeConfig, LoadKubeConfigOptions } from './kubeconfig.js';
export { KubeClient } from './client.js';
export type { KubeClientOptions, KubeResource, PodDetails, PodSummary } from './client.js';
export { KubeLookups, ROLE_ARN_ANNOTATION, REGION_LABEL, serviceAccountKey, isRoleArn, quoteValue } from './lookups.js';
export type { KubeLookupsOptions } from './lookups.js';
export type { Sleep } from './rate-limit.js';

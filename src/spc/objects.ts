/**
 * @module spc/objects
 * The `objects` YAML → SecretDescriptor[]: decoding as ASCP, every per-descriptor rule, the
 * duplicate rules, file names (docs/behaviour.md, "Objects") and the **better** path rules
 * (docs/behaviour.md, "Paths"). All problems are reported together in one ConfigError, in list order;
 * each message starts with where it is (`objects[2].jmesPath[0].objectAlias: …`) and keeps ASCP's text.
 */
import { Buffer } from 'node:buffer';
import { ConfigError, type ConfigProblem } from '../errors.js';
import { goParseBool } from './attributes.js';
import { decodeYaml, findUnencodableFloat, formatFloat32, jsonKind, type GoValue } from './go-yaml.js';
import { ENCODINGS, parseEncoding } from './encoding.js';
import { expressionProblem, looksLikeUnquotedHyphen } from './jmes.js';
import { filePathProblem, pathConflicts, quoteName, translatePath } from './paths.js';
import type {
  DeclaredFile,
  FailoverObject,
  JmesPathEntry,
  ObjectEncoding,
  ObjectType,
  SecretDescriptor,
} from './types.js';

export interface ParseObjectsOptions {
  pathTranslation: string | false;
  /** The request default (from parsePermission). */
  defaultMode: number;
  /** Primary region; '' when not known yet (then the ARN-region rule is skipped: see checkArnRegions). */
  region: string;
  /** '' when none. */
  failoverRegion: string;
}

const LOAD = 'Failed to load SecretProviderClass: ';
const UNMARSHAL = `${LOAD}error unmarshaling JSON: while decoding JSON: json: `;
const PERMISSION = /^[0-7]{4}$/;
/** ASCP's `badPathRE` (its `../` check on a file name), kept so its exact cases give its exact text. */
const ASCP_BAD_PATH = /(\/\.\.\/)|(^\.\.\/)|(\/\.\.$)/;

/** objectType words (ASCP `typeMap`): `ssm` only as an ARN service. */
const TYPE_MAP: ReadonlyMap<string, ObjectType> = new Map([
  ['secretsmanager', 'secretsmanager'],
  ['ssmparameter', 'ssmparameter'],
  ['ssm', 'ssmparameter'],
]);

/** Go's zero value: unknown services map to SSM (a quirk kept: docs/behaviour.md, "Objects"). */
function goType(word: string): ObjectType {
  return TYPE_MAP.get(word) ?? 'ssmparameter';
}

interface Arn {
  service: string;
  region: string;
}

/** aws-sdk-go arn.Parse: at least 6 `:`-separated parts; the resource keeps further colons. */
function parseArn(name: string): Arn | undefined {
  const parts = name.split(':');
  if (parts.length < 6) return undefined;
  return { service: parts[2] ?? '', region: parts[3] ?? '' };
}

interface NameProblem {
  message: string;
  field: 'objectName' | 'objectType';
}

/** ASCP `validateObjectName` (N1–N6, first failure wins). region '' skips N2 (region not known yet). */
function validateObjectName(name: string, objectType: string, region: string): NameProblem | undefined {
  const hasArn = name.startsWith('arn:');
  const arn = hasArn ? parseArn(name) : undefined;
  if (hasArn && arn === undefined)
    return { message: `Invalid ARN format in object name: ${name}`, field: 'objectName' };
  if (arn !== undefined && region !== '' && arn.region !== region) {
    return { message: `ARN region must match region ${region}: ${name}`, field: 'objectName' };
  }
  if (objectType === '' && !hasArn) {
    return { message: `Must use objectType when a full ARN is not specified: ${name}`, field: 'objectName' };
  }
  const service = arn?.service ?? '';
  if (objectType === '' && !TYPE_MAP.has(service))
    return { message: `Invalid service in ARN: ${service}`, field: 'objectName' };
  if (objectType !== '' && (!TYPE_MAP.has(objectType) || objectType === 'ssm')) {
    return { message: `Invalid objectType: ${objectType}`, field: 'objectType' };
  }
  if (objectType !== '' && arn !== undefined && goType(objectType) !== goType(service)) {
    return { message: `objectType does not match ARN: ${name}`, field: 'objectType' };
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Decoding a mapping into fields the way sigs.k8s.io/yaml + encoding/json do.

/** Go's case folding for JSON field names (also folds ſ → s and K → k). */
function fold(s: string): string {
  return s.replaceAll('ſ', 's').toLowerCase();
}

/**
 * Groups a mapping's keys by the field they land in: exact name, else case-insensitive. When several
 * keys land in one field the bytewise-greatest wins (JSON keys are emitted sorted; the last decoded wins).
 */
function groupFields(
  entries: ReadonlyMap<string, GoValue>,
  fields: readonly string[],
): { byField: Map<string, { key: string; value: GoValue }[]>; unknown: { key: string; value: GoValue }[] } {
  const byField = new Map<string, { key: string; value: GoValue }[]>();
  const unknown: { key: string; value: GoValue }[] = [];
  for (const [key, value] of entries) {
    const field = fields.find((f) => f === key) ?? fields.find((f) => fold(f) === fold(key));
    if (field === undefined) {
      unknown.push({ key, value });
      continue;
    }
    const list = byField.get(field) ?? [];
    list.push({ key, value });
    byField.set(field, list);
  }
  for (const list of byField.values()) list.sort((a, b) => Buffer.compare(Buffer.from(a.key), Buffer.from(b.key)));
  return { byField, unknown };
}

/** Context for Go's UnmarshalTypeError text. */
interface StructCtx {
  struct: string;
  stack: string;
}

/** What the user calls an object, or a jmesPath entry of it: `object "db"`, `object "db", jmesPath alias "user"`. */
function objectLabel(objectName: string, alias = ''): string {
  return `object ${quoteName(objectName, 120)}${alias !== '' ? `, jmesPath alias ${quoteName(alias, 60)}` : ''}`;
}

class Loader {
  readonly problems: ConfigProblem[] = [];
  /** The descriptor's objectName once read: what the user knows the object by, so messages lead with it. */
  name = '';
  constructor(private readonly index: number) {}

  /** `alias`: for a jmesPath entry's problem, the entry's objectAlias (named beside the object). */
  problem(path: string, message: string, alias = ''): void {
    // In a class of ten objects a position is not what the user sees: the name comes first, the position after it as a
    // hint.
    const object = this.name !== '' ? objectLabel(this.name, alias) : '';
    const where = object !== '' ? `${object} (${path})` : path;
    this.problems.push({
      message: `${where}: ${message}`,
      detail: object !== '' ? `${object}: ${message}` : message,
      path,
      index: this.index,
    });
  }

  typeError(path: string, v: GoValue, ctx: StructCtx, goTypeName: string): void {
    const bad = findUnencodableFloat(v);
    if (bad !== undefined) {
      this.problem(path, `${LOAD}error converting YAML to JSON: json: unsupported value: ${bad}`);
      return;
    }
    this.problem(
      path,
      `${UNMARSHAL}cannot unmarshal ${jsonKind(v)} into Go struct field ${ctx.struct}.${ctx.stack} of ` +
        `type ${goTypeName}`,
    );
  }

  /**
   * A string field: scalars coerced as sigs.k8s.io/yaml (int → decimal, float → float32 'g', bool, null → '').
   */
  str(list: { key: string; value: GoValue }[] | undefined, path: string, ctx: StructCtx): string {
    let out = '';
    for (const { value } of list ?? []) {
      switch (value.kind) {
        case 'string':
          out = value.value;
          break;
        case 'int':
          out = value.text;
          break;
        case 'float':
          out = formatFloat32(value.value);
          break;
        case 'bool':
          out = value.value ? 'true' : 'false';
          break;
        case 'null':
          break; // JSON null leaves a Go string unchanged
        default:
          this.typeError(path, value, ctx, 'string');
      }
    }
    return out;
  }

  /** Our boolean extensions (docs/extensions.md): YAML booleans or Go-bool strings. */
  flag(list: { key: string; value: GoValue }[] | undefined, path: string, name: string): boolean {
    const v = list?.at(-1)?.value;
    if (v === undefined || v.kind === 'null') return false;
    if (v.kind === 'bool') return v.value;
    if (v.kind === 'string') {
      const b = v.value === '' ? false : goParseBool(v.value);
      if (b !== undefined) return b;
    }
    this.problem(path, `${name} must be true or false, got ${describe(v)}`);
    return false;
  }

  /**
   * Our extension `objectEncoding` (docs/extensions.md): utf-8, base64 or hex in any case, as the other
   * CSI providers that have it read it. Absent, null or '' is utf-8; anything else is a class problem.
   */
  encoding(list: { key: string; value: GoValue }[] | undefined, path: string): ObjectEncoding {
    const v = list?.at(-1)?.value;
    if (v === undefined || v.kind === 'null' || (v.kind === 'string' && v.value === '')) return 'utf-8';
    const e = v.kind === 'string' ? parseEncoding(v.value) : undefined;
    if (e !== undefined) return e;
    this.problem(
      path,
      `objectEncoding must be one of ${ENCODINGS.join(', ')} (how the value is stored), got ${describe(v)}`,
    );
    return 'utf-8';
  }

  unknownKeys(unknown: { key: string; value: GoValue }[], path: string): void {
    for (const { value } of unknown) {
      const bad = findUnencodableFloat(value);
      if (bad !== undefined)
        this.problem(path, `${LOAD}error converting YAML to JSON: json: unsupported value: ${bad}`);
    }
  }
}

function describe(v: GoValue): string {
  switch (v.kind) {
    case 'string':
      return quoteName(v.value, 40);
    case 'int':
      return v.text;
    case 'float':
      return formatFloat32(v.value);
    case 'bool':
      return String(v.value);
    default:
      return `a ${jsonKind(v)}`;
  }
}

interface RawEntry {
  path: string;
  objectAlias: string;
  filePermission: string;
  render: 'string' | 'json';
  objectEncoding: ObjectEncoding;
}

interface RawDescriptor {
  objectName: string;
  objectAlias: string;
  objectVersion: string;
  objectVersionLabel: string;
  objectType: string;
  filePermission: string;
  jmesPath: RawEntry[];
  failover: FailoverObject;
  optional: boolean;
  allKeys: boolean;
  objectEncoding: ObjectEncoding;
}

const DESCRIPTOR_FIELDS = [
  'objectName',
  'objectAlias',
  'objectVersion',
  'objectVersionLabel',
  'objectType',
  'filePermission',
  'jmesPath',
  'failoverObject',
  'optional',
  'allKeys',
  'objectEncoding',
] as const;
const ENTRY_FIELDS = ['path', 'objectAlias', 'filePermission', 'render', 'objectEncoding'] as const;
const FAILOVER_FIELDS = ['objectName', 'objectVersion', 'objectVersionLabel'] as const;

/** The keys the objects YAML has at each level (matched case-insensitively, as ASCP matches them); any other is
 * ignored. */
export const OBJECT_FIELDS: {
  readonly descriptor: readonly string[];
  readonly entry: readonly string[];
  readonly failover: readonly string[];
} = {
  descriptor: DESCRIPTOR_FIELDS,
  entry: ENTRY_FIELDS,
  failover: FAILOVER_FIELDS,
};

function loadEntry(ld: Loader, v: GoValue, path: string): RawEntry {
  const entry: RawEntry = { path: '', objectAlias: '', filePermission: '', render: 'string', objectEncoding: 'utf-8' };
  if (v.kind === 'null') return entry;
  if (v.kind !== 'map') {
    ld.typeError(path, v, { struct: 'SecretDescriptor', stack: 'jmesPath' }, 'provider.JMESPathEntry');
    return entry;
  }
  const { byField, unknown } = groupFields(v.entries, ENTRY_FIELDS);
  ld.unknownKeys(unknown, path);
  const ctx = (f: string): StructCtx => ({ struct: 'JMESPathEntry', stack: `jmesPath.${f}` });
  entry.path = ld.str(byField.get('path'), `${path}.path`, ctx('path'));
  entry.objectAlias = ld.str(byField.get('objectAlias'), `${path}.objectAlias`, ctx('objectAlias'));
  entry.filePermission = ld.str(byField.get('filePermission'), `${path}.filePermission`, ctx('filePermission'));
  const render = byField.get('render')?.at(-1)?.value;
  if (render !== undefined && render.kind !== 'null' && !(render.kind === 'string' && render.value === '')) {
    if (render.kind === 'string' && render.value === 'json') entry.render = 'json';
    else
      ld.problem(
        `${path}.render`,
        `render must be "json" (write non-string results as JSON text), got ${describe(render)}`,
      );
  }
  entry.objectEncoding = ld.encoding(byField.get('objectEncoding'), `${path}.objectEncoding`);
  return entry;
}

function loadDescriptor(ld: Loader, v: GoValue, path: string): RawDescriptor {
  const d: RawDescriptor = {
    objectName: '',
    objectAlias: '',
    objectVersion: '',
    objectVersionLabel: '',
    objectType: '',
    filePermission: '',
    jmesPath: [],
    failover: { objectName: '', objectVersion: '', objectVersionLabel: '' },
    optional: false,
    allKeys: false,
    objectEncoding: 'utf-8',
  };
  if (v.kind !== 'map') return d; // caller reports
  const { byField, unknown } = groupFields(v.entries, DESCRIPTOR_FIELDS);
  const ctx = (f: string): StructCtx => ({ struct: 'SecretDescriptor', stack: f });
  d.objectName = ld.str(byField.get('objectName'), `${path}.objectName`, ctx('objectName'));
  ld.name = d.objectName;
  ld.unknownKeys(unknown, path);
  for (const f of ['objectAlias', 'objectVersion', 'objectVersionLabel', 'objectType', 'filePermission'] as const) {
    d[f] = ld.str(byField.get(f), `${path}.${f}`, ctx(f));
  }
  for (const { value } of byField.get('jmesPath') ?? []) {
    if (value.kind === 'null') d.jmesPath = [];
    else if (value.kind === 'seq')
      d.jmesPath = value.items.map((item, j) => loadEntry(ld, item, `${path}.jmesPath[${j}]`));
    else ld.typeError(`${path}.jmesPath`, value, ctx('jmesPath'), '[]provider.JMESPathEntry');
  }
  for (const { value } of byField.get('failoverObject') ?? []) {
    if (value.kind === 'null') continue;
    if (value.kind !== 'map') {
      ld.typeError(`${path}.failoverObject`, value, ctx('failoverObject'), 'provider.FailoverObjectEntry');
      continue;
    }
    const g = groupFields(value.entries, FAILOVER_FIELDS);
    ld.unknownKeys(g.unknown, `${path}.failoverObject`);
    for (const f of FAILOVER_FIELDS) {
      const got = g.byField.get(f);
      if (got !== undefined) {
        d.failover[f] = ld.str(got, `${path}.failoverObject.${f}`, {
          struct: 'FailoverObjectEntry',
          stack: `failoverObject.${f}`,
        });
      }
    }
  }
  d.optional = ld.flag(byField.get('optional'), `${path}.optional`, 'optional');
  d.allKeys = ld.flag(byField.get('allKeys'), `${path}.allKeys`, 'allKeys');
  d.objectEncoding = ld.encoding(byField.get('objectEncoding'), `${path}.objectEncoding`);
  return d;
}

// ---------------------------------------------------------------------------------------------

interface Output {
  fileName: string;
  /** Where the name came from, for messages. */
  path: string;
  /** What the user calls that output: `object "db"` or `object "db", jmesPath alias "user"`. */
  label: string;
  index: number;
}

/**
 * Parses and validates `objects`. Throws ConfigError with every problem found (list order), or
 * returns one descriptor per entry with every default applied.
 */
/**
 * Most characters of `objects` parsed: about 40 times the largest real class we know of (a few KiB),
 * room for a class of 2,000 objects, and small enough that parsing it costs little memory.
 */
export const MAX_OBJECTS_BYTES = 128 * 1024;

/**
 * Most `objectName` keys in `objects` (failover objects included), counted in the text before it is
 * parsed: 500, against 18 in the largest real class we know of. Parsing is synchronous and costs
 * about 0.1-0.25 ms of CPU per object, so the 1,700 objects that fit in 128 KiB held the event loop
 * for seconds under the chart's 50m CPU (the node's other mounts and /healthz waited).
 */
export const MAX_OBJECT_NAMES = 500;

/**
 * The text of the first YAML document, for counting: up to the first `---` or `...` at a line's
 * start that follows content (a `---` before any content starts the document). Such a line ends a
 * document wherever it appears, so this never cuts inside one. go-yaml.ts's firstDocument finds
 * the same text exactly, but by lexing, which costs a third of a parse (30-100 ms for 1,700
 * objects): the count exists to refuse such a class for far less, so it scans the text instead.
 */
function firstDocumentText(text: string): string {
  const marker = /^(?:---|\.\.\.)(?=[ \t\r\n]|$)/gm;
  let from = 0;
  for (let m = marker.exec(text); m !== null; m = marker.exec(text)) {
    const content = text
      .slice(from, m.index)
      .split('\n')
      .some((line) => line.trim() !== '' && !line.trimStart().startsWith('#'));
    if (content || m[0] === '...') return text.slice(0, m.index);
    from = m.index + m[0].length;
  }
  return text;
}

/**
 * The problems of an `objects` list that did parse as YAML, with the files its entries name. `complete`:
 * every entry loaded with a name, so `files` is every file the class would make (allKeys keys aside).
 */
export class ObjectsError extends ConfigError {
  constructor(
    problems: readonly ConfigProblem[],
    readonly declared: { files: readonly DeclaredFile[]; complete: boolean },
  ) {
    super(problems);
    this.name = 'ObjectsError';
  }
}

/** The files a parsed descriptor names (allKeys keys are known only once the value is read). */
export function declaredFiles(d: SecretDescriptor): DeclaredFile[] {
  const own = { objectName: d.objectName, optional: d.optional };
  return [
    { ...own, allKeys: d.allKeys, fileName: d.fileName },
    ...d.jmesPath.map((e) => ({ ...own, allKeys: false, fileName: e.fileName })),
  ];
}

export function parseObjects(objectsYaml: string, opts: ParseObjectsOptions): SecretDescriptor[] {
  const top = (message: string): ConfigError => new ConfigError([{ message: `objects: ${message}`, path: 'objects' }]);
  const empty = '`objects` is empty: nothing to mount (list at least one object with objectName and objectType)';
  if (objectsYaml.trim() === '') throw top(empty);
  if (objectsYaml.length > MAX_OBJECTS_BYTES) {
    throw top(
      `the text is ${Math.ceil(objectsYaml.length / 1024)} KiB, more than the ${MAX_OBJECTS_BYTES / 1024} KiB this ` +
        `provider reads (real classes take a few KiB)`,
    );
  }
  // Keys match case-insensitively (as go-yaml's do), so count every spelling; only the first
  // document is read, so only its names count.
  const names = firstDocumentText(objectsYaml).match(/objectname/gi)?.length ?? 0;
  if (names > MAX_OBJECT_NAMES) {
    throw top(
      `the text names ${names} objects (objectName keys), more than the ${MAX_OBJECT_NAMES} this provider reads in ` +
        `one class (real classes name a few dozen): split the class`,
    );
  }

  const decoded = decodeYaml(objectsYaml);
  if (!decoded.ok) {
    throw new ConfigError(decoded.errors.map((e) => ({ message: `objects: ${LOAD}${e}`, path: 'objects' })));
  }
  const root = decoded.value;
  if (root.kind === 'null' || (root.kind === 'seq' && root.items.length === 0)) throw top(empty);
  if (root.kind !== 'seq') {
    throw top(
      `${UNMARSHAL}cannot unmarshal ${jsonKind(root)} into Go value of type []*provider.SecretDescriptor (objects ` +
        `must be a YAML list)`,
    );
  }

  const problems: ConfigProblem[] = [];
  const descriptors: SecretDescriptor[] = [];
  const outputs: Output[] = [];
  const declared: DeclaredFile[] = [];
  let complete = true;
  // ASCP's duplicate rules: latest descriptor per objectName, and every alias seen.
  const lastByName = new Map<string, { alias: string; label: string }>();
  const aliasesSeen = new Set<string>();
  const dupReported = new Set<string>();

  root.items.forEach((item, i) => {
    const at = `objects[${i}]`;
    const ld = new Loader(i);
    if (item.kind === 'null') {
      ld.problem(at, 'Empty descriptor entry in SecretProviderClass');
      problems.push(...ld.problems);
      complete = false;
      return;
    }
    if (item.kind !== 'map') {
      ld.problem(at, `${UNMARSHAL}cannot unmarshal ${jsonKind(item)} into Go value of type provider.SecretDescriptor`);
      problems.push(...ld.problems);
      complete = false;
      return;
    }
    const raw = loadDescriptor(ld, item, at);
    if (ld.problems.length > 0) {
      problems.push(...ld.problems); // a descriptor that did not load is not validated further
      complete = false;
      return;
    }
    if (raw.objectName === '') complete = false;
    else {
      const own = { objectName: raw.objectName, optional: raw.optional, allKeys: raw.allKeys };
      declared.push({
        ...own,
        fileName: translatePath(raw.objectAlias !== '' ? raw.objectAlias : raw.objectName, opts.pathTranslation),
      });
      for (const e of raw.jmesPath)
        if (e.objectAlias !== '')
          declared.push({ ...own, allKeys: false, fileName: translatePath(e.objectAlias, opts.pathTranslation) });
    }
    const d = validateDescriptor(ld, raw, i, opts);
    checkDuplicates(ld, raw, i, lastByName, aliasesSeen, dupReported, opts.pathTranslation);
    problems.push(...ld.problems);
    if (d !== undefined) {
      outputs.push({
        fileName: d.fileName,
        path: `${at}.${raw.objectAlias !== '' ? 'objectAlias' : 'objectName'}`,
        label: objectLabel(raw.objectName),
        index: i,
      });
      d.jmesPath.forEach((e, j) =>
        outputs.push({
          fileName: e.fileName,
          path: `${at}.jmesPath[${j}].objectAlias`,
          label: objectLabel(raw.objectName, e.objectAlias),
          index: i,
        }),
      );
      if (ld.problems.length === 0) descriptors.push(d);
    }
  });

  // **better** (docs/behaviour.md, "Paths"): any two outputs on one path, or a file where a directory must be.
  const valid = outputs.filter((o) => filePathProblem(o.fileName) === undefined);
  for (const c of pathConflicts(valid.map((o) => o.fileName))) {
    const later = valid[c.index];
    const earlier = valid[c.otherIndex];
    if (later === undefined || earlier === undefined) continue;
    if (c.kind === 'duplicate' && dupReported.has(c.path)) continue; // already said by ASCP's rules
    const text = `${c.message} (also written by ${earlier.label}, ${earlier.path})`;
    problems.push({
      message: `${later.label} (${later.path}): ${text}`,
      detail: `${later.label}: ${text}`,
      path: later.path,
      index: later.index,
    });
  }

  if (problems.length > 0) {
    const ordered = problems
      .map((p, n) => ({ p, n }))
      .sort((a, b) => (a.p.index ?? -1) - (b.p.index ?? -1) || a.n - b.n);
    throw new ObjectsError(
      ordered.map((x) => x.p),
      { files: declared, complete },
    );
  }
  return descriptors;
}

/** ASCP's per-descriptor rules for one loaded descriptor; problems go to `ld`. Returns the descriptor when its names
 * are usable. */
function validateDescriptor(
  ld: Loader,
  raw: RawDescriptor,
  i: number,
  opts: ParseObjectsOptions,
): SecretDescriptor | undefined {
  const at = `objects[${i}]`;
  let type: ObjectType | undefined;
  if (raw.objectName === '') {
    ld.problem(`${at}.objectName`, 'Object name must be specified');
  } else {
    const bad = validateObjectName(raw.objectName, raw.objectType, opts.region);
    if (bad !== undefined) ld.problem(`${at}.${bad.field}`, bad.message);
    else type = goType(raw.objectType !== '' ? raw.objectType : (parseArn(raw.objectName)?.service ?? ''));
  }
  if (type === 'ssmparameter' && raw.objectVersion !== '' && raw.objectVersionLabel !== '') {
    ld.problem(
      `${at}.objectVersionLabel`,
      `ssm parameters can not specify both objectVersion and objectVersionLabel: ${raw.objectName}`,
    );
  }

  const nameField = raw.objectAlias !== '' ? 'objectAlias' : 'objectName';
  const fileName = translatePath(raw.objectAlias !== '' ? raw.objectAlias : raw.objectName, opts.pathTranslation);
  if (raw.objectName !== '' || raw.objectAlias !== '') {
    const pathProblem = ASCP_BAD_PATH.test(fileName) ? 'path can not contain ../' : filePathProblem(fileName);
    if (pathProblem !== undefined) {
      const shown = fileName !== raw.objectName ? ` (file path ${quoteName(fileName)})` : '';
      ld.problem(
        `${at}.${nameField}`,
        pathProblem.startsWith('path can not contain ../')
          ? `path can not contain ../: ${raw.objectName}${shown}`
          : `${pathProblem} (object ${raw.objectName})`,
      );
    }
  }
  if (raw.filePermission !== '' && !PERMISSION.test(raw.filePermission)) {
    ld.problem(`${at}.filePermission`, `Invalid File Permission: ${raw.filePermission}`);
  }
  const parentMode = PERMISSION.test(raw.filePermission) ? Number.parseInt(raw.filePermission, 8) : opts.defaultMode;

  const jmesPath: JmesPathEntry[] = raw.jmesPath.map((e, j) => {
    const ep = `${at}.jmesPath[${j}]`;
    const problem = (field: string, message: string): void => ld.problem(`${ep}.${field}`, message, e.objectAlias);
    if (e.path === '') problem('path', 'Path must be specified for JMES object');
    else {
      const bad = expressionProblem(e.path);
      if (bad?.kind === 'syntax') {
        const hint = looksLikeUnquotedHyphen(e.path) ? ` (quote names with hyphens: path: '"${e.path}"')` : '';
        problem('path', `Invalid JMES Path: ${e.path}.${hint}`);
      } else if (bad !== undefined) {
        problem('path', bad.message);
      }
    }
    if (e.objectAlias === '') problem('objectAlias', 'Object alias must be specified for JMES object');
    if (e.filePermission !== '' && !PERMISSION.test(e.filePermission)) {
      problem('filePermission', `Invalid File Permission: ${e.filePermission}`);
    }
    const entryFile = translatePath(e.objectAlias, opts.pathTranslation);
    if (e.objectAlias !== '') {
      const pp = filePathProblem(entryFile);
      if (pp !== undefined) problem('objectAlias', pp);
    }
    // Only a string result can be decoded; a rendered number or object is JSON text, not an encoding of bytes.
    if (e.render === 'json' && e.objectEncoding !== 'utf-8') {
      problem(
        'objectEncoding',
        `objectEncoding ${e.objectEncoding} cannot be used with render: json (only a string result can be decoded)`,
      );
    }
    // As ASCP: the entry's permission, else the parent's string, else the request default.
    const mode = PERMISSION.test(e.filePermission) ? Number.parseInt(e.filePermission, 8) : parentMode;
    return {
      path: e.path,
      objectAlias: e.objectAlias,
      fileName: entryFile,
      mode,
      render: e.render,
      objectEncoding: e.objectEncoding,
    };
  });

  // The object's encoding decodes the whole value; allKeys has no per-key setting, so a reader could
  // take it either way (the whole value, or each key's string). Refused rather than guessed: list the
  // keys to decode as jmesPath entries, each with its own objectEncoding.
  if (raw.allKeys && raw.objectEncoding !== 'utf-8') {
    ld.problem(
      `${at}.objectEncoding`,
      `objectEncoding ${raw.objectEncoding} cannot be used with allKeys (to decode a key, list it as a jmesPath ` +
        `entry with its own objectEncoding)`,
    );
  }

  let failoverObject: FailoverObject | undefined;
  const fo = raw.failover;
  if (fo.objectName !== '') {
    const fp = `${at}.failoverObject`;
    if (raw.objectAlias === '') {
      ld.problem(
        `${at}.objectAlias`,
        `object alias must be specified for objects with failover entries: ${raw.objectName}`,
      );
    }
    if (opts.failoverRegion === '') {
      ld.problem(`${fp}.objectName`, `failover object allowed only when failover region is defined: ${raw.objectName}`);
    }
    const bad = validateObjectName(fo.objectName, raw.objectType, opts.failoverRegion);
    if (bad !== undefined) ld.problem(`${fp}.objectName`, bad.message);
    if (type === 'ssmparameter' && fo.objectVersion !== '' && fo.objectVersionLabel !== '') {
      ld.problem(
        `${fp}.objectVersionLabel`,
        `ssm parameters can not specify both objectVersion and objectVersionLabel: ${raw.objectName}`,
      );
    }
    if (fo.objectVersion !== raw.objectVersion) {
      ld.problem(
        `${fp}.objectVersion`,
        `object versions must match between primary and failover regions: ${raw.objectName}`,
      );
    }
    failoverObject = { ...fo };
  }

  if (type === undefined) return undefined;
  return {
    index: i,
    objectName: raw.objectName,
    objectType: type,
    objectAlias: raw.objectAlias,
    objectVersion: raw.objectVersion,
    objectVersionLabel: raw.objectVersionLabel,
    mode: parentMode,
    fileName,
    jmesPath,
    failoverObject,
    optional: raw.optional,
    allKeys: raw.allKeys,
    objectEncoding: raw.objectEncoding,
    pathTranslation: opts.pathTranslation,
  };
}

/** ASCP's duplicate rules, in list order. Names flagged here are not reported again as path collisions. */
function checkDuplicates(
  ld: Loader,
  raw: RawDescriptor,
  i: number,
  lastByName: Map<string, { alias: string; label: string }>,
  aliasesSeen: Set<string>,
  dupReported: Set<string>,
  translation: string | false,
): void {
  const at = `objects[${i}]`;
  let nameRuleFired = false;
  const prev = raw.objectName !== '' ? lastByName.get(raw.objectName) : undefined;
  if (prev !== undefined) {
    const a = raw.objectAlias;
    const l = raw.objectVersionLabel;
    const n = raw.objectName;
    let msg: string | undefined;
    if (a !== '' && a === prev.alias && l === '' && prev.label === '') {
      msg = `found descriptor with duplicate object name ${n}, duplicate object alias ${a}, and no version label`;
    } else if (a === '' && prev.alias === '' && l !== '' && l === prev.label) {
      msg = `found descriptor with duplicate object name ${n}, no object alias, and duplicate version label ${l}`;
    } else if (a !== '' && a === prev.alias && l !== '' && l === prev.label) {
      msg =
        `found descriptor with duplicate object name ${n}, duplicate object alias ${a}, and duplicate version ` +
        `label ${l}`;
    } else if (a === '' && prev.alias === '' && l === '' && prev.label === '') {
      msg = `found descriptor with duplicate object name ${n}, no object alias, and no version label`;
    }
    if (msg !== undefined) {
      nameRuleFired = true;
      ld.problem(`${at}.objectName`, msg);
      dupReported.add(translatePath(a !== '' ? a : n, translation));
    }
  }
  if (raw.objectName !== '') lastByName.set(raw.objectName, { alias: raw.objectAlias, label: raw.objectVersionLabel });

  if (raw.objectAlias !== '') {
    if (aliasesSeen.has(raw.objectAlias) && !nameRuleFired) {
      ld.problem(`${at}.objectAlias`, `found duplicate object alias ${raw.objectAlias}`);
      dupReported.add(translatePath(raw.objectAlias, translation));
    }
    aliasesSeen.add(raw.objectAlias);
  }
  raw.jmesPath.forEach((e, j) => {
    if (e.objectAlias === '') return;
    if (aliasesSeen.has(e.objectAlias)) {
      ld.problem(
        `${at}.jmesPath[${j}].objectAlias`,
        `Name already in use for objectAlias: found duplicate object alias ${e.objectAlias} in JMES path ` +
          `entry ${e.path}`,
      );
      dupReported.add(translatePath(e.objectAlias, translation));
    }
    aliasesSeen.add(e.objectAlias);
  });
}

/**
 * The ARN-region rule (N2) for the primary and failover names, for when the primary region became
 * known only after parseObjects (region from the node, docs/behaviour.md, "Region").
 */
export function checkArnRegions(
  descriptors: readonly SecretDescriptor[],
  region: string,
  failoverRegion: string,
): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  for (const d of descriptors) {
    const at = `objects[${d.index}]`;
    const arn = d.objectName.startsWith('arn:') ? parseArn(d.objectName) : undefined;
    if (arn !== undefined && region !== '' && arn.region !== region) {
      const path = `${at}.objectName`;
      problems.push({
        message: `${path}: ARN region must match region ${region}: ${d.objectName}`,
        path,
        index: d.index,
      });
    }
    const fo = d.failoverObject;
    const farn = fo !== undefined && fo.objectName.startsWith('arn:') ? parseArn(fo.objectName) : undefined;
    if (fo !== undefined && farn !== undefined && failoverRegion !== '' && farn.region !== failoverRegion) {
      const path = `${at}.failoverObject.objectName`;
      problems.push({
        message: `${path}: ARN region must match region ${failoverRegion}: ${fo.objectName}`,
        path,
        index: d.index,
      });
    }
  }
  return problems;
}

/**
 * @module cli/manifests
 * Reading Kubernetes manifests for the `check` and `mount` commands: multi-document YAML (and
 * `kubectl get -o yaml` output, `kind: List` included) → objects with their source positions, the
 * SecretProviderClass fields the provider and the driver read, and the mapping of a position inside
 * the `objects` parameter (a YAML string inside the manifest) back to the manifest's line and column.
 * Manifests are read as YAML 1.1, as kubectl does (sigs.k8s.io/yaml → go-yaml v2): `yes` is a boolean.
 */
import {
  isMap,
  isPair,
  isScalar,
  isSeq,
  LineCounter,
  parseAllDocuments,
  parseDocument,
  type Node,
  type YAMLMap,
} from 'yaml';
import type { SecretObjectSpec } from '../spc/index.js';

/** 1-based line and column in a source text. */
export interface Position {
  line: number;
  column: number;
}

export interface ManifestObject {
  /** 1-based position of the YAML document in the file. */
  document: number;
  /** Index in a `kind: List`'s `items`; undefined for a top-level object. */
  item: number | undefined;
  apiVersion: string;
  kind: string;
  name: string;
  namespace: string;
  node: YAMLMap;
  /**
   * A document with a `spec` but no apiVersion, kind or metadata: the part of a class users paste into
   * an issue or a chat. Read as a SecretProviderClass (kind set) so its spec gets every check.
   */
  fragment?: true;
}

export interface ManifestError {
  document: number;
  message: string;
  position: Position | undefined;
}

export interface ManifestFile {
  file: string;
  text: string;
  lineCounter: LineCounter;
  objects: ManifestObject[];
  /** YAML syntax errors and documents that are not objects. */
  errors: ManifestError[];
}

/** Non-empty scalar string at `key` of a map node, else ''. */
function stringAt(node: unknown, key: string): string {
  if (!isMap(node)) return '';
  const v = node.get(key, true);
  return isScalar(v) && typeof v.value === 'string' ? v.value : '';
}

/** Parses every document of a manifest file. Never throws: syntax errors are returned with their position. */
export function parseManifests(text: string, file: string): ManifestFile {
  const lineCounter = new LineCounter();
  const out: ManifestFile = { file, text, lineCounter, objects: [], errors: [] };
  const docs = parseAllDocuments(text, { lineCounter, version: '1.1', prettyErrors: false, uniqueKeys: false });
  const list = Array.isArray(docs) ? docs : [];
  list.forEach((doc, i) => {
    const document = i + 1;
    if (doc.errors.length > 0) {
      for (const e of doc.errors.slice(0, 1)) {
        out.errors.push({
          document,
          message: `YAML syntax error: ${e.message.split('\n')[0] ?? ''}`,
          position: positionAt(out, e.pos[0]),
        });
      }
      return;
    }
    const root = doc.contents;
    if (root === null || (isScalar(root) && root.value === null)) return; // empty document (a trailing ---)
    if (!isMap(root)) {
      out.errors.push({
        document,
        message: 'document is not a Kubernetes object (a YAML mapping)',
        position: nodePosition(out, root),
      });
      return;
    }
    const obj = (node: YAMLMap, item: number | undefined): ManifestObject => {
      const metadata = node.get('metadata', true);
      return {
        document,
        item,
        apiVersion: stringAt(node, 'apiVersion'),
        kind: stringAt(node, 'kind'),
        name: stringAt(metadata, 'name'),
        namespace: stringAt(metadata, 'namespace'),
        node,
      };
    };
    const top = obj(root, undefined);
    if (top.kind === '' && top.apiVersion === '' && !root.has('metadata') && isMap(root.get('spec', true))) {
      out.objects.push({ ...top, kind: 'SecretProviderClass', fragment: true });
      return;
    }
    const items = root.get('items', true);
    if (top.kind.endsWith('List') && isSeq(items)) {
      items.items.forEach((it, j) => {
        if (isMap(it)) out.objects.push(obj(it, j));
        else
          out.errors.push({
            document,
            message: `items[${j}] is not a Kubernetes object`,
            position: nodePosition(out, it),
          });
      });
      return;
    }
    out.objects.push(top);
  });
  return out;
}

/** 1-based position of a character offset. */
export function positionAt(file: Pick<ManifestFile, 'lineCounter'>, offset: number): Position {
  const p = file.lineCounter.linePos(offset);
  return { line: p.line, column: p.col };
}

export function nodePosition(file: Pick<ManifestFile, 'lineCounter'>, node: unknown): Position | undefined {
  const range = (node as Node | null | undefined)?.range;
  return range ? positionAt(file, range[0]) : undefined;
}

/** The node at a path of keys and indexes, or undefined. */
export function nodeAt(node: unknown, path: readonly (string | number)[]): Node | undefined {
  let cur: unknown = node;
  for (const step of path) {
    if (typeof step === 'number') {
      if (!isSeq(cur)) return undefined;
      cur = cur.items[step];
    } else {
      if (!isMap(cur)) return undefined;
      cur = cur.get(step, true);
    }
  }
  return cur as Node | undefined;
}

/** The key node of `key` in a map node. */
export function keyNode(map: unknown, key: string): Node | undefined {
  if (!isMap(map)) return undefined;
  for (const pair of map.items) if (isScalar(pair.key) && pair.key.value === key) return pair.key;
  return undefined;
}

// -------------------------------------------------------------------------------------------------
// SecretProviderClass fields

export const SPC_API_VERSIONS = ['secrets-store.csi.x-k8s.io/v1', 'secrets-store.csi.x-k8s.io/v1alpha1'] as const;

/** One `secretObjects` entry as written (docs/behaviour.md, "secretObjects"); fields unchecked. */
export interface ParameterProblem {
  key: string;
  message: string;
}

export interface SpcFields {
  provider: unknown;
  /** String-valued parameters only. */
  parameters: Record<string, string>;
  /** Parameters Kubernetes would refuse (not strings), and a `parameters` that is not a map. */
  problems: ParameterProblem[];
  secretObjects: SecretObjectSpec[] | undefined;
  /** `spec.secretObjects` present but not a list. */
  secretObjectsInvalid: boolean;
}

function yamlKind(node: unknown): string {
  if (node === null || node === undefined) return 'null';
  if (isMap(node)) return 'mapping';
  if (isSeq(node)) return 'list';
  if (isScalar(node)) {
    const v = node.value;
    if (v === null) return 'null';
    if (typeof v === 'boolean') return 'boolean';
    if (typeof v === 'number' || typeof v === 'bigint') return 'number';
    if (v instanceof Date) return 'timestamp';
    return typeof v;
  }
  return 'value';
}

/** The fields of a SecretProviderClass object that the provider (parameters) and the driver (secretObjects) read. */
export function spcFields(obj: ManifestObject): SpcFields {
  const spec = obj.node.get('spec', true);
  const parametersNode = nodeAt(spec, ['parameters']);
  const parameters: Record<string, string> = {};
  const problems: ParameterProblem[] = [];
  if (isMap(parametersNode)) {
    for (const pair of parametersNode.items) {
      if (!isPair(pair)) continue;
      const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
      const v = pair.value;
      if (isScalar(v) && typeof v.value === 'string') {
        parameters[key] = v.value;
        continue;
      }
      const kind = yamlKind(v);
      const src = isScalar(v) ? (v.source ?? String(v.value)) : '';
      const fix =
        isScalar(v) && kind !== 'null'
          ? `: quote it, ${key}: "${src}"`
          : kind === 'null'
            ? ': give it a value or remove it'
            : ': it must be a string (a list or mapping goes in a block string: |)';
      problems.push({
        key,
        message:
          `parameter ${JSON.stringify(key)} is a ${kind}, not a string; the API server refuses the ` +
          `SecretProviderClass${fix}`,
      });
    }
  } else if (parametersNode !== undefined && !(isScalar(parametersNode) && parametersNode.value === null)) {
    problems.push({
      key: '',
      message: `spec.parameters is a ${yamlKind(parametersNode)}: it must be a mapping of strings`,
    });
  }
  const providerNode = nodeAt(spec, ['provider']);
  const soNode = nodeAt(spec, ['secretObjects']);
  let secretObjects: SecretObjectSpec[] | undefined;
  let secretObjectsInvalid = false;
  if (isSeq(soNode)) {
    secretObjects = soNode.items.map((it) => {
      const js = (isMap(it) ? it.toJSON() : {}) as Record<string, unknown>;
      return {
        secretName: js['secretName'],
        type: js['type'],
        labels: js['labels'],
        annotations: js['annotations'],
        data: js['data'],
      };
    });
  } else if (soNode !== undefined && !(isScalar(soNode) && soNode.value === null)) {
    secretObjectsInvalid = true;
  }
  return {
    provider: isScalar(providerNode)
      ? providerNode.value
      : providerNode === undefined
        ? undefined
        : yamlKind(providerNode),
    parameters,
    problems,
    secretObjects,
    secretObjectsInvalid,
  };
}

// -------------------------------------------------------------------------------------------------
// Positions inside the `objects` parameter

/** Go's case folding for JSON field names (as spc/objects.ts), so `ObjectAlias:` is found for `objectAlias`. */
function fold(s: string): string {
  return s.replaceAll('ſ', 's').toLowerCase();
}

/** `objects[2].jmesPath[0].path` → [2, 'jmesPath', 0, 'path']; undefined when not an objects path. */
export function objectsPathSteps(problemPath: string): (string | number)[] | undefined {
  if (problemPath !== 'objects' && !problemPath.startsWith('objects[') && !problemPath.startsWith('objects.'))
    return undefined;
  const steps: (string | number)[] = [];
  const re = /\[(\d+)\]|\.([A-Za-z_][\w]*)/gy;
  re.lastIndex = 'objects'.length;
  let m: RegExpExecArray | null;
  while ((m = re.exec(problemPath)) !== null) steps.push(m[1] !== undefined ? Number(m[1]) : (m[2] ?? ''));
  return steps;
}

export interface ObjectsSource {
  text: string;
  lineCounter: LineCounter;
  root: unknown;
}

/** Parses the `objects` string for positions only (the provider's own decoder in spc/ owns the meaning). */
export function parseObjectsSource(objects: string): ObjectsSource {
  const lineCounter = new LineCounter();
  const doc = parseDocument(objects, { lineCounter, version: '1.1', prettyErrors: false, uniqueKeys: false });
  return { text: objects, lineCounter, root: doc.contents };
}

export interface ObjectsNode {
  /** The deepest node the path reached: the value, else its key, else the enclosing node. */
  node: Node;
  /** The key node of the last field step reached, when there is one. */
  key: Node | undefined;
  /** True when the whole path resolved. */
  exact: boolean;
}

/** Walks `steps` in the objects YAML, matching field names as ASCP does (case-insensitive, last key wins). */
export function findObjectsNode(src: ObjectsSource, steps: readonly (string | number)[]): ObjectsNode | undefined {
  let cur: unknown = src.root;
  if (!cur || !(cur as Node).range) return undefined;
  let best: ObjectsNode = { node: cur as Node, key: undefined, exact: steps.length === 0 };
  for (let i = 0; i < steps.length; i++) {
    const step = steps[i];
    if (typeof step === 'number') {
      if (!isSeq(cur)) return best;
      const next = cur.items[step];
      if (!next || !(next as Node).range) return best;
      cur = next;
      best = { node: next as Node, key: undefined, exact: i === steps.length - 1 };
    } else {
      if (!isMap(cur) || step === undefined) return best;
      const exactPair = cur.items.filter((p) => isScalar(p.key) && String(p.key.value) === step).at(-1);
      const pair =
        exactPair ?? cur.items.filter((p) => isScalar(p.key) && fold(String(p.key.value)) === fold(step)).at(-1);
      if (!pair) return best;
      const value = pair.value as Node | null;
      const key = pair.key as Node;
      const last = i === steps.length - 1;
      if (value && value.range && !(isScalar(value) && value.value === null && value.range[0] === value.range[1])) {
        cur = value;
        best = { node: value, key, exact: last };
      } else {
        best = { node: key, key, exact: last };
        if (!last) return best;
      }
    }
  }
  return best;
}

/**
 * Where a character offset of a parameter's string value sits in the manifest. Exact for literal
 * block scalars (`objects: |`, what people and kubectl write) and single-line plain or quoted values
 * without escapes; otherwise the value's own start.
 */
export function manifestPosition(file: ManifestFile, valueNode: Node, innerOffset: number): Position | undefined {
  if (!isScalar(valueNode) || typeof valueNode.value !== 'string' || !valueNode.range)
    return nodePosition(file, valueNode);
  const start = valueNode.range[0];
  const value = valueNode.value;
  if (valueNode.type === 'BLOCK_LITERAL') {
    const before = value.slice(0, innerOffset);
    const k = before.split('\n').length - 1; // line of the value
    const col = innerOffset - (before.lastIndexOf('\n') + 1);
    const header = positionAt(file, start).line;
    const sourceLineNo = header + 1 + k;
    const starts = file.lineCounter.lineStarts;
    const lineStart = starts[sourceLineNo - 1];
    if (lineStart === undefined) return positionAt(file, start);
    const lineEnd = starts[sourceLineNo] ?? file.text.length;
    const sourceLine = file.text.slice(lineStart, lineEnd).replace(/\r?\n$/, '');
    const valueLine = value.split('\n')[k] ?? '';
    const indent = sourceLine.length - valueLine.length;
    if (indent < 0 || !sourceLine.endsWith(valueLine)) return positionAt(file, start);
    return { line: sourceLineNo, column: indent + col + 1 };
  }
  const source = file.text.slice(start, valueNode.range[1]);
  if (source.includes('\n')) return positionAt(file, start);
  if (valueNode.type === 'PLAIN' && source === value) return positionAt(file, start + innerOffset);
  if ((valueNode.type === 'QUOTE_DOUBLE' || valueNode.type === 'QUOTE_SINGLE') && source.slice(1, -1) === value) {
    return positionAt(file, start + 1 + innerOffset);
  }
  return positionAt(file, start);
}

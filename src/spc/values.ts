/**
 * @module spc/values
 * The files one fetched object produces: its own file, its jmesPath files (ascp-behaviour.md §7)
 * and, with `allKeys`, one file per top-level key (CONTRACT.md §10). Pure; errors never contain
 * the secret value or any part of it (JSON and JMESPath library messages are not passed on).
 */
import { ProviderError } from '../errors.js';
import { searchJson } from './jmes.js';
import { filePathProblem, pathConflicts, quoteName, translatePath } from './paths.js';
import type { OutputFile, SecretDescriptor } from './types.js';

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8');

/**
 * An integer too large for a double (`{"id": 12345678901234567890}`), kept as its source text so
 * `render: json` and `allKeys` write it exactly as the secret holds it, not rounded.
 */
class LosslessInteger {
  constructor(readonly source: string) {}
}

interface ReviverContext {
  source?: string;
}

/** JSON.parse keeping unsafe integers exact (Node ≥ 21: the reviver sees the source text). */
function parseJson(text: string): unknown {
  return JSON.parse(text, (_key: string, value: unknown, context?: ReviverContext) =>
    typeof value === 'number' && !Number.isSafeInteger(value) && context?.source !== undefined && /^-?\d+$/.test(context.source)
      ? new LosslessInteger(context.source)
      : value,
  ) as unknown;
}

const rawJSON = (JSON as unknown as { rawJSON?: (text: string) => unknown }).rawJSON;

/** JSON text of a value, with kept integers written as they were. */
function toJsonText(v: unknown): string {
  if (v instanceof LosslessInteger) return v.source;
  return JSON.stringify(v, (_k: string, x: unknown) => (x instanceof LosslessInteger ? (rawJSON ? rawJSON(x.source) : Number(x.source)) : x));
}

function jsonTypeOf(v: unknown): string {
  if (v instanceof LosslessInteger) return 'number';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v === 'object' ? 'object' : typeof v; // string, number, boolean
}

/**
 * `[own file, jmesPath files…, allKeys files…]`, all carrying `version`. Throws ProviderError
 * (FAILED_PRECONDITION for a value that does not fit the class, INVALID_ARGUMENT for a bad expression
 * or key name) naming the object and region.
 */
export function deriveFiles(d: SecretDescriptor, value: Uint8Array, version: string, region: string): OutputFile[] {
  const files: OutputFile[] = [{ path: d.fileName, mode: d.mode, contents: value, version }];
  if (d.jmesPath.length === 0 && !d.allKeys) return files;

  const fail = (code: 'FAILED_PRECONDITION' | 'INVALID_ARGUMENT', message: string, field?: string): ProviderError =>
    new ProviderError(code, message, { object: d.objectName, region, field, reason: 'SecretValue' });

  let json: unknown;
  try {
    json = parseJson(utf8Decoder.decode(value));
  } catch {
    const what = d.allKeys && d.jmesPath.length === 0 ? 'allKeys' : 'jmesPath';
    throw fail('FAILED_PRECONDITION', `Invalid JSON used with ${what} in secret: ${d.objectName}.`);
  }

  d.jmesPath.forEach((e, j) => {
    const field = `objects[${d.index}].jmesPath[${j}].path`;
    const result = searchJson(json, e.path);
    if (!result.ok) {
      throw fail('INVALID_ARGUMENT', `Invalid JMES Path: ${e.path}. (evaluation failed on the JSON of ${d.objectName})`, field);
    }
    const r = result.value;
    if (r === null || r === undefined) {
      throw fail(
        'FAILED_PRECONDITION',
        `JMES Path - ${e.path} for object alias - ${e.objectAlias} does not point to a valid object.`,
        field,
      );
    }
    let text: string;
    if (typeof r === 'string') text = r;
    else if (e.render === 'json') text = toJsonText(r);
    else {
      throw fail(
        'FAILED_PRECONDITION',
        `Invalid JMES search result type for path:${e.path}. Only string is allowed. Found ${jsonTypeOf(r)} in ${d.objectName}; ` +
          'set render: json on this jmesPath entry to write it as JSON text',
        field,
      );
    }
    files.push({ path: e.fileName, mode: e.mode, contents: utf8.encode(text), version });
  });

  if (d.allKeys) {
    const field = `objects[${d.index}].allKeys`;
    if (json === null || typeof json !== 'object' || Array.isArray(json)) {
      throw fail(
        'FAILED_PRECONDITION',
        `allKeys is set on ${d.objectName} but its value is a JSON ${jsonTypeOf(json)}, not a JSON object`,
        field,
      );
    }
    const translation = d.pathTranslation ?? '_';
    const keyFiles: { key: string; file: OutputFile }[] = [];
    const bad: string[] = [];
    for (const [key, v] of Object.entries(json as Record<string, unknown>)) {
      const path = translatePath(key, translation);
      const problem = filePathProblem(path);
      if (problem !== undefined) {
        bad.push(`key ${quoteName(key, 60)}: ${problem}`);
        continue;
      }
      const text = typeof v === 'string' ? v : toJsonText(v);
      keyFiles.push({ key, file: { path, mode: d.mode, contents: utf8.encode(text), version } });
    }
    const all = [...files.map((f) => f.path), ...keyFiles.map((k) => k.file.path)];
    for (const c of pathConflicts(all)) {
      const k = keyFiles[c.index - files.length];
      if (k !== undefined) bad.push(`key ${quoteName(k.key, 60)}: ${c.message}`);
    }
    if (bad.length > 0) {
      throw fail('INVALID_ARGUMENT', `allKeys on ${d.objectName}: ${bad.length} key(s) cannot be files: ${bad.join('; ')}`, field);
    }
    files.push(...keyFiles.map((k) => k.file));
  }
  return files;
}

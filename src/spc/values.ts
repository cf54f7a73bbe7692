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

interface ReviverContext {
  source?: string;
}

/**
 * A JSON document with the source text of every integer too large for a double
 * (`{"id": 12345678901234567890}`), so `render: json` and `allKeys` write such numbers exactly as the
 * secret holds them, while JMESPath still sees numbers (sorting, filters, `type()` keep working).
 */
interface ParsedJson {
  value: unknown;
  /** Double value → the distinct source texts that rounded to it. */
  bigIntegers: Map<number, Set<string>>;
}

/** JSON.parse that notes unsafe integers' source text (Node ≥ 21: the reviver sees it). */
function parseJson(text: string): ParsedJson {
  const bigIntegers = new Map<number, Set<string>>();
  const value = JSON.parse(text, (_key: string, v: unknown, context?: ReviverContext) => {
    if (typeof v === 'number' && !Number.isSafeInteger(v) && context?.source !== undefined && /^-?\d+$/.test(context.source)) {
      const set = bigIntegers.get(v) ?? new Set<string>();
      set.add(context.source);
      bigIntegers.set(v, set);
    }
    return v;
  }) as unknown;
  return { value, bigIntegers };
}

const rawJSON = (JSON as unknown as { rawJSON?: (text: string) => unknown }).rawJSON;

/** JSON text of a value; an unsafe integer is written from its source when that is unambiguous. */
function toJsonText(v: unknown, big: Map<number, Set<string>>): string {
  if (big.size === 0 || !rawJSON) return JSON.stringify(v);
  const raw = rawJSON;
  return JSON.stringify(v, (_k: string, x: unknown) => {
    if (typeof x !== 'number') return x;
    const sources = big.get(x);
    return sources?.size === 1 ? raw([...sources][0] as string) : x;
  });
}

function jsonTypeOf(v: unknown): string {
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
  const files: OutputFile[] = [{ path: d.fileName, mode: d.mode, contents: value, version, origin: `object ${d.objectName}` }];
  if (d.jmesPath.length === 0 && !d.allKeys) return files;

  const fail = (code: 'FAILED_PRECONDITION' | 'INVALID_ARGUMENT', message: string, field?: string): ProviderError =>
    new ProviderError(code, message, { object: d.objectName, region, field, reason: 'SecretValue' });

  let parsed: ParsedJson;
  try {
    parsed = parseJson(utf8Decoder.decode(value));
  } catch {
    const what = d.allKeys && d.jmesPath.length === 0 ? 'allKeys' : 'jmesPath';
    throw fail('FAILED_PRECONDITION', `Invalid JSON used with ${what} in secret: ${d.objectName}.`);
  }
  const json = parsed.value;

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
    else if (e.render === 'json') text = toJsonText(r, parsed.bigIntegers);
    else {
      throw fail(
        'FAILED_PRECONDITION',
        `Invalid JMES search result type for path:${e.path}. Only string is allowed. Found ${jsonTypeOf(r)} in ${d.objectName}; ` +
          'set render: json on this jmesPath entry to write it as JSON text',
        field,
      );
    }
    files.push({ path: e.fileName, mode: e.mode, contents: utf8.encode(text), version, origin: `jmesPath alias ${e.objectAlias} of ${d.objectName}` });
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
      const text = typeof v === 'string' ? v : toJsonText(v, parsed.bigIntegers);
      keyFiles.push({ key, file: { path, mode: d.mode, contents: utf8.encode(text), version, origin: `allKeys key ${quoteName(key, 60)} of ${d.objectName}` } });
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

/**
 * @module spc/values
 * The files one fetched object produces: its own file, its jmesPath files (docs/behaviour.md,
 * "Fetching") and, with `allKeys`, one file per top-level key; with `objectEncoding`, the decoded
 * bytes (docs/extensions.md). Pure; errors
 * never contain the secret value or any part of it (JSON and JMESPath library messages are not passed on).
 */
import { describeBytes } from '../bytes.js';
import { ProviderError, type StatusName } from '../errors.js';
import { decodeValue } from './encoding.js';
import { budgetFor, evaluateEntry, fieldNames, jmesSettings, type EntryOutcome } from './jmes.js';
import { jsonTypeOf, parseJson, toJsonText, type ParsedJson } from './jmes-eval.js';
import { filePathProblem, pathConflicts, quoteName, translatePath } from './paths.js';
import type { JmesPathEntry, OutputFile, SecretDescriptor } from './types.js';

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8');

/** What bound an over-budget entry hit, in words. */
function boundText(bound: 'cpu' | 'memory' | 'time'): string {
  const s = jmesSettings();
  if (bound === 'cpu') return `${s.cpuMsPerMount} ms of CPU for a mount's jmesPath evaluations`;
  if (bound === 'memory') return `${s.heapMiB} MiB of memory`;
  return `did not finish within ${s.evaluationMs / 1000} s`;
}

/**
 * For a path of plain names (`a.b`, `"db-host".port`) that finds nothing: the first name the JSON
 * lacks, and the key that matches it but for case, when there is exactly one. JMESPath names are
 * case-sensitive, and a key differing only in case is a mistake users make and cannot see. Only such
 * a key is shown: the user wrote it already (but for case); no other key, and never a value.
 */
function caseHint(path: string, json: unknown): string {
  const names = fieldNames(path);
  if (names === undefined) return '';
  let at: unknown = json;
  for (const name of names) {
    if (at === null || typeof at !== 'object' || Array.isArray(at)) return '';
    const obj = at as Record<string, unknown>;
    if (Object.hasOwn(obj, name)) {
      at = obj[name];
      continue;
    }
    const lower = name.toLowerCase();
    const near = Object.keys(obj).filter((k) => k.toLowerCase() === lower);
    return near.length === 1
      ? `; names are case-sensitive, and the JSON has ${quoteName(near[0] ?? '', 60)} where the path ` +
          `says ${quoteName(name, 60)}`
      : '';
  }
  return '';
}

/** The file text of an entry, or the error for it: ASCP's texts where ASCP has them. Never the value. */
function entryText(
  out: EntryOutcome,
  e: JmesPathEntry,
  objectName: string,
  json: unknown,
  fail: (code: StatusName, message: string, reason?: string) => ProviderError,
): string {
  const which = `jmesPath path of ${e.objectAlias} in ${objectName}`;
  switch (out.kind) {
    case 'text':
      return out.text;
    case 'failed':
      throw fail('INVALID_ARGUMENT', `Invalid JMES Path: ${e.path}. (evaluation failed on the JSON of ${objectName})`);
    case 'missing':
      throw fail(
        'FAILED_PRECONDITION',
        `JMES Path - ${e.path} for object alias - ${e.objectAlias} does not point to a valid object. (in the JSON ` +
          `of ${objectName}${caseHint(e.path, json)})`,
      );
    case 'type':
      throw fail(
        'FAILED_PRECONDITION',
        `Invalid JMES search result type for path:${e.path}. Only string is allowed. ` +
          `Found ${out.type} in ${objectName}; ` +
          'set render: json on this jmesPath entry to write it as JSON text',
      );
    case 'too-large': {
      const limit = jmesSettings().resultBytes;
      const size = out.atLeast ? `over ${describeBytes(limit)}` : `${out.bytes} bytes`;
      throw fail(
        'FAILED_PRECONDITION',
        `jmesPath result of ${e.objectAlias} in ${objectName} is ${size}, more than ` +
          `the ${describeBytes(limit)} this provider writes for one entry`,
      );
    }
    case 'budget': {
      const bound = boundText(out.bound);
      if (out.spent)
        throw fail(
          'INVALID_ARGUMENT',
          `${which} not evaluated: this mount's jmesPath evaluations already used the evaluation budget (${bound})`,
          'JmesPathBudget',
        );
      const again =
        out.until === undefined
          ? ''
          : `; it did on this same value before, and is not evaluated again until ${new Date(out.until).toISOString()}`;
      throw fail(
        'INVALID_ARGUMENT',
        `${which} exceeded the evaluation budget (${bound}); use a simpler path${again}`,
        'JmesPathBudget',
      );
    }
    case 'busy':
      throw fail(
        'UNAVAILABLE',
        `provider at capacity: ${out.waiting} jmesPath evaluations already waiting, ${which} not evaluated; nothing ` +
          `was written, the driver will retry`,
        'AtCapacity',
      );
    case 'aborted':
      throw out.deadline
        ? fail(
            'DEADLINE_EXCEEDED',
            `mount deadline exceeded during the evaluation of the ${which}; nothing was written`,
            'Deadline',
          )
        : fail(
            'CANCELLED',
            `mount cancelled by the caller during the evaluation of the ${which}; nothing was written`,
            'Cancelled',
          );
    case 'unavailable':
      throw fail(
        out.transient ? 'UNAVAILABLE' : 'INTERNAL',
        `the jmesPath evaluation thread ${out.why}; ${which} not evaluated`,
        'JmesPathEvaluator',
      );
  }
}

/** The refusal of a mount whose objects make more than `max` files, named by the object that passed it. */
export function tooManyFiles(max: number, objectName: string): ProviderError {
  return new ProviderError(
    'RESOURCE_EXHAUSTED',
    `this class makes more than ${max} files (reached at object ${objectName}): name fewer objects, keys or aliases`,
    {
      object: objectName,
      reason: 'TooLarge',
    },
  );
}

/** The mount's file bound: `max` files in all, `used` of them taken by the objects before this one. */
export interface FileBudget {
  max: number;
  used: number;
}

/**
 * `[own file, jmesPath files…, allKeys files…]`, all carrying `version`. Throws ProviderError
 * (FAILED_PRECONDITION for a value that does not fit the class, INVALID_ARGUMENT for a bad or too
 * costly expression or key name) naming the object and region. `signal`: the mount's; its
 * jmesPath evaluations share one budget and stop when it aborts. `files`: the mount's file bound,
 * checked here for every file an object makes (the one place it is checked); an allKeys value with
 * more keys than are left is refused (RESOURCE_EXHAUSTED, reason TooLarge) after counting its keys
 * and before any key becomes a file, so a tenant's secret of thousands of keys costs one JSON
 * parse, not thousands of path checks and copies.
 */
export async function deriveFiles(
  d: SecretDescriptor,
  stored: Uint8Array,
  version: string,
  region: string,
  opts: { signal?: AbortSignal | undefined; files?: FileBudget | undefined } = {},
): Promise<OutputFile[]> {
  // An error about the value itself leads with its region, as a fetch error does: the gRPC status and the pod's event
  // show only the message. (Budget, capacity and deadline errors are about this provider, not the value.)
  const fail = (code: StatusName, message: string, field?: string, reason = 'SecretValue'): ProviderError =>
    new ProviderError(code, region !== '' && reason === 'SecretValue' ? `${region}: ${message}` : message, {
      object: d.objectName,
      region,
      field,
      reason,
    });

  // objectEncoding: the file, and the JSON the entries read, are the decoded bytes; everything after
  // this (sizes, the mount's byte bound, unchanged-file detection, the driver's answer) sees only them.
  const encoding = d.objectEncoding ?? 'utf-8';
  const decoded = decodeValue(stored, encoding);
  if (!decoded.ok) {
    throw fail(
      'FAILED_PRECONDITION',
      `the value of ${d.objectName} is not valid ${encoding} (objectEncoding: ${encoding}): ${decoded.why}`,
      `objects[${d.index}].objectEncoding`,
    );
  }
  const value = decoded.bytes;

  const bound = opts.files;
  if (bound !== undefined && bound.used + 1 + d.jmesPath.length > bound.max)
    throw tooManyFiles(bound.max, d.objectName);
  const files: OutputFile[] = [
    { path: d.fileName, mode: d.mode, contents: value, version, origin: `object ${d.objectName}` },
  ];
  if (d.jmesPath.length === 0 && !d.allKeys) return files;

  const text = utf8Decoder.decode(value);
  let parsed: ParsedJson;
  try {
    parsed = parseJson(text);
  } catch {
    const what = d.allKeys && d.jmesPath.length === 0 ? 'allKeys' : 'jmesPath';
    throw fail('FAILED_PRECONDITION', `Invalid JSON used with ${what} in secret: ${d.objectName}.`);
  }
  const json = parsed.value;

  const budget = budgetFor(opts.signal);
  for (const [j, e] of d.jmesPath.entries()) {
    const field = `objects[${d.index}].jmesPath[${j}].path`;
    const out = await evaluateEntry(parsed, text, e.path, e.render, { budget, signal: opts.signal });
    const entryFile = entryText(out, e, d.objectName, json, (code, message, reason) =>
      fail(code, message, field, reason),
    );
    // The entry's own encoding only: the object's (if any) already decoded the JSON this result comes from.
    const entryEncoding = e.objectEncoding ?? 'utf-8';
    const contents = decodeValue(utf8.encode(entryFile), entryEncoding);
    if (!contents.ok) {
      throw fail(
        'FAILED_PRECONDITION',
        `the jmesPath result of ${e.objectAlias} in ${d.objectName} is not ` +
          `valid ${entryEncoding} (objectEncoding: ${entryEncoding} on this jmesPath entry): ${contents.why}`,
        `objects[${d.index}].jmesPath[${j}].objectEncoding`,
      );
    }
    files.push({
      path: e.fileName,
      mode: e.mode,
      contents: contents.bytes,
      version,
      origin: `jmesPath alias ${e.objectAlias} of ${d.objectName}`,
    });
  }

  if (d.allKeys) {
    const field = `objects[${d.index}].allKeys`;
    if (json === null || typeof json !== 'object' || Array.isArray(json)) {
      throw fail(
        'FAILED_PRECONDITION',
        `allKeys is set on ${d.objectName} but its value is a JSON ${jsonTypeOf(json)}, not a JSON object`,
        field,
      );
    }
    const entries = Object.entries(json as Record<string, unknown>);
    if (bound !== undefined && bound.used + files.length + entries.length > bound.max)
      throw tooManyFiles(bound.max, d.objectName);
    const translation = d.pathTranslation ?? '_';
    const keyFiles: { key: string; file: OutputFile }[] = [];
    const bad: string[] = [];
    for (const [key, v] of entries) {
      const path = translatePath(key, translation);
      const problem = filePathProblem(path);
      if (problem !== undefined) {
        bad.push(`key ${quoteName(key, 60)}: ${problem}`);
        continue;
      }
      const text = typeof v === 'string' ? v : toJsonText(v, parsed.bigIntegers);
      keyFiles.push({
        key,
        file: {
          path,
          mode: d.mode,
          contents: utf8.encode(text),
          version,
          origin: `allKeys key ${quoteName(key, 60)} of ${d.objectName}`,
        },
      });
    }
    const all = [...files.map((f) => f.path), ...keyFiles.map((k) => k.file.path)];
    for (const c of pathConflicts(all)) {
      const k = keyFiles[c.index - files.length];
      if (k !== undefined) bad.push(`key ${quoteName(k.key, 60)}: ${c.message}`);
    }
    if (bad.length > 0) {
      throw fail(
        'INVALID_ARGUMENT',
        `allKeys on ${d.objectName}: ${bad.length} key(s) cannot be files: ${bad.join('; ')}`,
        field,
      );
    }
    files.push(...keyFiles.map((k) => k.file));
  }
  return files;
}

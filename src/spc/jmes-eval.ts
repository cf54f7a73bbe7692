/**
 * @module spc/jmes-eval
 * Evaluating one jmesPath entry on a secret's JSON text, the same code inline (simple paths, on the
 * main thread) and in the evaluation worker (everything else): parse the JSON noting big integers,
 * search, and render the result as the file's text, refusing a text over `maxBytes` while it is
 * being built. Library and JSON error texts are never passed on (they may quote the secret).
 *
 * This file is also the worker's entry (spc/jmes.ts starts it): it must stay self-contained, importing
 * only Node built-ins and `jmespath`, so that Node can run it as it is, compiled (dist/*.js) or as
 * TypeScript with its types stripped (vitest runs src/*.ts).
 */
import jmespath from 'jmespath';
import { Buffer } from 'node:buffer';
import { getHeapStatistics } from 'node:v8';
import { isMainThread, parentPort, workerData, type MessagePort } from 'node:worker_threads';

// @types/jmespath declares only `search`; the package also exports `compile` (jmespath.js 0.16).
export const jmesLib = jmespath as unknown as {
  compile(expression: string): unknown;
  search(data: unknown, expression: string): unknown;
};

/**
 * A JSON document with the source text of every integer too large for a double
 * (`{"id": 12345678901234567890}`), so `render: json` and `allKeys` write such numbers exactly as the
 * secret holds them, while JMESPath still sees numbers (sorting, filters, `type()` keep working).
 */
export interface ParsedJson {
  value: unknown;
  /** Double value → the distinct source texts that rounded to it. */
  bigIntegers: Map<number, Set<string>>;
}

interface ReviverContext {
  source?: string;
}

/** JSON.parse that notes unsafe integers' source text (Node ≥ 21: the reviver sees it). Throws on bad JSON. */
export function parseJson(text: string): ParsedJson {
  const bigIntegers = new Map<number, Set<string>>();
  const value = JSON.parse(text, (_key: string, v: unknown, context?: ReviverContext) => {
    if (
      typeof v === 'number' &&
      !Number.isSafeInteger(v) &&
      context?.source !== undefined &&
      /^-?\d+$/.test(context.source)
    ) {
      const set = bigIntegers.get(v) ?? new Set<string>();
      set.add(context.source);
      bigIntegers.set(v, set);
    }
    return v;
  }) as unknown;
  return { value, bigIntegers };
}

const rawJSON = (JSON as unknown as { rawJSON?: (text: string) => unknown }).rawJSON;

/** Thrown (and caught) inside boundedJsonText when the text being built passes its limit. */
class TooLarge extends Error {}

function utf8Length(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}

/** A value's source text for an unsafe integer, when exactly one source rounded to it. */
function bigIntegerReplacer(big: Map<number, Set<string>>): ((x: unknown) => unknown) | undefined {
  const raw = rawJSON;
  if (big.size === 0 || raw === undefined) return undefined;
  return (x) => {
    if (typeof x !== 'number') return x;
    const sources = big.get(x);
    return sources?.size === 1 ? raw([...sources][0] as string) : x;
  };
}

/** JSON text of a value; an unsafe integer is written from its source when that is unambiguous. */
export function toJsonText(v: unknown, big: Map<number, Set<string>>): string {
  const replace = bigIntegerReplacer(big);
  return replace === undefined ? JSON.stringify(v) : JSON.stringify(v, (_k: string, x: unknown) => replace(x));
}

/**
 * toJsonText, or `undefined` when the text would be over `maxBytes`: counted while it is built, so a
 * result that shares one array many times over (`[@,@,@][*].[@,@,@]…` builds such a value cheaply)
 * stops after about `maxBytes` of work instead of expanding in memory.
 */
export function boundedJsonText(v: unknown, big: Map<number, Set<string>>, maxBytes: number): string | undefined {
  const replace = bigIntegerReplacer(big);
  let budget = maxBytes + 4; // the top value is counted as a member of the wrapper stringify gives it
  try {
    const text = JSON.stringify(v, function (this: unknown, k: string, x: unknown) {
      // A lower bound on the characters this value adds: a separator, its quoted key and colon in an
      // object, and its text (a string's quotes and characters, at least one for anything else).
      budget -= (Array.isArray(this) ? 1 : k.length + 4) + (typeof x === 'string' ? x.length + 2 : 1);
      if (budget < 0) throw new TooLarge();
      return replace === undefined ? x : replace(x);
    });
    return utf8Length(text) > maxBytes ? undefined : text;
  } catch (err) {
    if (err instanceof TooLarge) return undefined;
    throw err;
  }
}

export function jsonTypeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v === 'object' ? 'object' : typeof v; // string, number, boolean
}

/** What one jmesPath entry gives; never holds library error text. */
export type EvalOutcome =
  | { kind: 'text'; text: string }
  /** null or nothing: "does not point to a valid object". */
  | { kind: 'missing' }
  /** A non-string result without `render: json`. */
  | { kind: 'type'; type: string }
  /** The library threw (a function given the wrong type, a stack overflow…). */
  | { kind: 'failed' }
  /** The file's text would be over the limit; `bytes` is its size, or a lower bound when `atLeast`. */
  | { kind: 'too-large'; bytes: number; atLeast: boolean };

/** Searches and renders (the file's text: a string as it is, anything else as JSON with `render: json`). */
export function evaluate(
  json: ParsedJson,
  expression: string,
  render: 'string' | 'json',
  maxBytes: number,
): EvalOutcome {
  let r: unknown;
  try {
    r = jmesLib.search(json.value, expression);
  } catch {
    return { kind: 'failed' };
  }
  if (r === null || r === undefined) return { kind: 'missing' };
  if (typeof r === 'string') {
    const bytes = utf8Length(r);
    return bytes > maxBytes ? { kind: 'too-large', bytes, atLeast: false } : { kind: 'text', text: r };
  }
  if (render !== 'json') return { kind: 'type', type: jsonTypeOf(r) };
  let text: string | undefined;
  try {
    text = boundedJsonText(r, json.bigIntegers, maxBytes);
  } catch {
    return { kind: 'failed' }; // nesting too deep for JSON.stringify
  }
  return text === undefined ? { kind: 'too-large', bytes: maxBytes + 1, atLeast: true } : { kind: 'text', text };
}

// ---------------------------------------------------------------------------------------------
// The worker side.

/** workerData that makes this module serve evaluations (so importing it elsewhere does nothing). */
export const WORKER_MARKER = 'csi-aws-jmes-worker/1';

/** One evaluation asked of the worker. */
export interface EvalRequest {
  id: number;
  /** The secret's text: parsed here the same way as inline (cheaper to send than the parsed value). */
  text: string;
  expression: string;
  render: 'string' | 'json';
  maxBytes: number;
}

/** The worker's answer; `cpuMicros` is the worker thread's CPU time so far (user + system, µs). */
export type EvalReply =
  | { id: number; cpuMicros: number; outcome: EvalOutcome | { kind: 'not-json' } }
  /** First message: started; `heapLimit` is V8's (bytes), which a process-wide --max-old-space-size overrides. */
  | { ready: true; cpuMicros: number; heapLimit: number };

function threadCpuMicros(): number {
  const u = process.threadCpuUsage();
  return u.user + u.system;
}

function serve(port: MessagePort): void {
  // The entries of one object come one after another with the same text: parse it once.
  let last: { text: string; json: ParsedJson } | undefined;
  port.on('message', (req: EvalRequest) => {
    let outcome: EvalOutcome | { kind: 'not-json' };
    try {
      if (last?.text !== req.text) {
        last = undefined;
        last = { text: req.text, json: parseJson(req.text) };
      }
      outcome = evaluate(last.json, req.expression, req.render, req.maxBytes);
    } catch {
      outcome = { kind: 'not-json' };
    }
    const reply: EvalReply = { id: req.id, cpuMicros: threadCpuMicros(), outcome };
    port.postMessage(reply);
  });
  const ready: EvalReply = {
    ready: true,
    cpuMicros: threadCpuMicros(),
    heapLimit: getHeapStatistics().heap_size_limit,
  };
  port.postMessage(ready);
}

if (!isMainThread && parentPort !== null && workerData === WORKER_MARKER) serve(parentPort);

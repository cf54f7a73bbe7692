/**
 * @module spc/go-yaml
 * Decodes the `objects` YAML the way ASCP sees it (docs/behaviour.md, "Objects"): go-yaml v2 scalar
 * resolution (YAML 1.1 booleans, `0644` octal, `1_000`, no base-60), aliases and `<<` merges
 * resolved with an expansion budget, then the sigs.k8s.io/yaml scalar → string coercion rules.
 * The `yaml` package only parses (failsafe schema: every scalar arrives as text); typing is ours.
 */
import { CST, isAlias, isMap, isPair, isScalar, isSeq, Lexer, parseAllDocuments } from 'yaml';

/** A decoded YAML value, as go-yaml v2 would hand it to sigs.k8s.io/yaml. */
export type GoValue =
  | { readonly kind: 'null' }
  | { readonly kind: 'bool'; readonly value: boolean }
  /** Integers keep their decimal text (int64/uint64 range, beyond JS numbers). */
  | { readonly kind: 'int'; readonly text: string }
  | { readonly kind: 'float'; readonly value: number }
  | { readonly kind: 'string'; readonly value: string }
  /** Keys already stringified as sigs.k8s.io/yaml does; insertion order; a repeated key keeps the last value. */
  | { readonly kind: 'map'; readonly entries: ReadonlyMap<string, GoValue> }
  | { readonly kind: 'seq'; readonly items: readonly GoValue[] };

export type DecodeResult = { ok: true; value: GoValue } | { ok: false; errors: string[] };

/** Expansion budget: a YAML bomb (nested aliases) is refused long before it costs anything. */
const MAX_NODES = 20_000;
const MAX_DEPTH = 64;

const NULL: GoValue = { kind: 'null' };

// go-yaml v2 resolve.go resolveMap (the '<<' merge key is handled by the map walker).
const RESOLVE_MAP = new Map<string, GoValue>();
for (const s of ['y', 'Y', 'yes', 'Yes', 'YES', 'on', 'On', 'ON', 'true', 'True', 'TRUE'])
  RESOLVE_MAP.set(s, { kind: 'bool', value: true });
for (const s of ['n', 'N', 'no', 'No', 'NO', 'off', 'Off', 'OFF', 'false', 'False', 'FALSE'])
  RESOLVE_MAP.set(s, { kind: 'bool', value: false });
for (const s of ['', '~', 'null', 'Null', 'NULL']) RESOLVE_MAP.set(s, NULL);
for (const s of ['.nan', '.NaN', '.NAN']) RESOLVE_MAP.set(s, { kind: 'float', value: Number.NaN });
for (const s of ['.inf', '.Inf', '.INF', '+.inf', '+.Inf', '+.INF'])
  RESOLVE_MAP.set(s, { kind: 'float', value: Number.POSITIVE_INFINITY });
for (const s of ['-.inf', '-.Inf', '-.INF']) RESOLVE_MAP.set(s, { kind: 'float', value: Number.NEGATIVE_INFINITY });

const YAML_STYLE_FLOAT = /^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$/;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const UINT64_MAX = 2n ** 64n - 1n;

/** Go strconv.ParseInt/ParseUint with base 0 (`0x`, `0o`, `0b`, leading-0 octal); undefined if invalid. */
export function goParseInteger(s: string, signed: boolean): bigint | undefined {
  let rest = s;
  let negative = false;
  if (signed && (rest.startsWith('+') || rest.startsWith('-'))) {
    negative = rest.startsWith('-');
    rest = rest.slice(1);
  }
  let digits: RegExp;
  let prefix = '';
  if (/^0[xX]/.test(rest)) {
    digits = /^[0-9a-fA-F]+$/;
    prefix = '0x';
    rest = rest.slice(2);
  } else if (/^0[bB]/.test(rest)) {
    digits = /^[01]+$/;
    prefix = '0b';
    rest = rest.slice(2);
  } else if (/^0[oO]/.test(rest)) {
    digits = /^[0-7]+$/;
    prefix = '0o';
    rest = rest.slice(2);
  } else if (rest.length > 1 && rest.startsWith('0')) {
    digits = /^[0-7]+$/;
    prefix = '0o';
    rest = rest.slice(1);
  } else {
    digits = /^[0-9]+$/;
  }
  if (!digits.test(rest)) return undefined;
  let n = BigInt(prefix + rest);
  if (negative) n = -n;
  if (signed ? n < INT64_MIN || n > INT64_MAX : n > UINT64_MAX) return undefined;
  return n;
}

/** go-yaml v2 `resolve` for an untagged plain scalar. Timestamps stay strings (v2 keeps them as text). */
export function resolvePlain(s: string): GoValue {
  const known = RESOLVE_MAP.get(s);
  if (known !== undefined) return known;
  const c = s[0] ?? '';
  if (c === '.') {
    // strconv.ParseFloat on `.5`, `.5e3`; anything else stays a string.
    if (/^\.[0-9]+([eE][-+]?[0-9]+)?$/.test(s)) {
      const v = Number(s);
      if (Number.isFinite(v)) return { kind: 'float', value: v };
    }
    return { kind: 'string', value: s };
  }
  if (/[-+0-9]/.test(c)) {
    const plain = s.replaceAll('_', '');
    const n = goParseInteger(plain, true) ?? goParseInteger(plain, false);
    if (n !== undefined) return { kind: 'int', text: n.toString() };
    if (YAML_STYLE_FLOAT.test(plain)) {
      const v = Number(plain);
      if (Number.isFinite(v)) return { kind: 'float', value: v };
    }
  }
  return { kind: 'string', value: s };
}

/**
 * Go `strconv.FormatFloat(v, 'g', -1, 32)`: the shortest decimal that reads back as the same float32,
 * exponent form when the exponent is < -4 or >= 6. `1.10` → "1.1", `1e3` → "1000", `1e6` → "1e+06".
 */
export function formatFloat32(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  const f = Math.fround(v);
  if (f === Number.POSITIVE_INFINITY) return '+Inf';
  if (f === Number.NEGATIVE_INFINITY) return '-Inf';
  if (f === 0) return Object.is(f, -0) ? '-0' : '0';
  const neg = f < 0;
  const a = Math.abs(f);
  let exp = 0;
  let digits = '';
  for (let p = 1; p <= 9; p++) {
    const e = a.toExponential(p - 1);
    if (Math.fround(Number(e)) === a || p === 9) {
      const [mant = '', ex = '0'] = e.split('e');
      digits = mant.replace('.', '').replace(/0+$/, '') || '0';
      exp = Number(ex);
      break;
    }
  }
  let out: string;
  if (exp < -4 || exp >= 6) {
    const abs = Math.abs(exp);
    const mantissa = `${digits[0] ?? '0'}${digits.length > 1 ? `.${digits.slice(1)}` : ''}`;
    out = `${mantissa}e${exp < 0 ? '-' : '+'}${abs < 10 ? `0${abs}` : abs}`;
  } else if (exp >= 0) {
    const intLen = exp + 1;
    const intPart = digits.length >= intLen ? digits.slice(0, intLen) : digits.padEnd(intLen, '0');
    const frac = digits.slice(intLen);
    out = frac === '' ? intPart : `${intPart}.${frac}`;
  } else {
    out = `0.${'0'.repeat(-exp - 1)}${digits}`;
  }
  return neg ? `-${out}` : out;
}

/** A key as sigs.k8s.io/yaml stringifies it; undefined for keys it refuses (null, maps, lists). */
/** A scalar's value as text: the core schema makes strings, numbers, booleans, bigints and null, nothing else. */
function scalarText(v: unknown): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  return v === null || v === undefined ? '' : JSON.stringify(v);
}

function keyString(k: GoValue): string | undefined {
  switch (k.kind) {
    case 'string':
      return k.value;
    case 'int':
      return k.text;
    case 'bool':
      return k.value ? 'true' : 'false';
    case 'float': {
      const s = formatFloat32(k.value);
      return s === '+Inf' ? '.inf' : s === '-Inf' ? '-.inf' : s === 'NaN' ? '.nan' : s;
    }
    default:
      return undefined;
  }
}

class DecodeFailure extends Error {}

/**
 * Nesting the parser is allowed to see. The `yaml` parser's memory grows steeply with nesting depth
 * (20,000 nested `[` take 44 MiB of heap before any check of ours runs), so depth is measured on the
 * lexer's tokens first, which cost little and hold nothing. Real classes nest 4 or 5 levels.
 */
const MAX_FLOW_DEPTH = MAX_DEPTH;
/** Block indicators (`-`, `?`, `:`) on one line: `- - - - x` nests one level per indicator. */
const MAX_LINE_INDICATORS = MAX_DEPTH;
/** Tokens that mark structure for the parser but are not source text. */
const CONTROL = new Set<string>([CST.DOCUMENT, CST.FLOW_END, CST.SCALAR]);

/**
 * The text of the first YAML document of `src` (go-yaml's Unmarshal reads only the first, so the
 * rest is never parsed), or why it is refused before parsing: nested too deeply.
 */
function firstDocument(src: string): { ok: true; text: string } | { ok: false; error: string } {
  let offset = 0;
  /** Content seen in this document (not only directives, comments and white space). */
  let content = false;
  let flow = 0;
  let lineIndicators = 0;
  for (const token of new Lexer().lex(src)) {
    // A document ends at the next `---`, or where the lexer starts one after `...`.
    if (content && (token === CST.DOCUMENT || token === '---')) return { ok: true, text: src.slice(0, offset) };
    if (CONTROL.has(token)) continue;
    offset += token.length;
    if (!content && token !== '---' && token.trim() !== '' && !token.startsWith('#') && !token.startsWith('%'))
      content = true;
    if (token === '[' || token === '{') {
      if (++flow > MAX_FLOW_DEPTH)
        return { ok: false, error: 'error converting YAML to JSON: yaml: document nested too deeply' };
    } else if (token === ']' || token === '}') {
      if (flow > 0) flow--;
    } else if (token === '-' || token === '?' || token === ':') {
      if (++lineIndicators > MAX_LINE_INDICATORS)
        return { ok: false, error: 'error converting YAML to JSON: yaml: document nested too deeply' };
    } else if (token.includes('\n')) {
      lineIndicators = 0;
    }
  }
  return { ok: true, text: src };
}

/**
 * Parses `src` (first document only, as go-yaml's Unmarshal) into a GoValue. Errors carry the text
 * that follows `Failed to load SecretProviderClass: ` (prefix added by the caller).
 */
export function decodeYaml(src: string): DecodeResult {
  const first = firstDocument(src);
  if (!first.ok) return { ok: false, errors: [first.error] };
  const docs = parseAllDocuments(first.text, {
    version: '1.1',
    schema: 'failsafe',
    uniqueKeys: false,
    merge: false,
    prettyErrors: false,
  });
  const list = Array.isArray(docs) ? docs : [];
  const doc = list[0];
  if (doc === undefined) return { ok: true, value: NULL };
  if (doc.errors.length > 0) {
    return {
      ok: false,
      // go-yaml stops at the first error; so do we (deep nesting makes the parser repeat one error hundreds of times).
      errors: doc.errors
        .slice(0, 1)
        .map((e) => `error converting YAML to JSON: yaml: ${e.message.split('\n')[0] ?? ''}`),
    };
  }

  // Anchors in document order: an alias means the latest earlier anchor of that name.
  const anchors = new Map<string, unknown>();
  const aliasTarget = new WeakMap<object, unknown>();
  const index = (node: unknown): void => {
    if (node === null || typeof node !== 'object') return;
    if (isAlias(node)) {
      aliasTarget.set(node, anchors.get(node.source));
      return;
    }
    const anchor = (node as { anchor?: unknown }).anchor;
    if (typeof anchor === 'string' && anchor !== '') anchors.set(anchor, node);
    if (isMap(node)) {
      for (const p of node.items) {
        index(p.key);
        index(p.value);
      }
    } else if (isSeq(node)) {
      for (const item of node.items) index(item);
    }
  };
  index(doc.contents);

  let budget = MAX_NODES;
  let sawAlias = false;
  const walk = (node: unknown, depth: number): GoValue => {
    if (--budget < 0) {
      throw new DecodeFailure(
        sawAlias
          ? 'error converting YAML to JSON: yaml: document contains excessive aliasing'
          : 'error converting YAML to JSON: yaml: document is too large',
      );
    }
    if (depth > MAX_DEPTH) {
      throw new DecodeFailure(
        sawAlias
          ? 'error converting YAML to JSON: yaml: document contains excessive aliasing'
          : 'error converting YAML to JSON: yaml: document nested too deeply',
      );
    }
    if (node === null || node === undefined) return NULL;
    if (isAlias(node)) {
      sawAlias = true;
      const target = aliasTarget.get(node);
      if (target === undefined)
        throw new DecodeFailure(`error converting YAML to JSON: yaml: unknown anchor '${node.source}' referenced`);
      return walk(target, depth + 1);
    }
    if (isScalar(node)) {
      const text = scalarText(node.value);
      const tag = node.tag;
      if (tag === 'tag:yaml.org,2002:str' || tag === 'tag:yaml.org,2002:binary') return { kind: 'string', value: text };
      if (node.type !== undefined && node.type !== 'PLAIN') return { kind: 'string', value: text };
      return resolvePlain(text);
    }
    if (isSeq(node)) return { kind: 'seq', items: node.items.map((item) => walk(item, depth + 1)) };
    if (isMap(node)) {
      const entries = new Map<string, GoValue>();
      const mergeInto = (v: GoValue): void => {
        if (v.kind !== 'map')
          throw new DecodeFailure(
            'error converting YAML to JSON: yaml: map merge requires map or sequence of maps as the value',
          );
        for (const [k, val] of v.entries) entries.set(k, val);
      };
      for (const pair of node.items) {
        if (!isPair(pair)) continue;
        const rawKey = pair.key;
        if (isScalar(rawKey) && rawKey.value === '<<' && (rawKey.type === 'PLAIN' || rawKey.type === undefined)) {
          // go-yaml v2 merges in place (later explicit keys win; a sequence merges last-to-first).
          const v = walk(pair.value, depth + 1);
          if (v.kind === 'seq') for (const m of [...v.items].reverse()) mergeInto(m);
          else mergeInto(v);
          continue;
        }
        const k = walk(rawKey, depth + 1);
        const ks = keyString(k);
        if (ks === undefined) {
          throw new DecodeFailure(
            k.kind === 'null'
              ? 'error converting YAML to JSON: unsupported map key of type: <nil>'
              : 'error converting YAML to JSON: yaml: invalid map key (a list or mapping used as a key)',
          );
        }
        entries.delete(ks); // keep "last wins" and its position
        entries.set(ks, walk(pair.value, depth + 1));
      }
      return { kind: 'map', entries };
    }
    return NULL;
  };

  try {
    return { ok: true, value: walk(doc.contents, 0) };
  } catch (err) {
    if (err instanceof DecodeFailure) return { ok: false, errors: [err.message] };
    if (err instanceof RangeError) {
      return { ok: false, errors: ['error converting YAML to JSON: yaml: document nested too deeply'] };
    }
    throw err;
  }
}

/** The JSON kind name Go's json package uses in "cannot unmarshal <kind> into …". */
export function jsonKind(v: GoValue): string {
  switch (v.kind) {
    case 'map':
      return 'object';
    case 'seq':
      return 'array';
    case 'string':
      return 'string';
    case 'bool':
      return 'bool';
    case 'null':
      return 'null';
    default:
      return 'number';
  }
}

/** True when the value holds a float JSON cannot encode (+Inf, NaN): sigs.k8s.io/yaml then fails to marshal. */
export function findUnencodableFloat(v: GoValue): string | undefined {
  switch (v.kind) {
    case 'float':
      return Number.isFinite(v.value) ? undefined : formatFloat32(v.value);
    case 'map':
      for (const x of v.entries.values()) {
        const f = findUnencodableFloat(x);
        if (f !== undefined) return f;
      }
      return undefined;
    case 'seq':
      for (const x of v.items) {
        const f = findUnencodableFloat(x);
        if (f !== undefined) return f;
      }
      return undefined;
    default:
      return undefined;
  }
}

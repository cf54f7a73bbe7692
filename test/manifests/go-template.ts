/**
 * @module test/manifests/go-template
 * A Go `text/template` engine for the subset of syntax and Helm/sprig functions our chart uses, so
 * tests can render the chart without a Helm binary (none is installable here). Semantics follow Go
 * and Helm where the chart can tell the difference:
 * - `{{-`/`-}}` trim all adjacent whitespace; `{{/* … *\/}}` comments; `$` is the data the
 *   template (or `include`) was called with; variables are scoped to their block.
 * - A missing map key is "no value" and prints as '' (Helm's `missingkey=zero` plus its removal of
 *   `<no value>`); a field of nil is an error (`nil pointer evaluating interface {}.x`), as in Helm,
 *   so templates must guard optional maps with `if`.
 * - Truth: false, 0, nil, '' and empty maps/lists are false. `and`/`or` short-circuit and return
 *   the deciding operand (Go ≥ 1.18).
 * - Numbers print as Go's `%v` of float64 (Helm's values are float64): `5` → `5`, `1e6` → `1e+06`.
 * - `toYaml` is sorted, block-style YAML 1.1 without the trailing newline (sigs.k8s.io/yaml).
 * Anything outside the subset throws, naming the template and line, rather than rendering wrongly.
 */
import { stringify } from 'yaml';

/** One parsed template file's top-level nodes, plus the `define`s it declared. */
export interface ParsedTemplate {
  readonly name: string;
  readonly nodes: readonly Node[];
}

type Node =
  | { kind: 'text'; text: string }
  | { kind: 'action'; pipe: Pipeline; line: number }
  | { kind: 'if' | 'with'; pipe: Pipeline; then: Node[]; else: Node[]; line: number }
  | { kind: 'range'; pipe: Pipeline; body: Node[]; else: Node[]; line: number }
  | { kind: 'template'; name: string; pipe: Pipeline | undefined; line: number };

interface Pipeline {
  decl: { names: string[]; assign: boolean } | undefined;
  cmds: Operand[][];
}

type Operand =
  | { kind: 'field'; base: string | undefined; path: string[] } // base undefined = dot; else a variable name ('$' = root)
  | { kind: 'literal'; value: unknown }
  | { kind: 'ident'; name: string }
  | { kind: 'sub'; pipe: Pipeline; path: string[] };

type Token =
  | { t: 'field'; base: string | undefined; path: string[] }
  | { t: 'lit'; value: unknown }
  | { t: 'ident'; name: string }
  | { t: 'lparen' | 'rparen' | 'pipe' | 'declare' | 'assign' | 'comma' }
  | { t: 'dotpath'; path: string[] }; // `.x.y` right after `)`

/** Thrown for template syntax outside the subset, and by `fail`/`required` (message as Helm's). */
export class TemplateError extends Error {
  override readonly name = 'TemplateError';
}

interface RawAction {
  tokens: Token[];
  keyword: string | undefined;
  line: number;
}

type Item = { kind: 'text'; text: string } | { kind: 'action'; action: RawAction };

const KEYWORDS = new Set(['if', 'else', 'end', 'range', 'with', 'define', 'template', 'block', 'break', 'continue']);

function lineAt(src: string, pos: number): number {
  let n = 1;
  for (let i = 0; i < pos && i < src.length; i++) if (src[i] === '\n') n++;
  return n;
}

/** Splits source into text and action items, applying trim markers. */
function scan(src: string, file: string): Item[] {
  const items: Item[] = [];
  let pos = 0;
  let trimNext = false;
  for (;;) {
    const open = src.indexOf('{{', pos);
    let text = open < 0 ? src.slice(pos) : src.slice(pos, open);
    if (trimNext) text = text.replace(/^\s+/, '');
    if (open < 0) {
      if (text !== '') items.push({ kind: 'text', text });
      return items;
    }
    let p = open + 2;
    if (src[p] === '-' && /\s/.test(src[p + 1] ?? '')) {
      text = text.replace(/\s+$/, '');
      p += 2;
    }
    if (text !== '') items.push({ kind: 'text', text });
    const line = lineAt(src, open);
    const comment = /^\s*\/\*/.exec(src.slice(p, p + 64));
    if (comment) {
      const endComment = src.indexOf('*/', p);
      if (endComment < 0) throw new TemplateError(`${file}:${line}: unclosed comment`);
      const rest = /^\s*(-\s*)?\}\}/.exec(src.slice(endComment + 2));
      if (!rest) throw new TemplateError(`${file}:${line}: comment must end the action`);
      trimNext = rest[1] !== undefined;
      pos = endComment + 2 + rest[0].length;
      continue;
    }
    const lexed = lexAction(src, p, file, line);
    trimNext = lexed.trimRight;
    pos = lexed.end;
    const first = lexed.tokens[0];
    const keyword = first?.t === 'ident' && KEYWORDS.has(first.name) ? first.name : undefined;
    items.push({ kind: 'action', action: { tokens: keyword ? lexed.tokens.slice(1) : lexed.tokens, keyword, line } });
  }
}

const IDENT = /[A-Za-z_][A-Za-z0-9_]*/y;
const NUMBER = /[+-]?(?:0[xX][0-9a-fA-F]+|\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)/y;

function lexAction(src: string, start: number, file: string, line: number): { tokens: Token[]; end: number; trimRight: boolean } {
  const tokens: Token[] = [];
  let p = start;
  const fail = (msg: string): never => {
    throw new TemplateError(`${file}:${line}: ${msg}`);
  };
  const readPath = (): string[] => {
    const path: string[] = [];
    while (src[p] === '.') {
      IDENT.lastIndex = p + 1;
      const m = IDENT.exec(src);
      if (!m) break;
      path.push(m[0]);
      p = IDENT.lastIndex;
    }
    return path;
  };
  for (;;) {
    const c = src[p];
    if (c === undefined) throw new TemplateError(`${file}:${line}: unclosed action`);
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      const after = /^\s*-\}\}/.exec(src.slice(p, p + 32));
      if (after) return { tokens, end: p + after[0].length, trimRight: true };
      p++;
      continue;
    }
    if (src.startsWith('}}', p)) return { tokens, end: p + 2, trimRight: false };
    if (c === '(') { tokens.push({ t: 'lparen' }); p++; continue; }
    if (c === ')') {
      tokens.push({ t: 'rparen' });
      p++;
      if (src[p] === '.') tokens.push({ t: 'dotpath', path: readPath() });
      continue;
    }
    if (c === '|') { tokens.push({ t: 'pipe' }); p++; continue; }
    if (c === ',') { tokens.push({ t: 'comma' }); p++; continue; }
    if (src.startsWith(':=', p)) { tokens.push({ t: 'declare' }); p += 2; continue; }
    if (c === '=') { tokens.push({ t: 'assign' }); p++; continue; }
    if (c === '"') {
      let q = p + 1;
      while (q < src.length && src[q] !== '"') q += src[q] === '\\' ? 2 : 1;
      if (q >= src.length) fail('unterminated string');
      tokens.push({ t: 'lit', value: JSON.parse(src.slice(p, q + 1)) as string });
      p = q + 1;
      continue;
    }
    if (c === '`') {
      const q = src.indexOf('`', p + 1);
      if (q < 0) fail('unterminated raw string');
      tokens.push({ t: 'lit', value: src.slice(p + 1, q) });
      p = q + 1;
      continue;
    }
    if (c === '.') {
      const path = readPath();
      if (path.length === 0) p++; // bare dot
      tokens.push({ t: 'field', base: undefined, path });
      continue;
    }
    if (c === '$') {
      IDENT.lastIndex = p + 1;
      const m = IDENT.exec(src);
      const name = m && m.index === p + 1 ? '$' + m[0] : '$';
      p += name.length;
      tokens.push({ t: 'field', base: name, path: readPath() });
      continue;
    }
    NUMBER.lastIndex = p;
    const num = NUMBER.exec(src);
    if (num && /[0-9+-]/.test(c)) {
      tokens.push({ t: 'lit', value: Number(num[0]) });
      p = NUMBER.lastIndex;
      continue;
    }
    IDENT.lastIndex = p;
    const id = IDENT.exec(src);
    if (id) {
      p = IDENT.lastIndex;
      const name = id[0];
      if (name === 'true' || name === 'false') tokens.push({ t: 'lit', value: name === 'true' });
      else if (name === 'nil') tokens.push({ t: 'lit', value: null });
      else tokens.push({ t: 'ident', name });
      continue;
    }
    fail(`unexpected character ${JSON.stringify(c)}`);
  }
}

/** Parses a pipeline from tokens: `[$a[, $b] :=|=] cmd args | cmd args`. */
function parsePipeline(tokens: Token[], file: string, line: number): Pipeline {
  const fail = (msg: string): never => {
    throw new TemplateError(`${file}:${line}: ${msg}`);
  };
  let i = 0;
  let decl: Pipeline['decl'];
  const declEnd = tokens.findIndex((t) => t.t === 'declare' || t.t === 'assign');
  if (declEnd > 0 && tokens.slice(0, declEnd).every((t) => t.t === 'comma' || (t.t === 'field' && t.base !== undefined && t.path.length === 0))) {
    const names = tokens.slice(0, declEnd).flatMap((t) => (t.t === 'field' && t.base !== undefined ? [t.base] : []));
    decl = { names, assign: tokens[declEnd]?.t === 'assign' };
    i = declEnd + 1;
  }
  const parseCmds = (stopAtParen: boolean): Operand[][] => {
    const cmds: Operand[][] = [];
    let cmd: Operand[] = [];
    for (; i < tokens.length; i++) {
      const tok = tokens[i]!;
      switch (tok.t) {
        case 'pipe':
          if (cmd.length === 0) fail('missing command before |');
          cmds.push(cmd);
          cmd = [];
          break;
        case 'rparen':
          if (!stopAtParen) fail('unexpected )');
          if (cmd.length > 0) cmds.push(cmd);
          return cmds;
        case 'lparen': {
          i++;
          const inner = parseCmds(true);
          const next = tokens[i + 1];
          let path: string[] = [];
          if (next?.t === 'dotpath') {
            path = next.path;
            i++;
          }
          cmd.push({ kind: 'sub', pipe: { decl: undefined, cmds: inner }, path });
          break;
        }
        case 'field':
          cmd.push({ kind: 'field', base: tok.base, path: tok.path });
          break;
        case 'lit':
          cmd.push({ kind: 'literal', value: tok.value });
          break;
        case 'ident':
          cmd.push({ kind: 'ident', name: tok.name });
          break;
        default:
          fail(`unexpected ${tok.t}`);
      }
    }
    if (stopAtParen) fail('unclosed (');
    if (cmd.length > 0) cmds.push(cmd);
    return cmds;
  };
  const cmds = parseCmds(false);
  if (cmds.length === 0) fail('empty pipeline');
  return { decl, cmds };
}

/** Parses one file; `define`d templates go into `defines` (shared across files, as Helm does). */
export function parseTemplate(name: string, src: string, defines: Map<string, Node[]>): ParsedTemplate {
  const items = scan(src, name);
  let i = 0;
  type Stop = { keyword: 'end' | 'else'; action: RawAction } | undefined;
  const pipeOf = (a: RawAction): Pipeline => parsePipeline(a.tokens, name, a.line);

  const parseList = (): { nodes: Node[]; stop: Stop } => {
    const nodes: Node[] = [];
    while (i < items.length) {
      const item = items[i++]!;
      if (item.kind === 'text') {
        nodes.push(item);
        continue;
      }
      const a = item.action;
      switch (a.keyword) {
        case undefined:
          nodes.push({ kind: 'action', pipe: pipeOf(a), line: a.line });
          break;
        case 'end':
        case 'else':
          return { nodes, stop: { keyword: a.keyword, action: a } };
        case 'if':
        case 'with':
          nodes.push(parseBranch(a.keyword, a));
          break;
        case 'range': {
          const body = parseList();
          let elseNodes: Node[] = [];
          if (body.stop?.keyword === 'else') {
            const rest = parseList();
            if (rest.stop?.keyword !== 'end') throw new TemplateError(`${name}:${a.line}: range without end`);
            elseNodes = rest.nodes;
          } else if (body.stop?.keyword !== 'end') throw new TemplateError(`${name}:${a.line}: range without end`);
          nodes.push({ kind: 'range', pipe: pipeOf(a), body: body.nodes, else: elseNodes, line: a.line });
          break;
        }
        case 'define': {
          const tname = a.tokens[0];
          if (tname?.t !== 'lit' || typeof tname.value !== 'string') throw new TemplateError(`${name}:${a.line}: define needs a name`);
          const body = parseList();
          if (body.stop?.keyword !== 'end') throw new TemplateError(`${name}:${a.line}: define without end`);
          defines.set(tname.value, body.nodes);
          break;
        }
        case 'template': {
          const tname = a.tokens[0];
          if (tname?.t !== 'lit' || typeof tname.value !== 'string') throw new TemplateError(`${name}:${a.line}: template needs a name`);
          const rest = a.tokens.slice(1);
          nodes.push({ kind: 'template', name: tname.value, pipe: rest.length > 0 ? parsePipeline(rest, name, a.line) : undefined, line: a.line });
          break;
        }
        default:
          throw new TemplateError(`${name}:${a.line}: {{${a.keyword}}} is outside the supported subset`);
      }
    }
    return { nodes, stop: undefined };
  };

  const parseBranch = (kind: 'if' | 'with', a: RawAction): Node => {
    const body = parseList();
    let elseNodes: Node[] = [];
    if (body.stop?.keyword === 'else') {
      const elseAction = body.stop.action;
      const chained = elseAction.tokens[0];
      if (chained?.t === 'ident' && (chained.name === 'if' || chained.name === 'with')) {
        // `{{else if x}}` is an if nested in the else branch that shares the outer `end`.
        elseNodes = [parseBranch(chained.name, { ...elseAction, tokens: elseAction.tokens.slice(1) })];
      } else {
        const rest = parseList();
        if (rest.stop?.keyword !== 'end') throw new TemplateError(`${name}:${a.line}: ${kind} without end`);
        elseNodes = rest.nodes;
      }
    } else if (body.stop?.keyword !== 'end') throw new TemplateError(`${name}:${a.line}: ${kind} without end`);
    return { kind, pipe: pipeOf(a), then: body.nodes, else: elseNodes, line: a.line };
  };

  const top = parseList();
  if (top.stop) throw new TemplateError(`${name}:${top.stop.action.line}: unexpected {{${top.stop.keyword}}}`);
  return { name, nodes: top.nodes };
}

// ---------------------------------------------------------------------------------------------
// Values and printing

const NO_VALUE = undefined;

function isMap(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Go template truth. */
export function truthy(v: unknown): boolean {
  if (v === undefined || v === null || v === false || v === 0 || v === '') return false;
  if (Array.isArray(v)) return v.length > 0;
  if (isMap(v)) return Object.keys(v).length > 0;
  return true;
}

/** Go `%v` of a float64: strconv 'g', shortest digits, exponent form when exp < -4 or ≥ 6 (`1e+06`). */
export function goFloat(n: number): string {
  if (!Number.isFinite(n)) return Number.isNaN(n) ? 'NaN' : n > 0 ? '+Inf' : '-Inf';
  if (n === 0) return Object.is(n, -0) ? '-0' : '0';
  const [mant = '', expStr = '0'] = n.toExponential().split('e');
  const exp = Number(expStr);
  if (exp >= -4 && exp < 6) return String(n);
  const abs = Math.abs(exp);
  return `${mant}e${exp < 0 ? '-' : '+'}${abs < 10 ? '0' : ''}${abs}`;
}

/** How Go's text/template prints a value (`fmt.Sprint`). */
export function goPrint(v: unknown): string {
  if (v === undefined) return '';
  if (v === null) return '<nil>';
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return goFloat(v);
  if (typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return `[${v.map(goPrint).join(' ')}]`;
  if (isMap(v)) return `map[${Object.keys(v).sort().map((k) => `${k}:${goPrint(v[k])}`).join(' ')}]`;
  return String(v);
}

/** Helm `toYaml`: sorted keys, YAML 1.1 quoting, no trailing newline. */
export function toYaml(v: unknown): string {
  if (v === undefined || v === null) return 'null';
  return stringify(v, { sortMapEntries: true, lineWidth: 0, indentSeq: false, version: '1.1' }).replace(/\n$/, '');
}

function goQuote(s: string): string {
  return JSON.stringify(s).replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}

function strval(v: unknown): string {
  return v === undefined || v === null ? '' : goPrint(v);
}

function indent(n: number, s: string): string {
  const pad = ' '.repeat(n);
  return pad + s.replace(/\n/g, '\n' + pad);
}

function printf(format: string, args: unknown[]): string {
  let k = 0;
  return format.replace(/%([%sdvqt])/g, (_m, verb: string) => {
    if (verb === '%') return '%';
    const a = args[k++];
    switch (verb) {
      case 'd':
        return typeof a === 'number' ? String(Math.trunc(a)) : `%!d(${goPrint(a)})`;
      case 'q':
        return goQuote(strval(a));
      default:
        return goPrint(a);
    }
  });
}

function goEqual(a: unknown, b: unknown): boolean {
  if ((a === undefined || a === null) && (b === undefined || b === null)) return true;
  if (typeof a !== typeof b) throw new TemplateError(`incompatible types for comparison: ${goPrint(a)} and ${goPrint(b)}`);
  if (typeof a === 'object') throw new TemplateError('eq/ne compare only basic values');
  return a === b;
}

// ---------------------------------------------------------------------------------------------
// Execution

type Fn = (args: unknown[], ctx: ExecContext) => unknown;

interface ExecContext {
  readonly engine: TemplateEngine;
  readonly file: string;
  readonly line: number;
  readonly depth: number;
}

const FUNCS: Record<string, Fn> = {
  include: ([name, data], ctx) => {
    if (typeof name !== 'string') throw new TemplateError('include needs a template name');
    return ctx.engine.executeDefine(name, data, ctx.depth + 1);
  },
  toYaml: ([v]) => toYaml(v),
  indent: ([n, s]) => indent(Number(n), strval(s)),
  nindent: ([n, s]) => '\n' + indent(Number(n), strval(s)),
  default: (args) => {
    const [def, given] = args;
    return args.length < 2 || !truthy(given) ? def : given;
  },
  empty: ([v]) => !truthy(v),
  quote: (args) => args.filter((a) => a !== undefined && a !== null).map((a) => goQuote(strval(a))).join(' '),
  squote: (args) => args.filter((a) => a !== undefined && a !== null).map((a) => `'${strval(a)}'`).join(' '),
  trunc: ([n, s]) => {
    const str = strval(s);
    const c = Number(n);
    if (c < 0 && str.length + c > 0) return str.slice(str.length + c);
    return c >= 0 && str.length > c ? str.slice(0, c) : str;
  },
  trimSuffix: ([suffix, s]) => {
    const str = strval(s);
    const suf = strval(suffix);
    return suf !== '' && str.endsWith(suf) ? str.slice(0, -suf.length) : str;
  },
  trimPrefix: ([prefix, s]) => {
    const str = strval(s);
    const pre = strval(prefix);
    return str.startsWith(pre) ? str.slice(pre.length) : str;
  },
  trim: ([s]) => strval(s).trim(),
  lower: ([s]) => strval(s).toLowerCase(),
  upper: ([s]) => strval(s).toUpperCase(),
  toString: ([s]: unknown[]) => strval(s),
  printf: ([format, ...rest]) => printf(strval(format), rest),
  print: (args) => args.map(goPrint).join(''),
  contains: ([substr, s]) => strval(s).includes(strval(substr)),
  hasPrefix: ([prefix, s]) => strval(s).startsWith(strval(prefix)),
  replace: ([oldS, newS, src]) => strval(src).split(strval(oldS)).join(strval(newS)),
  eq: ([a, ...rest]) => rest.some((b) => goEqual(a, b)),
  ne: ([a, b]) => !goEqual(a, b),
  not: ([a]) => !truthy(a),
  required: ([msg, v]) => {
    if (v === undefined || v === null || v === '') throw new TemplateError(strval(msg));
    return v;
  },
  fail: ([msg]) => {
    throw new TemplateError(strval(msg));
  },
  index: ([collection, ...keys]) => {
    let cur = collection;
    for (const k of keys) {
      if (cur === undefined || cur === null) throw new TemplateError('index of untyped nil');
      if (Array.isArray(cur)) {
        if (typeof k !== 'number' || k < 0 || k >= cur.length) throw new TemplateError(`index out of range: ${goPrint(k)}`);
        cur = cur[k];
      } else if (isMap(cur)) cur = cur[strval(k)];
      else throw new TemplateError(`can't index item of type ${typeof cur}`);
    }
    return cur;
  },
  hasKey: ([m, k]) => isMap(m) && Object.prototype.hasOwnProperty.call(m, strval(k)),
  has: ([needle, list]) => Array.isArray(list) && list.some((x) => x === needle),
  list: (args) => [...args],
  dict: (args) => {
    const out: Record<string, unknown> = {};
    for (let i = 0; i + 1 < args.length; i += 2) out[strval(args[i])] = args[i + 1];
    return out;
  },
  len: ([v]) => {
    if (typeof v === 'string' || Array.isArray(v)) return v.length;
    if (isMap(v)) return Object.keys(v).length;
    throw new TemplateError(`len of ${goPrint(v)}`);
  },
};

/** Functions the chart may use; tests assert the chart uses nothing else. */
export const SUPPORTED_FUNCTIONS: readonly string[] = [...Object.keys(FUNCS), 'and', 'or'];

type Scope = Map<string, unknown>[];

/** A set of parsed templates sharing their `define`s, as one Helm chart's `templates/` are. */
export class TemplateEngine {
  readonly #defines = new Map<string, Node[]>();
  readonly #files = new Map<string, ParsedTemplate>();

  /** Parses a file; defines become visible to every file. */
  add(name: string, src: string): void {
    this.#files.set(name, parseTemplate(name, src, this.#defines));
  }

  /** Renders a file with `data` as dot and `$`. */
  render(name: string, data: unknown): string {
    const t = this.#files.get(name);
    if (!t) throw new TemplateError(`no template ${name}`);
    return this.#exec(t.nodes, data, [new Map([['$', data]])], name, 0);
  }

  /** Renders a `define`d template (what `include` and `template` do). */
  executeDefine(name: string, data: unknown, depth: number): string {
    const nodes = this.#defines.get(name);
    if (!nodes) throw new TemplateError(`template: no template ${JSON.stringify(name)} associated`);
    if (depth > 100) throw new TemplateError(`template ${name}: recursion too deep`);
    return this.#exec(nodes, data, [new Map([['$', data]])], name, depth);
  }

  #exec(nodes: readonly Node[], dot: unknown, scope: Scope, file: string, depth: number): string {
    let out = '';
    for (const node of nodes) {
      const ctx: ExecContext = { engine: this, file, line: 'line' in node ? node.line : 0, depth };
      try {
        switch (node.kind) {
          case 'text':
            out += node.text;
            break;
          case 'action': {
            const v = this.#pipeline(node.pipe, dot, scope, ctx);
            if (!node.pipe.decl) out += goPrint(v);
            break;
          }
          case 'if':
          case 'with': {
            const inner: Scope = [...scope, new Map()];
            const v = this.#pipeline(node.pipe, dot, inner, ctx);
            if (truthy(v)) out += this.#exec(node.then, node.kind === 'with' ? v : dot, inner, file, depth);
            else out += this.#exec(node.else, dot, [...scope, new Map()], file, depth);
            break;
          }
          case 'range': {
            const decl = node.pipe.decl;
            const v = this.#pipeline({ decl: undefined, cmds: node.pipe.cmds }, dot, scope, ctx);
            const entries: [unknown, unknown][] = Array.isArray(v)
              ? v.map((x, i) => [i, x])
              : isMap(v)
                ? Object.keys(v).sort().map((k) => [k, v[k]])
                : typeof v === 'number'
                  ? Array.from({ length: v }, (_x, i) => [i, i])
                  : v === undefined || v === null
                    ? []
                    : (() => {
                        throw new TemplateError(`range can't iterate over ${goPrint(v)}`);
                      })();
            if (entries.length === 0) {
              out += this.#exec(node.else, dot, [...scope, new Map()], file, depth);
              break;
            }
            for (const [k, x] of entries) {
              const frame = new Map<string, unknown>();
              if (decl?.names.length === 1) frame.set(decl.names[0]!, x);
              if (decl?.names.length === 2) {
                frame.set(decl.names[0]!, k);
                frame.set(decl.names[1]!, x);
              }
              out += this.#exec(node.body, x, [...scope, frame], file, depth);
            }
            break;
          }
          case 'template': {
            const data = node.pipe ? this.#pipeline(node.pipe, dot, scope, ctx) : NO_VALUE;
            out += this.executeDefine(node.name, data, depth + 1);
            break;
          }
        }
      } catch (e) {
        if (e instanceof TemplateError && !e.message.startsWith('template ')) {
          throw new TemplateError(`template ${file}:${ctx.line}: ${e.message}`, { cause: e });
        }
        throw e;
      }
    }
    return out;
  }

  #pipeline(pipe: Pipeline, dot: unknown, scope: Scope, ctx: ExecContext): unknown {
    let value: unknown = NO_VALUE;
    let piped = false;
    for (const cmd of pipe.cmds) {
      value = this.#command(cmd, dot, scope, ctx, piped ? [value] : []);
      piped = true;
    }
    if (pipe.decl) {
      const name = pipe.decl.names[0];
      if (name === undefined) throw new TemplateError('missing variable name');
      if (pipe.decl.assign) {
        const frame = [...scope].reverse().find((f) => f.has(name));
        if (!frame) throw new TemplateError(`undefined variable: ${name}`);
        frame.set(name, value);
      } else scope[scope.length - 1]!.set(name, value);
    }
    return value;
  }

  #command(cmd: Operand[], dot: unknown, scope: Scope, ctx: ExecContext, pipedArg: unknown[]): unknown {
    const [head, ...rest] = cmd;
    if (head === undefined) throw new TemplateError('empty command');
    if (head.kind !== 'ident') {
      if (rest.length > 0 || pipedArg.length > 0) throw new TemplateError(`can't give argument to non-function ${describe(head)}`);
      return this.#operand(head, dot, scope, ctx);
    }
    if (head.name === 'and' || head.name === 'or') {
      const args = [...rest.map((op) => () => this.#operand(op, dot, scope, ctx)), ...pipedArg.map((v) => () => v)];
      let last: unknown;
      for (const arg of args) {
        last = arg();
        if (head.name === 'and' ? !truthy(last) : truthy(last)) return last;
      }
      return last;
    }
    const fn = FUNCS[head.name];
    if (!fn) throw new TemplateError(`function ${JSON.stringify(head.name)} not defined (outside the supported subset)`);
    const args = [...rest.map((op) => this.#operand(op, dot, scope, ctx)), ...pipedArg];
    return fn(args, ctx);
  }

  #operand(op: Operand, dot: unknown, scope: Scope, ctx: ExecContext): unknown {
    switch (op.kind) {
      case 'literal':
        return op.value;
      case 'ident':
        if (op.name in FUNCS || op.name === 'and' || op.name === 'or') return this.#command([op], dot, scope, ctx, []);
        throw new TemplateError(`function ${JSON.stringify(op.name)} not defined`);
      case 'sub':
        return walk(this.#pipeline(op.pipe, dot, scope, ctx), op.path, '(...)');
      case 'field': {
        if (op.base === undefined) return walk(dot, op.path, '');
        const frame = [...scope].reverse().find((f) => f.has(op.base!));
        if (!frame) throw new TemplateError(`undefined variable: ${op.base}`);
        return walk(frame.get(op.base), op.path, op.base);
      }
    }
  }
}

function describe(op: Operand): string {
  switch (op.kind) {
    case 'field':
      return (op.base ?? '') + op.path.map((p) => '.' + p).join('');
    case 'literal':
      return goPrint(op.value);
    case 'ident':
      return op.name;
    case 'sub':
      return '(...)';
  }
}

/** `.a.b.c` on a value: a missing key is "no value"; a field of nil or of a non-map is an error. */
function walk(v: unknown, path: readonly string[], base: string): unknown {
  let cur = v;
  let at = base;
  for (const name of path) {
    if (cur === undefined || cur === null) throw new TemplateError(`nil pointer evaluating interface {}.${name} (at ${at || '.'})`);
    if (!isMap(cur)) throw new TemplateError(`can't evaluate field ${name} in type ${Array.isArray(cur) ? 'slice' : typeof cur} (at ${at || '.'})`);
    cur = cur[name];
    at += '.' + name;
  }
  return cur;
}

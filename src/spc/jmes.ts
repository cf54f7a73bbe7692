/**
 * @module spc/jmes
 * The one place that touches the `jmespath` package: compile at parse time (syntax errors become
 * `Invalid JMES Path: <path>.`) and search at derive time. Its error texts are never passed on,
 * since evaluation errors may quote the document (a secret).
 */
import jmespath from 'jmespath';

// @types/jmespath declares only `search`; the package also exports `compile` (jmespath.js 0.16).
const lib = jmespath as unknown as {
  compile(expression: string): unknown;
  search(data: unknown, expression: string): unknown;
};

/** True when the expression parses. */
export function compiles(expression: string): boolean {
  try {
    lib.compile(expression);
    return true;
  } catch {
    return false;
  }
}

/** Evaluates an expression; `{ ok: false }` on any error (message deliberately dropped). */
export function searchJson(data: unknown, expression: string): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: lib.search(data, expression) };
  } catch {
    return { ok: false };
  }
}

/** `my-key` / `a.my-key` unquoted: the usual cause of a JMESPath syntax error (README: quote it). */
export function looksLikeUnquotedHyphen(expression: string): boolean {
  return /^[A-Za-z_][\w-]*(\.[A-Za-z_][\w-]*)*$/.test(expression) && expression.includes('-');
}

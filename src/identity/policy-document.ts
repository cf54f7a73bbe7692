/**
 * @module identity/policy-document
 * Reading an IAM-style policy document (a role's trust policy, a KMS key policy), shared by the
 * evaluators `doctor` uses: its statements, a field that may be one string or a list, and IAM's
 * wildcard match. Pure.
 */

export type Json = Record<string, unknown>;

export function isMap(v: unknown): v is Json {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** A field that is one string or a list of them (Action, Principal.AWS, a condition's values). */
export function list(v: unknown): string[] {
  if (typeof v === 'string') return [v];
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
}

/** IAM's StringLike: `*` any run of characters, `?` one. */
export function like(pattern: string, value: string): boolean {
  const body = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${body}$`).test(value);
}

/** A document's `Statement`, one object or a list of them. */
export function statementsOf(policy: Json): unknown[] {
  const st = policy['Statement'];
  return Array.isArray(st) ? (st as unknown[]) : isMap(st) ? [st] : [];
}

/**
 * @module identity/key-policy
 * Would a KMS key's policy let a role decrypt? KMS asks the key policy first: a statement allowing
 * the role itself is enough in its own account; one allowing the account (`arn:…:iam::<acct>:root`
 * or the bare account id) hands the decision to the role's IAM policies, which IAM's policy
 * simulation judges; a matching Deny wins; no statement is a refusal, whatever IAM says. Conditions
 * are evaluated on what the call through Secrets Manager or SSM carries (kms:ViaService, the
 * encryption context, kms:CallerAccount, aws:PrincipalArn, aws:PrincipalAccount); other keys or
 * operators cannot be decided offline, and the answer says so. Grants are not read. Pure: no I/O.
 */

import { isMap, like, list, statementsOf } from './policy-document.js';

export interface KeyPolicyRequest {
  /** The role that decrypts (the pod's role): `arn:<partition>:iam::<acct>:role/<path/name>`. */
  roleArn: string;
  /** `kms:Decrypt`. */
  action: string;
  /** Condition keys the call carries, e.g. `kms:ViaService`, `kms:EncryptionContext:SecretARN`. */
  context: Readonly<Record<string, string>>;
}

export type KeyPolicyVerdict =
  /** A statement allows the role itself. */
  | { outcome: 'role' }
  /** A statement allows the account: the role's IAM policies decide. */
  | { outcome: 'account' }
  /** Allowed only if conditions that cannot be evaluated here hold. */
  | { outcome: 'undecided'; reason: string }
  | { outcome: 'denied'; reason: string };

type Held = true | false | { unknown: string };

/** A statement's Condition block on the call's keys (condition keys are case-insensitive). */
function conditionsHold(cond: unknown, values: ReadonlyMap<string, string>): Held {
  if (cond === undefined) return true;
  if (!isMap(cond)) return { unknown: 'a Condition that is not an object' };
  let unknown: string | undefined;
  for (const [rawOp, entries] of Object.entries(cond)) {
    const ifExists = rawOp.endsWith('IfExists');
    const op = rawOp.replace(/^For(Any|All)Value:/, '').replace(/IfExists$/, '');
    if (!isMap(entries)) return { unknown: `${rawOp} that is not an object` };
    for (const [key, want] of Object.entries(entries)) {
      const have = values.get(key.toLowerCase());
      if (have === undefined) {
        if (ifExists) continue;
        unknown ??= `${rawOp} on ${key}`;
        continue;
      }
      const patterns = list(want);
      let holds: boolean;
      if (op === 'StringEquals' || op === 'ArnEquals') holds = patterns.includes(have);
      else if (op === 'StringLike' || op === 'ArnLike') holds = patterns.some((p) => like(p, have));
      else if (op === 'StringEqualsIgnoreCase') holds = patterns.some((p) => p.toLowerCase() === have.toLowerCase());
      else if (op === 'StringNotEquals' || op === 'ArnNotEquals') holds = !patterns.includes(have);
      else if (op === 'StringNotLike' || op === 'ArnNotLike') holds = !patterns.some((p) => like(p, have));
      else {
        unknown ??= `${rawOp} on ${key}`;
        continue;
      }
      if (!holds) return false;
    }
  }
  return unknown === undefined ? true : { unknown };
}

export function evaluateKeyPolicy(policyText: string, req: KeyPolicyRequest): KeyPolicyVerdict {
  let policy: unknown;
  try {
    policy = JSON.parse(policyText);
  } catch {
    return { outcome: 'undecided', reason: 'the key policy is not JSON' };
  }
  if (!isMap(policy)) return { outcome: 'undecided', reason: 'the key policy is not a JSON object' };
  const statements = statementsOf(policy);
  const [, partition = 'aws', , , account = ''] = req.roleArn.split(':');
  const values = new Map<string, string>(
    Object.entries({
      ...req.context,
      'kms:CallerAccount': account,
      'aws:PrincipalArn': req.roleArn,
      'aws:PrincipalAccount': account,
    }).map(([k, v]) => [k.toLowerCase(), v]),
  );
  const action = req.action.toLowerCase();
  const root = `arn:${partition}:iam::${account}:root`;
  let verdict: 'role' | 'account' | undefined;
  let undecided: string | undefined;
  let denyUndecided: string | undefined;
  for (const [i, st] of statements.entries()) {
    if (!isMap(st)) continue;
    // "Everyone but" forms (a Deny to all but the key's admins is common): not judged here, and not skipped.
    const not = ['NotPrincipal', 'NotAction'].filter((k) => st[k] !== undefined);
    if (not.length > 0) {
      const said = `statement ${i} uses ${not.join(' and ')}, which doctor does not evaluate`;
      if (st['Effect'] === 'Deny') denyUndecided ??= said;
      else undecided ??= said;
      continue;
    }
    if (!list(st['Action']).some((a) => like(a.toLowerCase(), action))) continue;
    const p = st['Principal'];
    const principals = p === '*' ? ['*'] : isMap(p) ? list(p['AWS']) : [];
    const role = principals.includes(req.roleArn) || principals.includes('*');
    const viaAccount = principals.includes(root) || principals.includes(account);
    if (!role && !viaAccount) continue;
    const held = conditionsHold(st['Condition'], values);
    if (held === false) continue;
    const name = `statement ${i}${typeof st['Sid'] === 'string' ? ` (${st['Sid']})` : ''}`;
    const unsure = (verb: string, u: { unknown: string }): string =>
      `${name} ${verb} ${req.action} under a condition doctor cannot check (${u.unknown})`;
    if (st['Effect'] === 'Deny') {
      if (held === true) return { outcome: 'denied', reason: `${name} denies ${req.action}` };
      denyUndecided ??= unsure('denies', held);
      continue;
    }
    if (st['Effect'] !== 'Allow') continue;
    if (held !== true) {
      undecided ??= unsure('allows', held);
      continue;
    }
    if (role) verdict = 'role';
    else verdict ??= 'account';
  }
  if (denyUndecided !== undefined) return { outcome: 'undecided', reason: denyUndecided };
  if (verdict !== undefined) return { outcome: verdict };
  if (undecided !== undefined) return { outcome: 'undecided', reason: undecided };
  return {
    outcome: 'denied',
    reason: `no statement allows ${req.action} to ${req.roleArn} or to its account (${root})`,
  };
}

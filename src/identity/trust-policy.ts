/**
 * @module identity/trust-policy
 * Would a role's trust policy let a pod's IRSA token in? Evaluates what STS evaluates for
 * AssumeRoleWithWebIdentity: a statement allowing the action for the cluster's OIDC provider as the
 * Federated principal, whose `StringEquals` / `StringLike` (and `ForAnyValue:` forms) conditions on
 * `<issuer>:sub` and `<issuer>:aud` hold for `system:serviceaccount:NS:SA` and the audience; a
 * matching Deny wins. Conditions on other keys or with other operators cannot be decided offline:
 * the answer says so instead of guessing. For role chaining, the same for sts:AssumeRole by the
 * pod's role with the class's ExternalId. Pure: no I/O (for `doctor`).
 */

import { isMap, like, list, statementsOf } from './policy-document.js';

export interface WebIdentityRequest {
  /** `arn:aws:iam::<acct>:oidc-provider/<host/path>`. */
  providerArn: string;
  /** The issuer without `https://` (the condition keys' prefix). */
  issuerHost: string;
  /** `system:serviceaccount:NS:SA`. */
  subject: string;
  audience: string;
}

export type TrustVerdict =
  | { outcome: 'allowed' }
  /** Allowed if conditions that cannot be evaluated here hold. */
  | { outcome: 'undecided'; reason: string }
  | { outcome: 'denied'; reason: string };

function actionMatches(v: unknown): boolean {
  return list(v).some((a) => like(a.toLowerCase(), 'sts:assumerolewithwebidentity'));
}

function principalMatches(p: unknown, providerArn: string): boolean {
  if (p === '*') return true;
  if (!isMap(p)) return false;
  return list(p['Federated']).includes(providerArn) || list(p['AWS']).includes('*');
}

type ConditionResult = { ok: true } | { ok: false; why: string } | { ok: 'unknown'; why: string };

function conditionsHold(cond: unknown, req: WebIdentityRequest): ConditionResult {
  if (cond === undefined) return { ok: true };
  if (!isMap(cond)) return { ok: 'unknown', why: 'a Condition that is not an object' };
  const values: Record<string, string> = {
    [`${req.issuerHost}:sub`]: req.subject,
    [`${req.issuerHost}:aud`]: req.audience,
  };
  let unknown: string | undefined;
  for (const [rawOp, entries] of Object.entries(cond)) {
    const op = rawOp.replace(/^ForAnyValue:/, '').replace(/IfExists$/, '');
    if (!isMap(entries)) return { ok: 'unknown', why: `condition ${rawOp} is not an object` };
    for (const [key, want] of Object.entries(entries)) {
      const have = values[key];
      const patterns = list(want);
      if (have === undefined) {
        // Keys of another issuer name a different cluster: the statement is for someone else.
        if (/:(sub|aud)$/.test(key))
          return { ok: false, why: `its condition is on ${key}, another issuer than ${req.issuerHost}` };
        unknown ??= `condition ${rawOp} on ${key} cannot be checked offline`;
        continue;
      }
      let holds: boolean;
      if (op === 'StringEquals') holds = patterns.includes(have);
      else if (op === 'StringLike') holds = patterns.some((p) => like(p, have));
      else if (op === 'StringEqualsIgnoreCase') holds = patterns.some((p) => p.toLowerCase() === have.toLowerCase());
      else if (op === 'StringNotEquals') holds = !patterns.includes(have);
      else if (op === 'StringNotLike') holds = !patterns.some((p) => like(p, have));
      else {
        unknown ??= `condition operator ${rawOp} is not evaluated by doctor`;
        continue;
      }
      if (!holds) {
        const what = key.endsWith(':sub') ? 'service account' : 'audience';
        return {
          ok: false,
          why:
            `its ${rawOp} condition on ${key} allows ${patterns.map((p) => JSON.stringify(p)).join(', ')}, not ` +
            `the ${what} ${JSON.stringify(have)}`,
        };
      }
    }
  }
  return unknown === undefined ? { ok: true } : { ok: 'unknown', why: unknown };
}

export function evaluateWebIdentityTrust(policy: unknown, req: WebIdentityRequest): TrustVerdict {
  if (!isMap(policy)) return { outcome: 'denied', reason: 'the role has no trust policy document' };
  const statements = statementsOf(policy);
  const misses: string[] = [];
  let undecided: string | undefined;
  let allowed = false;
  for (const [i, st] of statements.entries()) {
    if (!isMap(st)) continue;
    if (!actionMatches(st['Action'])) continue;
    if (!principalMatches(st['Principal'], req.providerArn)) {
      const trusted = isMap(st['Principal']) ? (st['Principal']['Federated'] ?? st['Principal']) : st['Principal'];
      if (st['Effect'] === 'Allow')
        misses.push(`statement ${i} trusts ${JSON.stringify(trusted)}, not ${req.providerArn}`);
      continue;
    }
    const c = conditionsHold(st['Condition'], req);
    if (st['Effect'] === 'Deny') {
      if (c.ok === true) return { outcome: 'denied', reason: `statement ${i} denies it` };
      continue;
    }
    if (st['Effect'] !== 'Allow') continue;
    if (c.ok === true) allowed = true;
    else if (c.ok === 'unknown') undecided ??= `statement ${i}: ${c.why}`;
    else misses.push(`statement ${i}: ${c.why}`);
  }
  if (allowed) return { outcome: 'allowed' };
  if (undecided !== undefined) return { outcome: 'undecided', reason: undecided };
  if (misses.length === 0) return { outcome: 'denied', reason: 'no statement allows sts:AssumeRoleWithWebIdentity' };
  return { outcome: 'denied', reason: misses.join('; ') };
}

/** Role chaining: may `callerRoleArn`'s session sts:AssumeRole into the role, with this ExternalId? */
export function evaluateAssumeRoleTrust(
  policy: unknown,
  req: { callerRoleArn: string; externalId: string | undefined },
): TrustVerdict {
  if (!isMap(policy)) return { outcome: 'denied', reason: 'the role has no trust policy document' };
  const statements = statementsOf(policy);
  const account = req.callerRoleArn.split(':')[4] ?? '';
  const partition = req.callerRoleArn.split(':')[1] ?? 'aws';
  const misses: string[] = [];
  let undecided: string | undefined;
  let allowed = false;
  for (const [i, st] of statements.entries()) {
    if (!isMap(st) || st['Effect'] !== 'Allow') continue;
    if (!list(st['Action']).some((a) => like(a.toLowerCase(), 'sts:assumerole'))) continue;
    const p = st['Principal'];
    const principals = p === '*' ? ['*'] : isMap(p) ? list(p['AWS']) : [];
    const direct = principals.includes(req.callerRoleArn) || principals.includes('*');
    // The account as principal hands the decision to the caller's own policies (sts:AssumeRole on this role).
    const viaAccount = principals.includes(`arn:${partition}:iam::${account}:root`) || principals.includes(account);
    if (!direct && !viaAccount) {
      const trusted = principals.map((x) => JSON.stringify(x)).join(', ') || 'no AWS principal';
      misses.push(`statement ${i} trusts ${trusted}, not ${req.callerRoleArn}`);
      continue;
    }
    const cond = st['Condition'];
    let ok: boolean | 'unknown' = true;
    let why = '';
    if (cond !== undefined) {
      if (!isMap(cond)) {
        ok = 'unknown';
        why = 'a Condition that is not an object';
      } else {
        for (const [op, entries] of Object.entries(cond)) {
          if (!isMap(entries)) continue;
          for (const [key, want] of Object.entries(entries)) {
            if (key.toLowerCase() !== 'sts:externalid' || (op !== 'StringEquals' && op !== 'StringLike')) {
              if (ok === true) {
                ok = 'unknown';
                why = `condition ${op} on ${key} cannot be checked offline`;
              }
              continue;
            }
            const patterns = list(want);
            const holds =
              req.externalId !== undefined &&
              (op === 'StringEquals'
                ? patterns.includes(req.externalId)
                : patterns.some((x) => like(x, req.externalId!)));
            if (!holds) {
              ok = false;
              why =
                req.externalId === undefined
                  ? 'it requires an ExternalId and the class sets no assumeRoleExternalId'
                  : `its ExternalId condition does not match the class's assumeRoleExternalId`;
            }
          }
        }
      }
    }
    if (ok === false) misses.push(`statement ${i}: ${why}`);
    else if (ok === 'unknown') undecided ??= `statement ${i}: ${why}`;
    else if (!direct)
      undecided ??=
        `statement ${i} trusts the account: ${req.callerRoleArn} also needs sts:AssumeRole on this role ` +
        `in its own policies`;
    else allowed = true;
  }
  if (allowed) return { outcome: 'allowed' };
  if (undecided !== undefined) return { outcome: 'undecided', reason: undecided };
  if (misses.length === 0) return { outcome: 'denied', reason: 'no statement allows sts:AssumeRole' };
  return { outcome: 'denied', reason: misses.join('; ') };
}

/** EKS Pod Identity: the role trusts the service pods.eks.amazonaws.com for sts:AssumeRole and sts:TagSession. */
export function evaluatePodIdentityTrust(policy: unknown): TrustVerdict {
  if (!isMap(policy)) return { outcome: 'denied', reason: 'the role has no trust policy document' };
  const statements = statementsOf(policy);
  let assume = false;
  let tag = false;
  let conditioned: string | undefined;
  for (const [i, st] of statements.entries()) {
    if (!isMap(st) || st['Effect'] !== 'Allow') continue;
    const p = st['Principal'];
    if (!(isMap(p) && list(p['Service']).includes('pods.eks.amazonaws.com'))) continue;
    const actions = list(st['Action']).map((a) => a.toLowerCase());
    if (st['Condition'] !== undefined) conditioned ??= `statement ${i} has conditions that cannot be checked offline`;
    if (actions.some((a) => like(a, 'sts:assumerole'))) assume = true;
    if (actions.some((a) => like(a, 'sts:tagsession'))) tag = true;
  }
  if (!assume)
    return { outcome: 'denied', reason: 'no statement allows sts:AssumeRole for the service pods.eks.amazonaws.com' };
  // The agent passes session tags (cluster, namespace, service account): without TagSession STS refuses.
  if (!tag)
    return {
      outcome: 'denied',
      reason: 'sts:TagSession is not allowed for pods.eks.amazonaws.com (the agent tags every session)',
    };
  return conditioned === undefined ? { outcome: 'allowed' } : { outcome: 'undecided', reason: conditioned };
}

/**
 * @module identity/token-subject
 * The web identity an IRSA token presents to STS, read from its claims, so that the pods of one
 * service account share one credential exchange instead of one each.
 *
 * Why this is safe: STS decides AssumeRoleWithWebIdentity on the token's issuer, audience and
 * subject (`system:serviceaccount:NS:SA`) against the role's trust policy; IAM has no condition
 * key for the pod a Kubernetes token names, and the session name is ours (namespace and service
 * account). Two live tokens with the same issuer, subject, service-account uid and audiences get
 * credentials of the same session, with the same rights. The claims are not verified here, so they
 * are used only where they agree with what the kubelet said about the pod (its namespace and
 * service account, which a class or a pod's volume attributes cannot change): a token that claims
 * another service account, or cannot be read, or has expired, keeps a key of its own and goes to STS,
 * which refuses it. Pod Identity is not shared this way: its sessions carry per-pod tags.
 */
import { Buffer } from 'node:buffer';

/** Longer tokens are not read (the kubelet's are about 1 KiB). */
const MAX_TOKEN_CHARS = 16 * 1024;

/** The parts of a token's claims STS decides on, or undefined when they cannot be trusted to stand for the pod. */
export function tokenSubject(
  token: string,
  namespace: string,
  serviceAccount: string,
  nowMs: number,
): string[] | undefined {
  if (token.length > MAX_TOKEN_CHARS) return undefined;
  const first = token.indexOf('.');
  const second = first < 0 ? -1 : token.indexOf('.', first + 1);
  if (second < 0) return undefined;
  let claims: unknown;
  try {
    claims = JSON.parse(Buffer.from(token.slice(first + 1, second), 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof claims !== 'object' || claims === null) return undefined;
  const c = claims as Record<string, unknown>;
  if (c['sub'] !== `system:serviceaccount:${namespace}:${serviceAccount}`) return undefined;
  if (typeof c['iss'] !== 'string' || typeof c['exp'] !== 'number' || c['exp'] * 1000 <= nowMs) return undefined;
  const aud =
    typeof c['aud'] === 'string'
      ? [c['aud']]
      : Array.isArray(c['aud']) && c['aud'].every((a) => typeof a === 'string')
        ? [...c['aud']].sort()
        : undefined;
  if (aud === undefined) return undefined;
  const k8s = c['kubernetes.io'];
  const sa = typeof k8s === 'object' && k8s !== null ? (k8s as Record<string, unknown>)['serviceaccount'] : undefined;
  const uid = typeof sa === 'object' && sa !== null ? (sa as Record<string, unknown>)['uid'] : undefined;
  return [c['iss'], c['sub'], typeof uid === 'string' ? uid : '', aud.join('\n')];
}

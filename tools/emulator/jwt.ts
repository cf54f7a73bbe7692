/**
 * @module emulator/jwt
 * Kubernetes-style service-account tokens: HS256 JWTs signed with a key the emulator holds, and
 * their verification (signature, issuer, audience, expiry against an injectable clock).
 */
import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';

/** Claims of a projected service-account token, as the kubelet gets them from the API server. */
export interface TokenClaims {
  iss: string;
  sub: string;
  aud: string[];
  exp: number;
  iat: number;
  nbf: number;
  jti: string;
  'kubernetes.io': {
    namespace: string;
    serviceaccount: { name: string; uid: string };
    pod?: { name: string; uid: string };
  };
}

export interface IssueTokenInput {
  namespace: string;
  serviceAccount: string;
  audience: string;
  /** Lifetime; default 3600 s. Negative values make an already-expired token. */
  expiresInSeconds?: number;
  /** Default: the emulator's own issuer (the only one STS and the agent trust). */
  issuer?: string;
  /** Pod binding (the agent turns it into `kubernetes-pod-name` / `kubernetes-pod-uid` session tags). */
  podName?: string;
  podUid?: string;
}

export type VerifyFailure = 'malformed' | 'signature' | 'issuer' | 'audience' | 'expired';
export type VerifyResult =
  { ok: true; claims: TokenClaims } | { ok: false; reason: VerifyFailure; claims?: TokenClaims };

const b64url = (data: Buffer | string): string => Buffer.from(data).toString('base64url');

export function signJwt(claims: TokenClaims, key: Buffer): string {
  const head = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT', kid: 'emulator' }));
  const body = b64url(JSON.stringify(claims));
  const sig = createHmac('sha256', key).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${sig}`;
}

export function buildClaims(input: IssueTokenInput, issuer: string, nowMs: number): TokenClaims {
  const iat = Math.floor(nowMs / 1000);
  const claims: TokenClaims = {
    iss: input.issuer ?? issuer,
    sub: `system:serviceaccount:${input.namespace}:${input.serviceAccount}`,
    aud: [input.audience],
    exp: iat + (input.expiresInSeconds ?? 3600),
    iat,
    nbf: iat,
    jti: randomUUID(),
    'kubernetes.io': {
      namespace: input.namespace,
      serviceaccount: { name: input.serviceAccount, uid: uidFor(`sa/${input.namespace}/${input.serviceAccount}`) },
    },
  };
  if (input.podName !== undefined) {
    claims['kubernetes.io'].pod = {
      name: input.podName,
      uid: input.podUid ?? uidFor(`pod/${input.namespace}/${input.podName}`),
    };
  }
  return claims;
}

/** Decodes without verifying (for expirationTimestamp in driver attributes). */
export function decodeJwt(token: string): TokenClaims | undefined {
  const parts = token.split('.');
  if (parts.length !== 3 || parts[1] === undefined) return undefined;
  try {
    const claims = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8')) as unknown;
    return typeof claims === 'object' && claims !== null ? (claims as TokenClaims) : undefined;
  } catch {
    return undefined;
  }
}

export function verifyJwt(
  token: string,
  key: Buffer,
  want: { audience: string; issuers: ReadonlySet<string>; nowMs: number },
): VerifyResult {
  const parts = token.split('.');
  if (parts.length !== 3) return { ok: false, reason: 'malformed' };
  const [head, body, sig] = parts as [string, string, string];
  const claims = decodeJwt(token);
  if (claims === undefined || typeof claims.sub !== 'string' || typeof claims.exp !== 'number') {
    return { ok: false, reason: 'malformed' };
  }
  const expected = createHmac('sha256', key).update(`${head}.${body}`).digest();
  const given = Buffer.from(sig, 'base64url');
  if (given.length !== expected.length || !timingSafeEqual(given, expected))
    return { ok: false, reason: 'signature', claims };
  if (!want.issuers.has(claims.iss)) return { ok: false, reason: 'issuer', claims };
  const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
  if (!aud.includes(want.audience)) return { ok: false, reason: 'audience', claims };
  if (claims.exp * 1000 <= want.nowMs) return { ok: false, reason: 'expired', claims };
  return { ok: true, claims };
}

/** A stable UUID-shaped id derived from a name, so the same object keeps its uid. */
export function uidFor(name: string): string {
  const h = createHmac('sha256', 'uid').update(name).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

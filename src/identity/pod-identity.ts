/**
 * @module identity/pod-identity
 * EKS Pod Identity: GET the agent's credentials endpoint with `Authorization: <token>` (the raw
 * service-account token for audience pods.eks.amazonaws.com) and read
 * `{AccessKeyId, SecretAccessKey, Token, Expiration}` (CONTRACT.md §5).
 *
 * The agent is often not ready on a fresh node (Karpenter, Auto Mode), so connection failures,
 * timeouts and 5xx are retried with backoff inside the mount's deadline, each attempt bounded by
 * `--pod-identity-http-timeout`; every attempt tries the IPv4 address, then the IPv6 one (**better**:
 * ASCP's fallback never happens), or only the one `preferredAddressType` names.
 */
import { http, https } from '../node-http.js';
import { ProviderError } from '../errors.js';
import { scrub } from '../observability/logger.js';
import type { AddressPreference } from '../spc/types.js';
import type { CachedCredentials } from './credential-cache.js';

export const AGENT_IPV4 = 'http://169.254.170.23/v1/credentials';
export const AGENT_IPV6 = 'http://[fd00:ec2::23]/v1/credentials';

export interface PodIdentityOptions {
  /** --pod-identity-endpoint: used instead of both EKS addresses. */
  endpoint?: string | undefined;
  /** The two EKS addresses (tests put local listeners here to exercise the IPv4 → IPv6 fallback). */
  addresses?: { ipv4: string; ipv6: string } | undefined;
  /** --pod-identity-http-timeout (default 5 s per attempt). */
  timeoutMs?: number | undefined;
  /** Rounds over the addresses (default 6). */
  maxRounds?: number;
  /** Backoff before round n (ms): base · 2^n, capped. */
  backoffBaseMs?: number;
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

export function agentEndpoints(
  pref: AddressPreference,
  endpoint: string | undefined,
  addresses: { ipv4: string; ipv6: string } = { ipv4: AGENT_IPV4, ipv6: AGENT_IPV6 },
): string[] {
  if (endpoint) return [endpoint];
  if (pref === 'ipv4') return [addresses.ipv4];
  if (pref === 'ipv6') return [addresses.ipv6];
  return [addresses.ipv4, addresses.ipv6];
}

class AttemptError extends Error {
  constructor(
    message: string,
    readonly retryable: boolean,
    readonly status?: number,
  ) {
    super(message);
  }
}

function sleepAbortable(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason as Error);
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(t);
      reject(signal.reason as Error);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

function attempt(url: string, token: string, timeoutMs: number, signal: AbortSignal): Promise<CachedCredentials> {
  return new Promise((resolve, reject) => {
    if (/[\r\n]/.test(token)) return reject(new AttemptError('the token contains a newline', false));
    const u = new URL(url);
    const mod = u.protocol === 'https:' ? https : http;
    const req = mod.request(
      u,
      { method: 'GET', headers: { Authorization: token, Accept: 'application/json' }, signal, timeout: timeoutMs, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > 64 * 1024) req.destroy(new AttemptError('answer too large', false));
          else chunks.push(c);
        });
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          const text = Buffer.concat(chunks).toString('utf8');
          let body: Record<string, unknown> = {};
          try {
            body = JSON.parse(text) as Record<string, unknown>;
          } catch {
            body = {};
          }
          if (status >= 200 && status < 300) {
            const { AccessKeyId, SecretAccessKey, Token, Expiration } = body;
            if (typeof AccessKeyId !== 'string' || typeof SecretAccessKey !== 'string') {
              return reject(new AttemptError(`agent answered ${status} without credentials`, true, status));
            }
            const exp = typeof Expiration === 'string' ? Date.parse(Expiration) : NaN;
            return resolve({
              accessKeyId: AccessKeyId,
              secretAccessKey: SecretAccessKey,
              sessionToken: typeof Token === 'string' ? Token : undefined,
              expiration: Number.isFinite(exp) ? exp : undefined,
            });
          }
          const code = typeof body['code'] === 'string' ? body['code'] : `HTTP ${status}`;
          // The agent's words, without the token should it echo the Authorization header back.
          const raw = typeof body['message'] === 'string' ? body['message'] : text;
          const msg = scrub(raw.split(token).join('[REDACTED]')).slice(0, 300);
          reject(new AttemptError(`${scrub(code.split(token).join('[REDACTED]')).slice(0, 100)}: ${msg}`.trim(), status >= 500 || status === 429, status));
        });
        res.on('error', (e) => reject(new AttemptError(e.message, true)));
      },
    );
    req.on('timeout', () => req.destroy(new AttemptError(`no answer within ${timeoutMs} ms`, true)));
    req.on('error', (e: NodeJS.ErrnoException) => {
      if (e instanceof AttemptError) return reject(e);
      if (signal.aborted) return reject(new AttemptError('cancelled', false));
      reject(new AttemptError(e.code ? `${e.code} ${e.message}` : e.message, true));
    });
    req.end();
  });
}

/** Credentials from the agent, or a ProviderError naming each address's last failure. */
export async function podIdentityCredentials(
  o: { token: string; preference: AddressPreference; signal: AbortSignal },
  opts: PodIdentityOptions = {},
): Promise<CachedCredentials> {
  const endpoints = agentEndpoints(o.preference, opts.endpoint, opts.addresses);
  const timeoutMs = opts.timeoutMs ?? 5_000;
  const rounds = opts.maxRounds ?? 6;
  const base = opts.backoffBaseMs ?? 200;
  const sleep = opts.sleep ?? sleepAbortable;
  const last = new Map<string, string>();
  for (let round = 0; round < rounds; round++) {
    if (round > 0) {
      try {
        await sleep(Math.min(base * 2 ** (round - 1), 3_000), o.signal);
      } catch {
        break;
      }
    }
    for (const url of endpoints) {
      if (o.signal.aborted) break;
      try {
        return await attempt(url, o.token, timeoutMs, o.signal);
      } catch (err) {
        const e = err as AttemptError;
        last.set(url, e.message);
        // A cancelled or timed-out mount is not a refusal of the token: fall through to the final error.
        if (o.signal.aborted) break;
        if (!e.retryable) {
          const code = e.status === 401 || e.status === 400 ? 'UNAUTHENTICATED' : e.status === 403 || e.status === 404 ? 'PERMISSION_DENIED' : 'INTERNAL';
          throw new ProviderError(code, `Pod Identity agent ${url} refused the pod's token: ${e.message} (check the pod identity association for this service account)`, {
            reason: 'PodIdentityRefused',
          });
        }
      }
    }
    if (o.signal.aborted) break;
  }
  const detail = [...last].map(([u, m]) => `${u}: ${m}`).join('; ');
  throw new ProviderError(o.signal.aborted ? 'DEADLINE_EXCEEDED' : 'UNAVAILABLE', `failed to get credentials from the Pod Identity agent (${detail || 'no attempt made'}); is the eks-pod-identity-agent add-on running on this node?`, {
    reason: 'PodIdentityAgent',
  });
}

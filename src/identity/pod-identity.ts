/**
 * @module identity/pod-identity
 * EKS Pod Identity: GET the agent's credentials endpoint with `Authorization: <token>` (the raw
 * service-account token for audience pods.eks.amazonaws.com) and read
 * `{AccessKeyId, SecretAccessKey, Token, Expiration}` (docs/behaviour.md, "Identity").
 *
 * The agent is often not ready on a fresh node (Karpenter, Auto Mode), so connection failures,
 * timeouts and 5xx are retried with backoff inside the mount's deadline, each attempt bounded by
 * `--pod-identity-http-timeout`; every attempt tries the IPv4 address, then the IPv6 one (**better**:
 * ASCP's fallback never happens), or only the one `preferredAddressType` names.
 *
 * The timeout bounds the whole attempt, body included, as Go's http.Client.Timeout does for ASCP (a
 * body trickling in does not reset it); an answer over 64 KiB is cut off as it arrives; an answer
 * whose fields have the wrong type or form is refused before use; a body that is not JSON is
 * never quoted.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { http, https } from '../node-http.js';
import { ProviderError } from '../errors.js';
import { scrub } from '../observability/index.js';
import type { AddressPreference } from '../spc/index.js';
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

/** Most bytes of an agent answer: credentials are ~2 KiB. */
const MAX_ANSWER_BYTES = 64 * 1024;

class AttemptError extends Error {
  constructor(
    message: string,
    readonly retryable: boolean,
    readonly status?: number,
    /** The answer itself was wrong (too large, a field of the wrong type): not a refusal of the token. */
    readonly malformed = false,
  ) {
    super(message);
  }
}

/** Header-safe (credentials go into Authorization and X-Amz-Security-Token): printable ASCII, no spaces. */
const HEADER_SAFE = /^[\x21-\x7e]+$/;

/** One credential field of an agent answer, of the type and form it must have. */
function credentialField(
  body: Record<string, unknown>,
  name: string,
  max: number,
  required: boolean,
  status: number,
): string | undefined {
  const v = body[name];
  if (v === undefined || v === null || v === '') {
    if (required) throw new AttemptError(`agent answered ${status} without credentials`, true, status);
    return undefined;
  }
  const a = /^[AEIOU]/.test(name) ? 'an' : 'a';
  if (typeof v !== 'string')
    throw new AttemptError(`agent answered ${a} ${name} that is not a string`, false, status, true);
  if (v.length > max || !HEADER_SAFE.test(v))
    throw new AttemptError(
      `agent answered ${a} ${name} that is not ${max} or fewer printable characters`,
      false,
      status,
      true,
    );
  return v;
}

function credentialsOf(body: Record<string, unknown>, status: number): CachedCredentials {
  const accessKeyId = credentialField(body, 'AccessKeyId', 256, true, status) as string;
  const secretAccessKey = credentialField(body, 'SecretAccessKey', 256, true, status) as string;
  const sessionToken = credentialField(body, 'Token', 16 * 1024, false, status);
  const expiration = body['Expiration'];
  let exp: number | undefined;
  if (expiration !== undefined && expiration !== null) {
    exp = typeof expiration === 'string' ? Date.parse(expiration) : NaN;
    if (!Number.isFinite(exp))
      throw new AttemptError('agent answered an Expiration that is not a date', false, status, true);
  }
  return { accessKeyId, secretAccessKey, sessionToken, expiration: exp };
}

/** Node's own abortable timer, rejecting with the signal's reason (deadline or cancellation) as callers expect. */
function sleepAbortable(ms: number, signal: AbortSignal): Promise<void> {
  return sleep(ms, undefined, { signal }).catch(() => Promise.reject(signal.reason as Error));
}

function attempt(url: string, token: string, timeoutMs: number, signal: AbortSignal): Promise<CachedCredentials> {
  return new Promise((resolve, reject) => {
    if (/[\r\n]/.test(token)) return reject(new AttemptError('the token contains a newline', false));
    const u = new URL(url);
    const mod = u.protocol === 'https:' ? https : http;
    // The whole attempt, body included (the socket's own timeout only measures silence).
    let answering = false;
    const timer = setTimeout(
      () =>
        req.destroy(
          new AttemptError(
            answering
              ? `no complete answer within ${timeoutMs} ms (the answer was still arriving)`
              : `no answer within ${timeoutMs} ms`,
            true,
          ),
        ),
      timeoutMs,
    );
    timer.unref();
    const req = mod.request(
      u,
      {
        method: 'GET',
        headers: { Authorization: token, Accept: 'application/json' },
        signal,
        timeout: timeoutMs,
        agent: false,
      },
      (res) => {
        answering = true;
        const status = res.statusCode ?? 0;
        const tooLarge = (): AttemptError =>
          new AttemptError(
            `agent answered more than ${MAX_ANSWER_BYTES / 1024} KiB (HTTP ${status}); the rest was not read`,
            false,
            status,
            true,
          );
        if (Number(res.headers['content-length']) > MAX_ANSWER_BYTES) {
          req.destroy(tooLarge());
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_ANSWER_BYTES) req.destroy(tooLarge());
          else chunks.push(c);
        });
        res.on('end', () => {
          clearTimeout(timer);
          const text = Buffer.concat(chunks).toString('utf8');
          let body: Record<string, unknown> | undefined;
          try {
            const parsed: unknown = JSON.parse(text);
            if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed))
              body = parsed as Record<string, unknown>;
          } catch {
            body = undefined;
          }
          if (status >= 200 && status < 300) {
            try {
              return resolve(credentialsOf(body ?? {}, status));
            } catch (err) {
              return reject(err);
            }
          }
          // The agent's own words (JSON `code` and `message`), without the token should it echo
          // the Authorization header back; a body that is not the agent's JSON is never quoted.
          const clean = (t: string, max: number): string => scrub(t.split(token).join('[REDACTED]')).slice(0, max);
          const code = typeof body?.['code'] === 'string' ? clean(body['code'], 100) : `HTTP ${status}`;
          const msg =
            typeof body?.['message'] === 'string'
              ? clean(body['message'], 300)
              : body === undefined && text !== ''
                ? '(an answer that is not JSON; not shown)'
                : '';
          reject(new AttemptError(`${code}: ${msg}`.trim(), status >= 500 || status === 429, status));
        });
        res.on('error', (e) => reject(e instanceof AttemptError ? e : new AttemptError(e.message, true)));
      },
    );
    req.on('close', () => clearTimeout(timer));
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
        if (e.malformed) {
          throw new ProviderError(
            'INTERNAL',
            `Pod Identity agent ${url}: ${e.message}; not used (is something other than the eks-pod-identity-agent ` +
              `answering on its address?)`,
            {
              reason: 'PodIdentityMalformed',
            },
          );
        }
        if (!e.retryable) {
          const code =
            e.status === 401 || e.status === 400
              ? 'UNAUTHENTICATED'
              : e.status === 403 || e.status === 404
                ? 'PERMISSION_DENIED'
                : 'INTERNAL';
          throw new ProviderError(
            code,
            `Pod Identity agent ${url} refused the pod's token: ${e.message} (check the pod identity association ` +
              `for this service account)`,
            {
              reason: 'PodIdentityRefused',
            },
          );
        }
      }
    }
    if (o.signal.aborted) break;
  }
  const detail = [...last].map(([u, m]) => `${u}: ${m}`).join('; ');
  throw new ProviderError(
    o.signal.aborted ? 'DEADLINE_EXCEEDED' : 'UNAVAILABLE',
    `failed to get credentials from the Pod Identity agent (${detail || 'no attempt made'}); is the ` +
      `eks-pod-identity-agent add-on running on this node?`,
    {
      reason: 'PodIdentityAgent',
    },
  );
}

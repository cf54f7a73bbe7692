/**
 * @module identity
 * Who the pod is, as AWS credentials: IRSA (STS AssumeRoleWithWebIdentity with the pod's token and
 * its service account's role) or EKS Pod Identity (the node's agent), optionally chained into another
 * role (sts:AssumeRole, our extension), all through one credential cache.
 */
import type { AddressPreference, AssumeRoleSpec } from '../spc/index.js';
import { CredentialCache, credentialKey, type CachedCredentials } from './credential-cache.js';
import { podIdentityCredentials, type PodIdentityOptions } from './pod-identity.js';
import { sessionName } from './session-name.js';
import { tokenSubject } from './token-subject.js';
import { assumeRole, assumeRoleWithWebIdentity, type StsClientSource } from './sts.js';

export { CredentialCache, credentialKey, type CachedCredentials } from './credential-cache.js';
export { sessionName } from './session-name.js';
export {
  agentEndpoints,
  podIdentityCredentials,
  AGENT_IPV4,
  AGENT_IPV6,
  type PodIdentityOptions,
} from './pod-identity.js';
export { assumeRole, assumeRoleWithWebIdentity, type StsClientSource } from './sts.js';
export { operatorCredentials } from './operator.js';

export interface IdentityRequest {
  method: 'irsa' | 'pod-identity';
  /** The service-account token for the method's audience. */
  token: string;
  /** IRSA: the service account's `eks.amazonaws.com/role-arn`. */
  roleArn?: string | undefined;
  namespace: string;
  serviceAccount: string;
  preference: AddressPreference;
  assumeRole?: AssumeRoleSpec | undefined;
}

/** Told of every exchange (metrics): the method, its outcome, the region, its duration and the AWS error name. */
export type ExchangeObserver = (
  method: 'irsa' | 'pod-identity' | 'assume-role',
  outcome: 'success' | 'error',
  region: string,
  seconds: number,
  code: string,
) => void;

export interface IdentityOptions {
  sts: StsClientSource;
  podIdentity?: PodIdentityOptions;
  cache?: CredentialCache;
  observe?: ExchangeObserver;
  /** Clock for token expiry (tests). */
  now?: () => number;
}

export class IdentityResolver {
  readonly cache: CredentialCache;
  private readonly sts: StsClientSource;
  private readonly pod: PodIdentityOptions;
  private readonly observe: ExchangeObserver;
  private readonly now: () => number;

  constructor(o: IdentityOptions) {
    this.sts = o.sts;
    this.pod = o.podIdentity ?? {};
    this.cache = o.cache ?? new CredentialCache();
    this.observe = o.observe ?? (() => {});
    this.now = o.now ?? Date.now;
  }

  /**
   * Everything that decides who the credentials are for. IRSA: the role and the web identity STS
   * decides on (token-subject.ts), so the pods of one service account share one exchange; the
   * token itself when its claims do not stand for the pod's service account. Pod Identity: the
   * token (its sessions are tagged with the pod), in any region.
   */
  private baseKey(req: IdentityRequest, region: string): string {
    if (req.method === 'pod-identity')
      return credentialKey(['pod-identity', this.pod.endpoint, req.preference, req.token]);
    const subject = tokenSubject(req.token, req.namespace, req.serviceAccount, this.now());
    return subject === undefined
      ? credentialKey(['irsa', region, req.roleArn, 'token', req.token])
      : credentialKey(['irsa', region, req.roleArn, 'subject', ...subject]);
  }

  private chainKey(req: IdentityRequest, region: string): string | undefined {
    const a = req.assumeRole;
    if (!a) return undefined;
    return credentialKey(['chain', this.baseKey(req, region), region, a.roleArn, a.externalId, a.durationSeconds]);
  }

  private async exchange<T>(
    method: 'irsa' | 'pod-identity' | 'assume-role',
    region: string,
    fn: () => Promise<T>,
  ): Promise<T> {
    const t0 = performance.now();
    try {
      const v = await fn();
      this.observe(method, 'success', region, (performance.now() - t0) / 1000, 'OK');
      return v;
    } catch (err) {
      const e = err as { awsName?: unknown; reason?: unknown };
      const code = typeof e.awsName === 'string' ? e.awsName : typeof e.reason === 'string' ? e.reason : 'Error';
      this.observe(method, 'error', region, (performance.now() - t0) / 1000, code);
      throw err;
    }
  }

  private base(req: IdentityRequest, region: string, signal: AbortSignal): Promise<CachedCredentials> {
    const session = sessionName(req.namespace, req.serviceAccount);
    return this.cache.get(this.baseKey(req, region), () =>
      req.method === 'irsa'
        ? this.exchange('irsa', region, () =>
            assumeRoleWithWebIdentity(this.sts, {
              region,
              roleArn: req.roleArn ?? '',
              token: req.token,
              sessionName: session,
              signal,
            }),
          )
        : this.exchange('pod-identity', region, () =>
            podIdentityCredentials({ token: req.token, preference: req.preference, signal }, this.pod),
          ),
    );
  }

  /** Who the request is, as a cache key (the role chain included): for caches that must never cross identities. */
  identityKey(req: IdentityRequest, region: string): string {
    return this.chainKey(req, region) ?? this.baseKey(req, region);
  }

  /**
   * The role the request acts as (not the token): IRSA's role ARN, or the Pod Identity association's
   * service account, plus the chain. For what is decided per role (e.g. whether the role may call
   * BatchGetSecretValue), so a refusal is learned once per role, not once per pod.
   */
  roleKey(req: IdentityRequest, region: string): string {
    const who = req.method === 'irsa' ? ['irsa', req.roleArn] : ['pod-identity', req.namespace, req.serviceAccount];
    const a = req.assumeRole;
    return credentialKey(['role', region, ...who, a?.roleArn, a?.externalId]);
  }

  /** Credentials for this pod in this region, from the cache when still fresh. */
  async credentials(req: IdentityRequest, region: string, signal: AbortSignal): Promise<CachedCredentials> {
    const chain = this.chainKey(req, region);
    const a = req.assumeRole;
    if (!chain || !a) return this.base(req, region, signal);
    return this.cache.get(chain, async () => {
      const first = await this.base(req, region, signal);
      return this.exchange('assume-role', region, () =>
        assumeRole(this.sts, {
          region,
          creds: first,
          roleArn: a.roleArn,
          externalId: a.externalId,
          durationSeconds: a.durationSeconds,
          sessionName: sessionName(req.namespace, req.serviceAccount),
          signal,
        }),
      );
    });
  }

  /** Drops credentials AWS refused, so the next mount exchanges again. */
  forget(req: IdentityRequest, region: string): void {
    this.cache.forget(this.baseKey(req, region));
    const chain = this.chainKey(req, region);
    if (chain) this.cache.forget(chain);
  }
}
export {
  evaluateAssumeRoleTrust,
  evaluatePodIdentityTrust,
  evaluateWebIdentityTrust,
  type TrustVerdict,
  type WebIdentityRequest,
} from './trust-policy.js';
export { evaluateKeyPolicy, type KeyPolicyRequest, type KeyPolicyVerdict } from './key-policy.js';

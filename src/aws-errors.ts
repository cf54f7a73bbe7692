/**
 * @module aws-errors (a leaf: aws/ and identity/ both classify SDK errors with it)
 * AWS SDK errors → ProviderError, with the fatal/non-fatal split that decides failover
 * (CONTRACT.md §6, ascp-behaviour.md §9). Classified by error *name*, as ASCP does: AWS sends
 * throttling as HTTP 400, and the JS SDK marks unmodelled errors `$fault: "client"` too, so neither
 * the status nor `$fault` can tell a refusal that another region might not repeat from one it would.
 */
import { ProviderError, type StatusName } from './errors.js';
import { scrub } from './observability/logger.js';

/** Modelled client errors per service: the mount fails at once, the failover region is not asked. */
const FATAL = new Set([
  // Secrets Manager GetSecretValue / DescribeSecret / BatchGetSecretValue
  'ResourceNotFoundException',
  'InvalidParameterException',
  'InvalidRequestException',
  'DecryptionFailure',
  // SSM GetParameters (+ our synthesized InvalidParameters)
  'InvalidKeyId',
  'InvalidParameters',
  'ParameterNotFound',
  'ParameterVersionNotFound',
  // STS
  'InvalidIdentityToken',
  'InvalidIdentityTokenException',
  'ExpiredTokenException',
  'ExpiredToken',
  'IDPRejectedClaim',
  'IDPRejectedClaimException',
  'IDPCommunicationError',
  'MalformedPolicyDocument',
  'PackedPolicyTooLarge',
  'RegionDisabledException',
]);

interface StatusRule {
  code: StatusName;
  reason: string;
  hint?: string;
}

function ruleFor(name: string, httpStatus: number | undefined): StatusRule {
  switch (name) {
    case 'ResourceNotFoundException':
    case 'ParameterNotFound':
    case 'ParameterVersionNotFound':
    case 'InvalidParameters':
      return { code: 'NOT_FOUND', reason: 'NotFound', hint: 'check the name, the region and the version or label' };
    case 'AccessDeniedException':
    case 'AccessDenied':
      return { code: 'PERMISSION_DENIED', reason: 'AccessDenied', hint: "grant the action named above to the pod's role" };
    case 'DecryptionFailure':
    case 'InvalidKeyId':
    case 'KMSAccessDeniedException':
      return { code: 'PERMISSION_DENIED', reason: 'KMS', hint: "allow kms:Decrypt on the secret's KMS key for the pod's role" };
    case 'InvalidRequestException':
      return { code: 'FAILED_PRECONDITION', reason: 'InvalidRequest' };
    case 'InvalidParameterException':
    case 'ValidationException':
    case 'ValidationError':
      return { code: 'INVALID_ARGUMENT', reason: 'InvalidParameter' };
    case 'InvalidIdentityToken':
    case 'InvalidIdentityTokenException':
    case 'IDPRejectedClaim':
    case 'IDPRejectedClaimException':
      return { code: 'UNAUTHENTICATED', reason: 'InvalidIdentityToken', hint: "check the cluster's OIDC provider in IAM and the token audience" };
    case 'ExpiredTokenException':
    case 'ExpiredToken':
    case 'UnrecognizedClientException':
    case 'InvalidClientTokenId':
    case 'InvalidSignatureException':
    case 'SignatureDoesNotMatch':
      return { code: 'UNAUTHENTICATED', reason: 'BadCredentials' };
    case 'ThrottlingException':
    case 'Throttling':
    case 'TooManyRequestsException':
    case 'RequestLimitExceeded':
    case 'ThrottledException':
      return { code: 'UNAVAILABLE', reason: 'Throttling', hint: 'AWS kept throttling after retries; consider a longer rotation poll interval' };
    case 'RegionDisabledException':
      return { code: 'FAILED_PRECONDITION', reason: 'RegionDisabled', hint: 'activate STS in this region for the account' };
    case 'TimeoutError':
    case 'AbortError':
      return { code: 'UNAVAILABLE', reason: 'Timeout' };
    default:
      if (httpStatus !== undefined && httpStatus >= 500) return { code: 'UNAVAILABLE', reason: 'ServerError' };
      return { code: httpStatus === undefined ? 'UNAVAILABLE' : 'INTERNAL', reason: httpStatus === undefined ? 'Network' : name || 'Unknown' };
  }
}

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNABORTED']);

export interface AwsErrorContext {
  /** "Failed fetching secret db/creds", "Failed fetching parameters" … */
  what: string;
  region: string;
  object?: string | undefined;
  /** Replaces the generic hint for refusals (AccessDenied): e.g. the trust policy for STS. */
  accessDeniedHint?: string | undefined;
  /** Request values AWS might echo back that must not reach a message (an external id, a token). */
  redact?: readonly (string | undefined)[] | undefined;
}

/** A classified AWS failure: the ProviderError the user sees, and whether failover may answer it. */
export class AwsCallError extends ProviderError {
  readonly fatal: boolean;
  readonly awsName: string;

  constructor(code: StatusName, message: string, fatal: boolean, awsName: string, fields: { region: string; object?: string | undefined; reason: string; cause?: unknown }) {
    super(code, message, fields);
    this.name = 'AwsCallError';
    this.fatal = fatal;
    this.awsName = awsName;
  }
}

interface SdkErrorShape {
  name?: unknown;
  message?: unknown;
  code?: unknown;
  $metadata?: { httpStatusCode?: number };
}

/** Turns whatever the SDK threw into an AwsCallError naming the region, the object and the real cause. */
export function classifyAwsError(err: unknown, ctx: AwsErrorContext): AwsCallError {
  if (err instanceof AwsCallError) return err;
  const e = (err ?? {}) as SdkErrorShape;
  const sysCode = typeof e.code === 'string' ? e.code : '';
  let name = typeof e.name === 'string' ? e.name : 'Error';
  const status = e.$metadata?.httpStatusCode;
  if (NETWORK_CODES.has(sysCode)) name = sysCode;
  const rule = NETWORK_CODES.has(sysCode) ? { code: 'UNAVAILABLE' as const, reason: 'Network' } : ruleFor(name, status);
  const raw = typeof e.message === 'string' && e.message !== '' ? e.message : name;
  // Redact first, then cut: a token cut in half would escape the mask.
  let clean = scrub(raw);
  for (const r of ctx.redact ?? []) if (r) clean = clean.split(r).join('[REDACTED]');
  const detail = clean.length > 500 ? clean.slice(0, 500) + '…' : clean;
  const hintText = rule.reason === 'AccessDenied' && ctx.accessDeniedHint ? ctx.accessDeniedHint : 'hint' in rule ? rule.hint : undefined;
  const hint = hintText ? ` (${hintText})` : '';
  const message = `${ctx.region}: ${ctx.what}: ${name}: ${detail}${hint}`;
  return new AwsCallError(rule.code, message, FATAL.has(name), name, {
    region: ctx.region,
    object: ctx.object,
    reason: rule.reason,
    cause: err,
  });
}

/**
 * @module aws-errors (a leaf: aws/ and identity/ both classify SDK errors with it)
 * AWS SDK errors → ProviderError, with the fatal/non-fatal split that decides failover
 * (docs/behaviour.md, "Failover"). Classified by error *name*, as ASCP does: AWS sends
 * throttling as HTTP 400, and the JS SDK marks unmodelled errors `$fault: "client"` too, so neither
 * the status nor `$fault` can tell a refusal that another region might not repeat from one it would.
 */
import { describeBytes } from './bytes.js';
import { ProviderError, type StatusName } from './errors.js';
import { scrub } from './observability/index.js';

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
      return {
        code: 'PERMISSION_DENIED',
        reason: 'AccessDenied',
        hint: "grant the action named above to the pod's role",
      };
    case 'DecryptionFailure':
    case 'InvalidKeyId':
    case 'KMSAccessDeniedException':
      return {
        code: 'PERMISSION_DENIED',
        reason: 'KMS',
        hint: "allow kms:Decrypt on the secret's KMS key for the pod's role",
      };
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
      return {
        code: 'UNAUTHENTICATED',
        reason: 'InvalidIdentityToken',
        hint: "check the cluster's OIDC provider in IAM and the token audience",
      };
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
      return {
        code: 'UNAVAILABLE',
        reason: 'Throttling',
        hint: 'AWS kept throttling after retries; consider a longer rotation poll interval',
      };
    case 'RegionDisabledException':
      return {
        code: 'FAILED_PRECONDITION',
        reason: 'RegionDisabled',
        hint: 'activate STS in this region for the account',
      };
    case 'TimeoutError':
    case 'AbortError':
      return { code: 'UNAVAILABLE', reason: 'Timeout' };
    default:
      if (httpStatus !== undefined && httpStatus >= 500) return { code: 'UNAVAILABLE', reason: 'ServerError' };
      return {
        code: httpStatus === undefined ? 'UNAVAILABLE' : 'INTERNAL',
        reason: httpStatus === undefined ? 'Network' : name || 'Unknown',
      };
  }
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ECONNABORTED',
]);

export interface AwsErrorContext {
  /** "Failed fetching secret db/creds", "Failed fetching parameters" … */
  what: string;
  region: string;
  object?: string | undefined;
  /** The service and operation as a person names them ("Secrets Manager", "GetSecretValue"): said when the answer
   * itself was wrong. */
  service?: string | undefined;
  operation?: string | undefined;
  /** Replaces the generic hint for refusals (AccessDenied): e.g. the trust policy for STS. */
  accessDeniedHint?: string | undefined;
  /** Request values AWS might echo back that must not reach a message (an external id, a token). */
  redact?: readonly (string | undefined)[] | undefined;
}

/** A classified AWS failure: the ProviderError the user sees, and whether failover may answer it. */
export class AwsCallError extends ProviderError {
  readonly fatal: boolean;
  readonly awsName: string;

  constructor(
    code: StatusName,
    message: string,
    fatal: boolean,
    awsName: string,
    fields: { region: string; object?: string | undefined; reason: string; cause?: unknown },
  ) {
    super(code, message, fields);
    this.name = 'AwsCallError';
    this.fatal = fatal;
    this.awsName = awsName;
  }
}

/**
 * An AWS answer larger than the provider reads, found while reading it (the socket is closed at
 * once, nothing more is buffered). Thrown by aws/'s request handler; its message never quotes the
 * body. `scope` says which limit: this answer's own, or the provider's for all answers being read
 * at once (many large answers together, as a flooding proxy sends them).
 */
export class AnswerTooLarge extends Error {
  constructor(
    readonly limit: number,
    readonly status: number | undefined,
    readonly scope: 'answer' | 'provider' = 'answer',
  ) {
    super(
      scope === 'answer'
        ? `the answer is larger than ${limit} bytes`
        : `the answers being read at once hold more than ${limit} bytes`,
    );
    this.name = 'AnswerTooLarge';
  }
}

/**
 * An attempt that did not bring its whole answer (headers and body) within its time limit: a body
 * trickling in resets no timer. Named `TimeoutError` so the SDK retries it as it retries its own
 * timeouts; carries no cause (the SDK's retry looks into causes).
 */
export class AttemptTimedOut extends Error {
  constructor(
    readonly ms: number,
    readonly phase: 'headers' | 'body',
  ) {
    super(`no complete answer within ${ms} ms (${phase === 'body' ? 'the body was still arriving' : 'no answer yet'})`);
    this.name = 'TimeoutError';
  }
}

/** A wrong answer: a field of the wrong type, a missing one. Built by aws/ and identity/ after the SDK call. */
export function malformedAnswer(ctx: AwsErrorContext, problem: string): AwsCallError {
  return new AwsCallError(
    'INTERNAL',
    `${ctx.region}: ${ctx.what}: ${serviceName(ctx)} answered ${problem} (an AWS answer never does: an endpoint or ` +
      `proxy in between?)`,
    false,
    'MalformedAnswer',
    {
      region: ctx.region,
      object: ctx.object,
      reason: 'MalformedAnswer',
    },
  );
}

function serviceName(ctx: AwsErrorContext): string {
  if (ctx.service === undefined) return 'AWS';
  return ctx.operation === undefined ? ctx.service : `${ctx.service} ${ctx.operation}`;
}

/**
 * True for what the SDK throws when it could not read an answer (not JSON, not XML, a field it
 * could not convert): the deserializer's own message quotes the body (`Unexpected token 'h',
 * "hunter2…"`), which may be secret text, so such an error is never shown. An error AWS sent in its
 * own shape carries `$fault` and is not one of these.
 */
function isUnreadableAnswer(e: object): boolean {
  if ('$fault' in e) return false;
  const msg = (e as { message?: unknown }).message;
  return (
    Object.prototype.hasOwnProperty.call(e, '$response') ||
    '$responseBodyText' in e ||
    (typeof msg === 'string' && msg.includes('Deserialization error'))
  );
}

/** Failures of the answer itself (too large, too slow, unreadable), or undefined. Their text never comes from the body.
 * */
function answerFailure(err: unknown, ctx: AwsErrorContext, status: number | undefined): AwsCallError | undefined {
  const fields = { region: ctx.region, object: ctx.object };
  const who = serviceName(ctx);
  if (err instanceof AnswerTooLarge && err.scope === 'provider') {
    return new AwsCallError(
      'UNAVAILABLE',
      `${ctx.region}: ${ctx.what}: ${who}'s answer was not read further: the AWS answers this provider was reading ` +
        `at once held more than ${describeBytes(err.limit)}, far more than AWS sends ` +
        '(an endpoint or proxy in between?)',
      false,
      'AnswerTooLarge',
      { ...fields, reason: 'AnswersTooLarge' },
    );
  }
  if (err instanceof AnswerTooLarge) {
    return new AwsCallError(
      'INTERNAL',
      `${ctx.region}: ${ctx.what}: ${who} answered more than ${describeBytes(err.limit)}, ` +
        'more than any AWS answer (an endpoint or proxy in between?); the rest was not read',
      false,
      'AnswerTooLarge',
      {
        ...fields,
        reason: 'AnswerTooLarge',
      },
    );
  }
  if (err instanceof AttemptTimedOut) {
    const why = err.phase === 'body' ? 'the answer was still arriving' : 'no answer';
    return new AwsCallError(
      'UNAVAILABLE',
      `${ctx.region}: ${ctx.what}: ${who} did not answer completely within ${err.ms / 1000} s (${why} when the ` +
        `attempt's time was up)`,
      false,
      'TimeoutError',
      {
        ...fields,
        reason: 'Timeout',
      },
    );
  }
  if (err === null || typeof err !== 'object' || !isUnreadableAnswer(err)) return undefined;
  const e = err as SdkErrorShape;
  const name = typeof e.name === 'string' ? e.name : '';
  const sysCode = typeof e.code === 'string' ? e.code : '';
  // A connection cut or a cancellation while the body was read is not a malformed answer.
  if (NETWORK_CODES.has(sysCode) || name === 'AbortError' || name === 'TimeoutError') return undefined;
  const at = status === undefined ? '' : ` (HTTP ${status})`;
  const server = status !== undefined && status >= 500;
  return new AwsCallError(
    server ? 'UNAVAILABLE' : 'INTERNAL',
    `${ctx.region}: ${ctx.what}: ${who} answered${at} something that is not a readable AWS answer (an endpoint or ` +
      `proxy in between?); its text is not shown`,
    false,
    'MalformedAnswer',
    { ...fields, reason: server ? 'ServerError' : 'MalformedAnswer' },
  );
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
  const status = e.$metadata?.httpStatusCode;
  // No cause kept: the SDK's error holds the whole body ($response, $responseBodyText).
  const bad = answerFailure(err, ctx, status);
  if (bad) return bad;
  const sysCode = typeof e.code === 'string' ? e.code : '';
  let name = typeof e.name === 'string' ? e.name : 'Error';
  if (NETWORK_CODES.has(sysCode)) name = sysCode;
  const rule = NETWORK_CODES.has(sysCode) ? { code: 'UNAVAILABLE' as const, reason: 'Network' } : ruleFor(name, status);
  const raw = typeof e.message === 'string' && e.message !== '' ? e.message : name;
  // Redact first, then cut: a token cut in half would escape the mask.
  let clean = scrub(raw);
  for (const r of ctx.redact ?? []) if (r) clean = clean.split(r).join('[REDACTED]');
  const detail = clean.length > 500 ? clean.slice(0, 500) + '…' : clean;
  const hintText =
    rule.reason === 'AccessDenied' && ctx.accessDeniedHint
      ? ctx.accessDeniedHint
      : 'hint' in rule
        ? rule.hint
        : undefined;
  const hint = hintText ? ` (${hintText})` : '';
  const message = `${ctx.region}: ${ctx.what}: ${name}: ${detail}${hint}`;
  return new AwsCallError(rule.code, message, FATAL.has(name), name, {
    region: ctx.region,
    object: ctx.object,
    reason: rule.reason,
    cause: err,
  });
}

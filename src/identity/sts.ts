/**
 * @module identity/sts
 * The two STS exchanges: AssumeRoleWithWebIdentity (IRSA, unsigned, with the pod's token) and
 * AssumeRole (our role-chaining extension, signed with the first credentials). Regional endpoint of
 * the mount's region, as ASCP; AWS_ENDPOINT_URL(_STS) redirects it (the SDK reads it). The
 * credentials STS answers are checked before use: strings that can go into a request header, an
 * expiration that is a date.
 */
import type { STSClient } from '@aws-sdk/client-sts';
import { classifyAwsError, malformedAnswer, type AwsErrorContext } from '../aws-errors.js';
import type { CachedCredentials } from './credential-cache.js';

/** Where STS clients come from (aws/ AwsClientFactory satisfies it; main wires it in). */
export interface StsClientSource {
  sts(region: string, creds?: CachedCredentials): Promise<Pick<STSClient, 'send'>>;
}

let sdk: typeof import('@aws-sdk/client-sts') | undefined;

/** A credential part as it travels in a header (Authorization, X-Amz-Security-Token): printable ASCII, no spaces,
 * bounded. */
const HEADER_SAFE = /^[\x21-\x7e]+$/;

/** Most characters of a key id or secret key (AWS's are 16–128 and 40), and of a session token (AWS's are a few KiB).
 * */
const MAX_KEY = 256;
const MAX_SESSION_TOKEN = 16 * 1024;

function credential(
  v: unknown,
  name: string,
  max: number,
  ctx: AwsErrorContext,
  required: boolean,
): string | undefined {
  if (v === undefined || v === null || v === '') {
    if (required) throw malformedAnswer(ctx, `credentials without ${name}`);
    return undefined;
  }
  if (typeof v !== 'string') throw malformedAnswer(ctx, `${name} that is not a string`);
  if (v.length > max || !HEADER_SAFE.test(v))
    throw malformedAnswer(ctx, `${name} that is not ${max} or fewer printable characters`);
  return v;
}

/** The credentials of an answer, each part of the type and form it must have (the SDK does not check). */
function toCredentials(out: unknown, ctx: AwsErrorContext): CachedCredentials {
  const c = out !== null && typeof out === 'object' ? (out as { Credentials?: unknown }).Credentials : undefined;
  if (c === undefined || c === null || typeof c !== 'object') throw malformedAnswer(ctx, 'without credentials');
  const { AccessKeyId, SecretAccessKey, SessionToken, Expiration } = c as Record<string, unknown>;
  const accessKeyId = credential(AccessKeyId, 'an AccessKeyId', MAX_KEY, ctx, true) as string;
  const secretAccessKey = credential(SecretAccessKey, 'a SecretAccessKey', MAX_KEY, ctx, true) as string;
  const sessionToken = credential(SessionToken, 'a SessionToken', MAX_SESSION_TOKEN, ctx, false);
  if (Expiration !== undefined && !(Expiration instanceof Date && Number.isFinite(Expiration.getTime())))
    throw malformedAnswer(ctx, 'an Expiration that is not a date');
  return { accessKeyId, secretAccessKey, sessionToken, expiration: Expiration?.getTime() };
}

export async function assumeRoleWithWebIdentity(
  source: StsClientSource,
  o: { region: string; roleArn: string; token: string; sessionName: string; signal: AbortSignal },
): Promise<CachedCredentials> {
  sdk ??= await import('@aws-sdk/client-sts');
  const client = await source.sts(o.region);
  const ctx: AwsErrorContext = {
    what: `sts:AssumeRoleWithWebIdentity into ${o.roleArn} failed`,
    region: o.region,
    service: 'STS',
    operation: 'AssumeRoleWithWebIdentity',
    accessDeniedHint:
      `the role's trust policy must allow this service account (sub ` +
      `system:serviceaccount:<namespace>:<name>) through the cluster's OIDC provider`,
    redact: [o.token],
  };
  let out: unknown;
  try {
    out = await client.send(
      new sdk.AssumeRoleWithWebIdentityCommand({
        RoleArn: o.roleArn,
        RoleSessionName: o.sessionName,
        WebIdentityToken: o.token,
      }),
      { abortSignal: o.signal },
    );
  } catch (err) {
    throw classifyAwsError(err, ctx);
  }
  return toCredentials(out, ctx);
}

export async function assumeRole(
  source: StsClientSource,
  o: {
    region: string;
    creds: CachedCredentials;
    roleArn: string;
    externalId?: string | undefined;
    durationSeconds?: number | undefined;
    sessionName: string;
    signal: AbortSignal;
  },
): Promise<CachedCredentials> {
  sdk ??= await import('@aws-sdk/client-sts');
  const client = await source.sts(o.region, o.creds);
  const ctx: AwsErrorContext = {
    what: `sts:AssumeRole into ${o.roleArn} failed`,
    region: o.region,
    service: 'STS',
    operation: 'AssumeRole',
    accessDeniedHint:
      `the trust policy of ${o.roleArn} must allow the pod's role to assume it (and the external id ` + `must match)`,
    redact: [o.externalId, o.creds.sessionToken, o.creds.secretAccessKey],
  };
  let out: unknown;
  try {
    out = await client.send(
      new sdk.AssumeRoleCommand({
        RoleArn: o.roleArn,
        RoleSessionName: o.sessionName,
        ...(o.externalId ? { ExternalId: o.externalId } : {}),
        ...(o.durationSeconds ? { DurationSeconds: o.durationSeconds } : {}),
      }),
      { abortSignal: o.signal },
    );
  } catch (err) {
    throw classifyAwsError(err, ctx);
  }
  return toCredentials(out, ctx);
}

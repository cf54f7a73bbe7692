/**
 * @module identity/sts
 * The two STS exchanges: AssumeRoleWithWebIdentity (IRSA, unsigned, with the pod's token) and
 * AssumeRole (our role-chaining extension, signed with the first credentials). Regional endpoint of
 * the mount's region, as ASCP; AWS_ENDPOINT_URL(_STS) redirects it (the SDK reads it).
 */
import type { STSClient } from '@aws-sdk/client-sts';
import { classifyAwsError } from '../aws-errors.js';
import type { CachedCredentials } from './credential-cache.js';

/** Where STS clients come from (aws/ AwsClientFactory satisfies it; main wires it in). */
export interface StsClientSource {
  sts(region: string, creds?: CachedCredentials): Promise<Pick<STSClient, 'send'>>;
}

let sdk: typeof import('@aws-sdk/client-sts') | undefined;

function toCredentials(c: { AccessKeyId?: string | undefined; SecretAccessKey?: string | undefined; SessionToken?: string | undefined; Expiration?: Date | undefined } | undefined): CachedCredentials {
  if (!c?.AccessKeyId || !c.SecretAccessKey) throw new Error('STS answered without credentials');
  return { accessKeyId: c.AccessKeyId, secretAccessKey: c.SecretAccessKey, sessionToken: c.SessionToken, expiration: c.Expiration?.getTime() };
}

export async function assumeRoleWithWebIdentity(
  source: StsClientSource,
  o: { region: string; roleArn: string; token: string; sessionName: string; signal: AbortSignal },
): Promise<CachedCredentials> {
  sdk ??= await import('@aws-sdk/client-sts');
  const client = await source.sts(o.region);
  try {
    const out = await client.send(
      new sdk.AssumeRoleWithWebIdentityCommand({ RoleArn: o.roleArn, RoleSessionName: o.sessionName, WebIdentityToken: o.token }),
      { abortSignal: o.signal },
    );
    return toCredentials(out.Credentials);
  } catch (err) {
    throw classifyAwsError(err, {
      what: `sts:AssumeRoleWithWebIdentity into ${o.roleArn} failed`,
      region: o.region,
      accessDeniedHint: `the role's trust policy must allow this service account (sub system:serviceaccount:<namespace>:<name>) through the cluster's OIDC provider`,
      redact: [o.token],
    });
  }
}

export async function assumeRole(
  source: StsClientSource,
  o: { region: string; creds: CachedCredentials; roleArn: string; externalId?: string | undefined; durationSeconds?: number | undefined; sessionName: string; signal: AbortSignal },
): Promise<CachedCredentials> {
  sdk ??= await import('@aws-sdk/client-sts');
  const client = await source.sts(o.region, o.creds);
  try {
    const out = await client.send(
      new sdk.AssumeRoleCommand({
        RoleArn: o.roleArn,
        RoleSessionName: o.sessionName,
        ...(o.externalId ? { ExternalId: o.externalId } : {}),
        ...(o.durationSeconds ? { DurationSeconds: o.durationSeconds } : {}),
      }),
      { abortSignal: o.signal },
    );
    return toCredentials(out.Credentials);
  } catch (err) {
    throw classifyAwsError(err, {
      what: `sts:AssumeRole into ${o.roleArn} failed`,
      region: o.region,
      accessDeniedHint: `the trust policy of ${o.roleArn} must allow the pod's role to assume it (and the external id must match)`,
      redact: [o.externalId, o.creds.sessionToken, o.creds.secretAccessKey],
    });
  }
}

/**
 * @module aws/secrets-manager
 * One Secrets Manager object in one region: GetSecretValue with the region's name, VersionId and
 * VersionStage (the failover region reads `failoverObject`'s, CONTRACT.md §4). The file holds
 * SecretString bytes, or SecretBinary bytes as they are; the version is the VersionId (§6).
 */
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { SecretDescriptor } from '../spc/types.js';
import type { Sender } from './clients.js';
import { classifyAwsError } from '../aws-errors.js';

export interface FetchedValue {
  value: Uint8Array;
  version: string;
}

/** Name, version and label to ask for in this region. */
export function selectorFor(d: SecretDescriptor, failover: boolean): { name: string; version: string; label: string } {
  const f = failover ? d.failoverObject : undefined;
  if (f && f.objectName !== '') {
    return { name: f.objectName, version: f.objectVersion || d.objectVersion, label: f.objectVersionLabel || d.objectVersionLabel };
  }
  // ascp-behaviour.md §8: a failover label without a failover name is still used.
  if (failover && d.failoverObject && d.failoverObject.objectVersionLabel !== '') {
    return { name: d.objectName, version: d.objectVersion, label: d.failoverObject.objectVersionLabel };
  }
  return { name: d.objectName, version: d.objectVersion, label: d.objectVersionLabel };
}

let commands: typeof import('@aws-sdk/client-secrets-manager') | undefined;

export async function getSecretValue(
  client: Sender<SecretsManagerClient>,
  d: SecretDescriptor,
  region: string,
  failover: boolean,
  signal: AbortSignal,
): Promise<FetchedValue> {
  commands ??= await import('@aws-sdk/client-secrets-manager');
  const sel = selectorFor(d, failover);
  try {
    const out = await client.send(
      new commands.GetSecretValueCommand({
        SecretId: sel.name,
        ...(sel.version ? { VersionId: sel.version } : {}),
        ...(sel.label ? { VersionStage: sel.label } : {}),
      }),
      { abortSignal: signal },
    );
    let value: Uint8Array;
    if (out.SecretString !== undefined) value = Buffer.from(out.SecretString, 'utf8');
    else if (out.SecretBinary !== undefined) value = out.SecretBinary;
    else value = new Uint8Array(0);
    return { value, version: out.VersionId ?? '' };
  } catch (err) {
    throw classifyAwsError(err, { what: `Failed fetching secret ${d.objectName}`, region, object: d.objectName });
  }
}

/** BatchGetSecretValue takes at most 20 ids. */
export const SM_BATCH = 20;

/** True when this object can be read by BatchGetSecretValue (it returns AWSCURRENT only). */
export function batchable(d: SecretDescriptor): boolean {
  return d.objectVersion === '' && d.objectVersionLabel === '';
}

/** The batch call itself was refused (not allowed for this role): remember, and read one by one. */
export class BatchRefused extends Error {
  readonly awsName = 'AccessDeniedException';
}

/**
 * One BatchGetSecretValue for up to 20 distinct secret ids (AWSCURRENT). Resolves with the value of
 * every id it answered; ids it did not answer (an error for that secret, or an id it cannot be
 * matched to) are left out, so the caller reads them one by one and reports the exact error.
 * Rejects with BatchRefused when the role may not call it, or the classified error otherwise.
 */
export async function batchGetSecretValues(client: Sender<SecretsManagerClient>, ids: readonly string[], region: string, signal: AbortSignal): Promise<Map<string, FetchedValue>> {
  commands ??= await import('@aws-sdk/client-secrets-manager');
  let out: import('@aws-sdk/client-secrets-manager').BatchGetSecretValueCommandOutput;
  try {
    out = await client.send(new commands.BatchGetSecretValueCommand({ SecretIdList: [...ids] }), { abortSignal: signal });
  } catch (err) {
    const e = classifyAwsError(err, { what: 'BatchGetSecretValue failed', region });
    if (e.reason === 'AccessDenied') throw new BatchRefused(e.message);
    throw e;
  }
  const result = new Map<string, FetchedValue>();
  const failed = new Set((out.Errors ?? []).map((e) => e.SecretId));
  for (const id of ids) {
    if (failed.has(id)) continue;
    const v = (out.SecretValues ?? []).find(
      (s) => s.Name === id || s.ARN === id || (id.startsWith('arn:') && s.ARN !== undefined && s.ARN.startsWith(id + '-') && s.ARN.length === id.length + 7),
    );
    if (!v) continue;
    const value = v.SecretString !== undefined ? Buffer.from(v.SecretString, 'utf8') : (v.SecretBinary ?? new Uint8Array(0));
    result.set(id, { value, version: v.VersionId ?? '' });
  }
  return result;
}

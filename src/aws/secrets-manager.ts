/**
 * @module aws/secrets-manager
 * One Secrets Manager object in one region: GetSecretValue with the region's name, VersionId and
 * VersionStage (the failover region reads `failoverObject`'s, CONTRACT.md §4). The file holds
 * SecretString bytes, or SecretBinary bytes as they are; the version is the VersionId (§6).
 */
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { SecretDescriptor } from '../spc/types.js';
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
  client: SecretsManagerClient,
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

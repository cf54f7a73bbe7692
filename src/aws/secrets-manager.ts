/**
 * @module aws/secrets-manager
 * One Secrets Manager object in one region: GetSecretValue with the region's name, VersionId and
 * VersionStage (the failover region reads `failoverObject`'s). The file holds SecretString bytes,
 * or SecretBinary bytes as they are; the version is the VersionId (docs/behaviour.md, "Fetching").
 * Every answer's fields are type-checked before use: the SDK passes a JSON field of the wrong type
 * through as it came (a number as VersionId would reach the driver's answer after files were written).
 */
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { SecretDescriptor } from '../spc/index.js';
import type { Sender } from './clients.js';
import { classifyAwsError, malformedAnswer, type AwsErrorContext } from '../aws-errors.js';

export interface FetchedValue {
  value: Uint8Array;
  version: string;
}

/** Name, version and label to ask for in this region. */
export function selectorFor(d: SecretDescriptor, failover: boolean): { name: string; version: string; label: string } {
  const f = failover ? d.failoverObject : undefined;
  if (f && f.objectName !== '') {
    return {
      name: f.objectName,
      version: f.objectVersion || d.objectVersion,
      label: f.objectVersionLabel || d.objectVersionLabel,
    };
  }
  // An ASCP quirk kept (docs/behaviour.md, "Objects"): a failover label without a failover name is still used.
  if (failover && d.failoverObject && d.failoverObject.objectVersionLabel !== '') {
    return { name: d.objectName, version: d.objectVersion, label: d.failoverObject.objectVersionLabel };
  }
  return { name: d.objectName, version: d.objectVersion, label: d.objectVersionLabel };
}

let commands: typeof import('@aws-sdk/client-secrets-manager') | undefined;

/** A VersionId as the driver gets it: AWS's are UUIDs (at most 64 characters); anything past 256, or with control
 * characters, is not one. */
// eslint-disable-next-line no-control-regex -- control characters are what it refuses
const VERSION_ID = /^[^\x00-\x1f\x7f]{1,256}$/;

/** The fields of one secret value as the SDK handed them over, types unchecked. */
interface RawValue {
  VersionId?: unknown;
  SecretString?: unknown;
  SecretBinary?: unknown;
}

/** Value and version of one answer, each field of the type it must have, or a malformed-answer error naming object and
 * region. */
function checkedValue(v: RawValue, ctx: AwsErrorContext): FetchedValue {
  if (v.VersionId === undefined || v.VersionId === null || v.VersionId === '')
    throw malformedAnswer(ctx, 'without a VersionId');
  if (typeof v.VersionId !== 'string') throw malformedAnswer(ctx, 'a VersionId that is not a string');
  if (!VERSION_ID.test(v.VersionId))
    throw malformedAnswer(ctx, 'a VersionId longer than 256 characters or with control characters');
  const version = v.VersionId;
  if (v.SecretString !== undefined && v.SecretString !== null) {
    if (typeof v.SecretString !== 'string') throw malformedAnswer(ctx, 'a SecretString that is not a string');
    return { value: Buffer.from(v.SecretString, 'utf8'), version };
  }
  if (v.SecretBinary !== undefined && v.SecretBinary !== null) {
    if (!(v.SecretBinary instanceof Uint8Array)) throw malformedAnswer(ctx, 'a SecretBinary that is not binary');
    return { value: v.SecretBinary, version };
  }
  throw malformedAnswer(ctx, 'neither a SecretString nor a SecretBinary');
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

export async function getSecretValue(
  client: Sender<SecretsManagerClient>,
  d: SecretDescriptor,
  region: string,
  failover: boolean,
  signal: AbortSignal,
): Promise<FetchedValue> {
  commands ??= await import('@aws-sdk/client-secrets-manager');
  const sel = selectorFor(d, failover);
  const ctx: AwsErrorContext = {
    what: `Failed fetching secret ${d.objectName}`,
    region,
    object: d.objectName,
    service: 'Secrets Manager',
    operation: 'GetSecretValue',
  };
  let out: unknown;
  try {
    out = await client.send(
      new commands.GetSecretValueCommand({
        SecretId: sel.name,
        ...(sel.version ? { VersionId: sel.version } : {}),
        ...(sel.label ? { VersionStage: sel.label } : {}),
      }),
      { abortSignal: signal },
    );
  } catch (err) {
    throw classifyAwsError(err, ctx);
  }
  if (!isRecord(out)) throw malformedAnswer(ctx, 'something that is not an object');
  return checkedValue(out, ctx);
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
export async function batchGetSecretValues(
  client: Sender<SecretsManagerClient>,
  ids: readonly string[],
  region: string,
  signal: AbortSignal,
): Promise<Map<string, FetchedValue>> {
  commands ??= await import('@aws-sdk/client-secrets-manager');
  const ctx: AwsErrorContext = {
    what: 'BatchGetSecretValue failed',
    region,
    service: 'Secrets Manager',
    operation: 'BatchGetSecretValue',
  };
  let out: unknown;
  try {
    out = await client.send(new commands.BatchGetSecretValueCommand({ SecretIdList: [...ids] }), {
      abortSignal: signal,
    });
  } catch (err) {
    const e = classifyAwsError(err, ctx);
    if (e.reason === 'AccessDenied') throw new BatchRefused(e.message);
    throw e;
  }
  // Any wrong type fails the whole batch: the caller then reads each secret on its own, and a
  // secret whose own answer is wrong is reported with its name.
  if (!isRecord(out)) throw malformedAnswer(ctx, 'something that is not an object');
  const values = out['SecretValues'] ?? [];
  const errors = out['Errors'] ?? [];
  if (!Array.isArray(values) || !values.every(isRecord))
    throw malformedAnswer(ctx, 'SecretValues that are not a list of objects');
  if (!Array.isArray(errors) || !errors.every(isRecord))
    throw malformedAnswer(ctx, 'Errors that are not a list of objects');
  const result = new Map<string, FetchedValue>();
  const failed = new Set(errors.map((e) => e['SecretId']).filter((x): x is string => typeof x === 'string'));
  for (const id of ids) {
    if (failed.has(id)) continue;
    const v = values.find((s) => {
      const arn = s['ARN'];
      return (
        s['Name'] === id ||
        arn === id ||
        (id.startsWith('arn:') && typeof arn === 'string' && arn.startsWith(id + '-') && arn.length === id.length + 7)
      );
    });
    if (!v) continue;
    result.set(id, checkedValue(v, { ...ctx, what: `Failed fetching secret ${id}`, object: id }));
  }
  return result;
}

/**
 * @module aws/describe
 * Does an object exist in a region, asked without reading its value: Secrets Manager DescribeSecret,
 * SSM DescribeParameters with a name filter (GetParameter would return the value). For `doctor`.
 */
import { classifyAwsError, type AwsCallError } from '../aws-errors.js';
import type { ObjectType } from '../spc/index.js';
import type { AwsClientFactory } from './clients.js';
import type { AwsCredentials } from './call-context.js';

/**
 * `kmsKeyId`: the KMS key as DescribeSecret names a secret's (absent: the AWS managed key), or as
 * DescribeParameters names a SecureString parameter's (`alias/aws/ssm` for the AWS managed key).
 */
export type Existence =
  | { found: true; arn: string; kmsKeyId?: string | undefined }
  | { found: false }
  | { found: 'unknown'; error: AwsCallError };

/** SSM names an ARN's parameter `parameter/<name>`, without the leading `/` of a name that has one. */
function ssmNames(objectName: string): string[] {
  const m = /^arn:[^:]+:ssm:[^:]*:[^:]*:parameter\/(.*)$/.exec(objectName);
  if (m === null) return [objectName];
  const rest = m[1] ?? '';
  return rest.includes('/') ? [`/${rest}`, rest] : [rest, `/${rest}`];
}

export async function objectExists(
  clients: AwsClientFactory,
  region: string,
  creds: AwsCredentials,
  object: { objectName: string; objectType: ObjectType },
  signal: AbortSignal,
): Promise<Existence> {
  const ctx = { what: `Describing ${object.objectName}`, region, object: object.objectName };
  if (object.objectType === 'secretsmanager') {
    const { DescribeSecretCommand } = await import('@aws-sdk/client-secrets-manager');
    const client = await clients.secretsManager(region, creds);
    try {
      const out = await client.send(new DescribeSecretCommand({ SecretId: object.objectName }), {
        abortSignal: signal,
      });
      return { found: true, arn: out.ARN ?? '', kmsKeyId: out.KmsKeyId };
    } catch (err) {
      const e = classifyAwsError(err, { ...ctx, service: 'Secrets Manager', operation: 'DescribeSecret' });
      return e.awsName === 'ResourceNotFoundException' ? { found: false } : { found: 'unknown', error: e };
    }
  }
  const { DescribeParametersCommand } = await import('@aws-sdk/client-ssm');
  const client = await clients.ssm(region, creds);
  try {
    const out = await client.send(
      new DescribeParametersCommand({
        ParameterFilters: [{ Key: 'Name', Option: 'Equals', Values: ssmNames(object.objectName) }],
      }),
      { abortSignal: signal },
    );
    const p = out.Parameters?.[0];
    if (p === undefined) return { found: false };
    return { found: true, arn: p.ARN ?? '', kmsKeyId: p.Type === 'SecureString' ? p.KeyId : undefined };
  } catch (err) {
    return {
      found: 'unknown',
      error: classifyAwsError(err, { ...ctx, service: 'SSM', operation: 'DescribeParameters' }),
    };
  }
}

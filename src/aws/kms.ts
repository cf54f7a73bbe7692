/**
 * @module aws/kms
 * The KMS key an object's KmsKeyId names (DescribeKey: a key ID, a key ARN, an alias or an alias
 * ARN → the key's ARN, who manages it, its state), through the SDK's KMS client, built by the
 * client factory and loaded on first use: only `doctor` imports this module. AWS_ENDPOINT_URL_KMS,
 * else AWS_ENDPOINT_URL, points it elsewhere, by the SDK's own environment handling.
 */
import type { KMSClient } from '@aws-sdk/client-kms';
import type { AwsClientFactory, Sender } from './clients.js';
import type { AwsCredentials } from './call-context.js';
import { doctorCall } from './doctor-call.js';

async function kms(clients: AwsClientFactory, region: string, creds: AwsCredentials): Promise<Sender<KMSClient>> {
  return clients.sdkClient('kms', region, creds, async (config) => {
    const { KMSClient } = await import('@aws-sdk/client-kms');
    return new KMSClient(config);
  });
}

export interface KeyFacts {
  /** The key's ARN (`arn:aws:kms:<region>:<account>:key/<id>`), what a policy's Resource names. */
  arn: string;
  /** `AWS` for an AWS managed key (`alias/aws/secretsmanager`, `alias/aws/ssm`), else `CUSTOMER`. */
  manager: string;
  /** `Enabled`, `Disabled`, `PendingDeletion`…: only an enabled key decrypts. */
  state: string;
}

/** DescribeKey in `region`, where a key ID or alias name is looked up. Throws DoctorCallError (`NotFoundException`). */
export async function describeKey(
  clients: AwsClientFactory,
  region: string,
  keyId: string,
  creds: AwsCredentials,
  signal: AbortSignal,
): Promise<KeyFacts> {
  const { DescribeKeyCommand } = await import('@aws-sdk/client-kms');
  const client = await kms(clients, region, creds);
  const out = await doctorCall('KMS', 'DescribeKey', region, () =>
    client.send(new DescribeKeyCommand({ KeyId: keyId }), { abortSignal: signal }),
  );
  const m = out.KeyMetadata;
  return { arn: m?.Arn ?? '', manager: m?.KeyManager ?? '', state: m?.KeyState ?? '' };
}

/** The key's policy document (GetKeyPolicy, policy name `default`, the only one a key has), as JSON text. */
export async function getKeyPolicy(
  clients: AwsClientFactory,
  keyArn: string,
  creds: AwsCredentials,
  signal: AbortSignal,
): Promise<string> {
  const { GetKeyPolicyCommand } = await import('@aws-sdk/client-kms');
  const region = keyArn.split(':')[3] ?? '';
  const client = await kms(clients, region, creds);
  const out = await doctorCall('KMS', 'GetKeyPolicy', region, () =>
    client.send(new GetKeyPolicyCommand({ KeyId: keyArn, PolicyName: 'default' }), { abortSignal: signal }),
  );
  return out.Policy ?? '';
}

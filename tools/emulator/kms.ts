/**
 * @module emulator/kms
 * The KMS read `doctor` makes (AWS JSON 1.1, `X-Amz-Target: TrentService.<Op>`, SigV4 scope `kms`):
 * DescribeKey, which resolves a key ID, key ARN, alias name or alias ARN to the key's metadata, as
 * KMS does. Reading a secret or parameter under a customer managed key needs kms:Decrypt on it
 * (`RoleAllow.kms`): `canDecrypt`, which the Secrets Manager and SSM handlers apply.
 */
import { assumedRoleArn, EmulatorError, matchesAny, type KmsKey, type Session, type State } from './state.js';

export const KMS_OPERATIONS = ['DescribeKey'] as const;

export function kmsNames(body: Record<string, unknown>): string[] {
  return typeof body['KeyId'] === 'string' ? [body['KeyId']] : [];
}

/**
 * May the session's role decrypt with the key `keyId` names (a secret's or parameter's KmsKeyId)?
 * An AWS managed key: yes (its key policy lets the account use it through the service). Also the
 * key itself (undefined when `keyId` names no key the emulator knows: then only a rule naming
 * `keyId` as it is allows it).
 */
export function canDecrypt(
  state: State,
  session: Session,
  region: string,
  keyId: string,
): { allowed: boolean; key: KmsKey | undefined } {
  const key = state.findKmsKey(region, keyId);
  if (key?.manager === 'AWS') return { allowed: true, key };
  const names = key === undefined ? [keyId] : [key.arn, keyId];
  return { allowed: matchesAny(state.roles.get(session.roleArn)?.allow.kms, names), key };
}

export function handleKms(
  state: State,
  region: string,
  session: Session,
  op: string,
  body: Record<string, unknown>,
): Record<string, unknown> {
  switch (op) {
    case 'DescribeKey': {
      const keyId = body['KeyId'];
      if (typeof keyId !== 'string' || keyId === '')
        throw new EmulatorError(
          'ValidationException',
          "1 validation error detected: Value null at 'keyId' failed to satisfy constraint: Member must not be null",
        );
      const key = state.findKmsKey(region, keyId);
      if (state.roles.get(session.roleArn)?.allow.kmsRead !== true) {
        throw new EmulatorError(
          'AccessDeniedException',
          `User: ${assumedRoleArn(session, state.accountId)} is not authorized to perform: kms:DescribeKey ` +
            `on resource: ${key?.arn ?? keyId} because no identity-based policy allows the kms:DescribeKey action`,
        );
      }
      if (key === undefined) throw new EmulatorError('NotFoundException', `Key '${keyId}' does not exist`);
      const id = key.arn.slice(key.arn.indexOf(':key/') + ':key/'.length);
      return {
        KeyMetadata: {
          AWSAccountId: state.accountId,
          KeyId: id,
          Arn: key.arn,
          CreationDate: 1767225600,
          Enabled: key.state === 'Enabled',
          Description:
            key.manager === 'AWS' ? `Default key that protects my ${key.aliases[0]?.slice(10) ?? ''} data` : '',
          KeyUsage: 'ENCRYPT_DECRYPT',
          KeyState: key.state,
          Origin: 'AWS_KMS',
          KeyManager: key.manager,
          CustomerMasterKeySpec: 'SYMMETRIC_DEFAULT',
          KeySpec: 'SYMMETRIC_DEFAULT',
          EncryptionAlgorithms: ['SYMMETRIC_DEFAULT'],
          MultiRegion: false,
        },
      };
    }
    default:
      throw new EmulatorError('UnsupportedOperationException', `The emulator does not implement TrentService.${op}.`);
  }
}

/**
 * @module emulator/kms
 * The KMS reads `doctor` makes (AWS JSON 1.1, `X-Amz-Target: TrentService.<Op>`, SigV4 scope `kms`):
 * DescribeKey, which resolves a key ID, key ARN, alias name or alias ARN to the key's metadata, as
 * KMS does, and GetKeyPolicy. Reading a secret or parameter under a customer managed key needs
 * kms:Decrypt on it, by its key policy and then the role's rules (`RoleAllow.kms`): `canDecrypt`,
 * which the Secrets Manager and SSM handlers apply.
 */
import { assumedRoleArn, EmulatorError, matchesAny, type KmsKey, type Session, type State } from './state.js';

export const KMS_OPERATIONS = ['DescribeKey', 'GetKeyPolicy'] as const;

export function kmsNames(body: Record<string, unknown>): string[] {
  return typeof body['KeyId'] === 'string' ? [body['KeyId']] : [];
}

/** KMS's default key policy: the account's root may do everything, so the account's IAM policies decide. */
export function defaultKeyPolicy(accountId: string): string {
  return JSON.stringify({
    Version: '2012-10-17',
    Id: 'key-default-1',
    Statement: [
      {
        Sid: 'Enable IAM User Permissions',
        Effect: 'Allow',
        Principal: { AWS: `arn:aws:iam::${accountId}:root` },
        Action: 'kms:*',
        Resource: '*',
      },
    ],
  });
}

type Statement = Record<string, unknown>;
const strings = (v: unknown): string[] =>
  typeof v === 'string' ? [v] : Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
const decryptAction = (st: Statement): boolean =>
  strings(st['Action']).some((a) => ['kms:decrypt', 'kms:*', '*'].includes(a.toLowerCase()));

/**
 * What the key policy says of kms:Decrypt by `roleArn`, as KMS applies it (conditions are not
 * modelled): `role` (a statement names the role or `*`), `account` (one names the account: its IAM
 * policies decide), `denied` (a Deny names it, or nothing allows it).
 */
function keyPolicyOf(key: KmsKey, accountId: string, roleArn: string): 'role' | 'account' | 'denied' {
  let doc: unknown;
  try {
    doc = JSON.parse(key.policy ?? defaultKeyPolicy(accountId));
  } catch {
    return 'denied';
  }
  const raw = (doc as { Statement?: unknown } | null)?.Statement;
  const statements = (Array.isArray(raw) ? raw : [raw]).filter(
    (s): s is Statement => s !== null && typeof s === 'object',
  );
  let verdict: 'role' | 'account' | 'denied' = 'denied';
  for (const st of statements) {
    if (!decryptAction(st)) continue;
    const p = st['Principal'];
    const principals = p === '*' ? ['*'] : strings((p as Statement | undefined)?.['AWS']);
    const role = principals.includes(roleArn) || principals.includes('*');
    const account = principals.includes(`arn:aws:iam::${accountId}:root`) || principals.includes(accountId);
    if (!role && !account) continue;
    if (st['Effect'] === 'Deny') return 'denied';
    if (st['Effect'] === 'Allow') verdict = role ? 'role' : verdict === 'role' ? 'role' : 'account';
  }
  return verdict;
}

/**
 * May the session's role decrypt with the key `keyId` names (a secret's or parameter's KmsKeyId)?
 * An AWS managed key: yes (its key policy lets the account use it through the service). A customer
 * managed key: its key policy first (a statement naming the role is enough; one naming the account
 * leaves it to the role's rules, `RoleAllow.kms`). Also the key itself (undefined when `keyId` names
 * no key the emulator knows: then only a rule naming `keyId` as it is allows it).
 */
export function canDecrypt(
  state: State,
  session: Session,
  region: string,
  keyId: string,
): { allowed: boolean; key: KmsKey | undefined } {
  const key = state.findKmsKey(region, keyId);
  if (key?.manager === 'AWS') return { allowed: true, key };
  const byPolicy = key === undefined ? 'account' : keyPolicyOf(key, state.accountId, session.roleArn);
  if (byPolicy !== 'account') return { allowed: byPolicy === 'role', key };
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
    case 'GetKeyPolicy': {
      const keyId = typeof body['KeyId'] === 'string' ? body['KeyId'] : '';
      const key = state.findKmsKey(region, keyId);
      if (state.roles.get(session.roleArn)?.allow.kmsRead !== true) {
        throw new EmulatorError(
          'AccessDeniedException',
          `User: ${assumedRoleArn(session, state.accountId)} is not authorized to perform: kms:GetKeyPolicy ` +
            `on resource: ${key?.arn ?? keyId} because no identity-based policy allows the kms:GetKeyPolicy action`,
        );
      }
      if (key === undefined) throw new EmulatorError('NotFoundException', `Key '${keyId}' does not exist`);
      return { Policy: key.policy ?? defaultKeyPolicy(state.accountId), PolicyName: 'default' };
    }
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

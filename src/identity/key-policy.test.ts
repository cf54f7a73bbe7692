import { describe, expect, it } from 'vitest';
import { evaluateKeyPolicy, type KeyPolicyRequest } from './key-policy.js';

const ROLE = 'arn:aws:iam::111122223333:role/team/app-reader';
const SECRET = 'arn:aws:secretsmanager:us-east-1:111122223333:secret:prod/db-AbCdEf';
const REQ: KeyPolicyRequest = {
  roleArn: ROLE,
  action: 'kms:Decrypt',
  context: { 'kms:ViaService': 'secretsmanager.us-east-1.amazonaws.com', 'kms:EncryptionContext:SecretARN': SECRET },
};
const policy = (...Statement: unknown[]): string => JSON.stringify({ Version: '2012-10-17', Statement });
/** The key policy KMS writes when none is given: the account's IAM policies decide. */
const DEFAULT = {
  Sid: 'Enable IAM User Permissions',
  Effect: 'Allow',
  Principal: { AWS: 'arn:aws:iam::111122223333:root' },
  Action: 'kms:*',
  Resource: '*',
};

describe('evaluateKeyPolicy', () => {
  it("KMS's default key policy hands the decision to IAM (account); naming the role decides alone (role)", () => {
    expect(evaluateKeyPolicy(policy(DEFAULT), REQ)).toEqual({ outcome: 'account' });
    expect(evaluateKeyPolicy(policy({ ...DEFAULT, Principal: { AWS: '111122223333' } }), REQ)).toEqual({
      outcome: 'account',
    });
    const own = { Effect: 'Allow', Principal: { AWS: [ROLE] }, Action: ['kms:Decrypt', 'kms:DescribeKey'] };
    expect(evaluateKeyPolicy(policy(DEFAULT, own), REQ)).toEqual({ outcome: 'role' });
    expect(evaluateKeyPolicy(policy({ ...own, Action: 'kms:De*' }), REQ)).toEqual({ outcome: 'role' });
  });

  it('no statement for the role or its account: denied, whatever IAM allows', () => {
    const other = { ...DEFAULT, Principal: { AWS: 'arn:aws:iam::444455556666:root' } };
    const admin = { Effect: 'Allow', Principal: { AWS: 'arn:aws:iam::111122223333:role/admin' }, Action: 'kms:*' };
    const encryptOnly = { Effect: 'Allow', Principal: { AWS: ROLE }, Action: 'kms:Encrypt' };
    expect(evaluateKeyPolicy(policy(other, admin, encryptOnly), REQ)).toEqual({
      outcome: 'denied',
      reason: `no statement allows kms:Decrypt to ${ROLE} or to its account (arn:aws:iam::111122223333:root)`,
    });
  });

  it('a Deny wins; a condition on the call (kms:ViaService, the secret) is judged as the call would be', () => {
    const deny = { Sid: 'NoDecrypt', Effect: 'Deny', Principal: '*', Action: 'kms:Decrypt' };
    expect(evaluateKeyPolicy(policy(DEFAULT, deny), REQ)).toEqual({
      outcome: 'denied',
      reason: 'statement 1 (NoDecrypt) denies kms:Decrypt',
    });
    const viaSsm = {
      Effect: 'Allow',
      Principal: { AWS: '*' },
      Action: 'kms:Decrypt',
      Condition: {
        StringEquals: { 'kms:ViaService': 'ssm.us-east-1.amazonaws.com', 'kms:CallerAccount': '111122223333' },
      },
    };
    expect(evaluateKeyPolicy(policy(viaSsm), REQ).outcome).toBe('denied');
    const viaSm = {
      ...viaSsm,
      Condition: {
        StringEquals: {
          'kms:viaservice': 'secretsmanager.us-east-1.amazonaws.com',
          'kms:CallerAccount': '111122223333',
        },
        StringLike: {
          'kms:EncryptionContext:SecretARN': 'arn:aws:secretsmanager:us-east-1:111122223333:secret:prod/*',
        },
      },
    };
    expect(evaluateKeyPolicy(policy(viaSm), REQ)).toEqual({ outcome: 'role' });
    const notThisSecret = {
      ...viaSm,
      Condition: { StringLike: { 'kms:EncryptionContext:SecretARN': '*:secret:staging/*' } },
    };
    expect(evaluateKeyPolicy(policy(notThisSecret), REQ).outcome).toBe('denied');
  });

  it('a condition doctor cannot check is said, not guessed; an uncertain Deny outweighs an Allow', () => {
    const vpce = { ...DEFAULT, Condition: { StringEquals: { 'aws:SourceVpce': 'vpce-1a2b3c4d' } } };
    expect(evaluateKeyPolicy(policy(vpce), REQ)).toEqual({
      outcome: 'undecided',
      reason:
        'statement 0 (Enable IAM User Permissions) allows kms:Decrypt under a condition doctor cannot check ' +
        '(StringEquals on aws:SourceVpce)',
    });
    const ifExists = { ...DEFAULT, Condition: { StringEqualsIfExists: { 'aws:SourceVpce': 'vpce-1a2b3c4d' } } };
    expect(evaluateKeyPolicy(policy(ifExists), REQ)).toEqual({ outcome: 'account' });
    const maybeDeny = {
      Effect: 'Deny',
      Principal: '*',
      Action: 'kms:*',
      Condition: { NumericLessThan: { 'kms:RecipientAttestation:ImageSha384': '1' } },
    };
    expect(evaluateKeyPolicy(policy(DEFAULT, maybeDeny), REQ).outcome).toBe('undecided');
    expect(evaluateKeyPolicy('not json', REQ)).toEqual({ outcome: 'undecided', reason: 'the key policy is not JSON' });
    // A Deny to everyone but the key's admins is not judged, and not skipped as if it named no one.
    const allBut = { Effect: 'Deny', NotPrincipal: { AWS: 'arn:aws:iam::111122223333:role/admin' }, Action: 'kms:*' };
    expect(evaluateKeyPolicy(policy(DEFAULT, allBut), REQ)).toEqual({
      outcome: 'undecided',
      reason: 'statement 1 uses NotPrincipal, which doctor does not evaluate',
    });
  });
});

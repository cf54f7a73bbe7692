/**
 * @module emulator/secrets-manager
 * The Secrets Manager operations (AWS JSON 1.1, `X-Amz-Target: secretsmanager.<Op>`) on the state,
 * with AWS's access rules and error words. Input is the parsed JSON body; output the JSON answer.
 */
import { randomUUID } from 'node:crypto';
import {
  assumedRoleArn,
  EmulatorError,
  matchesAny,
  type Secret,
  type SecretVersion,
  type Session,
  type State,
} from './state.js';
import { canDecrypt } from './kms.js';

export const SM_OPERATIONS = ['GetSecretValue', 'DescribeSecret', 'BatchGetSecretValue', 'PutSecretValue'] as const;

const NOT_FOUND = "Secrets Manager can't find the specified secret.";

export function smNames(op: string, body: Record<string, unknown>): string[] {
  if (op === 'BatchGetSecretValue')
    return Array.isArray(body['SecretIdList'])
      ? body['SecretIdList'].filter((x): x is string => typeof x === 'string')
      : [];
  return typeof body['SecretId'] === 'string' ? [body['SecretId']] : [];
}

function denied(state: State, session: Session, action: string, resource?: string): EmulatorError {
  const on = resource === undefined ? '' : ` on resource: ${resource}`;
  return new EmulatorError(
    'AccessDeniedException',
    `User: ${assumedRoleArn(session, state.accountId)} is not authorized to perform: ` +
      `secretsmanager:${action}${on} because no identity-based policy allows the secretsmanager:${action} action`,
  );
}

/** IAM is evaluated on the id as requested, and on the secret's own name and ARN when it exists. */
function canRead(state: State, session: Session, secretId: string, secret: Secret | undefined): boolean {
  const allow = state.roles.get(session.roleArn)?.allow.secretsmanager;
  const candidates = [secretId];
  // A name pattern also covers the name an ARN carries (`…:secret:<name>` or `<name>-xxxxxx`).
  const inArn = /^arn:[^:]*:secretsmanager:[^:]*:[^:]*:secret:(.+)$/.exec(secretId)?.[1];
  if (inArn !== undefined) candidates.push(inArn, inArn.replace(/-[A-Za-z0-9]{6}$/, ''));
  if (secret !== undefined) candidates.push(secret.name, secret.arn);
  return matchesAny(allow, candidates);
}

function requireId(body: Record<string, unknown>): string {
  const id = body['SecretId'];
  if (typeof id !== 'string' || id === '') {
    throw new EmulatorError('InvalidParameterException', 'You must provide a value for the SecretId parameter.');
  }
  return id;
}

function pickVersion(secret: Secret, versionId: unknown, stage: unknown): SecretVersion {
  if (versionId !== undefined && typeof versionId !== 'string')
    throw new EmulatorError('InvalidParameterException', 'Invalid VersionId.');
  if (stage !== undefined && typeof stage !== 'string')
    throw new EmulatorError('InvalidParameterException', 'Invalid VersionStage.');
  if (versionId !== undefined) {
    const v = secret.versions.find((x) => x.versionId === versionId);
    if (v === undefined)
      throw new EmulatorError(
        'ResourceNotFoundException',
        `Secrets Manager can't find the specified secret value for VersionId: ${versionId}`,
      );
    if (stage !== undefined && !v.stages.includes(stage)) {
      throw new EmulatorError(
        'InvalidRequestException',
        'You provided a VersionStage that is not associated to the provided VersionId.',
      );
    }
    return v;
  }
  const want = stage ?? 'AWSCURRENT';
  const v = secret.versions.find((x) => x.stages.includes(want));
  if (v === undefined)
    throw new EmulatorError(
      'ResourceNotFoundException',
      `Secrets Manager can't find the specified secret value for staging label: ${want}`,
    );
  return v;
}

function valueOf(
  state: State,
  session: Session,
  region: string,
  secretId: string,
  versionId: unknown,
  stage: unknown,
): Record<string, unknown> {
  const secret = state.findSecret(region, secretId);
  if (!canRead(state, session, secretId, secret)) throw denied(state, session, 'GetSecretValue', secretId);
  if (secret === undefined) throw new EmulatorError('ResourceNotFoundException', NOT_FOUND);
  const v = pickVersion(secret, versionId, stage);
  // A customer managed key: Secrets Manager decrypts as the caller, who needs kms:Decrypt on it.
  const kms = secret.kmsKeyId === undefined ? undefined : canDecrypt(state, session, region, secret.kmsKeyId);
  if (kms !== undefined && !kms.allowed) {
    throw new EmulatorError('AccessDeniedException', 'Access to KMS is not allowed');
  }
  if (secret.kmsFails || (kms?.key !== undefined && kms.key.state !== 'Enabled')) {
    throw new EmulatorError(
      'DecryptionFailure',
      "Secrets Manager can't decrypt the protected secret text using the provided KMS key.",
    );
  }
  const out: Record<string, unknown> = { ARN: secret.arn, Name: secret.name, VersionId: v.versionId };
  if (v.binary !== undefined) out['SecretBinary'] = v.binary.toString('base64');
  else out['SecretString'] = v.string ?? '';
  out['VersionStages'] = [...v.stages];
  out['CreatedDate'] = v.createdMs / 1000;
  return out;
}

export function handleSecretsManager(
  state: State,
  region: string,
  session: Session,
  op: string,
  body: Record<string, unknown>,
): Record<string, unknown> {
  const role = state.roles.get(session.roleArn);
  switch (op) {
    case 'GetSecretValue':
      return valueOf(state, session, region, requireId(body), body['VersionId'], body['VersionStage']);

    case 'DescribeSecret': {
      const id = requireId(body);
      const secret = state.findSecret(region, id);
      if (role?.allow.describeSecret === false || !canRead(state, session, id, secret))
        throw denied(state, session, 'DescribeSecret', id);
      if (secret === undefined) throw new EmulatorError('ResourceNotFoundException', NOT_FOUND);
      const stages: Record<string, string[]> = {};
      for (const v of secret.versions) if (v.stages.length > 0) stages[v.versionId] = [...v.stages];
      return {
        ARN: secret.arn,
        Name: secret.name,
        LastChangedDate: secret.lastChangedMs / 1000,
        CreatedDate: secret.createdMs / 1000,
        ...(secret.kmsKeyId === undefined ? {} : { KmsKeyId: secret.kmsKeyId }),
        VersionIdsToStages: stages,
      };
    }

    case 'BatchGetSecretValue': {
      if (role?.allow.batchGetSecretValue !== true) throw denied(state, session, 'BatchGetSecretValue');
      const list = body['SecretIdList'];
      if (body['Filters'] !== undefined && list !== undefined) {
        throw new EmulatorError(
          'InvalidParameterException',
          'Either Filters or SecretIdList must be provided, but not both.',
        );
      }
      if (!Array.isArray(list) || list.length === 0) {
        throw new EmulatorError(
          'InvalidParameterException',
          'The emulator supports BatchGetSecretValue with a SecretIdList only.',
        );
      }
      if (list.length > 20)
        throw new EmulatorError('InvalidParameterException', 'SecretIdList can contain at most 20 secrets.');
      const values: Record<string, unknown>[] = [];
      const errors: Record<string, unknown>[] = [];
      for (const id of list) {
        if (typeof id !== 'string')
          throw new EmulatorError('InvalidParameterException', 'SecretIdList must hold strings.');
        try {
          values.push(valueOf(state, session, region, id, undefined, undefined));
        } catch (e) {
          if (!(e instanceof EmulatorError)) throw e;
          errors.push({ SecretId: id, ErrorCode: e.code, Message: e.message });
        }
      }
      return { SecretValues: values, Errors: errors };
    }

    case 'PutSecretValue': {
      const id = requireId(body);
      const secret = state.findSecret(region, id);
      if (role?.allow.write !== true || !canRead(state, session, id, secret))
        throw denied(state, session, 'PutSecretValue', id);
      if (secret === undefined) throw new EmulatorError('ResourceNotFoundException', NOT_FOUND);
      const str = body['SecretString'];
      const bin = body['SecretBinary'];
      if ((str === undefined) === (bin === undefined)) {
        throw new EmulatorError(
          'InvalidParameterException',
          'You must provide either SecretString or SecretBinary, but not both.',
        );
      }
      const token = typeof body['ClientRequestToken'] === 'string' ? body['ClientRequestToken'] : randomUUID();
      const value = typeof str === 'string' ? str : Buffer.from(String(bin), 'base64');
      const existing = secret.versions.find((v) => v.versionId === token);
      if (existing !== undefined) {
        const same = typeof value === 'string' ? existing.string === value : existing.binary?.equals(value) === true;
        if (!same)
          throw new EmulatorError(
            'ResourceExistsException',
            `You can't modify an existing version, you can only create a new version.`,
          );
        return {
          ARN: secret.arn,
          Name: secret.name,
          VersionId: existing.versionId,
          VersionStages: [...existing.stages],
        };
      }
      const stagesIn = body['VersionStages'];
      const stages = Array.isArray(stagesIn) ? stagesIn.filter((s): s is string => typeof s === 'string') : undefined;
      const { version } = state.putSecret(region, secret.name, value, { versionId: token, stages });
      return { ARN: secret.arn, Name: secret.name, VersionId: version.versionId, VersionStages: [...version.stages] };
    }

    default:
      throw new EmulatorError('UnknownOperationException', `The emulator does not implement secretsmanager.${op}.`);
  }
}

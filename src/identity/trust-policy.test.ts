// The trust policy evaluator: what STS decides for AssumeRoleWithWebIdentity, on the policies
// eksctl, Terraform modules and the EKS documentation write.
import { describe, expect, it } from 'vitest';
import {
  evaluateAssumeRoleTrust,
  evaluatePodIdentityTrust,
  evaluateWebIdentityTrust,
  type WebIdentityRequest,
} from './trust-policy.js';

const HOST = 'oidc.eks.us-east-1.amazonaws.com/id/ABC';
const PROVIDER = `arn:aws:iam::111122223333:oidc-provider/${HOST}`;
const REQ: WebIdentityRequest = {
  providerArn: PROVIDER,
  issuerHost: HOST,
  subject: 'system:serviceaccount:default:app',
  audience: 'sts.amazonaws.com',
};

const policy = (condition: unknown, extra: Record<string, unknown> = {}) => ({
  Version: '2012-10-17',
  Statement: [
    {
      Effect: 'Allow',
      Principal: { Federated: PROVIDER },
      Action: 'sts:AssumeRoleWithWebIdentity',
      ...(condition === undefined ? {} : { Condition: condition }),
      ...extra,
    },
  ],
});

describe('evaluateWebIdentityTrust', () => {
  it('allows StringEquals on sub and aud, StringLike with *, a list of subjects, and no condition', () => {
    expect(
      evaluateWebIdentityTrust(
        policy({ StringEquals: { [`${HOST}:sub`]: REQ.subject, [`${HOST}:aud`]: 'sts.amazonaws.com' } }),
        REQ,
      ),
    ).toEqual({ outcome: 'allowed' });
    expect(
      evaluateWebIdentityTrust(policy({ StringLike: { [`${HOST}:sub`]: 'system:serviceaccount:default:*' } }), REQ),
    ).toEqual({ outcome: 'allowed' });
    expect(
      evaluateWebIdentityTrust(
        policy({ StringEquals: { [`${HOST}:sub`]: ['system:serviceaccount:x:y', REQ.subject] } }),
        REQ,
      ),
    ).toEqual({ outcome: 'allowed' });
    expect(evaluateWebIdentityTrust(policy(undefined), REQ)).toEqual({ outcome: 'allowed' });
  });

  it('denies another subject, another audience, another provider, another action, and says which', () => {
    const sub = evaluateWebIdentityTrust(
      policy({ StringEquals: { [`${HOST}:sub`]: 'system:serviceaccount:default:other' } }),
      REQ,
    );
    expect(sub).toEqual({
      outcome: 'denied',
      reason:
        `statement 0: its StringEquals condition on ${HOST}:sub allows "system:serviceaccount:default:other", ` +
        `not the service account "system:serviceaccount:default:app"`,
    });
    expect(
      evaluateWebIdentityTrust(policy({ StringEquals: { [`${HOST}:aud`]: 'sts.amazonaws.com.cn' } }), REQ),
    ).toMatchObject({ outcome: 'denied' });
    const other = policy(undefined, { Principal: { Federated: 'arn:aws:iam::111122223333:oidc-provider/elsewhere' } });
    expect(evaluateWebIdentityTrust(other, REQ)).toMatchObject({
      outcome: 'denied',
      reason: expect.stringContaining('elsewhere'),
    });
    expect(evaluateWebIdentityTrust(policy(undefined, { Action: 'sts:AssumeRole' }), REQ)).toEqual({
      outcome: 'denied',
      reason: 'no statement allows sts:AssumeRoleWithWebIdentity',
    });
    expect(evaluateWebIdentityTrust(undefined, REQ)).toMatchObject({ outcome: 'denied' });
  });

  it('a matching Deny wins; a condition it cannot evaluate is undecided, not allowed', () => {
    const withDeny = {
      Statement: [
        ...policy(undefined).Statement,
        { Effect: 'Deny', Principal: { Federated: PROVIDER }, Action: 'sts:*' },
      ],
    };
    expect(evaluateWebIdentityTrust(withDeny, REQ)).toEqual({ outcome: 'denied', reason: 'statement 1 denies it' });
    expect(evaluateWebIdentityTrust(policy({ StringEquals: { 'aws:SourceIp': '10.0.0.1' } }), REQ)).toMatchObject({
      outcome: 'undecided',
    });
    expect(evaluateWebIdentityTrust(policy({ ArnLike: { [`${HOST}:sub`]: '*' } }), REQ)).toMatchObject({
      outcome: 'undecided',
    });
  });
});

describe('evaluateAssumeRoleTrust', () => {
  const CALLER = 'arn:aws:iam::111122223333:role/pod';
  const st = (principal: unknown, condition?: unknown) => ({
    Statement: [
      {
        Effect: 'Allow',
        Principal: principal,
        Action: 'sts:AssumeRole',
        ...(condition === undefined ? {} : { Condition: condition }),
      },
    ],
  });

  it('the caller as principal, with the ExternalId when asked: allowed; the account as principal: undecided', () => {
    expect(evaluateAssumeRoleTrust(st({ AWS: CALLER }), { callerRoleArn: CALLER, externalId: undefined })).toEqual({
      outcome: 'allowed',
    });
    expect(
      evaluateAssumeRoleTrust(st({ AWS: [CALLER] }, { StringEquals: { 'sts:ExternalId': 'x' } }), {
        callerRoleArn: CALLER,
        externalId: 'x',
      }),
    ).toEqual({ outcome: 'allowed' });
    expect(
      evaluateAssumeRoleTrust(st({ AWS: 'arn:aws:iam::111122223333:root' }), {
        callerRoleArn: CALLER,
        externalId: undefined,
      }),
    ).toMatchObject({ outcome: 'undecided' });
  });

  it('another principal, another ExternalId: denied', () => {
    expect(
      evaluateAssumeRoleTrust(st({ AWS: 'arn:aws:iam::111122223333:role/other' }), {
        callerRoleArn: CALLER,
        externalId: undefined,
      }),
    ).toMatchObject({ outcome: 'denied' });
    expect(
      evaluateAssumeRoleTrust(st({ AWS: CALLER }, { StringEquals: { 'sts:ExternalId': 'x' } }), {
        callerRoleArn: CALLER,
        externalId: 'y',
      }),
    ).toMatchObject({ outcome: 'denied' });
  });
});

describe('evaluatePodIdentityTrust', () => {
  const st = (action: unknown, service = 'pods.eks.amazonaws.com') => ({
    Statement: [{ Effect: 'Allow', Principal: { Service: service }, Action: action }],
  });
  it('AssumeRole and TagSession for the service: allowed; without TagSession, or another service: denied', () => {
    expect(evaluatePodIdentityTrust(st(['sts:AssumeRole', 'sts:TagSession']))).toEqual({ outcome: 'allowed' });
    expect(evaluatePodIdentityTrust(st('sts:*'))).toEqual({ outcome: 'allowed' });
    expect(evaluatePodIdentityTrust(st('sts:AssumeRole'))).toMatchObject({
      outcome: 'denied',
      reason: expect.stringContaining('sts:TagSession'),
    });
    expect(evaluatePodIdentityTrust(st(['sts:AssumeRole', 'sts:TagSession'], 'ec2.amazonaws.com'))).toMatchObject({
      outcome: 'denied',
    });
  });
});

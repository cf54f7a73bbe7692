/**
 * @module emulator/iam
 * The IAM reads `doctor` makes (AWS Query protocol, `Version=2010-05-08`, XML answers, SigV4 scope
 * `iam`): GetRole with the role's trust policy as IAM returns it (URL-encoded JSON in
 * `AssumeRolePolicyDocument`), and ListOpenIDConnectProviders. A role's trust policy is the one it
 * was given, else the one its web identity trust (`RoleSpec.trust`) stands for, so the document
 * `doctor` reads and the rule STS applies are the same. SimulatePrincipalPolicy decides over the
 * role's access rules (`RoleAllow`), the same the Secrets Manager and SSM handlers apply.
 */
import { xmlEscape } from './sts.js';
import {
  assumedRoleArn,
  DEFAULT_ISSUER,
  EmulatorError,
  matchesAny,
  roleId,
  roleName,
  type RoleSpec,
  type Session,
  type State,
} from './state.js';

const IAM_NS = 'https://iam.amazonaws.com/doc/2010-05-08/';

export function iamErrorXml(
  code: string,
  message: string,
  requestId: string,
  type: 'Sender' | 'Receiver' = 'Sender',
): string {
  return (
    `<ErrorResponse xmlns="${IAM_NS}">\n  <Error>\n    <Type>${type}</Type>\n    <Code>${xmlEscape(code)}</Code>\n` +
    `    <Message>${xmlEscape(message)}</Message>\n  </Error>\n  ` +
    `<RequestId>${requestId}</RequestId>\n</ErrorResponse>\n`
  );
}

function envelope(op: string, inner: string, requestId: string): string {
  return (
    `<${op}Response xmlns="${IAM_NS}">\n  <${op}Result>\n${inner}  </${op}Result>\n  <ResponseMetadata>\n    ` +
    `<RequestId>${requestId}</RequestId>\n  </ResponseMetadata>\n</${op}Response>\n`
  );
}

/** `https://oidc.eks…/id/X` → `oidc.eks…/id/X`: how IAM names an OIDC provider after `oidc-provider/`. */
export function issuerHost(issuer: string): string {
  return issuer.replace(/^https:\/\//, '').replace(/\/+$/, '');
}

/**
 * The trust policy a role's web identity trust stands for, as `eksctl` and the EKS documentation
 * write it: the cluster's OIDC provider as the Federated principal, `sub` and `aud` conditions.
 */
export function trustPolicyOf(state: State, role: RoleSpec): unknown {
  if (role.trustPolicy !== undefined) return role.trustPolicy;
  const statements: unknown[] = [];
  if (role.trust !== undefined) {
    const host = issuerHost(DEFAULT_ISSUER);
    const subs = role.trust.subjects;
    const op = subs.some((s) => /[*?]/.test(s)) ? 'StringLike' : 'StringEquals';
    statements.push({
      Effect: 'Allow',
      Principal: { Federated: `arn:aws:iam::${state.accountId}:oidc-provider/${host}` },
      Action: 'sts:AssumeRoleWithWebIdentity',
      Condition: {
        [op]: {
          [`${host}:sub`]: subs.length === 1 ? subs[0] : subs,
          [`${host}:aud`]: role.trust.audience ?? 'sts.amazonaws.com',
        },
      },
    });
  }
  // A role some Pod Identity association names trusts the EKS service, unless told otherwise.
  if (role.podIdentityTrust !== false && [...state.podIdentity.values()].includes(role.arn)) {
    statements.push({
      Effect: 'Allow',
      Principal: { Service: 'pods.eks.amazonaws.com' },
      Action: ['sts:AssumeRole', 'sts:TagSession'],
    });
  }
  if (role.trustedRoles !== undefined && role.trustedRoles.length > 0) {
    const st: Record<string, unknown> = {
      Effect: 'Allow',
      Principal: { AWS: role.trustedRoles },
      Action: 'sts:AssumeRole',
    };
    if (role.externalId !== undefined) st['Condition'] = { StringEquals: { 'sts:ExternalId': role.externalId } };
    statements.push(st);
  }
  return { Version: '2012-10-17', Statement: statements };
}

function denied(state: State, session: Session, action: string, resource: string): EmulatorError {
  return new EmulatorError(
    'AccessDenied',
    `User: ${assumedRoleArn(session, state.accountId)} is not authorized to perform: iam:${action} on ` +
      `resource: ${resource} because no identity-based policy allows the iam:${action} action`,
    403,
  );
}

/** The names a rule may match for a resource ARN: the ARN, and the name it carries (as the handlers match). */
function candidates(resource: string): string[] {
  const out = [resource];
  const secret = /^arn:[^:]*:secretsmanager:[^:]*:[^:]*:secret:(.+)$/.exec(resource)?.[1];
  if (secret !== undefined) out.push(secret, secret.replace(/-[A-Za-z0-9]{6}$/, ''));
  const parameter = /^arn:[^:]*:ssm:[^:]*:[^:]*:parameter\/(.+)$/.exec(resource)?.[1];
  if (parameter !== undefined) out.push(parameter, `/${parameter}`);
  return out;
}

/** What the role's rules decide for one action on one resource: IAM's `allowed` or `implicitDeny`. */
export function decide(role: RoleSpec, action: string, resource: string): 'allowed' | 'implicitDeny' {
  const a = role.allow;
  const names = candidates(resource);
  switch (action.toLowerCase()) {
    case 'secretsmanager:getsecretvalue':
      return matchesAny(a.secretsmanager, names) ? 'allowed' : 'implicitDeny';
    case 'secretsmanager:describesecret':
      return a.describeSecret !== false && matchesAny(a.secretsmanager, names) ? 'allowed' : 'implicitDeny';
    case 'secretsmanager:batchgetsecretvalue':
      return a.batchGetSecretValue === true ? 'allowed' : 'implicitDeny';
    case 'kms:decrypt':
      return matchesAny(a.kms, names) ? 'allowed' : 'implicitDeny';
    case 'ssm:getparameters':
    case 'ssm:getparameter':
      return matchesAny(a.ssm, names) ? 'allowed' : 'implicitDeny';
    default:
      return 'implicitDeny';
  }
}

function members(params: URLSearchParams, name: string): string[] {
  const out: string[] = [];
  for (let i = 1; params.has(`${name}.member.${i}`); i++) out.push(params.get(`${name}.member.${i}`) ?? '');
  return out;
}

export function handleIam(
  state: State,
  session: Session,
  requestId: string,
  op: string,
  params: URLSearchParams,
): string {
  if (params.get('Version') !== '2010-05-08') {
    throw new EmulatorError(
      'InvalidAction',
      `Could not find operation ${op} for version ${params.get('Version') ?? 'NO_VERSION_SPECIFIED'}`,
    );
  }
  const mayRead = state.roles.get(session.roleArn)?.allow.iamRead === true;
  switch (op) {
    case 'GetRole': {
      const name = params.get('RoleName');
      if (name === null || name === '')
        throw new EmulatorError(
          'ValidationError',
          "1 validation error detected: Value null at 'roleName' failed to satisfy constraint: Member must not be null",
        );
      if (!mayRead) throw denied(state, session, 'GetRole', `role ${name}`);
      const role = [...state.roles.values()].find((r) => roleName(r.arn) === name);
      if (role === undefined)
        throw new EmulatorError('NoSuchEntity', `The role with name ${name} cannot be found.`, 404);
      const path = role.arn.split(':role')[1]?.replace(/[^/]*$/, '') ?? '/';
      const doc = encodeURIComponent(JSON.stringify(trustPolicyOf(state, role)));
      const inner =
        `    <Role>\n      <Path>${xmlEscape(path)}</Path>\n      ` +
        `<AssumeRolePolicyDocument>${xmlEscape(doc)}</AssumeRolePolicyDocument>\n` +
        `      <MaxSessionDuration>${role.maxSessionDurationSeconds ?? 3600}</MaxSessionDuration>\n      ` +
        `<RoleId>${roleId(role.arn)}</RoleId>\n` +
        `      <RoleName>${xmlEscape(name)}</RoleName>\n      <Arn>${xmlEscape(role.arn)}</Arn>\n      ` +
        `<CreateDate>2026-01-01T00:00:00Z</CreateDate>\n    </Role>\n`;
      return envelope(op, inner, requestId);
    }
    case 'ListOpenIDConnectProviders': {
      if (!mayRead)
        throw denied(state, session, 'ListOpenIDConnectProviders', `arn:aws:iam::${state.accountId}:oidc-provider/*`);
      const members = [...state.oidcProviders]
        .map(
          (issuer) =>
            `      <member>\n        <Arn>arn:aws:iam::${state.accountId}:oidc-provider/` +
            `${xmlEscape(issuerHost(issuer))}</Arn>\n      </member>\n`,
        )
        .join('');
      return envelope(op, `    <OpenIDConnectProviderList>\n${members}    </OpenIDConnectProviderList>\n`, requestId);
    }
    case 'SimulatePrincipalPolicy': {
      const source = params.get('PolicySourceArn');
      if (source === null || source === '')
        throw new EmulatorError(
          'ValidationError',
          "1 validation error detected: Value null at 'policySourceArn' failed to satisfy constraint: Member must " +
            'not be null',
        );
      if (!mayRead) throw denied(state, session, 'SimulatePrincipalPolicy', source);
      const role = state.roles.get(source);
      if (role === undefined)
        throw new EmulatorError('NoSuchEntity', `The role with name ${roleName(source)} cannot be found.`, 404);
      const actions = members(params, 'ActionNames');
      if (actions.length === 0)
        throw new EmulatorError(
          'ValidationError',
          "1 validation error detected: Value null at 'actionNames' failed to satisfy constraint: Member must not " +
            'be null',
        );
      const resources = members(params, 'ResourceArns');
      const results = actions
        .flatMap((action) =>
          (resources.length === 0 ? ['*'] : resources).map((resource) => ({
            action,
            resource,
            decision: decide(role, action, resource),
          })),
        )
        .map(
          (r) =>
            `      <member>\n        <EvalResourceName>${xmlEscape(r.resource)}</EvalResourceName>\n        ` +
            `<EvalActionName>${xmlEscape(r.action)}</EvalActionName>\n` +
            `        <EvalDecision>${r.decision}</EvalDecision>\n        <MatchedStatements/>\n        ` +
            `<MissingContextValues/>\n      </member>\n`,
        )
        .join('');
      return envelope(
        op,
        `    <IsTruncated>false</IsTruncated>\n    <EvaluationResults>\n${results}    </EvaluationResults>\n`,
        requestId,
      );
    }
    default:
      throw new EmulatorError('InvalidAction', `Could not find operation ${op} for version 2010-05-08`);
  }
}

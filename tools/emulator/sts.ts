/**
 * @module emulator/sts
 * STS over the AWS Query protocol (form POST, XML answers): AssumeRoleWithWebIdentity (unsigned,
 * verifies the service-account token), AssumeRole (role chaining, ExternalId), GetCallerIdentity.
 */
import type { VerifyResult } from './jwt.js';
import { assumedRoleArn, EmulatorError, roleAccount, roleId, type Session, type State } from './state.js';

export const STS_NS = 'https://sts.amazonaws.com/doc/2011-06-15/';
export const STS_OPERATIONS = ['AssumeRoleWithWebIdentity', 'AssumeRole', 'GetCallerIdentity'] as const;

export function xmlEscape(s: string): string {
  return s.replace(
    /[<>&'"]/g,
    (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c] ?? c,
  );
}

export function stsErrorXml(
  code: string,
  message: string,
  requestId: string,
  type: 'Sender' | 'Receiver' = 'Sender',
): string {
  return (
    `<ErrorResponse xmlns="${STS_NS}">\n  <Error>\n    <Type>${type}</Type>\n    <Code>${xmlEscape(code)}</Code>\n` +
    `    <Message>${xmlEscape(message)}</Message>\n  </Error>\n  ` +
    `<RequestId>${requestId}</RequestId>\n</ErrorResponse>\n`
  );
}

const SESSION_NAME = /^[\w+=,.@-]*$/;

function validationError(field: string, value: string, constraint: string): EmulatorError {
  return new EmulatorError(
    'ValidationError',
    `1 validation error detected: Value '${value}' at '${field}' failed to satisfy constraint: ${constraint}`,
  );
}

function checkSessionName(name: string | null): string {
  if (name === null) throw validationError('roleSessionName', 'null', 'Member must not be null');
  if (name.length < 2)
    throw validationError('roleSessionName', name, 'Member must have length greater than or equal to 2');
  if (name.length > 64)
    throw validationError('roleSessionName', name, 'Member must have length less than or equal to 64');
  if (!SESSION_NAME.test(name))
    throw validationError('roleSessionName', name, 'Member must satisfy regular expression pattern: [\\w+=,.@-]*');
  return name;
}

function duration(raw: string | null, max: number, chained: boolean): number {
  if (raw === null) return Math.min(3600, max);
  const n = Number(raw);
  if (!Number.isInteger(n)) throw validationError('durationSeconds', raw, 'Member must be an integer');
  if (n < 900) throw validationError('durationSeconds', raw, 'Member must have value greater than or equal to 900');
  if (chained && n > 3600) {
    throw new EmulatorError(
      'ValidationError',
      'The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.',
    );
  }
  if (n > max)
    throw new EmulatorError(
      'ValidationError',
      'The requested DurationSeconds exceeds the MaxSessionDuration set for this role.',
    );
  return n;
}

function credentialsXml(s: Session, accountId: string): string {
  return (
    `    <AssumedRoleUser>\n      <AssumedRoleId>${roleId(s.roleArn)}:${xmlEscape(s.sessionName)}</AssumedRoleId>\n` +
    `      <Arn>${xmlEscape(assumedRoleArn(s, accountId))}</Arn>\n    </AssumedRoleUser>\n` +
    `    <Credentials>\n      <AccessKeyId>${s.accessKeyId}</AccessKeyId>\n      ` +
    `<SecretAccessKey>${s.secretAccessKey}</SecretAccessKey>\n` +
    `      <SessionToken>${s.sessionToken}</SessionToken>\n      ` +
    `<Expiration>${new Date(s.expiresAtMs).toISOString()}</Expiration>\n    </Credentials>\n`
  );
}

function envelope(op: string, inner: string, requestId: string): string {
  return (
    `<${op}Response xmlns="${STS_NS}">\n  <${op}Result>\n${inner}  </${op}Result>\n` +
    `  <ResponseMetadata>\n    <RequestId>${requestId}</RequestId>\n  </ResponseMetadata>\n</${op}Response>\n`
  );
}

export interface StsContext {
  state: State;
  requestId: string;
  /** Verifies a web identity token for an audience (signature, issuer, expiry). */
  verify: (token: string, audience: string) => VerifyResult;
  /** The signed caller, for AssumeRole and GetCallerIdentity. */
  session?: Session | undefined;
}

export function handleSts(ctx: StsContext, op: string, params: URLSearchParams): { xml: string; session?: Session } {
  const { state } = ctx;
  switch (op) {
    case 'AssumeRoleWithWebIdentity': {
      const roleArn = params.get('RoleArn');
      if (roleArn === null) throw validationError('roleArn', 'null', 'Member must not be null');
      const sessionName = checkSessionName(params.get('RoleSessionName'));
      const token = params.get('WebIdentityToken');
      if (token === null || token.length < 4)
        throw validationError('webIdentityToken', 'null', 'Member must have length greater than or equal to 4');
      const role = state.roles.get(roleArn);
      const audience = role?.trust?.audience ?? 'sts.amazonaws.com';
      const v = ctx.verify(token, audience);
      if (!v.ok) {
        switch (v.reason) {
          case 'malformed':
            throw new EmulatorError(
              'InvalidIdentityToken',
              'The ID Token provided is not a valid JWT. (You may see this error if you sent an Access Token)',
            );
          case 'signature':
            throw new EmulatorError(
              'InvalidIdentityToken',
              'The web identity token that was passed could not be validated by AWS. Get a new identity token from ' +
                'the identity provider and then retry the request.',
            );
          case 'issuer':
            throw new EmulatorError(
              'InvalidIdentityToken',
              `No OpenIDConnect provider found in your account for ${v.claims?.iss ?? 'the token issuer'}`,
            );
          case 'audience':
            throw new EmulatorError('InvalidIdentityToken', 'Incorrect token audience');
          case 'expired':
            throw new EmulatorError(
              'ExpiredTokenException',
              'Token expired: current date/time must be before the expiration date/time.',
            );
        }
      }
      if (role === undefined || role.trust === undefined || !role.trust.subjects.includes(v.claims.sub)) {
        throw new EmulatorError('AccessDenied', 'Not authorized to perform sts:AssumeRoleWithWebIdentity', 403);
      }
      const seconds = duration(params.get('DurationSeconds'), role.maxSessionDurationSeconds ?? 3600, false);
      const session = state.createSession(roleArn, sessionName, seconds, 'AssumeRoleWithWebIdentity');
      const inner =
        credentialsXml(session, state.accountId) +
        `    <SubjectFromWebIdentityToken>${xmlEscape(v.claims.sub)}</SubjectFromWebIdentityToken>\n` +
        `    <Audience>${xmlEscape(audience)}</Audience>\n    <Provider>${xmlEscape(v.claims.iss)}</Provider>\n`;
      return { xml: envelope(op, inner, ctx.requestId), session };
    }

    case 'AssumeRole': {
      const caller = ctx.session;
      if (caller === undefined)
        throw new EmulatorError('MissingAuthenticationToken', 'Request is missing Authentication Token', 403);
      const roleArn = params.get('RoleArn');
      if (roleArn === null) throw validationError('roleArn', 'null', 'Member must not be null');
      const sessionName = checkSessionName(params.get('RoleSessionName'));
      const role = state.roles.get(roleArn);
      const externalId = params.get('ExternalId');
      const trusted = role?.trustedRoles?.includes(caller.roleArn) === true;
      const externalOk = role?.externalId === undefined || role.externalId === externalId;
      if (role === undefined || !trusted || !externalOk) {
        throw new EmulatorError(
          'AccessDenied',
          `User: ${assumedRoleArn(caller, state.accountId)} is not authorized to perform: sts:AssumeRole on ` +
            `resource: ${roleArn}`,
          403,
        );
      }
      // Role chaining (credentials from another role) caps the session at one hour.
      const seconds = duration(
        params.get('DurationSeconds'),
        Math.min(role.maxSessionDurationSeconds ?? 3600, 3600),
        true,
      );
      const session = state.createSession(roleArn, sessionName, seconds, 'AssumeRole', { ...caller.tags });
      return { xml: envelope(op, credentialsXml(session, state.accountId), ctx.requestId), session };
    }

    case 'GetCallerIdentity': {
      const caller = ctx.session;
      if (caller === undefined)
        throw new EmulatorError('MissingAuthenticationToken', 'Request is missing Authentication Token', 403);
      const inner =
        `    <Arn>${xmlEscape(assumedRoleArn(caller, state.accountId))}</Arn>\n` +
        `    <UserId>${roleId(caller.roleArn)}:${xmlEscape(caller.sessionName)}</UserId>\n` +
        `    <Account>${roleAccount(caller.roleArn, state.accountId)}</Account>\n`;
      return { xml: envelope(op, inner, ctx.requestId) };
    }

    default:
      throw new EmulatorError('InvalidAction', `Could not find operation ${op} for version 2011-06-15`);
  }
}

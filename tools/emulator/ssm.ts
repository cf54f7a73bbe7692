/**
 * @module emulator/ssm
 * The SSM Parameter Store operations (AWS JSON 1.1, `X-Amz-Target: AmazonSSM.<Op>`): GetParameters
 * with `name:version` / `name:label` selectors and `InvalidParameters`, GetParameter, PutParameter,
 * LabelParameterVersion, DescribeParameters (names and metadata, never values), with AWS's access
 * rules and error words.
 */
import { createHash } from 'node:crypto';
import {
  assumedRoleArn,
  EmulatorError,
  matchesAny,
  parameterArn,
  type Parameter,
  type ParameterVersion,
  type Session,
  type State,
} from './state.js';
import { canDecrypt } from './kms.js';

export const SSM_OPERATIONS = [
  'GetParameters',
  'GetParameter',
  'PutParameter',
  'LabelParameterVersion',
  'DescribeParameters',
] as const;

export function ssmNames(op: string, body: Record<string, unknown>): string[] {
  if (op === 'GetParameters')
    return Array.isArray(body['Names']) ? body['Names'].filter((x): x is string => typeof x === 'string') : [];
  return typeof body['Name'] === 'string' ? [body['Name']] : [];
}

/** `"/app/x:3"` → `{ base: "/app/x", selector: ":3" }`; ARNs keep their `arn:…:parameter/` part in `base`. */
export function splitSelector(requested: string): { base: string; selector?: string } {
  const at = requested.startsWith('arn:') ? requested.indexOf('parameter/') : 0;
  const colon = requested.indexOf(':', at < 0 ? 0 : at);
  if (colon < 0) return { base: requested };
  return { base: requested.slice(0, colon), selector: requested.slice(colon) };
}

function denied(state: State, session: Session, action: string, resource: string): EmulatorError {
  return new EmulatorError(
    'AccessDeniedException',
    `User: ${assumedRoleArn(session, state.accountId)} is not authorized to perform: ssm:${action} on ` +
      `resource: ${resource} because no identity-based policy allows the ssm:${action} action`,
  );
}

function resourceArn(state: State, region: string, base: string): string {
  return base.startsWith('arn:') ? base : parameterArn(region, state.accountId, base);
}

function canRead(state: State, session: Session, region: string, base: string, p: Parameter | undefined): boolean {
  const allow = state.roles.get(session.roleArn)?.allow.ssm;
  const candidates = [base, resourceArn(state, region, base)];
  if (p !== undefined) candidates.push(p.name, p.arn);
  return matchesAny(allow, candidates);
}

function pick(p: Parameter, selector: string | undefined): ParameterVersion | undefined {
  if (selector === undefined) return p.versions[p.versions.length - 1];
  const s = selector.slice(1);
  if (/^\d+$/.test(s)) return p.versions.find((v) => v.version === Number(s));
  return p.versions.find((v) => v.labels.includes(s));
}

/** What SSM shows for a SecureString read without decryption: the (here fake) KMS ciphertext, base64. */
export function ciphertextOf(p: Parameter, v: ParameterVersion): string {
  const blob = createHash('sha256').update(`${p.arn}#${v.version}`).digest();
  return Buffer.concat([Buffer.from([1, 2, 2, 0, 0x78]), blob, blob]).toString('base64');
}

function render(
  p: Parameter,
  v: ParameterVersion,
  selector: string | undefined,
  decrypt: boolean,
): Record<string, unknown> {
  if (p.type === 'SecureString' && decrypt && p.kmsFails) {
    throw new EmulatorError(
      'InvalidKeyId',
      `The KMS key used to encrypt parameter ${p.name} is not valid or is disabled.`,
    );
  }
  const out: Record<string, unknown> = {
    Name: p.name,
    Type: p.type,
    Value: p.type === 'SecureString' && !decrypt ? ciphertextOf(p, v) : v.value,
    Version: v.version,
  };
  if (selector !== undefined) out['Selector'] = selector;
  out['LastModifiedDate'] = v.modifiedMs / 1000;
  out['ARN'] = p.arn;
  out['DataType'] = 'text';
  return out;
}

/**
 * A SecureString read with decryption under a customer managed key: SSM decrypts as the caller, who
 * needs kms:Decrypt on the key; a key that is not enabled decrypts nothing.
 */
function checkKey(state: State, session: Session, region: string, p: Parameter, decrypt: boolean): void {
  if (p.type !== 'SecureString' || !decrypt || p.kmsKeyId === undefined) return;
  const { allowed, key } = canDecrypt(state, session, region, p.kmsKeyId);
  if (!allowed) {
    throw new EmulatorError(
      'AccessDeniedException',
      `User: ${assumedRoleArn(session, state.accountId)} is not authorized to perform: kms:Decrypt ` +
        `on resource: ${key?.arn ?? p.kmsKeyId} because no identity-based policy allows the kms:Decrypt action`,
    );
  }
  if (key !== undefined && key.state !== 'Enabled') {
    throw new EmulatorError(
      'InvalidKeyId',
      `The KMS key used to encrypt parameter ${p.name} is not valid or is disabled.`,
    );
  }
}

function requireName(body: Record<string, unknown>): string {
  const n = body['Name'];
  if (typeof n !== 'string' || n === '') {
    throw new EmulatorError(
      'ValidationException',
      "1 validation error detected: Value null at 'name' failed to satisfy constraint: Member must not be null",
    );
  }
  return n;
}

export function handleSsm(
  state: State,
  region: string,
  session: Session,
  op: string,
  body: Record<string, unknown>,
): Record<string, unknown> {
  const role = state.roles.get(session.roleArn);
  const decrypt = body['WithDecryption'] === true;
  switch (op) {
    case 'GetParameters': {
      const names = body['Names'];
      if (!Array.isArray(names) || names.length === 0) {
        throw new EmulatorError(
          'ValidationException',
          "1 validation error detected: Value '[]' at 'names' failed to satisfy constraint: Member must have length " +
            'greater than or equal to 1',
        );
      }
      if (names.length > 10) {
        throw new EmulatorError(
          'ValidationException',
          `1 validation error detected: Value '[${names.join(', ')}]' at 'names' failed to satisfy constraint: ` +
            `Member must have length less than or equal to 10`,
        );
      }
      const found: Array<[Parameter, ParameterVersion, string | undefined]> = [];
      const invalid: string[] = [];
      for (const requested of names) {
        if (typeof requested !== 'string') throw new EmulatorError('ValidationException', 'Names must be strings.');
        const { base, selector } = splitSelector(requested);
        const p = state.findParameter(region, base);
        if (!canRead(state, session, region, base, p))
          throw denied(state, session, 'GetParameters', p?.arn ?? resourceArn(state, region, base));
        const v = p === undefined ? undefined : pick(p, selector);
        if (p === undefined || v === undefined) {
          if (!invalid.includes(requested)) invalid.push(requested);
        } else {
          checkKey(state, session, region, p, decrypt);
          found.push([p, v, selector]);
        }
      }
      return { Parameters: found.map(([p, v, sel]) => render(p, v, sel, decrypt)), InvalidParameters: invalid };
    }

    case 'DescribeParameters': {
      // IAM grants ssm:DescribeParameters on `*` only; the answer holds metadata, never a value.
      if (role?.allow.describeParameters !== true) {
        throw new EmulatorError(
          'AccessDeniedException',
          `User: ${assumedRoleArn(session, state.accountId)} is not authorized to perform: ssm:DescribeParameters ` +
            `on resource: arn:aws:ssm:${region}:${state.accountId}:* because no identity-based policy allows the ` +
            `ssm:DescribeParameters action`,
        );
      }
      const filters = Array.isArray(body['ParameterFilters']) ? (body['ParameterFilters'] as unknown[]) : [];
      let names: string[] | undefined;
      for (const f of filters) {
        const filter = (f ?? {}) as Record<string, unknown>;
        const values = Array.isArray(filter['Values'])
          ? filter['Values'].filter((x): x is string => typeof x === 'string')
          : [];
        if (filter['Key'] !== 'Name' || (filter['Option'] ?? 'Equals') !== 'Equals') {
          throw new EmulatorError('InvalidFilterKey', 'The emulator supports the Name filter with Option Equals only.');
        }
        names = [...(names ?? []), ...values];
      }
      const all = [...state.region(region).parameters.values()].filter(
        (p) => names === undefined || names.includes(p.name),
      );
      return {
        Parameters: all.map((p) => {
          const last = p.versions[p.versions.length - 1];
          return {
            Name: p.name,
            ARN: p.arn,
            Type: p.type,
            ...(p.type === 'SecureString' ? { KeyId: p.kmsKeyId ?? 'alias/aws/ssm' } : {}),
            Version: last?.version ?? 0,
            LastModifiedDate: (last?.modifiedMs ?? 0) / 1000,
            DataType: 'text',
            Tier: 'Standard',
          };
        }),
      };
    }

    case 'GetParameter': {
      const requested = requireName(body);
      const { base, selector } = splitSelector(requested);
      const p = state.findParameter(region, base);
      if (!canRead(state, session, region, base, p))
        throw denied(state, session, 'GetParameter', p?.arn ?? resourceArn(state, region, base));
      if (p === undefined) throw new EmulatorError('ParameterNotFound', '');
      const v = pick(p, selector);
      if (v === undefined) {
        throw new EmulatorError(
          'ParameterVersionNotFound',
          `Systems Manager could not find version ${selector?.slice(1) ?? ''} of ${p.name}. Verify the version and ` +
            `try again.`,
        );
      }
      checkKey(state, session, region, p, decrypt);
      return { Parameter: render(p, v, selector, decrypt) };
    }

    case 'PutParameter': {
      const name = requireName(body);
      const p = state.findParameter(region, name);
      if (role?.allow.write !== true || !canRead(state, session, region, name, p))
        throw denied(state, session, 'PutParameter', p?.arn ?? resourceArn(state, region, name));
      const value = body['Value'];
      if (typeof value !== 'string')
        throw new EmulatorError(
          'ValidationException',
          "1 validation error detected: Value null at 'value' failed to satisfy constraint: Member must not be null",
        );
      const type = body['Type'];
      if (type !== undefined && type !== 'String' && type !== 'SecureString' && type !== 'StringList') {
        throw new EmulatorError(
          'ValidationException',
          `1 validation error detected: Value '${typeof type === 'string' ? type : JSON.stringify(type)}' at 'type' ` +
            `failed to satisfy constraint: Member must ` +
            `satisfy enum value set: [SecureString, StringList, String]`,
        );
      }
      if (p === undefined && type === undefined)
        throw new EmulatorError('ValidationException', 'A parameter type is required when you create a parameter.');
      const { version } = state.putParameter(region, name, value, {
        type: type,
        overwrite: body['Overwrite'] === true || p === undefined,
      });
      return { Version: version.version, Tier: 'Standard' };
    }

    case 'LabelParameterVersion': {
      const name = requireName(body);
      const p = state.findParameter(region, name);
      if (role?.allow.write !== true || !canRead(state, session, region, name, p))
        throw denied(state, session, 'LabelParameterVersion', p?.arn ?? resourceArn(state, region, name));
      if (p === undefined) throw new EmulatorError('ParameterNotFound', '');
      const want = body['ParameterVersion'];
      const v =
        typeof want === 'number' ? p.versions.find((x) => x.version === want) : p.versions[p.versions.length - 1];
      if (v === undefined)
        throw new EmulatorError(
          'ParameterVersionNotFound',
          `Systems Manager could not find version ${String(want)} of ${p.name}. Verify the version and try again.`,
        );
      const labels = Array.isArray(body['Labels'])
        ? body['Labels'].filter((l): l is string => typeof l === 'string')
        : [];
      const invalid = labels.filter(
        (l) => /^\d/.test(l) || /^(aws|ssm)/i.test(l) || l.length > 100 || !/^[\w.-]+$/.test(l),
      );
      for (const l of labels) if (!invalid.includes(l)) state.labelParameter(p, v, l);
      return { InvalidLabels: invalid, ParameterVersion: v.version };
    }

    default:
      throw new EmulatorError('InvalidAction', `The emulator does not implement AmazonSSM.${op}.`);
  }
}

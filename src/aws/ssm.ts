/**
 * @module aws/ssm
 * SSM parameters in one region: GetParameters with decryption, at most 10 names a call
 * (docs/behaviour.md, "Fetching"). Names carry their selector (`name:version` or `name:label`); each requested
 * selector string is answered on its own, so the same parameter at two versions stays two files
 * (**better** than ASCP, which keys its batch by bare name). The version is Parameter.Version.
 * The answer's fields are type-checked before use (the SDK passes a JSON field of the wrong type
 * through as it came).
 */
import type { SSMClient } from '@aws-sdk/client-ssm';
import type { SecretDescriptor } from '../spc/index.js';
import { AwsCallError, classifyAwsError, malformedAnswer, type AwsErrorContext } from '../aws-errors.js';
import type { FetchedValue } from './secrets-manager.js';
import type { Sender } from './clients.js';
import { selectorFor } from './secrets-manager.js';

export const SSM_BATCH = 10;

/** `name`, `name:3` or `name:label` as SSM expects it. */
export function parameterSelector(d: SecretDescriptor, failover: boolean): string {
  const sel = selectorFor(d, failover);
  if (sel.version) return `${sel.name}:${sel.version}`;
  if (sel.label) return `${sel.name}:${sel.label}`;
  return sel.name;
}

/** The bare name or ARN and the `:selector` suffix of a requested name. ARNs contain ':' themselves. */
function splitSelector(requested: string): { base: string; selector: string } {
  const arnPrefix = requested.startsWith('arn:') ? requested.split(':').slice(0, 5).join(':') + ':' : '';
  const rest = requested.slice(arnPrefix.length);
  const i = rest.lastIndexOf(':');
  if (i < 0) return { base: requested, selector: '' };
  return { base: arnPrefix + rest.slice(0, i), selector: rest.slice(i) };
}

let commands: typeof import('@aws-sdk/client-ssm') | undefined;

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Value and version of one parameter, each of the type it must have (Value a string, Version a positive integer). */
function checkedParameter(p: Record<string, unknown>, ctx: AwsErrorContext): FetchedValue {
  const value = p['Value'];
  const version = p['Version'];
  if (typeof value !== 'string')
    throw malformedAnswer(
      ctx,
      value === undefined || value === null ? 'a parameter without a Value' : 'a parameter Value that is not a string',
    );
  if (version === undefined || version === null) throw malformedAnswer(ctx, 'a parameter without a Version');
  if (typeof version !== 'number' || !Number.isSafeInteger(version) || version < 1)
    throw malformedAnswer(ctx, 'a parameter Version that is not a positive integer');
  return { value: Buffer.from(value, 'utf8'), version: String(version) };
}

/**
 * One GetParameters call for up to 10 distinct selector strings. Resolves with a value or an error
 * per selector (names SSM lists in InvalidParameters are NOT_FOUND, fatal); rejects only when the
 * call itself failed (then no selector got an answer).
 */
export async function getParameterBatch(
  client: Sender<SSMClient>,
  selectors: readonly string[],
  region: string,
  signal: AbortSignal,
): Promise<Map<string, FetchedValue | AwsCallError>> {
  commands ??= await import('@aws-sdk/client-ssm');
  const ctx: AwsErrorContext = {
    what: `Failed fetching parameters ${selectors.join(', ')}`,
    region,
    service: 'SSM',
    operation: 'GetParameters',
  };
  let out: unknown;
  try {
    out = await client.send(new commands.GetParametersCommand({ Names: [...selectors], WithDecryption: true }), {
      abortSignal: signal,
    });
  } catch (err) {
    throw classifyAwsError(err, ctx);
  }
  // The lists' shapes fail the whole call (no parameter can be matched safely); a wrong field of
  // one parameter fails that parameter only, named.
  if (!isRecord(out)) throw malformedAnswer(ctx, 'something that is not an object');
  const parameters = out['Parameters'] ?? [];
  const invalidList = out['InvalidParameters'] ?? [];
  if (!Array.isArray(parameters) || !parameters.every(isRecord))
    throw malformedAnswer(ctx, 'Parameters that are not a list of objects');
  if (!Array.isArray(invalidList) || !invalidList.every((x) => typeof x === 'string'))
    throw malformedAnswer(ctx, 'InvalidParameters that are not a list of names');
  const result = new Map<string, FetchedValue | AwsCallError>();
  const invalid = new Set<unknown>(invalidList);
  for (const requested of selectors) {
    if (invalid.has(requested)) {
      result.set(
        requested,
        new AwsCallError(
          'NOT_FOUND',
          `${region}: Failed fetching parameter ${requested}: InvalidParameters: SSM has no such parameter, version ` +
            `or label (check the name, the region and the selector)`,
          true,
          'InvalidParameters',
          {
            region,
            object: requested,
            reason: 'NotFound',
          },
        ),
      );
      continue;
    }
    const { base, selector } = splitSelector(requested);
    const p =
      parameters.find(
        (q) =>
          (q['Name'] === base || q['ARN'] === base || q['Name'] === requested) && (q['Selector'] ?? '') === selector,
      ) ?? parameters.find((q) => q['Name'] === base || q['ARN'] === base || q['Name'] === requested);
    if (!p) {
      // ASCP dereferences nil here and crashes the process; we name it.
      result.set(
        requested,
        new AwsCallError(
          'INTERNAL',
          `${region}: Failed fetching parameter ${requested}: SSM answered without it and without listing it as ` +
            `invalid`,
          false,
          'MissingInResponse',
          { region, object: requested, reason: 'MissingInResponse' },
        ),
      );
      continue;
    }
    try {
      result.set(
        requested,
        checkedParameter(p, { ...ctx, what: `Failed fetching parameter ${requested}`, object: requested }),
      );
    } catch (err) {
      result.set(requested, err as AwsCallError);
    }
  }
  return result;
}

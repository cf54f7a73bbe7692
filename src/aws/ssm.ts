/**
 * @module aws/ssm
 * SSM parameters in one region: GetParameters with decryption, at most 10 names a call
 * (CONTRACT.md §6). Names carry their selector (`name:version` or `name:label`); each requested
 * selector string is answered on its own, so the same parameter at two versions stays two files
 * (**better** than ASCP, which keys its batch by bare name). The version is Parameter.Version.
 */
import type { SSMClient } from '@aws-sdk/client-ssm';
import type { SecretDescriptor } from '../spc/types.js';
import { AwsCallError, classifyAwsError } from '../aws-errors.js';
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
  let out: import('@aws-sdk/client-ssm').GetParametersCommandOutput;
  try {
    out = await client.send(new commands.GetParametersCommand({ Names: [...selectors], WithDecryption: true }), { abortSignal: signal });
  } catch (err) {
    throw classifyAwsError(err, { what: `Failed fetching parameters ${selectors.join(', ')}`, region });
  }
  const result = new Map<string, FetchedValue | AwsCallError>();
  const invalid = new Set(out.InvalidParameters ?? []);
  for (const requested of selectors) {
    if (invalid.has(requested)) {
      result.set(
        requested,
        new AwsCallError('NOT_FOUND', `${region}: Failed fetching parameter ${requested}: InvalidParameters: SSM has no such parameter, version or label (check the name, the region and the selector)`, true, 'InvalidParameters', {
          region,
          object: requested,
          reason: 'NotFound',
        }),
      );
      continue;
    }
    const { base, selector } = splitSelector(requested);
    const p = (out.Parameters ?? []).find(
      (q) => (q.Name === base || q.ARN === base || q.Name === requested) && (q.Selector ?? '') === selector,
    ) ?? (out.Parameters ?? []).find((q) => q.Name === base || q.ARN === base || q.Name === requested);
    if (!p) {
      // ASCP dereferences nil here and crashes the process (ascp-behaviour.md §6.3); we name it.
      result.set(
        requested,
        new AwsCallError('INTERNAL', `${region}: Failed fetching parameter ${requested}: SSM answered without it and without listing it as invalid`, false, 'MissingInResponse', { region, object: requested, reason: 'MissingInResponse' }),
      );
      continue;
    }
    result.set(requested, { value: Buffer.from(p.Value ?? '', 'utf8'), version: String(p.Version ?? '') });
  }
  return result;
}

/**
 * @module aws/iam
 * The IAM reads `doctor` makes (GetRole, ListOpenIDConnectProviders, SimulatePrincipalPolicy),
 * through the SDK's IAM client, built by the client factory and loaded on first use: only `doctor`
 * imports this module (aws/doctor-reads.ts). AWS_ENDPOINT_URL_IAM, else AWS_ENDPOINT_URL, points
 * it elsewhere (the emulator), by the SDK's own environment handling.
 */
import type { IAMClient } from '@aws-sdk/client-iam';
import type { AwsClientFactory, Sender } from './clients.js';
import type { AwsCredentials } from './call-context.js';
import { DoctorCallError, doctorCall } from './doctor-call.js';

/**
 * IAM is global, one endpoint per partition: the client's region only picks the partition (the
 * SDK's endpoint rules then sign for IAM's own region), so it is the partition's first region.
 */
function iamRegion(partition: string): string {
  if (partition === 'aws-cn') return 'cn-north-1';
  if (partition === 'aws-us-gov') return 'us-gov-west-1';
  return 'us-east-1';
}

/** `arn:<partition>:…` → the partition (`aws` when the ARN does not say). */
export function partitionOf(arn: string): string {
  return arn.split(':')[1] || 'aws';
}

async function iam(clients: AwsClientFactory, partition: string, creds: AwsCredentials): Promise<Sender<IAMClient>> {
  return clients.sdkClient('iam', iamRegion(partition), creds, async (config) => {
    const { IAMClient } = await import('@aws-sdk/client-iam');
    return new IAMClient(config);
  });
}

/**
 * The role's ARN and trust policy (parsed JSON; IAM sends it URL-encoded). Throws DoctorCallError
 * (`NoSuchEntityException` when there is no such role).
 */
export async function getRole(
  clients: AwsClientFactory,
  roleArn: string,
  creds: AwsCredentials,
  signal: AbortSignal,
): Promise<{ arn: string; trustPolicy: unknown }> {
  const partition = partitionOf(roleArn);
  const roleName = roleArn.slice(roleArn.lastIndexOf('/') + 1);
  const { GetRoleCommand } = await import('@aws-sdk/client-iam');
  const client = await iam(clients, partition, creds);
  const out = await doctorCall('IAM', 'GetRole', iamRegion(partition), () =>
    client.send(new GetRoleCommand({ RoleName: roleName }), { abortSignal: signal }),
  );
  const doc = out.Role?.AssumeRolePolicyDocument;
  let trustPolicy: unknown;
  try {
    trustPolicy = doc === undefined ? undefined : JSON.parse(decodeURIComponent(doc));
  } catch (err) {
    throw new DoctorCallError(
      'IAM',
      'GetRole',
      'BadAnswer',
      200,
      `IAM GetRole: the trust policy of ${roleName} is not URL-encoded JSON`,
      { cause: err },
    );
  }
  return { arn: out.Role?.Arn ?? '', trustPolicy };
}

/** The ARNs of the account's IAM OIDC providers (`arn:aws:iam::<acct>:oidc-provider/<host/path>`). */
export async function listOidcProviders(
  clients: AwsClientFactory,
  partition: string,
  creds: AwsCredentials,
  signal: AbortSignal,
): Promise<string[]> {
  const { ListOpenIDConnectProvidersCommand } = await import('@aws-sdk/client-iam');
  const client = await iam(clients, partition, creds);
  const out = await doctorCall('IAM', 'ListOpenIDConnectProviders', iamRegion(partition), () =>
    client.send(new ListOpenIDConnectProvidersCommand({}), { abortSignal: signal }),
  );
  return (out.OpenIDConnectProviderList ?? []).flatMap((p) => (p.Arn === undefined ? [] : [p.Arn]));
}

/** IAM's decision for one action on one resource by a role's identity policies. */
export type SimulatedDecision = 'allowed' | 'explicitDeny' | 'implicitDeny';

/**
 * SimulatePrincipalPolicy for one action on one resource: what the role's identity-based policies
 * decide (IAM does not include the secret's resource policy or the KMS key policy in it).
 * `context`: condition keys the real call carries (kms:ViaService…), so a policy that requires
 * them is judged as it would be.
 */
export async function simulate(
  clients: AwsClientFactory,
  roleArn: string,
  action: string,
  resource: string,
  creds: AwsCredentials,
  signal: AbortSignal,
  context: Readonly<Record<string, string>> = {},
): Promise<SimulatedDecision> {
  const partition = partitionOf(roleArn);
  const { SimulatePrincipalPolicyCommand } = await import('@aws-sdk/client-iam');
  const client = await iam(clients, partition, creds);
  const entries = Object.entries(context).map(([ContextKeyName, value]) => ({
    ContextKeyName,
    ContextKeyType: 'string' as const,
    ContextKeyValues: [value],
  }));
  const out = await doctorCall('IAM', 'SimulatePrincipalPolicy', iamRegion(partition), () =>
    client.send(
      new SimulatePrincipalPolicyCommand({
        PolicySourceArn: roleArn,
        ActionNames: [action],
        ResourceArns: [resource],
        ...(entries.length > 0 ? { ContextEntries: entries } : {}),
      }),
      { abortSignal: signal },
    ),
  );
  // One action on one resource: one result.
  const decision = out.EvaluationResults?.[0]?.EvalDecision;
  if (decision !== 'allowed' && decision !== 'explicitDeny' && decision !== 'implicitDeny') {
    throw new DoctorCallError(
      'IAM',
      'SimulatePrincipalPolicy',
      'BadAnswer',
      200,
      `IAM SimulatePrincipalPolicy: no decision in the answer ` +
        `(${decision === undefined ? 'none' : JSON.stringify(decision)})`,
    );
  }
  return decision;
}

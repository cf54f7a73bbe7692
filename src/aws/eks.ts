/**
 * @module aws/eks
 * The EKS Pod Identity association of a service account (ListPodIdentityAssociations, then
 * DescribePodIdentityAssociation for its role), as signed REST calls: two small JSON answers do not
 * justify the EKS client. AWS_ENDPOINT_URL_EKS, else AWS_ENDPOINT_URL, points it elsewhere. For `doctor`.
 */
import type { AwsCredentials } from './call-context.js';
import { signedFetch } from './iam.js';

/** An EKS call EKS refused or that did not complete. */
export class EksCallError extends Error {
  constructor(
    readonly operation: 'ListPodIdentityAssociations' | 'DescribePodIdentityAssociation',
    /** EKS's error type (`ResourceNotFoundException`, `AccessDeniedException`), or `Network` / `BadAnswer`. */
    readonly awsCode: string,
    readonly status: number,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'EksCallError';
  }
}

async function get(
  operation: EksCallError['operation'],
  region: string,
  path: string,
  creds: AwsCredentials,
  env: Record<string, string | undefined>,
  signal: AbortSignal,
): Promise<Record<string, unknown>> {
  const base = env['AWS_ENDPOINT_URL_EKS'] || env['AWS_ENDPOINT_URL'] || `https://eks.${region}.amazonaws.com`;
  const url = new URL(path, base);
  let res: Response;
  try {
    res = await signedFetch('eks', region, url, { method: 'GET' }, creds, signal);
  } catch (err) {
    throw new EksCallError(
      operation,
      signal.aborted ? 'Timeout' : 'Network',
      0,
      `EKS ${operation}: ${url.host} could not be reached (${err instanceof Error ? err.message : String(err)})`,
      { cause: err },
    );
  }
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  const obj =
    body !== null && typeof body === 'object' && !Array.isArray(body) ? (body as Record<string, unknown>) : undefined;
  if (!res.ok) {
    const code = (res.headers.get('x-amzn-errortype') ?? '').split(':')[0] || `HTTP${res.status}`;
    throw new EksCallError(
      operation,
      code,
      res.status,
      `EKS ${operation}: ${code}: ${typeof obj?.['message'] === 'string' ? obj['message'] : res.statusText}`,
    );
  }
  if (obj === undefined)
    throw new EksCallError(operation, 'BadAnswer', res.status, `EKS ${operation}: the answer is not a JSON object`);
  return obj;
}

/** The role of the Pod Identity association of NS/SA in the cluster, or undefined when there is none. */
export async function podIdentityRole(
  cluster: string,
  region: string,
  namespace: string,
  serviceAccount: string,
  creds: AwsCredentials,
  env: Record<string, string | undefined>,
  signal: AbortSignal,
): Promise<{ associationId: string; roleArn: string } | undefined> {
  const c = encodeURIComponent(cluster);
  const q = new URLSearchParams({ namespace, serviceAccount }).toString();
  const list = await get(
    'ListPodIdentityAssociations',
    region,
    `/clusters/${c}/pod-identity-associations?${q}`,
    creds,
    env,
    signal,
  );
  const first = Array.isArray(list['associations']) ? (list['associations'] as unknown[])[0] : undefined;
  const id =
    first !== null && typeof first === 'object' ? (first as Record<string, unknown>)['associationId'] : undefined;
  if (typeof id !== 'string') return undefined;
  const one = await get(
    'DescribePodIdentityAssociation',
    region,
    `/clusters/${c}/pod-identity-associations/${encodeURIComponent(id)}`,
    creds,
    env,
    signal,
  );
  const a = one['association'];
  const roleArn = a !== null && typeof a === 'object' ? (a as Record<string, unknown>)['roleArn'] : undefined;
  return { associationId: id, roleArn: typeof roleArn === 'string' ? roleArn : '' };
}

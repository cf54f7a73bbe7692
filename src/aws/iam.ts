/**
 * @module aws/iam
 * The IAM reads `doctor` makes (GetRole, ListOpenIDConnectProviders, SimulatePrincipalPolicy), as
 * signed Query requests (SigV4 by the SDK's own signer) over fetch: three small XML answers do not
 * justify the IAM client,
 * and nothing of this module loads unless `doctor` runs. IAM is global: signed for us-east-1.
 * AWS_ENDPOINT_URL_IAM, else AWS_ENDPOINT_URL, points it elsewhere (the emulator), as the SDK does.
 */
import { createHash, createHmac, type Hash, type Hmac } from 'node:crypto';
import type { AwsCredentials } from './call-context.js';

/** Most bytes of an IAM answer read: a trust policy is at most a few KiB, a provider list small. */
const MAX_IAM_ANSWER_BYTES = 1024 * 1024;

/** An IAM call IAM refused or that did not complete: the operation, IAM's error code and message. */
export class IamCallError extends Error {
  constructor(
    readonly operation: 'GetRole' | 'ListOpenIDConnectProviders' | 'SimulatePrincipalPolicy',
    /** IAM's error code (`NoSuchEntity`, `AccessDenied`), or `Network` / `BadAnswer`. */
    readonly awsCode: string,
    /** HTTP status, 0 when no answer came. */
    readonly status: number,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'IamCallError';
  }
}

/** SHA-256 (HMAC with a key) in the shape the signer asks for. */
type SourceData = string | ArrayBuffer | ArrayBufferView;

function bytes(data: SourceData): Uint8Array | string {
  if (typeof data === 'string') return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

class Sha256 {
  #h: Hash | Hmac;
  readonly #key: Uint8Array | string | undefined;
  constructor(key?: SourceData) {
    this.#key = key === undefined ? undefined : bytes(key);
    this.#h = this.#key === undefined ? createHash('sha256') : createHmac('sha256', this.#key);
  }
  update(data: SourceData): void {
    this.#h.update(bytes(data));
  }
  digest(): Promise<Uint8Array> {
    return Promise.resolve(new Uint8Array(this.#h.digest()));
  }
  reset(): void {
    this.#h = this.#key === undefined ? createHash('sha256') : createHmac('sha256', this.#key);
  }
}

function endpoint(env: Record<string, string | undefined>): URL {
  return new URL(env['AWS_ENDPOINT_URL_IAM'] || env['AWS_ENDPOINT_URL'] || 'https://iam.amazonaws.com');
}

function xmlText(s: string): string {
  return s
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&#(\d+);/g, (_, n: string) => String.fromCodePoint(Number(n)))
    .replace(/&amp;/g, '&');
}

function tag(xml: string, name: string): string | undefined {
  const m = new RegExp(`<${name}>([\\s\\S]*?)</${name}>`).exec(xml);
  return m?.[1] === undefined ? undefined : xmlText(m[1]);
}

/** A request signed with SigV4 by the SDK's signer (loaded on first use), sent with fetch. */
export async function signedFetch(
  service: string,
  region: string,
  url: URL,
  init: { method: 'GET' | 'POST'; body?: string; headers?: Record<string, string> },
  creds: AwsCredentials,
  signal: AbortSignal,
): Promise<Response> {
  const { SignatureV4 } = await import('@smithy/signature-v4');
  const signer = new SignatureV4({
    service,
    region,
    sha256: Sha256,
    credentials: {
      accessKeyId: creds.accessKeyId,
      secretAccessKey: creds.secretAccessKey,
      ...(creds.sessionToken ? { sessionToken: creds.sessionToken } : {}),
    },
  });
  const query: Record<string, string> = {};
  for (const [k, v] of url.searchParams) query[k] = v;
  const signed = await signer.sign({
    method: init.method,
    protocol: url.protocol,
    hostname: url.hostname,
    ...(url.port !== '' ? { port: Number(url.port) } : {}),
    path: url.pathname === '' ? '/' : url.pathname,
    query,
    headers: { host: url.host, ...init.headers },
    ...(init.body !== undefined ? { body: init.body } : {}),
  });
  return fetch(url, {
    method: init.method,
    headers: signed.headers,
    ...(init.body !== undefined ? { body: init.body } : {}),
    signal,
  });
}

async function call(
  operation: IamCallError['operation'],
  params: Record<string, string>,
  creds: AwsCredentials,
  env: Record<string, string | undefined>,
  signal: AbortSignal,
): Promise<string> {
  const url = endpoint(env);
  const body = new URLSearchParams({ Action: operation, Version: '2010-05-08', ...params }).toString();
  let res: Response;
  try {
    res = await signedFetch(
      'iam',
      'us-east-1',
      url,
      { method: 'POST', body, headers: { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' } },
      creds,
      signal,
    );
  } catch (err) {
    if (signal.aborted)
      throw new IamCallError(operation, 'Timeout', 0, `IAM ${operation}: no answer in time`, { cause: err });
    throw new IamCallError(
      operation,
      'Network',
      0,
      `IAM ${operation}: ${url.host} could not be reached (${err instanceof Error ? err.message : String(err)})`,
      { cause: err },
    );
  }
  const text = await res.text();
  if (text.length > MAX_IAM_ANSWER_BYTES)
    throw new IamCallError(
      operation,
      'BadAnswer',
      res.status,
      `IAM ${operation}: an answer of ${text.length} bytes, larger than IAM's`,
    );
  if (!res.ok) {
    const code = tag(text, 'Code') ?? `HTTP${res.status}`;
    throw new IamCallError(
      operation,
      code,
      res.status,
      `IAM ${operation}: ${code}: ${tag(text, 'Message') ?? res.statusText}`,
    );
  }
  return text;
}

/** The role's ARN and trust policy (parsed JSON). Throws IamCallError (`NoSuchEntity` when absent). */
export async function getRole(
  roleName: string,
  creds: AwsCredentials,
  env: Record<string, string | undefined>,
  signal: AbortSignal,
): Promise<{ arn: string; trustPolicy: unknown }> {
  const xml = await call('GetRole', { RoleName: roleName }, creds, env, signal);
  const doc = tag(xml, 'AssumeRolePolicyDocument');
  let trustPolicy: unknown;
  try {
    trustPolicy = doc === undefined ? undefined : JSON.parse(decodeURIComponent(doc));
  } catch (err) {
    throw new IamCallError(
      'GetRole',
      'BadAnswer',
      200,
      `IAM GetRole: the trust policy of ${roleName} is not URL-encoded JSON`,
      { cause: err },
    );
  }
  return { arn: tag(xml, 'Arn') ?? '', trustPolicy };
}

/** The ARNs of the account's IAM OIDC providers (`arn:aws:iam::<acct>:oidc-provider/<host/path>`). */
export async function listOidcProviders(
  creds: AwsCredentials,
  env: Record<string, string | undefined>,
  signal: AbortSignal,
): Promise<string[]> {
  const xml = await call('ListOpenIDConnectProviders', {}, creds, env, signal);
  return [...xml.matchAll(/<Arn>([\s\S]*?)<\/Arn>/g)].map((m) => xmlText(m[1] ?? ''));
}

/** IAM's decision for one action on one resource by a role's identity policies. */
export type SimulatedDecision = 'allowed' | 'explicitDeny' | 'implicitDeny';

/**
 * SimulatePrincipalPolicy for one action on one resource: what the role's identity-based policies
 * decide (IAM does not include the secret's resource policy or the KMS key policy in it).
 */
export async function simulate(
  roleArn: string,
  action: string,
  resource: string,
  creds: AwsCredentials,
  env: Record<string, string | undefined>,
  signal: AbortSignal,
): Promise<SimulatedDecision> {
  const xml = await call(
    'SimulatePrincipalPolicy',
    { PolicySourceArn: roleArn, 'ActionNames.member.1': action, 'ResourceArns.member.1': resource },
    creds,
    env,
    signal,
  );
  // One action on one resource: the first decision is the one (resource-specific ones use another tag).
  const decision = tag(xml, 'EvalDecision');
  if (decision !== 'allowed' && decision !== 'explicitDeny' && decision !== 'implicitDeny') {
    throw new IamCallError(
      'SimulatePrincipalPolicy',
      'BadAnswer',
      200,
      `IAM SimulatePrincipalPolicy: no decision in the answer ` +
        `(${decision === undefined ? 'none' : JSON.stringify(decision)})`,
    );
  }
  return decision;
}

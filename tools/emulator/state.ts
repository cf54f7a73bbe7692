/**
 * @module emulator/state
 * Everything the emulator knows: roles and their access rules, credential sessions, per-region
 * secrets and parameters (with versions, stages and labels), and the Kubernetes objects.
 * Plain data plus the mutations the HTTP handlers and the programmatic API share.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { uidFor } from './jwt.js';

export const DEFAULT_ACCOUNT = '123456789012';
/** The issuer STS and the agent trust (the cluster's OIDC issuer). */
export const DEFAULT_ISSUER = 'https://oidc.eks.us-east-1.amazonaws.com/id/EMULATOR0000000000000000000000';

/** What a role may do. Patterns are names or ARNs; `*` matches any run of characters, `?` one. */
export interface RoleAllow {
  /** Secrets Manager secrets readable (GetSecretValue, and DescribeSecret unless `describeSecret: false`). */
  secretsmanager?: string[];
  /** SSM parameters readable (GetParameters / GetParameter). */
  ssm?: string[];
  /** Grants `secretsmanager:BatchGetSecretValue` on `*` (each secret still needs GetSecretValue). */
  batchGetSecretValue?: boolean;
  /** Default true: DescribeSecret on the readable secrets. False plays a least-privilege role. */
  describeSecret?: boolean;
  /** PutSecretValue, PutParameter, LabelParameterVersion on the readable names. Default false. */
  write?: boolean;
  /** iam:GetRole, iam:ListOpenIDConnectProviders and iam:SimulatePrincipalPolicy on every resource (what `doctor`
   * reads). Default false. */
  iamRead?: boolean;
  /** KMS key ARNs (patterns) the role may kms:Decrypt: needed to read a secret encrypted with one. */
  kms?: string[];
  /** kms:DescribeKey and kms:GetKeyPolicy on every key (what `doctor` reads). Default false. */
  kmsRead?: boolean;
  /** eks:ListPodIdentityAssociations and eks:DescribePodIdentityAssociation. Default false. */
  eksRead?: boolean;
  /** ssm:DescribeParameters (on `*`, as IAM grants it: it lists names, never values). Default false. */
  describeParameters?: boolean;
}

export interface RoleSpec {
  arn: string;
  /** Web identity trust (IRSA and Pod Identity): the token `sub` values, and the audience (default
   * `sts.amazonaws.com`). */
  trust?: { subjects: string[]; audience?: string };
  /** Role ARNs whose sessions may `sts:AssumeRole` into this one (role chaining). */
  trustedRoles?: string[];
  /** When set, AssumeRole must pass exactly this ExternalId. */
  externalId?: string;
  /** MaxSessionDuration of the role; default 3600. */
  maxSessionDurationSeconds?: number;
  /**
   * The trust policy GetRole returns, as given; by default the one `trust` and `trustedRoles` stand
   * for (emulator/iam.ts). STS still applies `trust`: a document given here is for `doctor` to read.
   */
  trustPolicy?: unknown;
  /**
   * False: the role does not trust the EKS Pod Identity service (pods.eks.amazonaws.com), and the
   * agent cannot assume it. Default: trusted, as `eksctl` and the console create such roles.
   */
  podIdentityTrust?: boolean;
  allow: RoleAllow;
}

/** Temporary credentials handed out by STS or the Pod Identity agent; lives until `expiresAtMs`. */
export interface Session {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
  roleArn: string;
  sessionName: string;
  expiresAtMs: number;
  /** Session tags (the agent sets EKS's `kubernetes-namespace`, … tags). */
  tags: Record<string, string>;
  source: 'AssumeRoleWithWebIdentity' | 'AssumeRole' | 'PodIdentity' | 'Direct';
}

export interface SecretVersion {
  versionId: string;
  string?: string;
  binary?: Buffer;
  stages: string[];
  createdMs: number;
}

export interface Secret {
  name: string;
  arn: string;
  /**
   * A customer managed KMS key, as DescribeSecret names it (a key ARN, or an alias of a key made by
   * addKmsKey): reading the value needs kms:Decrypt on the key. Absent: the AWS managed key.
   */
  kmsKeyId?: string | undefined;
  createdMs: number;
  lastChangedMs: number;
  kmsFails: boolean;
  versions: SecretVersion[];
}

export type ParameterType = 'String' | 'SecureString' | 'StringList';

export interface ParameterVersion {
  version: number;
  value: string;
  labels: string[];
  modifiedMs: number;
}

export interface Parameter {
  name: string;
  arn: string;
  type: ParameterType;
  kmsFails: boolean;
  /** A SecureString's customer managed KMS key, as for a secret; absent: `alias/aws/ssm`, the AWS managed key. */
  kmsKeyId?: string | undefined;
  versions: ParameterVersion[];
}

/** A KMS key: customer managed (addKmsKey, or named by a secret's or parameter's kmsKeyId) or AWS managed. */
export interface KmsKey {
  arn: string;
  /** `alias/<name>` */
  aliases: string[];
  manager: 'CUSTOMER' | 'AWS';
  /** `Enabled`; `Disabled` or `PendingDeletion` decrypt nothing. */
  state: 'Enabled' | 'Disabled' | 'PendingDeletion';
  /** The key policy (JSON text); absent: KMS's default, which lets the account's IAM policies decide. */
  policy?: string;
}

export interface RegionData {
  secrets: Map<string, Secret>;
  parameters: Map<string, Parameter>;
}

export class EmulatorError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
    this.name = 'EmulatorError';
  }
}

export function globToRegExp(pattern: string): RegExp {
  const body = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${body}$`);
}

export function matchesAny(patterns: readonly string[] | undefined, candidates: readonly string[]): boolean {
  if (patterns === undefined) return false;
  return patterns.some((p) => {
    const re = globToRegExp(p);
    return candidates.some((c) => re.test(c));
  });
}

/** `arn:aws:iam::123:role/path/name` → `name` (the assumed-role ARN uses the last path element). */
export function roleName(roleArn: string): string {
  const res = roleArn.split(':').slice(5).join(':');
  const parts = res.split('/');
  return parts[parts.length - 1] ?? res;
}

export function roleAccount(roleArn: string, fallback: string): string {
  const acct = roleArn.split(':')[4];
  return acct !== undefined && /^\d{12}$/.test(acct) ? acct : fallback;
}

export function assumedRoleArn(s: Pick<Session, 'roleArn' | 'sessionName'>, fallbackAccount: string): string {
  return `arn:aws:sts::${roleAccount(s.roleArn, fallbackAccount)}:assumed-role/${roleName(s.roleArn)}/${s.sessionName}`;
}

/** A stable `AROA…` role id, as IAM gives each role. */
export function roleId(roleArn: string): string {
  return 'AROA' + createHash('sha256').update(roleArn).digest('hex').slice(0, 17).toUpperCase();
}

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
function randomUpper(n: number): string {
  const bytes = randomBytes(n);
  let s = '';
  for (const b of bytes) s += ALNUM[b % 32];
  return s;
}

/** What the emulator keeps of a pod: enough for the provider's GET and for `doctor`'s reads. */
export interface PodRecord {
  nodeName: string;
  createdMs: number;
  labels: Record<string, string>;
  /** The Ready condition. */
  ready: boolean;
  serviceAccountName: string;
  /** `spec.volumes`, as given. */
  volumes: unknown[];
  /** `spec.containers`, as given (default: one `app` container). */
  containers: unknown[];
}

export class State {
  readonly roles = new Map<string, RoleSpec>();
  readonly sessions = new Map<string, Session>();
  readonly regions = new Map<string, RegionData>();
  readonly podIdentity = new Map<string, string>(); // "ns/sa" → role ARN
  readonly serviceAccounts = new Map<string, { annotations: Record<string, string>; createdMs: number }>();
  readonly pods = new Map<string, PodRecord>();
  readonly nodes = new Map<string, { labels: Record<string, string>; createdMs: number }>();
  /** IAM's OIDC providers, by issuer URL: STS accepts web identity tokens only from these. */
  readonly oidcProviders = new Set<string>([DEFAULT_ISSUER]);
  /** SecretProviderClass objects by `ns/name`: their spec, as given. */
  readonly secretProviderClasses = new Map<string, { spec: unknown; createdMs: number }>();
  /** KMS keys by ARN. */
  readonly kmsKeys = new Map<string, KmsKey>();
  /** CSIDriver objects by name (storage.k8s.io/v1). */
  readonly csiDrivers = new Map<
    string,
    { tokenRequests: { audience: string; expirationSeconds?: number }[] | undefined; createdMs: number }
  >();

  constructor(
    readonly accountId: string,
    readonly now: () => number,
  ) {}

  region(region: string): RegionData {
    let r = this.regions.get(region);
    if (r === undefined) {
      r = { secrets: new Map(), parameters: new Map() };
      this.regions.set(region, r);
    }
    return r;
  }

  createSession(
    roleArn: string,
    sessionName: string,
    durationSeconds: number,
    source: Session['source'],
    tags: Record<string, string> = {},
  ): Session {
    const s: Session = {
      accessKeyId: `ASIA${randomUpper(16)}`,
      secretAccessKey: randomBytes(30).toString('base64').slice(0, 40),
      sessionToken: `IQoJb3JpZ2luX2VjE${randomBytes(96).toString('base64')}`,
      roleArn,
      sessionName,
      expiresAtMs: this.now() + durationSeconds * 1000,
      tags,
      source,
    };
    this.sessions.set(s.accessKeyId, s);
    return s;
  }

  // ---- Secrets Manager ----

  /** Creates the secret, or adds a version (rotation: AWSCURRENT moves, the old current becomes AWSPREVIOUS). */
  putSecret(
    region: string,
    name: string,
    value: string | Uint8Array,
    o: {
      versionId?: string | undefined;
      stages?: string[] | undefined;
      kmsFails?: boolean | undefined;
      kmsKeyId?: string | undefined;
    } = {},
  ): { secret: Secret; version: SecretVersion } {
    const data = this.region(region);
    const now = this.now();
    let secret = data.secrets.get(name);
    if (secret === undefined) {
      secret = {
        name,
        arn: `arn:aws:secretsmanager:${region}:${this.accountId}:secret:${name}-${randomSuffix()}`,
        createdMs: now,
        lastChangedMs: now,
        kmsFails: o.kmsFails ?? false,
        versions: [],
      };
      data.secrets.set(name, secret);
    } else if (o.kmsFails !== undefined) {
      secret.kmsFails = o.kmsFails;
    }
    if (o.kmsKeyId !== undefined) {
      secret.kmsKeyId = o.kmsKeyId;
      this.keyNamedBy(o.kmsKeyId);
    }
    const versionId = o.versionId ?? randomUUID();
    if (secret.versions.some((v) => v.versionId === versionId)) {
      throw new EmulatorError(
        'ResourceExistsException',
        `You can't modify an existing version, you can only create a new version.`,
      );
    }
    const stages = o.stages ?? ['AWSCURRENT'];
    const version: SecretVersion = { versionId, stages: [], createdMs: now };
    if (typeof value === 'string') version.string = value;
    else version.binary = Buffer.from(value);
    for (const stage of stages) this.moveStage(secret, version, stage);
    secret.versions.push(version);
    // Versions left without any stage are deprecated; AWS drops them eventually. Keep them readable by id.
    secret.lastChangedMs = now;
    return { secret, version };
  }

  private moveStage(secret: Secret, to: SecretVersion, stage: string): void {
    for (const v of secret.versions) {
      if (v === to || !v.stages.includes(stage)) continue;
      v.stages = v.stages.filter((s) => s !== stage);
      if (stage === 'AWSCURRENT') {
        for (const p of secret.versions) p.stages = p.stages.filter((s) => s !== 'AWSPREVIOUS');
        v.stages.push('AWSPREVIOUS');
      }
    }
    if (!to.stages.includes(stage)) to.stages.push(stage);
  }

  /**
   * SecretId → secret: a name, a full ARN, or a partial ARN (without the `-xxxxxx` suffix). An ARN
   * of another region or account finds nothing.
   */
  findSecret(region: string, secretId: string): Secret | undefined {
    const data = this.region(region);
    if (!secretId.startsWith('arn:')) return data.secrets.get(secretId);
    const prefix = `arn:aws:secretsmanager:${region}:${this.accountId}:secret:`;
    if (!secretId.startsWith(prefix)) return undefined;
    const rest = secretId.slice(prefix.length);
    for (const s of data.secrets.values()) {
      if (s.arn === secretId || s.name === rest) return s;
    }
    return undefined;
  }

  // ---- SSM ----

  putParameter(
    region: string,
    name: string,
    value: string,
    o: {
      type?: ParameterType | undefined;
      labels?: string[] | undefined;
      kmsFails?: boolean | undefined;
      kmsKeyId?: string | undefined;
      overwrite?: boolean;
    } = {},
  ): { parameter: Parameter; version: ParameterVersion } {
    const data = this.region(region);
    let p = data.parameters.get(name);
    if (p !== undefined && o.overwrite === false) {
      throw new EmulatorError(
        'ParameterAlreadyExists',
        'The parameter already exists. To overwrite this value, set the overwrite option in the request to true.',
      );
    }
    if (p === undefined) {
      p = {
        name,
        arn: parameterArn(region, this.accountId, name),
        type: o.type ?? 'String',
        kmsFails: o.kmsFails ?? false,
        versions: [],
      };
      data.parameters.set(name, p);
    } else {
      if (o.type !== undefined) p.type = o.type;
      if (o.kmsFails !== undefined) p.kmsFails = o.kmsFails;
    }
    if (o.kmsKeyId !== undefined) {
      p.kmsKeyId = o.kmsKeyId;
      this.keyNamedBy(o.kmsKeyId);
    }
    const version: ParameterVersion = { version: p.versions.length + 1, value, labels: [], modifiedMs: this.now() };
    p.versions.push(version);
    for (const label of o.labels ?? []) this.labelParameter(p, version, label);
    return { parameter: p, version };
  }

  // ---- KMS ----

  /** A key ARN a secret or parameter names exists from then on, as a customer managed key (as if created for it). */
  private keyNamedBy(keyId: string): void {
    if (/^arn:[^:]+:kms:[^:]+:\d{12}:key\/.+$/.test(keyId) && !this.kmsKeys.has(keyId))
      this.kmsKeys.set(keyId, { arn: keyId, aliases: [], manager: 'CUSTOMER', state: 'Enabled' });
  }

  /**
   * The key a KeyId names in `region`, as KMS resolves it: a key ARN, a key ID, an alias name
   * (`alias/x`) or an alias ARN. `alias/aws/secretsmanager` and `alias/aws/ssm` are the region's
   * AWS managed keys, made on first use.
   */
  findKmsKey(region: string, keyId: string): KmsKey | undefined {
    const prefix = `arn:aws:kms:${region}:${this.accountId}:`;
    const local = keyId.startsWith(prefix) ? keyId.slice(prefix.length) : keyId.startsWith('arn:') ? undefined : keyId;
    if (local === undefined) return undefined;
    if (/^alias\/aws\/(secretsmanager|ssm)$/.test(local)) {
      const arn = `${prefix}key/${uidFor(`kms/${region}/${local}`)}`;
      let key = this.kmsKeys.get(arn);
      if (key === undefined) {
        key = { arn, aliases: [local], manager: 'AWS', state: 'Enabled' };
        this.kmsKeys.set(arn, key);
      }
      return key;
    }
    const id = local.startsWith('key/') ? local : local.startsWith('alias/') ? undefined : `key/${local}`;
    for (const key of this.kmsKeys.values()) {
      if (!key.arn.startsWith(prefix)) continue;
      if (id !== undefined ? key.arn === `${prefix}${id}` : key.aliases.includes(local)) return key;
    }
    return undefined;
  }

  labelParameter(p: Parameter, to: ParameterVersion, label: string): void {
    for (const v of p.versions) v.labels = v.labels.filter((l) => l !== label);
    to.labels.push(label);
  }

  /** A name or `arn:aws:ssm:<region>:<acct>:parameter/<name>` (leading `/` dropped in the ARN, as AWS does). */
  findParameter(region: string, nameOrArn: string): Parameter | undefined {
    const data = this.region(region);
    if (!nameOrArn.startsWith('arn:')) return data.parameters.get(nameOrArn);
    const prefix = `arn:aws:ssm:${region}:${this.accountId}:parameter/`;
    if (!nameOrArn.startsWith(prefix)) return undefined;
    const rest = nameOrArn.slice(prefix.length);
    return data.parameters.get(rest) ?? data.parameters.get(`/${rest}`);
  }
}

export function parameterArn(region: string, account: string, name: string): string {
  return `arn:aws:ssm:${region}:${account}:parameter/${name.startsWith('/') ? name.slice(1) : name}`;
}

function randomSuffix(): string {
  const chars = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
  let s = '';
  for (const b of randomBytes(6)) s += chars[b % chars.length];
  return s;
}

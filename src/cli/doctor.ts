/**
 * @module cli/doctor
 * `doctor --class FILE --namespace NS --service-account SA`: why a pod's secrets would not mount,
 * found before a pod fails; `doctor --pod NS/NAME` reads the pod, its service account and the
 * SecretProviderClass of each secrets-store volume from the cluster (and checks the provider on
 * the pod's node, the region from the node's label when the class sets none). Runs with the
 * operator's own AWS credentials (the standard chain, as `mount`) and kubeconfig, and checks, each
 * PASS / WARN / FAIL / SKIP with the cause and the fix:
 * the class (everything `check` checks, through the same code); the driver's CSIDriver asks for a
 * token with the audience the class needs; a provider pod is ready; for IRSA the service account's
 * role annotation, the role, the cluster's issuer registered as an IAM OIDC provider, and the
 * role's trust policy for `system:serviceaccount:NS:SA` with audience sts.amazonaws.com; for Pod
 * Identity the cluster's association for NS/SA (the cluster: --cluster, else the name the cluster's
 * EKS Pod Identity agent is given); with role chaining, the chained role's trust of the pod's role
 * and the class's ExternalId; every object exists in its region
 * (and the failover region), asked without reading its value, and IAM's policy simulation lets the
 * reading role (IRSA's, the association's, or the chained one) make the provider's call on it, and
 * kms:Decrypt with the customer managed key of a secret or SecureString parameter (the key as KMS
 * resolves the name the object gives). IAM, EKS and KMS are called through the SDK's clients, which
 * only this command loads (aws/doctor-reads.ts).
 * A check that cannot be made (a permission the operator lacks) is a WARN, not a FAIL: only what
 * is known to break a mount fails. Exit 0 without failures, 1 with any, 2 on usage.
 *
 * Never prints a value or a token: no value is read (DescribeSecret, DescribeParameters), and
 * messages name objects, roles and service accounts only.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { AwsClientFactory, loadDoctorReads, type AwsCredentials } from '../aws/index.js';
import { ConfigError, ProviderError } from '../errors.js';
import {
  evaluateAssumeRoleTrust,
  evaluatePodIdentityTrust,
  evaluateKeyPolicy,
  evaluateWebIdentityTrust,
  type KeyPolicyVerdict,
  operatorCredentials,
} from '../identity/index.js';
import { isRoleArn, KubeClient, loadKubeConfig, quoteValue, REGION_LABEL, ROLE_ARN_ANNOTATION } from '../k8s/index.js';
import {
  ATTR,
  IRSA_AUDIENCE,
  parseAttributes,
  parseObjects,
  POD_IDENTITY_AUDIENCE,
  type MountAttributes,
  type SecretDescriptor,
} from '../spc/index.js';
import { appId } from '../version.js';
import { checkManifest } from './check.js';
import type { CommandIO } from './io.js';
import { parseManifests, spcFields } from './manifests.js';

/** The name the Secrets Store CSI driver registers (its CSIDriver object and the pods' volumes). */
export const DRIVER_NAME = 'secrets-store.csi.k8s.io';
/** Labels of the provider's pods in manifests/deployment/provider-installer.yaml and the chart. */
export const DEFAULT_PROVIDER_SELECTOR = 'app.kubernetes.io/name=csi-secrets-provider-aws';

const USAGE = `Usage: doctor --class FILE --namespace NS --service-account SA [options]
       doctor --pod NS/NAME [options]

Says why a pod's secrets would not mount, before deploying: checks the SecretProviderClass, the
CSI driver's token requests, the provider pods, the IRSA role and its trust policy (or the Pod
Identity association), and that every object exists and the role may read and decrypt it, with
your own AWS credentials and kubeconfig. Reads no secret value.

Options:
  --class FILE              manifest holding the SecretProviderClass (required)
  --name NAME               which SecretProviderClass, when FILE holds several
  --namespace NS            the pod's namespace (required)
  --service-account SA      the pod's service account (required)
  --pod NS/NAME             instead of the three above: a pod of the cluster, its service account,
                            node and the SecretProviderClass of each of its secrets-store volumes
  --region REGION           region when the class sets none (default: env AWS_REGION)
  --issuer URL              the cluster's OIDC issuer (default: read from the API server)
  --cluster NAME            the EKS cluster's name: checks the Pod Identity association (usePodIdentity)
                            (default: the --cluster-name of the cluster's EKS Pod Identity agent)
  --provider-selector SEL   labels of the provider's pods (default ${DEFAULT_PROVIDER_SELECTOR})
  --format text|json        output (default text)
  --timeout SECONDS         give up after this long (default 60)

Exit status: 0 nothing failed, 1 a check failed, 2 usage.
Environment: AWS credentials as for mount (AWS_ACCESS_KEY_ID…, AWS_PROFILE); KUBECONFIG;
AWS_ENDPOINT_URL[_<SERVICE>] (e.g. the emulator).
`;

export type Status = 'PASS' | 'WARN' | 'FAIL' | 'SKIP';

export interface CheckResult {
  /** Which check: `class`, `csi-driver`, `provider`, `service-account`, `aws-credentials`, `iam-role`, `oidc-provider`,
   * `trust-policy`, `object`, … */
  check: string;
  status: Status;
  /** What was checked: the class, the role, `secretsmanager prod/db in us-east-1`. */
  subject: string;
  /** What was found. */
  cause: string;
  /** What to do; '' on PASS. */
  fix: string;
}

export interface DoctorReport {
  checks: CheckResult[];
  summary: Record<Lowercase<Status>, number>;
}

export interface DoctorOptions {
  classFile: string;
  name: string | undefined;
  namespace: string;
  serviceAccount: string;
  region: string | undefined;
  issuer: string | undefined;
  /** The EKS cluster's name, for its Pod Identity associations. */
  cluster: string | undefined;
  providerSelector: string;
  format: 'text' | 'json';
  timeoutMs: number;
  /** --pod NS/NAME: the pod, its service account and classes read from the cluster (classFile, namespace,
   * serviceAccount unused). */
  pod: { namespace: string; name: string } | undefined;
}

/** A usage mistake (exit 2): a class file that cannot be read, or that holds no single class to check. */
export class DoctorUsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DoctorUsageError';
  }
}

type Parsed = { kind: 'run'; options: DoctorOptions } | { kind: 'help' } | { kind: 'error'; message: string };

const FLAGS = new Set([
  'class',
  'name',
  'namespace',
  'service-account',
  'pod',
  'region',
  'issuer',
  'cluster',
  'provider-selector',
  'format',
  'timeout',
]);

export function parseDoctorArgs(argv: readonly string[]): Parsed {
  const values = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === '--help' || arg === '-h') return { kind: 'help' };
    if (!arg.startsWith('--')) return { kind: 'error', message: `unexpected argument ${JSON.stringify(arg)}` };
    const body = arg.slice(2);
    const eq = body.indexOf('=');
    const name = eq >= 0 ? body.slice(0, eq) : body;
    if (!FLAGS.has(name)) return { kind: 'error', message: `unknown option --${name}` };
    const value = eq >= 0 ? body.slice(eq + 1) : argv[++i];
    if (value === undefined) return { kind: 'error', message: `--${name} needs a value` };
    values.set(name, value);
  }
  const podArg = values.get('pod');
  let pod: DoctorOptions['pod'];
  if (podArg !== undefined) {
    const m = /^([^/\s]+)\/([^/\s]+)$/.exec(podArg);
    if (m === null) return { kind: 'error', message: `--pod must be NAMESPACE/NAME, got ${JSON.stringify(podArg)}` };
    const extra = ['class', 'name', 'namespace', 'service-account'].filter((n) => values.has(n));
    if (extra.length > 0)
      return {
        kind: 'error',
        message:
          `--pod reads the class, namespace and service account from the cluster: ` +
          `drop ${extra.map((n) => `--${n}`).join(', ')}`,
      };
    pod = { namespace: m[1] ?? '', name: m[2] ?? '' };
  } else {
    const missing = ['class', 'namespace', 'service-account'].filter((n) => (values.get(n) ?? '') === '');
    if (missing.length > 0)
      return { kind: 'error', message: `missing ${missing.map((n) => `--${n}`).join(', ')} (or --pod NS/NAME)` };
  }
  const format = values.get('format') ?? 'text';
  if (format !== 'text' && format !== 'json')
    return { kind: 'error', message: `--format must be text or json, got ${JSON.stringify(format)}` };
  const timeout = values.get('timeout') ?? '60';
  if (!/^\d+(\.\d+)?$/.test(timeout) || Number(timeout) <= 0)
    return { kind: 'error', message: `--timeout must be a positive number of seconds, got ${JSON.stringify(timeout)}` };
  const issuer = values.get('issuer');
  if (issuer !== undefined && !/^https:\/\/[^\s/]+(\/\S*)?$/.test(issuer))
    return { kind: 'error', message: `--issuer must be an https:// URL, got ${JSON.stringify(issuer)}` };
  return {
    kind: 'run',
    options: {
      classFile: values.get('class') ?? '',
      name: values.get('name'),
      namespace: values.get('namespace') ?? '',
      serviceAccount: values.get('service-account') ?? '',
      region: values.get('region'),
      issuer,
      cluster: values.get('cluster'),
      providerSelector: values.get('provider-selector') ?? DEFAULT_PROVIDER_SELECTOR,
      format,
      timeoutMs: Number(timeout) * 1000,
      pod,
    },
  };
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** `https://oidc.eks…/id/X/` → `oidc.eks…/id/X`: the IAM OIDC provider's name and the condition keys' prefix. */
export function issuerHost(issuer: string): string {
  return issuer.replace(/^https:\/\//, '').replace(/\/+$/, '');
}

interface LoadedClass {
  label: string;
  results: CheckResult[];
  attrs: MountAttributes | undefined;
}

/** Where the pod is, once known: its namespace, service account, node and the node's region label. */
interface Who {
  namespace: string;
  serviceAccount: string;
  /** --pod only. */
  nodeName?: string | undefined;
  nodeRegion?: string | undefined;
}

/**
 * The class in `text` (a file, or the cluster's object as JSON): `check`'s findings for it, then its
 * attributes as the provider parses them. `checkHint` is how to see every finding.
 */
function loadClassText(text: string, file: string, name: string | undefined, who: Who, checkHint: string): LoadedClass {
  const mf = parseManifests(text, file);
  const all = mf.objects.filter((x) => x.kind === 'SecretProviderClass');
  const classes = all.filter((x) => name === undefined || x.name === name);
  if (classes.length !== 1) {
    const why = mf.errors[0] !== undefined ? `: ${mf.errors[0].message}` : '';
    throw new DoctorUsageError(
      classes.length === 0
        ? `no SecretProviderClass${name !== undefined ? ` named ${JSON.stringify(name)}` : ''} in ${file}${why}` +
            (all.length > 0 ? ` (found: ${all.map((x) => x.name).join(', ')})` : '')
        : `${file} holds several SecretProviderClasses (${all.map((x) => x.name).join(', ')}): choose one with --name`,
    );
  }
  const spc = classes[0]!;
  const label = spc.namespace !== '' ? `${spc.namespace}/${spc.name}` : spc.name;
  // The same rules as `check`, run by its own code: findings of this class and of the file itself.
  const { findings } = checkManifest(text, file);
  const mine = findings.filter((f) => f.name === label || f.document === null);
  const errors = mine.filter((f) => f.severity === 'error');
  const warnings = mine.filter((f) => f.severity === 'warning');
  const where = (f: (typeof mine)[number]): string =>
    `${f.path !== '' ? `${f.path}: ` : ''}${f.message}${f.line !== null ? ` (line ${f.line})` : ''}`;
  const results: CheckResult[] = [];
  const fixAll = `${checkHint} for every finding with its position`;
  if (errors.length > 0) {
    results.push({
      check: 'class',
      status: 'FAIL',
      subject: label,
      cause: `${errors.length === 1 ? '1 error' : `${errors.length} errors`}, first: ${where(errors[0]!)}`,
      fix: fixAll,
    });
  } else if (warnings.length > 0) {
    results.push({
      check: 'class',
      status: 'WARN',
      subject: label,
      cause: `${warnings.length === 1 ? '1 warning' : `${warnings.length} warnings`}, first: ${where(warnings[0]!)}`,
      fix: fixAll,
    });
  } else {
    results.push({ check: 'class', status: 'PASS', subject: label, cause: 'passes every rule of `check`', fix: '' });
  }
  const fields = spcFields(spc);
  let attrs: MountAttributes | undefined;
  if (fields.provider === 'aws' && fields.problems.length === 0) {
    try {
      attrs = parseAttributes(
        JSON.stringify({
          ...fields.parameters,
          [ATTR.secretProviderClass]: spc.name,
          [ATTR.podName]: 'doctor',
          [ATTR.podNamespace]: who.namespace,
          [ATTR.podUid]: '00000000-0000-4000-8000-000000000000',
          [ATTR.serviceAccountName]: who.serviceAccount,
        }),
      );
    } catch (err) {
      // Already a FAIL above (check runs the same parser); the checks that need the class are skipped.
      if (!(err instanceof ConfigError)) throw err;
    }
  }
  return { label, results, attrs };
}

async function loadClassFile(o: DoctorOptions, io: CommandIO, who: Who): Promise<LoadedClass> {
  let text: string;
  try {
    text = await readFile(path.resolve(io.cwd, o.classFile), 'utf8');
  } catch (err) {
    throw new DoctorUsageError(`cannot read ${o.classFile} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  return loadClassText(text, o.classFile, o.name, who, `run \`check ${o.classFile}\``);
}

/** The provider's rule (docs/behaviour.md, "Region"), with --region in place of the provider's AWS_REGION. */
function regionOf(attrs: MountAttributes, o: DoctorOptions, io: CommandIO, who: Who): string {
  if (attrs.region !== '') return attrs.region;
  return o.region ?? io.env['AWS_REGION'] ?? who.nodeRegion ?? '';
}

function skip(check: string, subject: string, cause: string): CheckResult {
  return { check, status: 'SKIP', subject, cause, fix: '' };
}

/** The driver's CSIDriver requests a token for the audience the class's identity uses. */
async function checkCsiDriver(kube: KubeClient, audience: string, signal: AbortSignal): Promise<CheckResult> {
  const subject = `CSIDriver ${DRIVER_NAME}`;
  try {
    const d = await kube.getCsiDriver(DRIVER_NAME, signal);
    const audiences = (d.tokenRequests ?? []).map((t) => t.audience);
    if (audiences.includes(audience))
      return {
        check: 'csi-driver',
        status: 'PASS',
        subject,
        cause: `tokenRequests include audience ${audience}`,
        fix: '',
      };
    return {
      check: 'csi-driver',
      status: 'FAIL',
      subject,
      cause:
        d.tokenRequests === undefined
          ? `has no tokenRequests: the driver passes the provider no token, every mount fails`
          : `tokenRequests have audiences ${audiences.map((a) => JSON.stringify(a)).join(', ') || 'none'}, ` +
            `not ${audience}: the driver passes no token for it`,
      fix:
        `install the driver with a token request for ${audience} (helm: --set ` +
        `tokenRequests[0].audience=${audience})`,
    };
  } catch (err) {
    if (err instanceof ProviderError && err.code === 'NOT_FOUND') {
      return {
        check: 'csi-driver',
        status: 'FAIL',
        subject,
        cause: 'not found: the Secrets Store CSI driver is not installed',
        fix: `install the driver (chart secrets-store-csi-driver) with tokenRequests[0].audience=${audience}`,
      };
    }
    return {
      check: 'csi-driver',
      status: 'WARN',
      subject,
      cause: `could not be read: ${errorText(err)}`,
      fix: 'run doctor with a kubeconfig allowed to get csidrivers',
    };
  }
}

/** A provider pod is ready: on the pod's node with --pod, else on some node (it runs as a DaemonSet). */
async function checkProvider(
  kube: KubeClient,
  selector: string,
  nodeName: string | undefined,
  signal: AbortSignal,
): Promise<CheckResult> {
  const subject = nodeName === undefined ? `pods ${selector}` : `pods ${selector} on ${nodeName}`;
  try {
    const all = await kube.listPods(selector, signal);
    const pods = nodeName === undefined ? all : all.filter((p) => p.nodeName === nodeName);
    const ready = pods.filter((p) => p.ready);
    if (ready.length > 0) {
      const nodes = new Set(ready.map((p) => p.nodeName));
      return {
        check: 'provider',
        status: 'PASS',
        subject,
        cause: `${ready.length} of ${pods.length} ready, on ${nodes.size === 1 ? '1 node' : `${nodes.size} nodes`}`,
        fix: '',
      };
    }
    if (pods.length === 0 && all.length > 0) {
      return {
        check: 'provider',
        status: 'FAIL',
        subject,
        cause: `no provider pod on the pod's node (${all.length} on other nodes): the driver finds no provider there`,
        fix:
          `see whether the provider's DaemonSet tolerates the node's taints and matches its nodeSelector ` +
          `(kubectl describe node ${nodeName ?? ''})`,
      };
    }
    if (pods.length === 0) {
      return {
        check: 'provider',
        status: 'FAIL',
        subject,
        cause: 'no provider pod: nothing answers the driver, every mount fails',
        fix:
          'install the provider (manifests/deployment/provider-installer.yaml or the chart), or pass ' +
          '--provider-selector with its labels',
      };
    }
    const first = pods[0]!;
    return {
      check: 'provider',
      status: 'FAIL',
      subject,
      cause: `${pods.length} provider pods, none ready`,
      fix: `see why: kubectl -n ${first.namespace} describe pod ${first.name}`,
    };
  } catch (err) {
    return {
      check: 'provider',
      status: 'WARN',
      subject,
      cause: `could not be listed: ${errorText(err)}`,
      fix: 'run doctor with a kubeconfig allowed to list pods in all namespaces',
    };
  }
}

interface IrsaContext {
  o: DoctorOptions;
  who: Who;
  io: CommandIO;
  kube: KubeClient | undefined;
  creds: AwsCredentials | undefined;
  /** The run's AWS clients (one shared HTTP agent; closed when the run ends). */
  clients: AwsClientFactory;
  signal: AbortSignal;
  /** Set by checkIrsa: the annotated role, once it is known not to be missing (for the access checks). */
  irsaRole?: string | undefined;
  /** Set by checkPodIdentity: the associated role. */
  podIdentityRole?: string | undefined;
}

/** The service account's role annotation, then (with AWS) the role, the OIDC provider and the trust policy. */
async function checkIrsa(c: IrsaContext): Promise<CheckResult[]> {
  const { o, who, signal } = c;
  const sa = `${who.namespace}/${who.serviceAccount}`;
  const out: CheckResult[] = [];
  let roleArn: string | undefined;
  if (c.kube === undefined) {
    out.push(skip('service-account', sa, 'Kubernetes not reachable'));
    return out;
  }
  try {
    const { annotations } = await c.kube.getServiceAccount(who.namespace, who.serviceAccount, signal);
    const value = annotations[ROLE_ARN_ANNOTATION];
    const annotate =
      `kubectl -n ${who.namespace} annotate ` +
      `serviceaccount ${who.serviceAccount} --overwrite ${ROLE_ARN_ANNOTATION}=arn:aws:iam::<account>:role/<name>`;
    if (value === undefined || value === '') {
      out.push({
        check: 'service-account',
        status: 'FAIL',
        subject: sa,
        cause: `no ${ROLE_ARN_ANNOTATION} annotation: IRSA has no role to assume`,
        fix: annotate,
      });
    } else if (!isRoleArn(value)) {
      out.push({
        check: 'service-account',
        status: 'FAIL',
        subject: sa,
        cause: `${ROLE_ARN_ANNOTATION} is ${quoteValue(value)}, not an IAM role ARN`,
        fix: annotate,
      });
    } else {
      roleArn = value;
      out.push({
        check: 'service-account',
        status: 'PASS',
        subject: sa,
        cause: `${ROLE_ARN_ANNOTATION}: ${value}`,
        fix: '',
      });
    }
  } catch (err) {
    if (err instanceof ProviderError && err.code === 'NOT_FOUND') {
      out.push({
        check: 'service-account',
        status: 'FAIL',
        subject: sa,
        cause: 'not found',
        fix:
          `create it: kubectl -n ${who.namespace} create serviceaccount ${who.serviceAccount}, annotated ` +
          `with ${ROLE_ARN_ANNOTATION}`,
      });
    } else {
      out.push({
        check: 'service-account',
        status: 'WARN',
        subject: sa,
        cause: `could not be read: ${errorText(err)}`,
        fix: 'run doctor with a kubeconfig allowed to get serviceaccounts',
      });
    }
  }
  if (roleArn === undefined) return out;
  const roleName = roleArn.slice(roleArn.lastIndexOf('/') + 1);
  const account = roleArn.split(':')[4] ?? '';
  const partition = roleArn.split(':')[1] ?? 'aws';
  if (c.creds === undefined) {
    out.push(skip('iam-role', roleArn, 'no AWS credentials'));
    return out;
  }
  const { getRole, DoctorCallError, listOidcProviders } = await loadDoctorReads();
  let trustPolicy: unknown;
  let roleKnown = false;
  try {
    const role = await getRole(c.clients, roleArn, c.creds, signal);
    trustPolicy = role.trustPolicy;
    roleKnown = true;
    if (role.arn !== '' && role.arn !== roleArn) {
      out.push({
        check: 'iam-role',
        status: 'FAIL',
        subject: roleArn,
        cause: `your account's role ${roleName} is ${role.arn}: the annotation names another path or account`,
        fix: `annotate the service account with ${role.arn}`,
      });
      return out;
    }
    out.push({ check: 'iam-role', status: 'PASS', subject: roleArn, cause: 'exists', fix: '' });
    c.irsaRole = roleArn;
  } catch (err) {
    if (err instanceof DoctorCallError && err.awsCode === 'NoSuchEntityException') {
      out.push({
        check: 'iam-role',
        status: 'FAIL',
        subject: roleArn,
        cause: `no role ${roleName} in the account of your credentials`,
        fix:
          `create the role, or annotate the service account with the ARN of an existing one (run doctor with ` +
          `credentials of account ${account})`,
      });
      return out;
    }
    out.push({
      check: 'iam-role',
      status: 'WARN',
      subject: roleArn,
      cause: `could not be read: ${errorText(err)}`,
      fix: 'run doctor with credentials allowed iam:GetRole and iam:ListOpenIDConnectProviders',
    });
    c.irsaRole = roleArn;
  }
  // The issuer: given, else the API server's discovery document.
  let issuer = o.issuer;
  if (issuer === undefined) {
    try {
      issuer = await c.kube.getIssuer(signal);
    } catch (err) {
      out.push({
        check: 'oidc-provider',
        status: 'WARN',
        subject: 'cluster issuer',
        cause: `could not be read from the API server: ${errorText(err)}`,
        fix: 'pass --issuer (aws eks describe-cluster --name <cluster> --query cluster.identity.oidc.issuer)',
      });
    }
  }
  if (issuer === undefined || issuer === '') return out;
  const host = issuerHost(issuer);
  const providerArn = `arn:${partition}:iam::${account}:oidc-provider/${host}`;
  try {
    const providers = await listOidcProviders(c.clients, partition, c.creds, signal);
    if (providers.includes(providerArn)) {
      out.push({
        check: 'oidc-provider',
        status: 'PASS',
        subject: 'cluster issuer',
        cause: `${issuer} is registered in IAM as ${providerArn}`,
        fix: '',
      });
    } else {
      out.push({
        check: 'oidc-provider',
        status: 'FAIL',
        subject: 'cluster issuer',
        cause:
          `${issuer} is not an IAM OIDC provider of account ${account}: STS refuses every IRSA token of this ` +
          `cluster`,
        fix:
          'eksctl utils associate-iam-oidc-provider --cluster <cluster> --approve (or aws iam ' +
          'create-open-id-connect-provider)',
      });
    }
  } catch (err) {
    out.push({
      check: 'oidc-provider',
      status: 'WARN',
      subject: 'cluster issuer',
      cause: `${issuer}: IAM's OIDC providers could not be listed: ${errorText(err)}`,
      fix: 'run doctor with credentials allowed iam:ListOpenIDConnectProviders',
    });
  }
  if (!roleKnown) return out;
  const subject = `system:serviceaccount:${who.namespace}:${who.serviceAccount}`;
  const verdict = evaluateWebIdentityTrust(trustPolicy, {
    providerArn,
    issuerHost: host,
    subject,
    audience: IRSA_AUDIENCE,
  });
  const wanted =
    `a statement allowing sts:AssumeRoleWithWebIdentity for Federated ${providerArn} with ` +
    `StringEquals ${host}:sub = ${subject} and ${host}:aud = ${IRSA_AUDIENCE}`;
  if (verdict.outcome === 'allowed') {
    out.push({
      check: 'trust-policy',
      status: 'PASS',
      subject: roleName,
      cause: `trusts ${subject} with audience ${IRSA_AUDIENCE}`,
      fix: '',
    });
  } else if (verdict.outcome === 'undecided') {
    out.push({
      check: 'trust-policy',
      status: 'WARN',
      subject: roleName,
      cause: `may trust ${subject}: ${verdict.reason}`,
      fix: `make sure the conditions hold for the pod, or use ${wanted}`,
    });
  } else {
    out.push({
      check: 'trust-policy',
      status: 'FAIL',
      subject: roleName,
      cause: `does not let ${subject} in: ${verdict.reason}`,
      fix: `the trust policy needs ${wanted}`,
    });
  }
  return out;
}

/** The associated role exists and trusts the EKS Pod Identity service. */
async function checkPodIdentityTrust(
  c: IrsaContext & { creds: AwsCredentials },
  roleArn: string,
): Promise<CheckResult> {
  const { getRole, DoctorCallError } = await loadDoctorReads();
  const name = roleArn.slice(roleArn.lastIndexOf('/') + 1);
  let policy: unknown;
  try {
    policy = (await getRole(c.clients, roleArn, c.creds, c.signal)).trustPolicy;
  } catch (err) {
    if (err instanceof DoctorCallError && err.awsCode === 'NoSuchEntityException') {
      return {
        check: 'pod-identity-trust',
        status: 'FAIL',
        subject: roleArn,
        cause: `no role ${name} in the account of your credentials: the agent cannot assume it`,
        fix: 'create the role, or associate an existing one',
      };
    }
    return {
      check: 'pod-identity-trust',
      status: 'WARN',
      subject: roleArn,
      cause: `could not be read: ${errorText(err)}`,
      fix: 'run doctor with credentials allowed iam:GetRole',
    };
  }
  const verdict = evaluatePodIdentityTrust(policy);
  const wanted = 'a statement allowing sts:AssumeRole and sts:TagSession for Principal Service pods.eks.amazonaws.com';
  if (verdict.outcome === 'allowed')
    return {
      check: 'pod-identity-trust',
      status: 'PASS',
      subject: roleArn,
      cause: 'trusts pods.eks.amazonaws.com (sts:AssumeRole, sts:TagSession)',
      fix: '',
    };
  if (verdict.outcome === 'undecided')
    return {
      check: 'pod-identity-trust',
      status: 'WARN',
      subject: roleArn,
      cause: verdict.reason,
      fix: `make sure they hold, or use ${wanted}`,
    };
  return {
    check: 'pod-identity-trust',
    status: 'FAIL',
    subject: roleArn,
    cause: `the agent cannot assume it: ${verdict.reason}`,
    fix: `the trust policy of ${name} needs ${wanted}`,
  };
}

/** Labels of the EKS Pod Identity agent's pods, as its Helm chart sets them. */
export const POD_IDENTITY_AGENT_SELECTOR = 'app.kubernetes.io/name=eks-pod-identity-agent';

/** The value of `--flag X` or `--flag=X` in a container's args. */
function flagValue(args: readonly string[], flag: string): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const a = args[i] ?? '';
    if (a === `--${flag}`) return args[i + 1];
    if (a.startsWith(`--${flag}=`)) return a.slice(flag.length + 3);
  }
  return undefined;
}

/**
 * The EKS cluster's name, as the cluster's own EKS Pod Identity agent is told it: the agent's
 * `--cluster-name` argument (its Helm chart sets it from the chart's clusterName value; the agent
 * asks EKS for a pod's credentials with it). The agent on the pod's node with --pod, else any.
 * Nothing else the cluster shows names it: the issuer URL carries an ID, the nodes' labels no name.
 */
async function clusterFromAgent(
  kube: KubeClient,
  nodeName: string | undefined,
  signal: AbortSignal,
): Promise<{ name: string; pod: string } | { why: string }> {
  let pods;
  try {
    pods = await kube.listPods(POD_IDENTITY_AGENT_SELECTOR, signal);
  } catch (err) {
    return { why: `the EKS Pod Identity agent's pods could not be listed (${errorText(err)})` };
  }
  const own = pods.filter((p) => p.nodeName === nodeName);
  const names = new Map<string, string>();
  for (const p of own.length > 0 ? own : pods)
    for (const container of p.containers) {
      const name = flagValue(container.args, 'cluster-name');
      if (name !== undefined && name !== '' && !names.has(name)) names.set(name, `${p.namespace}/${p.name}`);
    }
  if (names.size === 1) {
    const [name, pod] = [...names][0]!;
    return { name, pod };
  }
  if (pods.length === 0)
    return { why: `no EKS Pod Identity agent pod (${POD_IDENTITY_AGENT_SELECTOR}) to read its name from` };
  return names.size === 0
    ? { why: "the EKS Pod Identity agent's pods have no --cluster-name argument" }
    : { why: `the EKS Pod Identity agent's pods name several clusters (${[...names.keys()].join(', ')})` };
}

/**
 * Pod Identity: an association of the cluster names a role for NS/SA (EKS). The cluster is
 * --cluster, else the name the cluster's EKS Pod Identity agent is given.
 */
async function checkPodIdentity(c: IrsaContext, region: string): Promise<CheckResult[]> {
  const subject = `${c.who.namespace}/${c.who.serviceAccount}`;
  let cluster = c.o.cluster;
  let named = '';
  if (cluster === undefined) {
    const found =
      c.kube === undefined
        ? { why: 'Kubernetes not reachable' }
        : await clusterFromAgent(c.kube, c.who.nodeName, c.signal);
    if ('why' in found)
      return [skip('pod-identity', subject, `the association is checked with --cluster NAME: ${found.why}`)];
    cluster = found.name;
    named = ` (named by the --cluster-name of the EKS Pod Identity agent ${found.pod})`;
  }
  if (c.creds === undefined) return [skip('pod-identity', subject, 'no AWS credentials')];
  if (region === '') return [skip('pod-identity', subject, `the cluster's region is unknown: pass --region`)];
  const { podIdentityRole, DoctorCallError } = await loadDoctorReads();
  try {
    const found = await podIdentityRole(
      c.clients,
      cluster,
      region,
      c.who.namespace,
      c.who.serviceAccount,
      c.creds,
      c.signal,
    );
    if (found === undefined) {
      return [
        {
          check: 'pod-identity',
          status: 'FAIL',
          subject,
          cause: `no Pod Identity association in cluster ${cluster}${named}: the agent gives the pod no credentials`,
          fix:
            `aws eks create-pod-identity-association ` +
            `--cluster-name ${cluster} --namespace ${c.who.namespace} ` +
            `--service-account ${c.who.serviceAccount} --role-arn <role ARN>`,
        },
      ];
    }
    c.podIdentityRole = found.roleArn === '' ? undefined : found.roleArn;
    const associated: CheckResult = {
      check: 'pod-identity',
      status: 'PASS',
      subject,
      cause: `associated with ${found.roleArn} (${found.associationId}) in cluster ${cluster}${named}`,
      fix: '',
    };
    return found.roleArn === ''
      ? [associated]
      : [associated, await checkPodIdentityTrust({ ...c, creds: c.creds }, found.roleArn)];
  } catch (err) {
    const noCluster = err instanceof DoctorCallError && err.awsCode === 'ResourceNotFoundException';
    return [
      {
        check: 'pod-identity',
        status: 'WARN',
        subject,
        cause: `could not be read: ${errorText(err)}`,
        fix: noCluster
          ? `check --cluster and --region (cluster ${cluster} in ${region})`
          : 'run doctor with credentials allowed eks:ListPodIdentityAssociations and ' +
            'eks:DescribePodIdentityAssociation',
      },
    ];
  }
}

/** Role chaining: the chained role exists and trusts the pod's role (and the class's ExternalId). */
async function checkAssumeRole(
  c: IrsaContext,
  chain: NonNullable<MountAttributes['assumeRole']>,
  caller: string | undefined,
): Promise<CheckResult> {
  const subject = chain.roleArn;
  if (caller === undefined) return skip('assume-role', subject, "the pod's own role is unknown (see the checks above)");
  if (c.creds === undefined) return skip('assume-role', subject, 'no AWS credentials');
  const { getRole, DoctorCallError } = await loadDoctorReads();
  const name = chain.roleArn.slice(chain.roleArn.lastIndexOf('/') + 1);
  let policy: unknown;
  try {
    policy = (await getRole(c.clients, chain.roleArn, c.creds, c.signal)).trustPolicy;
  } catch (err) {
    if (err instanceof DoctorCallError && err.awsCode === 'NoSuchEntityException') {
      return {
        check: 'assume-role',
        status: 'FAIL',
        subject,
        cause: `no role ${name} in the account of your credentials`,
        fix: 'create it, or correct assumeRoleArn in the class',
      };
    }
    return {
      check: 'assume-role',
      status: 'WARN',
      subject,
      cause: `could not be read: ${errorText(err)}`,
      fix: 'run doctor with credentials allowed iam:GetRole',
    };
  }
  const verdict = evaluateAssumeRoleTrust(policy, { callerRoleArn: caller, externalId: chain.externalId });
  const wanted =
    `a statement allowing sts:AssumeRole for Principal ` +
    `AWS ${caller}` +
    (chain.externalId !== undefined ? " with StringEquals sts:ExternalId = the class's assumeRoleExternalId" : '');
  if (verdict.outcome === 'allowed')
    return {
      check: 'assume-role',
      status: 'PASS',
      subject,
      cause: `trusts ${caller}${chain.externalId !== undefined ? " with the class's ExternalId" : ''}`,
      fix: '',
    };
  if (verdict.outcome === 'undecided')
    return {
      check: 'assume-role',
      status: 'WARN',
      subject,
      cause: `may trust ${caller}: ${verdict.reason}`,
      fix: `make sure it holds, or use ${wanted}`,
    };
  return {
    check: 'assume-role',
    status: 'FAIL',
    subject,
    cause: `does not let ${caller} in: ${verdict.reason}`,
    fix: `the trust policy of ${name} needs ${wanted}`,
  };
}

/** Each object (and its failover) exists in its region: asked without reading a value. */
async function checkObjects(
  objects: readonly SecretDescriptor[],
  attrs: MountAttributes,
  region: string,
  reader: string | undefined,
  c: IrsaContext & { creds: AwsCredentials },
): Promise<CheckResult[]> {
  const { creds, signal, clients } = c;
  const { objectExists, simulate, describeKey, getKeyPolicy, DoctorCallError } = await loadDoctorReads();
  const targets: { d: SecretDescriptor; name: string; region: string; failover: boolean }[] = [];
  for (const d of objects) {
    targets.push({ d, name: d.objectName, region, failover: false });
    if (attrs.failoverRegion !== '')
      targets.push({
        d,
        name: d.failoverObject?.objectName ?? d.objectName,
        region: attrs.failoverRegion,
        failover: true,
      });
  }
  const roleName = reader === undefined ? '' : reader.slice(reader.lastIndexOf('/') + 1);
  /** May the role read it? IAM's policy simulation of the call the provider makes. */
  const access = async (
    subject: string,
    arn: string,
    objectType: SecretDescriptor['objectType'],
  ): Promise<CheckResult> => {
    const action = objectType === 'secretsmanager' ? 'secretsmanager:GetSecretValue' : 'ssm:GetParameters';
    try {
      const decision = await simulate(clients, reader!, action, arn, creds, signal);
      if (decision === 'allowed')
        return {
          check: 'access',
          status: 'PASS',
          subject,
          cause: `${roleName} may ${action} (IAM policy simulation)`,
          fix: '',
        };
      return {
        check: 'access',
        status: 'FAIL',
        subject,
        cause:
          `${roleName} may not ${action} on it ` +
          `(IAM policy simulation: ${decision === 'explicitDeny' ? 'an explicit Deny' : 'no policy allows it'})`,
        fix:
          decision === 'explicitDeny'
            ? `remove the Deny of ${action} on ${arn} from ${roleName}'s policies`
            : `allow ${action} on ${arn} in a policy of ${roleName}`,
      };
    } catch (err) {
      return {
        check: 'access',
        status: 'WARN',
        subject,
        cause: `could not be simulated: ${errorText(err)}`,
        fix: 'run doctor with credentials allowed iam:SimulatePrincipalPolicy',
      };
    }
  };
  /**
   * The object's KMS key (a secret's KmsKeyId, a SecureString's KeyId): Secrets Manager and SSM
   * decrypt as the reader, who needs kms:Decrypt on a customer managed key. KMS says which key the
   * name means (an alias, a key ID) and who manages it; IAM's policy simulation then judges the
   * reader's policies with the context the service's call carries (kms:ViaService, the encryption
   * context), so a policy limited to them is judged as the real call would be. The key policy is read
   * (GetKeyPolicy) and judged first, as KMS does: it can refuse whatever IAM allows, allow the role by
   * itself, or hand the decision to the account's IAM policies. An AWS managed key needs nothing: no row.
   */
  const decrypt = async (
    subject: string,
    objectArn: string,
    objectType: SecretDescriptor['objectType'],
    keyId: string,
  ): Promise<CheckResult | undefined> => {
    const [, partition = 'aws', , objectRegion = region, account = ''] = objectArn.split(':');
    const service = objectType === 'secretsmanager' ? 'Secrets Manager' : 'SSM';
    // A key ARN or alias ARN is asked in its own region, a key ID or alias name in the object's.
    const keyRegion = keyId.startsWith('arn:') ? (keyId.split(':')[3] ?? objectRegion) : objectRegion;
    let keyArn: string;
    let unsure = '';
    try {
      const key = await describeKey(clients, keyRegion, keyId, creds, signal);
      if (key.manager === 'AWS') return undefined;
      if (key.state !== 'Enabled')
        return {
          check: 'kms',
          status: 'FAIL',
          subject,
          cause: `its KMS key ${key.arn} is ${key.state}: ${service} cannot decrypt it, the mount fails`,
          fix: `enable the key (aws kms enable-key, or cancel-key-deletion first), or encrypt the object with another`,
        };
      keyArn = key.arn;
    } catch (err) {
      if (err instanceof DoctorCallError && err.awsCode === 'NotFoundException')
        return {
          check: 'kms',
          status: 'FAIL',
          subject,
          cause: `its KMS key ${keyId} does not exist in ${keyRegion}: ${service} cannot decrypt it, the mount fails`,
          fix: 'encrypt the object with an existing key',
        };
      // Not described (no kms:DescribeKey): a key ID or key ARN still names the key, an alias does not.
      if (keyId.includes('alias/'))
        return {
          check: 'kms',
          status: 'WARN',
          subject,
          cause: `its KMS key ${keyId} could not be looked up: ${errorText(err)}`,
          fix: 'run doctor with credentials allowed kms:DescribeKey',
        };
      keyArn = keyId.startsWith('arn:') ? keyId : `arn:${partition}:kms:${keyRegion}:${account}:key/${keyId}`;
      unsure = '; the key could not be described (kms:DescribeKey), so it is taken as customer managed';
    }
    const domain = partition === 'aws-cn' ? 'amazonaws.com.cn' : 'amazonaws.com';
    const context: Record<string, string> =
      objectType === 'secretsmanager'
        ? {
            'kms:ViaService': `secretsmanager.${objectRegion}.${domain}`,
            'kms:EncryptionContext:SecretARN': objectArn,
          }
        : { 'kms:ViaService': `ssm.${objectRegion}.${domain}`, 'kms:EncryptionContext:PARAMETER_ARN': objectArn };
    const answer =
      objectType === 'secretsmanager'
        ? 'Secrets Manager answers "Access to KMS is not allowed"'
        : 'SSM cannot decrypt it for the role, the mount fails';
    // KMS asks the key policy first: it may refuse whatever IAM allows, or allow the role by itself.
    let keyPolicy: KeyPolicyVerdict | undefined;
    let keyPolicyUnread = '';
    try {
      const text = await getKeyPolicy(clients, keyArn, creds, signal);
      keyPolicy = evaluateKeyPolicy(text, { roleArn: reader!, action: 'kms:Decrypt', context });
    } catch (err) {
      const why = err instanceof DoctorCallError && err.awsCode !== undefined ? err.awsCode : errorText(err);
      keyPolicyUnread = `; its key policy could not be read (kms:GetKeyPolicy: ${why}) and must allow it too`;
    }
    if (keyPolicy?.outcome === 'denied')
      return {
        check: 'kms',
        status: 'FAIL',
        subject,
        cause: `the key policy of ${keyArn} does not let ${roleName} decrypt (${keyPolicy.reason}): ${answer}`,
        fix:
          `add to the key policy a statement allowing kms:Decrypt for ${reader!}, or one for the account's root ` +
          'so that its IAM policies decide (aws kms put-key-policy)',
      };
    const sameAccount = reader!.split(':')[4] === keyArn.split(':')[4];
    if (keyPolicy?.outcome === 'role' && sameAccount)
      return {
        check: 'kms',
        status: 'PASS',
        subject,
        cause: `the key policy of ${keyArn} allows ${roleName} kms:Decrypt${unsure}`,
        fix: '',
      };
    const byKeyPolicy =
      keyPolicy === undefined
        ? keyPolicyUnread
        : keyPolicy.outcome === 'account'
          ? "; the key policy lets the account's IAM policies decide"
          : keyPolicy.outcome === 'role'
            ? '; the key policy names the role, which is in another account'
            : `; the key policy: ${keyPolicy.reason}`;
    try {
      const decision = await simulate(clients, reader!, 'kms:Decrypt', keyArn, creds, signal, context);
      if (decision === 'allowed')
        return {
          check: 'kms',
          status: keyPolicy?.outcome === 'undecided' ? 'WARN' : 'PASS',
          subject,
          cause: `${roleName} may kms:Decrypt with its key ${keyArn} (IAM policy simulation${byKeyPolicy}${unsure})`,
          fix: keyPolicy?.outcome === 'undecided' ? 'check that the key policy condition holds for this call' : '',
        };
      return {
        check: 'kms',
        status: 'FAIL',
        subject,
        cause:
          `${roleName} may not kms:Decrypt with its key ${keyArn}` +
          `${decision === 'explicitDeny' ? ' (an explicit Deny)' : ''}: ${answer}${byKeyPolicy}${unsure}`,
        fix:
          decision === 'explicitDeny'
            ? `remove the Deny of kms:Decrypt on ${keyArn} from ${roleName}'s policies`
            : `allow kms:Decrypt on ${keyArn} in a policy of ${roleName}` +
              (keyPolicy === undefined ? ' (and in the key policy)' : ''),
      };
    } catch (err) {
      return {
        check: 'kms',
        status: 'WARN',
        subject,
        cause: `could not be simulated: ${errorText(err)}${byKeyPolicy}`,
        fix: 'run doctor with credentials allowed iam:SimulatePrincipalPolicy',
      };
    }
  };
  /** The rows of one object in one region: it exists, the reader may read it and decrypt it. */
  const objectRows = async (d: SecretDescriptor, name: string, r: string): Promise<CheckResult[]> => {
    const subject = `${d.objectType} ${name} in ${r}`;
    const found = await objectExists(clients, r, creds, { objectName: name, objectType: d.objectType }, signal);
    if (found.found === true) {
      const exists: CheckResult = { check: 'object', status: 'PASS', subject, cause: 'exists', fix: '' };
      if (reader === undefined || found.arn === '') return [exists];
      const rows = [exists, await access(subject, found.arn, d.objectType)];
      // `alias/aws/…` names an AWS managed key (the prefix is reserved): nothing to check.
      const keyId = found.kmsKeyId ?? '';
      if (keyId !== '' && !/(^|:)alias\/aws\//.test(keyId)) {
        const key = await decrypt(subject, found.arn, d.objectType, keyId);
        if (key !== undefined) rows.push(key);
      }
      return rows;
    }
    if (found.found === false) {
      const cause = d.optional ? 'not found (optional: the mount skips it)' : 'not found: the mount fails';
      const fix =
        `create it in ${r}, or correct ` +
        `objectName${r === region ? ' or region' : ' or failoverRegion'} in the class`;
      return [{ check: 'object', status: d.optional ? 'WARN' : 'FAIL', subject, cause, fix }];
    }
    const action = d.objectType === 'secretsmanager' ? 'secretsmanager:DescribeSecret' : 'ssm:DescribeParameters';
    return [
      {
        check: 'object',
        status: 'WARN',
        subject,
        cause: `could not tell: ${found.error.message}`,
        fix: `run doctor with credentials allowed ${action}`,
      },
    ];
  };
  const rows = await Promise.all(
    targets.map(async ({ d, name, region: r, failover }) => {
      const found = await objectRows(d, name, r);
      if (!failover) return found;
      // The failover region is asked only when the primary cannot answer (throttling, an outage:
      // docs/behaviour.md, "Failover"): its problem fails no mount the primary serves.
      return found.map((row) =>
        row.status !== 'FAIL'
          ? row
          : {
              ...row,
              status: 'WARN' as const,
              cause:
                row.cause.replace(/,? the mount fails$|: the mount fails$/, '') +
                `: a mount fails when ${region} cannot answer and the failover region is asked`,
            },
      );
    }),
  );
  return rows.flat();
}

/** Checks that need no class: the driver's token audiences, the provider pods. */
async function clusterChecks(
  kube: KubeClient | undefined,
  audiences: ReadonlySet<string>,
  o: DoctorOptions,
  who: Who,
  signal: AbortSignal,
): Promise<CheckResult[]> {
  if (kube === undefined) {
    return [
      skip('csi-driver', `CSIDriver ${DRIVER_NAME}`, 'Kubernetes not reachable'),
      skip('provider', `pods ${o.providerSelector}`, 'Kubernetes not reachable'),
    ];
  }
  return Promise.all([
    ...[...audiences].map((a) => checkCsiDriver(kube, a, signal)),
    checkProvider(kube, o.providerSelector, who.nodeName, signal),
  ]);
}

/** What depends on the class: the identity (once per method), the region, the objects. */
async function classChecks(classes: readonly LoadedClass[], c: IrsaContext): Promise<CheckResult[]> {
  const out: CheckResult[] = [];
  const methods = new Set(
    classes.flatMap((k) => (k.attrs === undefined ? [] : [k.attrs.usePodIdentity ? 'pod-identity' : 'irsa'])),
  );
  if (methods.has('irsa')) out.push(...(await checkIrsa(c)));
  if (methods.has('pod-identity')) {
    // EKS is regional: the cluster's region is --region, AWS_REGION, a class's, else the node's.
    const classRegion = classes.map((k) => k.attrs?.region ?? '').find((r) => r !== '');
    out.push(
      ...(await checkPodIdentity(c, c.o.region ?? c.io.env['AWS_REGION'] ?? classRegion ?? c.who.nodeRegion ?? '')),
    );
  }
  for (const k of classes) {
    const attrs = k.attrs;
    if (attrs === undefined) {
      out.push(skip('object', k.label, 'the class has errors'));
      continue;
    }
    if (attrs.assumeRole !== undefined)
      out.push(await checkAssumeRole(c, attrs.assumeRole, attrs.usePodIdentity ? c.podIdentityRole : c.irsaRole));
    const region = regionOf(attrs, c.o, c.io, c.who);
    if (region === '') {
      out.push({
        check: 'region',
        status: 'FAIL',
        subject: k.label,
        cause: 'no region: the class sets none, and neither --region nor AWS_REGION is given',
        fix: "add region to the class, or pass --region (a pod would take its node's)",
      });
      continue;
    }
    let objects: SecretDescriptor[];
    try {
      objects = parseObjects(attrs.objects, {
        pathTranslation: attrs.pathTranslation,
        defaultMode: 0o644,
        region,
        failoverRegion: attrs.failoverRegion,
      });
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      out.push(skip('object', k.label, 'the class has errors'));
      continue;
    }
    // Who reads: the chained role when the class chains, else the pod's own.
    const reader = attrs.assumeRole?.roleArn ?? (attrs.usePodIdentity ? c.podIdentityRole : c.irsaRole);
    if (c.creds === undefined) out.push(skip('object', k.label, 'no AWS credentials'));
    else out.push(...(await checkObjects(objects, attrs, region, reader, { ...c, creds: c.creds })));
  }
  return out;
}

/** --pod: the pod, its service account and node, and the class of each of its secrets-store volumes. */
async function loadPod(
  o: DoctorOptions,
  kube: KubeClient,
  signal: AbortSignal,
): Promise<{ who: Who; classes: LoadedClass[]; results: CheckResult[] }> {
  const { namespace, name } = o.pod!;
  const subject = `pod ${namespace}/${name}`;
  let pod;
  try {
    pod = await kube.getPodDetails(namespace, name, signal);
  } catch (err) {
    const missing = err instanceof ProviderError && err.code === 'NOT_FOUND';
    throw new DoctorPodError({
      check: 'pod',
      status: 'FAIL',
      subject,
      cause: missing ? 'not found' : `could not be read: ${errorText(err)}`,
      fix: missing
        ? 'check the name: kubectl get pods -n ' + namespace
        : 'run doctor with a kubeconfig allowed to get pods',
    });
  }
  let nodeRegion: string | undefined;
  if (pod.nodeName !== '') {
    try {
      nodeRegion = (await kube.getNode(pod.nodeName, signal)).labels[REGION_LABEL];
    } catch {
      // The region then comes from the class, --region or AWS_REGION; the region check says so.
    }
  }
  const who: Who = {
    namespace,
    serviceAccount: pod.serviceAccountName,
    nodeName: pod.nodeName === '' ? undefined : pod.nodeName,
    nodeRegion,
  };
  const volumes = pod.csiVolumes.filter((v) => v.driver === DRIVER_NAME);
  const results: CheckResult[] = [];
  if (volumes.length === 0) {
    results.push({
      check: 'pod',
      status: 'FAIL',
      subject,
      cause: `no csi volume of driver ${DRIVER_NAME}: nothing to mount`,
      fix: `add a volume with csi.driver ${DRIVER_NAME} and volumeAttributes.secretProviderClass`,
    });
    return { who, classes: [], results };
  }
  results.push({
    check: 'pod',
    status: 'PASS',
    subject,
    cause:
      `service account ${who.serviceAccount}, node ${who.nodeName ?? '(not scheduled)'}, ` +
      (volumes.length === 1 ? '1 secrets-store volume' : `${volumes.length} secrets-store volumes`),
    fix: '',
  });
  const classes: LoadedClass[] = [];
  for (const v of volumes) {
    const spcName = v.attributes[ATTR.secretProviderClass] ?? '';
    const label = `${namespace}/${spcName}`;
    if (spcName === '') {
      results.push({
        check: 'class',
        status: 'FAIL',
        subject: `volume ${v.name}`,
        cause: 'no volumeAttributes.secretProviderClass: the driver refuses the volume',
        fix: 'name the SecretProviderClass in volumeAttributes.secretProviderClass',
      });
      continue;
    }
    let obj: Record<string, unknown>;
    try {
      obj = await kube.getSecretProviderClass(namespace, spcName, signal);
    } catch (err) {
      const missing = err instanceof ProviderError && err.code === 'NOT_FOUND';
      results.push({
        check: 'class',
        status: missing ? 'FAIL' : 'WARN',
        subject: label,
        cause: missing
          ? `not found in namespace ${namespace}: the driver fails the mount`
          : `could not be read: ${errorText(err)}`,
        fix: missing
          ? `create it in ${namespace} (a SecretProviderClass is namespaced: the pod's namespace)`
          : 'run doctor with a kubeconfig allowed to get secretproviderclasses',
      });
      continue;
    }
    // The stored object, its server-kept fields left out, read by the same code as a file (JSON is YAML).
    const meta = (obj['metadata'] ?? {}) as Record<string, unknown>;
    const text = JSON.stringify(
      {
        apiVersion: obj['apiVersion'],
        kind: obj['kind'],
        metadata: { name: meta['name'], namespace: meta['namespace'] },
        spec: obj['spec'],
      },
      null,
      2,
    );
    const hint =
      `run \`kubectl get secretproviderclass -n ${namespace} ${spcName} -o yaml | ` +
      `csi-secrets-provider-aws check -\``;
    const loaded = loadClassText(text, `secretproviderclass ${label}`, undefined, who, hint);
    results.push(...loaded.results);
    classes.push(loaded);
  }
  return { who, classes, results };
}

/** The pod could not be read: the one row doctor can give. */
class DoctorPodError extends Error {
  constructor(readonly result: CheckResult) {
    super(result.cause);
    this.name = 'DoctorPodError';
  }
}

export async function runDoctor(o: DoctorOptions, io: CommandIO, signal: AbortSignal): Promise<DoctorReport> {
  const checks: CheckResult[] = [];
  let kube: KubeClient | undefined;
  try {
    // The operator's kubeconfig, exec plugins included (`aws eks update-kubeconfig` writes one).
    kube = new KubeClient(await loadKubeConfig(io.env, { allowExec: true }), { qps: 20, burst: 20 });
  } catch (err) {
    checks.push({
      check: 'kubernetes',
      status: o.pod === undefined ? 'WARN' : 'FAIL',
      subject: 'kubeconfig',
      cause: `no cluster to check: ${errorText(err)}`,
      fix: "set KUBECONFIG to the cluster's kubeconfig",
    });
    if (o.pod !== undefined) return report(checks);
  }
  // Every AWS call of the run, through one factory: one keep-alive agent, each SDK package loaded once.
  const clients = new AwsClientFactory({ appId: appId('doctor') });
  try {
    let who: Who;
    let classes: LoadedClass[];
    if (o.pod !== undefined) {
      try {
        const loaded = await loadPod(o, kube!, signal);
        who = loaded.who;
        classes = loaded.classes;
        checks.push(...loaded.results);
      } catch (err) {
        if (!(err instanceof DoctorPodError)) throw err;
        checks.push(err.result);
        return report(checks);
      }
    } else {
      who = { namespace: o.namespace, serviceAccount: o.serviceAccount };
      const loaded = await loadClassFile(o, io, who);
      classes = [loaded];
      checks.push(...loaded.results);
    }
    let creds: AwsCredentials | undefined;
    try {
      creds = await operatorCredentials(io.env)();
    } catch (err) {
      checks.push({
        check: 'aws-credentials',
        status: 'WARN',
        subject: 'your AWS credentials',
        cause: errorText(err),
        fix: 'set AWS_PROFILE or AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY',
      });
    }
    const audiences = new Set(
      classes.map((k) => (k.attrs?.usePodIdentity === true ? POD_IDENTITY_AUDIENCE : IRSA_AUDIENCE)),
    );
    if (audiences.size === 0) audiences.add(IRSA_AUDIENCE);
    checks.push(...(await clusterChecks(kube, audiences, o, who, signal)));
    if (classes.length === 0) return report(checks);
    if (classes.every((k) => k.attrs === undefined)) {
      checks.push(skip('identity', `${who.namespace}/${who.serviceAccount}`, 'the class has errors'));
    }
    checks.push(...(await classChecks(classes, { o, who, io, kube, creds, clients, signal })));
    return report(checks);
  } finally {
    kube?.close();
    clients.close();
  }
}

function report(checks: CheckResult[]): DoctorReport {
  const summary = { pass: 0, warn: 0, fail: 0, skip: 0 };
  for (const c of checks) summary[c.status.toLowerCase() as Lowercase<Status>]++;
  return { checks, summary };
}

export function formatDoctorText(r: DoctorReport): string {
  const rows = r.checks.map((c) => [
    c.status,
    c.check,
    c.subject,
    c.fix === '' ? c.cause : `${c.cause} → fix: ${c.fix}`,
  ]);
  const widths = [0, 1, 2].map((i) =>
    Math.max(...[['STATUS', 'CHECK', 'SUBJECT'][i]!.length, ...rows.map((row) => row[i]!.length)]),
  );
  const line = (cells: string[]): string =>
    cells
      .map((cell, i) => (i < 3 ? cell.padEnd(widths[i] ?? 0) : cell))
      .join('  ')
      .trimEnd();
  const s = r.summary;
  return [
    line(['STATUS', 'CHECK', 'SUBJECT', 'RESULT']),
    ...rows.map(line),
    '',
    `${s.pass} passed, ${s.warn} warnings, ${s.fail} failed, ${s.skip} skipped`,
    '',
  ].join('\n');
}

export function formatDoctorJson(r: DoctorReport): string {
  return JSON.stringify(r, null, 2) + '\n';
}

export async function run(argv: readonly string[], io: CommandIO): Promise<number> {
  const parsed = parseDoctorArgs(argv);
  if (parsed.kind === 'help') {
    io.stdout(USAGE);
    return 0;
  }
  if (parsed.kind === 'error') {
    io.stderr(`doctor: ${parsed.message}\n\n${USAGE}`);
    return 2;
  }
  const o = parsed.options;
  let r: DoctorReport;
  try {
    r = await runDoctor(o, io, AbortSignal.timeout(o.timeoutMs));
  } catch (err) {
    if (err instanceof DoctorUsageError) {
      io.stderr(`doctor: ${err.message}\n`);
      return 2;
    }
    io.stderr(`doctor: ${errorText(err)}\n`);
    return 1;
  }
  io.stdout(o.format === 'json' ? formatDoctorJson(r) : formatDoctorText(r));
  return r.summary.fail > 0 ? 1 : 0;
}

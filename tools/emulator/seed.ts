/**
 * @module emulator/seed
 * A typed, JSON-friendly description of the emulator's world (roles, Kubernetes objects, secrets,
 * parameters, Pod Identity associations), its loader and checker, and the example the demo uses.
 */
import type { Emulator } from './emulator.js';
import type { ParameterType, RoleSpec } from './state.js';

export interface SeedSecret {
  region: string;
  name: string;
  /** Text value (SecretString). */
  value?: string;
  /** Binary value (SecretBinary), base64. Exactly one of `value` and `binaryBase64`. */
  binaryBase64?: string;
  versionId?: string;
  stages?: string[];
  kmsFails?: boolean;
}

export interface SeedParameter {
  region: string;
  name: string;
  value: string;
  type?: ParameterType;
  labels?: string[];
  kmsFails?: boolean;
}

export interface Seed {
  roles?: RoleSpec[];
  serviceAccounts?: Array<{ namespace: string; name: string; annotations?: Record<string, string> }>;
  pods?: Array<{ namespace: string; name: string; nodeName: string }>;
  nodes?: Array<{ name: string; labels?: Record<string, string> }>;
  /** Entries for the same name add versions in order (rotation). */
  secrets?: SeedSecret[];
  /** Entries for the same name add versions in order. */
  parameters?: SeedParameter[];
  podIdentityAssociations?: Array<{ namespace: string; serviceAccount: string; roleArn: string }>;
}

export const EXAMPLE_ROLE = 'arn:aws:iam::123456789012:role/app-reader';

/** The demo's world: region us-east-1, role `app-reader` trusted by `default/app`, a few secrets and parameters. */
export function exampleSeed(): Seed {
  return {
    roles: [
      {
        arn: EXAMPLE_ROLE,
        trust: { subjects: ['system:serviceaccount:default:app'] },
        allow: { secretsmanager: ['prod/*'], ssm: ['/app/*'] },
      },
    ],
    serviceAccounts: [
      { namespace: 'default', name: 'app', annotations: { 'eks.amazonaws.com/role-arn': EXAMPLE_ROLE } },
    ],
    pods: [{ namespace: 'default', name: 'app-0', nodeName: 'node-1' }],
    nodes: [{ name: 'node-1', labels: { 'topology.kubernetes.io/region': 'us-east-1', 'kubernetes.io/os': 'linux' } }],
    secrets: [
      { region: 'us-east-1', name: 'prod/db-creds', value: '{"username":"app","password":"s3cr3t-demo","port":5432}' },
      { region: 'us-east-1', name: 'prod/api-key', value: 'demo-api-key-0123456789' },
      {
        region: 'us-east-1',
        name: 'prod/tls-cert',
        binaryBase64: Buffer.from([0x30, 0x82, 0x01, 0x0a, 0x02, 0x82, 0x01, 0x01, 0x00]).toString('base64'),
      },
    ],
    parameters: [
      { region: 'us-east-1', name: '/app/feature-flag', value: 'enabled' },
      { region: 'us-east-1', name: '/app/db-host', value: 'db.demo.internal', type: 'SecureString' },
    ],
    podIdentityAssociations: [{ namespace: 'default', serviceAccount: 'app', roleArn: EXAMPLE_ROLE }],
  };
}

/** Puts the seed into a running emulator. */
export function loadSeed(emu: Emulator, seed: Seed): void {
  for (const r of seed.roles ?? []) emu.addRole(r);
  for (const n of seed.nodes ?? []) emu.addNode(n.name, n.labels ?? {});
  for (const sa of seed.serviceAccounts ?? []) emu.addServiceAccount(sa.namespace, sa.name, sa.annotations ?? {});
  for (const p of seed.pods ?? []) emu.addPod(p.namespace, p.name, p.nodeName);
  for (const a of seed.podIdentityAssociations ?? []) emu.addPodIdentityAssociation(a);
  for (const s of seed.secrets ?? []) {
    const value =
      s.binaryBase64 !== undefined ? new Uint8Array(Buffer.from(s.binaryBase64, 'base64')) : (s.value ?? '');
    emu.putSecret(s.region, s.name, value, {
      ...(s.versionId === undefined ? {} : { versionId: s.versionId }),
      ...(s.stages === undefined ? {} : { stages: s.stages }),
      ...(s.kmsFails === undefined ? {} : { kmsFails: s.kmsFails }),
    });
  }
  for (const p of seed.parameters ?? []) {
    emu.putParameter(p.region, p.name, p.value, {
      ...(p.type === undefined ? {} : { type: p.type }),
      ...(p.labels === undefined ? {} : { labels: p.labels }),
      ...(p.kmsFails === undefined ? {} : { kmsFails: p.kmsFails }),
    });
  }
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isStr = (v: unknown): v is string => typeof v === 'string' && v !== '';

/** Checks a seed read from JSON; reports every problem at once. */
export function parseSeed(data: unknown): Seed {
  const problems: string[] = [];
  if (!isObj(data))
    throw new Error(
      'seed: expected a JSON object with roles, serviceAccounts, pods, nodes, secrets, parameters, ' +
        'podIdentityAssociations',
    );
  const list = (key: string, check: (e: Record<string, unknown>, at: string) => void): void => {
    const v = data[key];
    if (v === undefined) return;
    if (!Array.isArray(v)) {
      problems.push(`${key}: expected a list`);
      return;
    }
    v.forEach((e: unknown, i) =>
      isObj(e) ? check(e, `${key}[${i}]`) : problems.push(`${key}[${i}]: expected an object`),
    );
  };
  const need = (e: Record<string, unknown>, at: string, ...keys: string[]): void => {
    for (const k of keys) if (!isStr(e[k])) problems.push(`${at}.${k}: expected a non-empty string`);
  };
  list('roles', (e, at) => {
    need(e, at, 'arn');
    if (!isObj(e['allow']))
      problems.push(`${at}.allow: expected an object ({"secretsmanager": ["prod/*"], "ssm": ["/app/*"]})`);
  });
  list('serviceAccounts', (e, at) => need(e, at, 'namespace', 'name'));
  list('pods', (e, at) => need(e, at, 'namespace', 'name', 'nodeName'));
  list('nodes', (e, at) => need(e, at, 'name'));
  list('secrets', (e, at) => {
    need(e, at, 'region', 'name');
    if ((typeof e['value'] === 'string') === (typeof e['binaryBase64'] === 'string'))
      problems.push(`${at}: give exactly one of value and binaryBase64`);
  });
  list('parameters', (e, at) => {
    need(e, at, 'region', 'name');
    if (typeof e['value'] !== 'string') problems.push(`${at}.value: expected a string`);
    if (e['type'] !== undefined && !['String', 'SecureString', 'StringList'].includes(e['type'] as string))
      problems.push(`${at}.type: expected String, SecureString or StringList`);
  });
  list('podIdentityAssociations', (e, at) => need(e, at, 'namespace', 'serviceAccount', 'roleArn'));
  if (problems.length > 0) throw new Error(`seed: ${problems.length} problem(s): ${problems.join('; ')}`);
  return data;
}

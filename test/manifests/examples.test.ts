// Example manifests: valid API objects whose references line up (class ↔ volume, files ↔
// secretObjects ↔ env), and a broken class that holds exactly the mistakes it advertises.
import { readFileSync } from 'node:fs';
import jmespath from 'jmespath';
import { describe, expect, it } from 'vitest';
import { parseDocuments, parseYaml11, type K8sObject } from './helm.js';
import { unknownFields, validateObject } from './validate.js';
import { checkManifest } from '../../src/cli/check.js';

const EXAMPLES = new URL('../../manifests/examples/', import.meta.url);
const load = (file: string): K8sObject[] => parseDocuments(readFileSync(new URL(file, EXAMPLES), 'utf8'), file);

interface ObjectEntry {
  objectName: string;
  objectType?: string;
  objectAlias?: string;
  filePermission?: unknown;
  jmesPath?: { path: string; objectAlias: string }[];
}
interface Spc extends K8sObject {
  spec: {
    provider: string;
    parameters: Record<string, string>;
    secretObjects?: { secretName: string; data: { objectName: string; key: string }[] }[];
  };
}
interface Deploy extends K8sObject {
  spec: {
    template: {
      spec: {
        serviceAccountName: string;
        containers: { env?: { valueFrom?: { secretKeyRef?: { name: string; key: string } } }[] }[];
        volumes: { csi?: { driver: string; volumeAttributes: Record<string, string> } }[];
      };
    };
  };
}

const of = <T extends K8sObject>(objects: K8sObject[], kind: string): T => objects.find((o) => o.kind === kind) as T;
const entries = (spc: Spc): ObjectEntry[] => parseYaml11(spc.spec.parameters.objects ?? '') as ObjectEntry[];

describe.each([
  ['irsa.yaml', false],
  ['pod-identity.yaml', true],
])('examples/%s', (file, podIdentity) => {
  const objects = load(file);
  const spc = of<Spc>(objects, 'SecretProviderClass');
  const deploy = of<Deploy>(objects, 'Deployment');
  const sa = of<K8sObject>(objects, 'ServiceAccount');

  it('holds a ServiceAccount, a SecretProviderClass and a Deployment, all valid', async () => {
    expect(objects.map((o) => o.kind)).toEqual(['ServiceAccount', 'SecretProviderClass', 'Deployment']);
    expect(objects.flatMap(validateObject)).toEqual([]);
    expect(await unknownFields(objects.map((obj) => ({ source: file, obj })))).toEqual([]);
  }, 60_000);

  it(
    podIdentity
      ? 'uses Pod Identity: usePodIdentity "true" and no role annotation'
      : 'uses IRSA: a role ARN on the ServiceAccount',
    () => {
      expect(spc.spec.parameters.usePodIdentity).toBe(podIdentity ? 'true' : undefined);
      const roleArn = sa.metadata.annotations?.['eks.amazonaws.com/role-arn'];
      if (podIdentity) expect(roleArn).toBeUndefined();
      else expect(roleArn).toMatch(/^arn:aws:iam::\d{12}:role\/.+/);
    },
  );

  it('mounts its class through the CSI driver with its ServiceAccount', () => {
    expect(deploy.spec.template.spec.serviceAccountName).toBe(sa.metadata.name);
    const csi = deploy.spec.template.spec.volumes.find((v) => v.csi)?.csi;
    expect(csi?.driver).toBe('secrets-store.csi.k8s.io');
    expect(csi?.volumeAttributes.secretProviderClass).toBe(spc.metadata.name);
    expect(spc.metadata.namespace).toBe(deploy.metadata.namespace);
    expect(spc.spec.provider).toBe('aws');
  });

  it('reads a JSON secret split by jmesPath and an SSM parameter, every field typed and quoted', () => {
    const list = entries(spc);
    expect(list.map((e) => e.objectType)).toEqual(['secretsmanager', 'ssmparameter']);
    expect(list[0]?.jmesPath?.map((j) => j.path)).toEqual(['username', 'password', '"db-host"']);
    for (const e of list) if (e.filePermission !== undefined) expect(e.filePermission).toMatch(/^[0-7]{4}$/);
    const creds = { username: 'u', password: 'p', 'db-host': 'h' };
    expect(list[0]?.jmesPath?.map((j) => jmespath.search(creds, j.path) as unknown)).toEqual(['u', 'p', 'h']);
  });

  it('syncs files the class writes into a Secret the container reads its env from', () => {
    const files = new Set(
      entries(spc).flatMap((e) => [e.objectAlias ?? e.objectName, ...(e.jmesPath ?? []).map((j) => j.objectAlias)]),
    );
    const synced = spc.spec.secretObjects ?? [];
    expect(synced).toHaveLength(1);
    for (const d of synced[0]!.data) expect(files.has(d.objectName), d.objectName).toBe(true);
    const refs = deploy.spec.template.spec.containers
      .flatMap((c) => c.env ?? [])
      .flatMap((e) => (e.valueFrom?.secretKeyRef ? [e.valueFrom.secretKeyRef] : []));
    expect(refs.length).toBeGreaterThan(0);
    for (const r of refs) {
      expect(r.name).toBe(synced[0]!.secretName);
      expect(synced[0]!.data.map((d) => d.key)).toContain(r.key);
    }
  });
});

describe('examples/broken-class.yaml', () => {
  const objects = load('broken-class.yaml');
  const spc = of<Spc>(objects, 'SecretProviderClass');
  const list = entries(spc);

  it('is a valid API object (the mistakes hide inside the objects string)', () => {
    expect(objects.flatMap(validateObject)).toEqual([]);
  });

  it('MISTAKE 1: unquoted filePermission 0644 is the YAML 1.1 octal number 420', () => {
    expect(list[0]?.filePermission).toBe(420);
  });

  it('MISTAKE 2: the unquoted hyphenated jmesPath key does not parse; quoted it does', () => {
    const path = list[0]?.jmesPath?.[0]?.path ?? '';
    expect(path).toBe('db-host');
    expect(() => jmespath.search({ 'db-host': 'h' }, path) as unknown).toThrow();
    expect(jmespath.search({ 'db-host': 'h' }, `"${path}"`) as unknown).toBe('h');
  });

  it('MISTAKE 3: a non-ARN object name without objectType', () => {
    expect(list[1]?.objectType).toBeUndefined();
    expect(list[1]?.objectName.startsWith('arn:')).toBe(false);
  });

  it('MISTAKE 4: the same objectAlias twice', () => {
    const aliases = list.map((e) => e.objectAlias);
    expect(aliases.filter((a, i) => aliases.indexOf(a) !== i)).toEqual(['creds']);
  });
});

describe('examples/secret-sync.yaml (a Secret without a pod, through the Secrets Store Sync Controller)', () => {
  const file = 'secret-sync.yaml';
  const objects = load(file);
  const spc = of<Spc>(objects, 'SecretProviderClass');
  const sa = of<K8sObject>(objects, 'ServiceAccount');
  const sync = of<
    K8sObject & {
      spec: {
        serviceAccountName: string;
        secretProviderClassName: string;
        secretObject: { data: { sourcePath: string; targetKey: string }[] };
      };
    }
  >(objects, 'SecretSync');

  it('holds a ServiceAccount, a SecretProviderClass and a SecretSync, all valid, and no pod', async () => {
    expect(objects.map((o) => o.kind)).toEqual(['ServiceAccount', 'SecretProviderClass', 'SecretSync']);
    expect(objects.flatMap(validateObject)).toEqual([]);
    expect(await unknownFields(objects.map((obj) => ({ source: file, obj })))).toEqual([]);
  }, 60_000);

  it('the SecretSync names the class and the service account (IRSA role annotated), all in one namespace', () => {
    expect(sync.spec.secretProviderClassName).toBe(spc.metadata.name);
    expect(sync.spec.serviceAccountName).toBe(sa.metadata.name);
    expect(new Set(objects.map((o) => o.metadata.namespace))).toEqual(new Set([sync.metadata.namespace]));
    expect(sa.metadata.annotations?.['eks.amazonaws.com/role-arn']).toMatch(/^arn:aws:iam::\d{12}:role\/.+/);
    expect(spc.spec.provider).toBe('aws');
  });

  it('every sourcePath is a file the class makes; the class passes `check`', () => {
    const files = new Set(
      entries(spc).flatMap((e) => [e.objectAlias ?? e.objectName, ...(e.jmesPath ?? []).map((j) => j.objectAlias)]),
    );
    for (const d of sync.spec.secretObject.data) expect(files.has(d.sourcePath), d.sourcePath).toBe(true);
    expect(checkManifest(readFileSync(new URL(file, EXAMPLES), 'utf8'), file).findings).toEqual([]);
  });
});

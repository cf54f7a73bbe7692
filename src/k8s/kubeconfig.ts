/**
 * @module k8s/kubeconfig
 * Where the Kubernetes API is and how to authenticate to it: a kubeconfig file (KUBECONFIG, for
 * running outside a cluster) or the provider's own in-cluster service account
 * (docs/behaviour.md, "Kubernetes API").
 * Read once at start; only the token file is re-read later, by the client (bound tokens rotate).
 */
import { access, readFile } from 'node:fs/promises';
import { constants } from 'node:fs';
import path from 'node:path';
import { ProviderError } from '../errors.js';
import { parseExecConfig, type ExecCredentialConfig } from './exec-credential.js';

/** Connection settings for the API server. Buffers hold PEM bytes. */
export interface KubeConfig {
  /** `https://host:port` or `http://host:port`, optionally with a path prefix. */
  server: string;
  ca?: Buffer;
  /** A fixed bearer token. */
  token?: string;
  /** A file holding the bearer token, re-read when it may have rotated (takes precedence over `token`). */
  tokenFile?: string;
  cert?: Buffer;
  key?: Buffer;
  insecureSkipTlsVerify?: boolean;
  /** A plugin that prints the bearer token (kubeconfig `exec`), with the environment it runs in. */
  exec?: { config: ExecCredentialConfig; env: Readonly<Record<string, string | undefined>> };
}

export interface LoadKubeConfigOptions {
  /** In-cluster service-account directory; a test seam. */
  serviceAccountDir?: string;
  /**
   * Run a kubeconfig user's `exec` plugin for its token, as kubectl does (the commands that read the
   * cluster as the operator: `doctor`). The server refuses one: in a pod it has its service account.
   */
  allowExec?: boolean;
}

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

function precondition(message: string, cause?: unknown): ProviderError {
  return new ProviderError('FAILED_PRECONDITION', message, { reason: 'KubeConfig', cause });
}

async function exists(file: string): Promise<boolean> {
  try {
    await access(file, constants.R_OK);
    return true;
  } catch {
    return false;
  }
}

async function readNamed(file: string, what: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw precondition(`cannot read ${what} ${file}: ${code}`, err);
  }
}

/**
 * Reads the connection settings.
 * - `KUBECONFIG` set: the first existing file of the `:`-separated list, its `current-context`.
 * - else in-cluster: `KUBERNETES_SERVICE_HOST`/`KUBERNETES_SERVICE_PORT` and the service-account
 *   token and CA (as client-go `rest.InClusterConfig`).
 */
export async function loadKubeConfig(
  env: Record<string, string | undefined>,
  options: LoadKubeConfigOptions = {},
): Promise<KubeConfig> {
  const list = env['KUBECONFIG'];
  if (list !== undefined && list.trim() !== '') {
    const candidates = list.split(path.delimiter).filter((p) => p !== '');
    for (const file of candidates) {
      if (await exists(file)) return loadKubeConfigFile(file, { allowExec: options.allowExec ?? false, env });
    }
    throw precondition(
      `KUBECONFIG is set but none of its files can be read (${candidates.join(', ')}): point it at a kubeconfig ` +
        `file, or unset it to use the in-cluster service account`,
    );
  }
  return loadInCluster(env, options.serviceAccountDir ?? SERVICE_ACCOUNT_DIR);
}

async function loadInCluster(env: Record<string, string | undefined>, dir: string): Promise<KubeConfig> {
  const host = env['KUBERNETES_SERVICE_HOST'];
  const port = env['KUBERNETES_SERVICE_PORT'];
  if (host === undefined || host === '' || port === undefined || port === '') {
    throw precondition(
      'cannot find the Kubernetes API: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set (not running ' +
        'in a pod?); set KUBECONFIG to use a kubeconfig file',
    );
  }
  const tokenFile = path.join(dir, 'token');
  // Read now so a missing token fails at start with a clear message; the client re-reads it later.
  const token = (await readNamed(tokenFile, 'the service-account token')).toString('utf8').trim();
  if (token === '') {
    throw precondition(
      `the service-account token ${tokenFile} is empty: check automountServiceAccountToken on the provider's pod`,
    );
  }
  const caFile = path.join(dir, 'ca.crt');
  // As client-go: a missing CA file is not fatal (the system roots are used instead).
  const ca = (await exists(caFile)) ? await readNamed(caFile, 'the cluster CA') : undefined;
  // An IPv6 address must be bracketed in a URL (client-go uses net.JoinHostPort).
  const hostPart = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  const config: KubeConfig = { server: `https://${hostPart}:${port}`, tokenFile };
  if (ca !== undefined) config.ca = ca;
  return config;
}

type YamlMap = Record<string, unknown>;

function isMap(v: unknown): v is YamlMap {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function str(m: YamlMap, key: string): string | undefined {
  const v = m[key];
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/** Finds `{name, <kind>: {...}}` in a kubeconfig list (`clusters`, `users`, `contexts`). */
function named(doc: YamlMap, list: string, kind: string, name: string, file: string): YamlMap {
  const entries = doc[list];
  const entry = Array.isArray(entries) ? (entries as unknown[]).find((e) => isMap(e) && e['name'] === name) : undefined;
  if (!isMap(entry)) {
    throw precondition(
      `kubeconfig ${file}: no ${kind} named "${name}" in ${list}: fix the file or the current context`,
    );
  }
  const body = entry[kind];
  return isMap(body) ? body : {};
}

function decodeData(value: string, what: string, file: string): Buffer {
  const buf = Buffer.from(value, 'base64');
  if (buf.length === 0) throw precondition(`kubeconfig ${file}: ${what} is not valid base64`);
  return buf;
}

/**
 * Loads one kubeconfig file. Relative file paths in it are resolved against its directory, as kubectl does.
 * An `exec` plugin is taken only with `allowExec` (and runs with `env`).
 */
export async function loadKubeConfigFile(
  file: string,
  opts: { allowExec: boolean; env?: Readonly<Record<string, string | undefined>> } = { allowExec: false },
): Promise<KubeConfig> {
  const text = (await readNamed(file, 'kubeconfig')).toString('utf8');
  let doc: unknown;
  try {
    doc = (await import('yaml')).parse(text);
  } catch (err) {
    throw precondition(`kubeconfig ${file} is not valid YAML: ${(err as Error).message.split('\n')[0] ?? ''}`, err);
  }
  if (!isMap(doc)) throw precondition(`kubeconfig ${file} is not a YAML mapping`);
  const contextName = str(doc, 'current-context');
  if (contextName === undefined) {
    throw precondition(`kubeconfig ${file} has no current-context: run \`kubectl config use-context <name>\``);
  }
  const context = named(doc, 'contexts', 'context', contextName, file);
  const clusterName = str(context, 'cluster');
  if (clusterName === undefined) throw precondition(`kubeconfig ${file}: context "${contextName}" names no cluster`);
  const cluster = named(doc, 'clusters', 'cluster', clusterName, file);
  const userName = str(context, 'user');
  const user = userName === undefined ? {} : named(doc, 'users', 'user', userName, file);

  const dir = path.dirname(path.resolve(file));
  const resolve = (p: string): string => path.resolve(dir, p);

  const server = str(cluster, 'server');
  if (server === undefined) throw precondition(`kubeconfig ${file}: cluster "${clusterName}" has no server`);
  let url: URL;
  try {
    url = new URL(server);
  } catch (err) {
    throw precondition(`kubeconfig ${file}: cluster "${clusterName}" server "${server}" is not a URL`, err);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw precondition(
      `kubeconfig ${file}: cluster "${clusterName}" server must be https:// or http://, not ${url.protocol}`,
    );
  }

  const config: KubeConfig = { server };
  const caData = str(cluster, 'certificate-authority-data');
  const caFile = str(cluster, 'certificate-authority');
  if (caData !== undefined) config.ca = decodeData(caData, 'certificate-authority-data', file);
  else if (caFile !== undefined) config.ca = await readNamed(resolve(caFile), 'certificate-authority');
  if (cluster['insecure-skip-tls-verify'] === true) config.insecureSkipTlsVerify = true;

  const certData = str(user, 'client-certificate-data');
  const certFile = str(user, 'client-certificate');
  if (certData !== undefined) config.cert = decodeData(certData, 'client-certificate-data', file);
  else if (certFile !== undefined) config.cert = await readNamed(resolve(certFile), 'client-certificate');
  const keyData = str(user, 'client-key-data');
  const keyFile = str(user, 'client-key');
  if (keyData !== undefined) config.key = decodeData(keyData, 'client-key-data', file);
  else if (keyFile !== undefined) config.key = await readNamed(resolve(keyFile), 'client-key');
  if ((config.cert === undefined) !== (config.key === undefined)) {
    throw precondition(`kubeconfig ${file}: user "${userName ?? ''}" needs both a client certificate and a client key`);
  }

  const token = str(user, 'token');
  const tokenFile = str(user, 'tokenFile');
  if (tokenFile !== undefined) config.tokenFile = resolve(tokenFile);
  else if (token !== undefined) config.token = token;

  if (config.token === undefined && config.tokenFile === undefined && config.cert === undefined) {
    const exec = user['exec'];
    if (isMap(exec) && opts.allowExec) {
      config.exec = { config: parseExecConfig(exec, file, userName ?? ''), env: opts.env ?? process.env };
      return config;
    }
    if (isMap(exec)) {
      throw precondition(
        `kubeconfig ${file}: user "${userName ?? ''}" uses an exec plugin, which the provider server does not run ` +
          `(in a pod it uses its service account): use a token, tokenFile or client certificate`,
      );
    }
    if (isMap(user['auth-provider'])) {
      throw precondition(
        `kubeconfig ${file}: user "${userName ?? ''}" uses an auth-provider plugin, which Kubernetes no longer ` +
          `supports: use an exec plugin, a token, tokenFile or client certificate`,
      );
    }
    if (str(user, 'username') !== undefined) {
      throw precondition(
        `kubeconfig ${file}: user "${userName ?? ''}" uses basic auth, which is not supported: use a token or ` +
          `client certificate`,
      );
    }
  }
  return config;
}

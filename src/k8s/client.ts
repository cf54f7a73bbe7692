/**
 * @module k8s/client
 * The provider's three Kubernetes reads (ServiceAccount, Pod, Node), and the few more the `doctor`
 * command makes (a pod's volumes, its SecretProviderClasses, the CSIDriver, provider pods by label,
 * the issuer discovery document), over Node's own HTTP client:
 * a keep-alive agent, the client-side rate limit, bounded retries, and errors that say which RBAC
 * rule is missing (docs/behaviour.md, "Kubernetes API"). No Kubernetes client library:
 * three GETs do not justify ~70 MiB.
 */
import type * as http from 'node:http';
import type * as https from 'node:https';
import { http as nodeHttp, https as nodeHttps } from '../node-http.js';
import { readFile } from 'node:fs/promises';
import { ProviderError, type StatusName } from '../errors.js';
import { scrub } from '../observability/index.js';
import type { KubeConfig } from './kubeconfig.js';
import { runExecCredential, type ExecToken } from './exec-credential.js';
import { TokenBucket, abortError, realSleep, type Sleep } from './rate-limit.js';

export interface KubeClientOptions {
  /** `--qps` (default 5 in cli/). */
  qps: number;
  /** `--burst` (default 10 in cli/). */
  burst: number;
  /** Per attempt; default 10 s. */
  timeoutMs?: number;
  now?: () => number;
  /** Test seam for the rate limiter and retry waits. */
  sleep?: Sleep;
  /** First backoff after a 5xx or connection failure; doubled per retry. Default 200 ms. */
  retryBaseMs?: number;
  /**
   * Called once per attempt with its HTTP status, or `timeout` / `network` / `tls`; the shape of
   * observability's `metrics.kubernetesRequest`, so it can be passed as is.
   */
  onRequest?: (resource: KubeResource, code: number | string) => void;
}

export type KubeResource =
  'serviceaccounts' | 'pods' | 'nodes' | 'csidrivers' | 'secretproviderclasses' | 'openid-configuration';

/** A pod as `doctor` reads it: where it runs, as whom, and its CSI volumes. */
export interface PodDetails {
  nodeName: string;
  serviceAccountName: string;
  /** Volumes with a `csi` source: the driver and its volumeAttributes. */
  csiVolumes: { name: string; driver: string; attributes: Record<string, string> }[];
}

/** One pod of a label-selected list. */
export interface PodSummary {
  namespace: string;
  name: string;
  nodeName: string;
  /** Its Ready condition is True. */
  ready: boolean;
  /** Each container's name and `args`, as the pod spec gives them. */
  containers: { name: string; args: string[] }[];
}

/** An exec plugin's token is renewed this long before it expires (`aws eks get-token`'s live 15 minutes). */
const EXEC_TOKEN_MARGIN_MS = 60_000;
/** How often a token file is re-read at most (bound service-account tokens rotate hourly). */
const TOKEN_REREAD_MS = 60_000;
/** 5xx, timeouts, connection errors: attempts = 1 + this. */
const TRANSIENT_RETRIES = 2;
/** 429: attempts = 1 + this, each waiting Retry-After. */
const THROTTLE_RETRIES = 3;
/** A Retry-After longer than this is not waited for: UNAVAILABLE at once (the driver retries the mount). */
const MAX_RETRY_AFTER_MS = 10_000;
/**
 * Most bytes of one answer: 2 MiB. The objects we read (a service account, a pod, a node) are a few
 * KiB, a node with many images some tens; etcd refuses objects over 1.5 MiB, so no real one is
 * larger. Cut off as it arrives (and at once by Content-Length), never buffered beyond it.
 */
export const MAX_KUBE_ANSWER_BYTES = 2 * 1024 * 1024;

interface Resource {
  /** Plural resource name for RBAC messages: `serviceaccounts`. */
  resource: KubeResource;
  namespace?: string;
  name: string;
  /** The request path (after the server's own prefix) when not `/api/v1/…/<resource>/<name>`. */
  path?: string;
  /** The verb for RBAC messages (default get). */
  verb?: 'get' | 'list';
  /** The API group for RBAC messages (default the core group ""). */
  group?: string;
}

type Json = Record<string, unknown>;

interface HttpResult {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** A failure worth another attempt (connection, timeout). `kind` is its metric label. */
class TransientError extends Error {
  readonly kind: 'timeout' | 'network';
  constructor(kind: 'timeout' | 'network', message: string, cause: unknown) {
    super(message, { cause });
    this.kind = kind;
  }
}

/**
 * A Kubernetes name as a single path segment. Kubernetes names never contain `/`, `..` or `%`, so a
 * name that would change the path's meaning is refused before any request (a hostile namespace
 * must not turn `namespaces/x/serviceaccounts/y` into another URL).
 */
function segment(kind: string, value: string): string {
  if (value === '' || value === '.' || value === '..') {
    throw new ProviderError('INVALID_ARGUMENT', `invalid ${kind} name ${JSON.stringify(value)}`, {
      reason: 'InvalidName',
    });
  }
  return encodeURIComponent(value);
}

function isJsonMap(v: unknown): v is Json {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function stringMap(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (!isJsonMap(v)) return out;
  for (const [k, val] of Object.entries(v)) if (typeof val === 'string') out[k] = val;
  return out;
}

/** Seconds or an HTTP date → milliseconds; 1 s when absent or unreadable (client-go's default). */
export function parseRetryAfter(value: string | undefined, now: number): number {
  if (value === undefined || value.trim() === '') return 1000;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? 1000 : Math.max(0, at - now);
}

export class KubeClient {
  readonly #config: KubeConfig;
  readonly #base: URL;
  readonly #agent: http.Agent;
  readonly #transport: typeof http | typeof https;
  readonly #bucket: TokenBucket;
  readonly #timeoutMs: number;
  readonly #now: () => number;
  readonly #sleep: Sleep;
  readonly #retryBaseMs: number;
  readonly #onRequest: (resource: KubeResource, code: number | string) => void;
  #token: { value: string; readAt: number } | undefined;
  /** The exec plugin's last token, and the run in progress (concurrent requests share one run). */
  #execToken: ExecToken | undefined;
  #execRun: Promise<ExecToken> | undefined;

  constructor(config: KubeConfig, opts: KubeClientOptions) {
    this.#config = config;
    this.#base = new URL(config.server);
    this.#now = opts.now ?? Date.now;
    this.#sleep = opts.sleep ?? realSleep;
    this.#timeoutMs = opts.timeoutMs ?? 10_000;
    this.#retryBaseMs = opts.retryBaseMs ?? 200;
    this.#onRequest = opts.onRequest ?? (() => undefined);
    this.#bucket = new TokenBucket(opts.qps, opts.burst, this.#now, this.#sleep);
    if (this.#base.protocol === 'https:') {
      const tls: https.AgentOptions = { keepAlive: true, rejectUnauthorized: config.insecureSkipTlsVerify !== true };
      if (config.ca !== undefined) tls.ca = config.ca;
      if (config.cert !== undefined) tls.cert = config.cert;
      if (config.key !== undefined) tls.key = config.key;
      this.#agent = new nodeHttps.Agent(tls);
      this.#transport = nodeHttps;
    } else if (this.#base.protocol === 'http:') {
      this.#agent = new nodeHttp.Agent({ keepAlive: true });
      this.#transport = nodeHttp;
    } else {
      throw new ProviderError(
        'FAILED_PRECONDITION',
        `Kubernetes API server must be https:// or http://, not ${this.#base.protocol}`,
      );
    }
    if (config.token !== undefined && config.tokenFile === undefined)
      this.#token = { value: config.token, readAt: Infinity };
  }

  async getServiceAccount(
    ns: string,
    name: string,
    signal: AbortSignal,
  ): Promise<{ annotations: Record<string, string> }> {
    const obj = await this.#get({ resource: 'serviceaccounts', namespace: ns, name }, signal);
    return { annotations: stringMap(isJsonMap(obj['metadata']) ? obj['metadata']['annotations'] : undefined) };
  }

  async getPod(ns: string, name: string, signal: AbortSignal): Promise<{ nodeName: string }> {
    const obj = await this.#get({ resource: 'pods', namespace: ns, name }, signal);
    const spec = obj['spec'];
    const nodeName = isJsonMap(spec) && typeof spec['nodeName'] === 'string' ? spec['nodeName'] : '';
    return { nodeName };
  }

  async getNode(name: string, signal: AbortSignal): Promise<{ labels: Record<string, string> }> {
    const obj = await this.#get({ resource: 'nodes', name }, signal);
    return { labels: stringMap(isJsonMap(obj['metadata']) ? obj['metadata']['labels'] : undefined) };
  }

  /** The pod with its service account and CSI volumes (doctor). */
  async getPodDetails(ns: string, name: string, signal: AbortSignal): Promise<PodDetails> {
    const obj = await this.#get({ resource: 'pods', namespace: ns, name }, signal);
    const spec = isJsonMap(obj['spec']) ? obj['spec'] : {};
    const volumes = Array.isArray(spec['volumes']) ? (spec['volumes'] as unknown[]) : [];
    const csiVolumes: PodDetails['csiVolumes'] = [];
    for (const v of volumes) {
      if (!isJsonMap(v) || !isJsonMap(v['csi'])) continue;
      const csi = v['csi'];
      csiVolumes.push({
        name: typeof v['name'] === 'string' ? v['name'] : '',
        driver: typeof csi['driver'] === 'string' ? csi['driver'] : '',
        attributes: stringMap(csi['volumeAttributes']),
      });
    }
    return {
      nodeName: typeof spec['nodeName'] === 'string' ? spec['nodeName'] : '',
      // Kubernetes fills it in ("default" when the manifest names none).
      serviceAccountName:
        typeof spec['serviceAccountName'] === 'string' && spec['serviceAccountName'] !== ''
          ? spec['serviceAccountName']
          : 'default',
      csiVolumes,
    };
  }

  /** A CSIDriver's token requests (storage.k8s.io/v1): undefined when its spec has none. */
  async getCsiDriver(
    name: string,
    signal: AbortSignal,
  ): Promise<{ tokenRequests: { audience: string }[] | undefined }> {
    const path = `/apis/storage.k8s.io/v1/csidrivers/${segment('csidriver', name)}`;
    const obj = await this.#get({ resource: 'csidrivers', name, path, group: 'storage.k8s.io' }, signal);
    const spec = isJsonMap(obj['spec']) ? obj['spec'] : {};
    const raw = spec['tokenRequests'];
    if (!Array.isArray(raw)) return { tokenRequests: undefined };
    return {
      tokenRequests: raw
        .filter(isJsonMap)
        .map((t) => ({ audience: typeof t['audience'] === 'string' ? t['audience'] : '' })),
    };
  }

  /** Pods of every namespace matching an equality label selector (`k=v,k2=v2`). */
  async listPods(labelSelector: string, signal: AbortSignal): Promise<PodSummary[]> {
    const path = `/api/v1/pods?labelSelector=${encodeURIComponent(labelSelector)}`;
    const obj = await this.#get({ resource: 'pods', name: labelSelector, path, verb: 'list' }, signal);
    const items = Array.isArray(obj['items']) ? (obj['items'] as unknown[]) : [];
    return items.filter(isJsonMap).map((pod) => {
      const meta = isJsonMap(pod['metadata']) ? pod['metadata'] : {};
      const spec = isJsonMap(pod['spec']) ? pod['spec'] : {};
      const status = isJsonMap(pod['status']) ? pod['status'] : {};
      const conditions = Array.isArray(status['conditions']) ? (status['conditions'] as unknown[]) : [];
      const containers = Array.isArray(spec['containers']) ? (spec['containers'] as unknown[]) : [];
      return {
        namespace: typeof meta['namespace'] === 'string' ? meta['namespace'] : '',
        name: typeof meta['name'] === 'string' ? meta['name'] : '',
        nodeName: typeof spec['nodeName'] === 'string' ? spec['nodeName'] : '',
        ready: conditions.some((c) => isJsonMap(c) && c['type'] === 'Ready' && c['status'] === 'True'),
        containers: containers.filter(isJsonMap).map((c) => ({
          name: typeof c['name'] === 'string' ? c['name'] : '',
          args: Array.isArray(c['args']) ? c['args'].filter((a): a is string => typeof a === 'string') : [],
        })),
      };
    });
  }

  /** A SecretProviderClass as the API server stores it (secrets-store.csi.x-k8s.io/v1). */
  async getSecretProviderClass(ns: string, name: string, signal: AbortSignal): Promise<Record<string, unknown>> {
    const path =
      `/apis/secrets-store.csi.x-k8s.io/v1/namespaces/${segment('namespace', ns)}` +
      `/secretproviderclasses/${segment('secretproviderclass', name)}`;
    return this.#get(
      { resource: 'secretproviderclasses', namespace: ns, name, path, group: 'secrets-store.csi.x-k8s.io' },
      signal,
    );
  }

  /** The service-account token issuer, from the API server's OIDC discovery document. */
  async getIssuer(signal: AbortSignal): Promise<string> {
    const obj = await this.#get(
      { resource: 'openid-configuration', name: 'openid-configuration', path: '/.well-known/openid-configuration' },
      signal,
    );
    return typeof obj['issuer'] === 'string' ? obj['issuer'] : '';
  }

  /** Destroys the keep-alive sockets; later calls open new ones. */
  close(): void {
    this.#agent.destroy();
  }

  #path(r: Resource): string {
    const prefix = this.#base.pathname.replace(/\/+$/, '');
    if (r.path !== undefined) return `${prefix}${r.path}`;
    const ns = r.namespace === undefined ? '' : `/namespaces/${segment('namespace', r.namespace)}`;
    return `${prefix}/api/v1${ns}/${r.resource}/${segment(r.resource.replace(/s$/, ''), r.name)}`;
  }

  /** The exec plugin's token: run again when forced (a 401) or within a minute of its expiry. */
  async #execBearer(force: boolean): Promise<string> {
    const exec = this.#config.exec;
    if (exec === undefined) throw new Error('no exec plugin');
    const cached = this.#execToken;
    if (!force && cached !== undefined && cached.expiresAt - this.#now() > EXEC_TOKEN_MARGIN_MS) return cached.token;
    // Not the request's signal: concurrent requests share this run, and the plugin has its own time limit.
    this.#execRun ??= runExecCredential(exec.config, exec.env).finally(() => {
      this.#execRun = undefined;
    });
    this.#execToken = await this.#execRun;
    return this.#execToken.token;
  }

  async #bearer(force: boolean): Promise<string | undefined> {
    if (this.#config.exec !== undefined) return this.#execBearer(force);
    const file = this.#config.tokenFile;
    if (file === undefined) return this.#token?.value;
    const now = this.#now();
    if (!force && this.#token !== undefined && now - this.#token.readAt < TOKEN_REREAD_MS) return this.#token.value;
    try {
      const value = (await readFile(file, 'utf8')).trim();
      this.#token = { value, readAt: now };
      return value;
    } catch (err) {
      // Keep the last good token: a rotation in progress must not fail requests.
      if (this.#token !== undefined) return this.#token.value;
      const code = (err as NodeJS.ErrnoException).code ?? 'error';
      throw new ProviderError('FAILED_PRECONDITION', `cannot read the Kubernetes token file ${file}: ${code}`, {
        reason: 'KubeConfig',
        cause: err,
      });
    }
  }

  async #get(r: Resource, signal: AbortSignal): Promise<Json> {
    const path = this.#path(r);
    const what = `GET ${path}`;
    let transient = 0;
    let throttled = 0;
    let reauthenticated = false;
    let forceToken = false;
    for (;;) {
      await this.#bucket.take(signal);
      const token = await this.#bearer(forceToken);
      forceToken = false;
      let res: HttpResult;
      try {
        res = await this.#request(path, token, signal);
      } catch (err) {
        if (signal.aborted) throw abortError(signal, `Kubernetes ${what}`);
        if (!(err instanceof TransientError)) {
          if (err instanceof ProviderError && err.reason === 'KubeTls') this.#onRequest(r.resource, 'tls');
          throw err;
        }
        this.#onRequest(r.resource, err.kind);
        if (transient < TRANSIENT_RETRIES) {
          await this.#sleep(this.#retryBaseMs * 2 ** transient++, signal).catch(() => {
            throw abortError(signal, `Kubernetes ${what}`);
          });
          continue;
        }
        throw new ProviderError(
          'UNAVAILABLE',
          `Kubernetes ${what} failed after ${transient + 1} attempts: ${err.message}`,
          {
            reason: 'KubeUnavailable',
            cause: err,
          },
        );
      }
      const { status } = res;
      this.#onRequest(r.resource, status);
      if (status >= 200 && status < 300) return this.#parse(res.body, what);
      const detail = statusMessage(res.body);
      if (status === 401) {
        // A rotated bound token: re-read the file (or run the exec plugin) once and try again.
        if (!reauthenticated && (this.#config.tokenFile !== undefined || this.#config.exec !== undefined)) {
          reauthenticated = true;
          const before = token;
          const after = await this.#bearer(true);
          if (after !== before) continue;
        }
        const whose =
          this.#config.exec !== undefined
            ? `the token of the kubeconfig's exec plugin ${JSON.stringify(this.#config.exec.config.command)} was ` +
              'refused (does the cluster map your identity to a user, e.g. an EKS access entry?)'
            : "the provider's credentials for the Kubernetes API were refused " +
              '(expired or invalid service-account token?)';
        throw fail(
          'UNAUTHENTICATED',
          `Kubernetes ${what}: 401 Unauthorized${detail ? `: ${detail}` : ''}: ${whose}`,
          'KubeUnauthorized',
        );
      }
      if (status === 403) throw fail('PERMISSION_DENIED', forbiddenMessage(r, detail), 'KubeForbidden');
      if (status === 404) {
        const kind = r.resource;
        throw fail('NOT_FOUND', detail || `${kind} ${JSON.stringify(r.name)} not found`, 'KubeNotFound');
      }
      if (status === 429) {
        const waitMs = parseRetryAfter(headerValue(res.headers['retry-after']), this.#now());
        if (throttled < THROTTLE_RETRIES && waitMs <= MAX_RETRY_AFTER_MS) {
          throttled++;
          await this.#sleep(waitMs, signal).catch(() => {
            throw abortError(signal, `Kubernetes ${what}`);
          });
          continue;
        }
        throw fail(
          'UNAVAILABLE',
          `Kubernetes ${what}: 429 Too Many Requests after ${throttled + 1} attempts ` +
            `(Retry-After ${Math.ceil(waitMs / 1000)} s)${detail ? `: ${detail}` : ''}`,
          'KubeThrottled',
        );
      }
      if (status >= 500) {
        if (transient < TRANSIENT_RETRIES) {
          await this.#sleep(this.#retryBaseMs * 2 ** transient++, signal).catch(() => {
            throw abortError(signal, `Kubernetes ${what}`);
          });
          continue;
        }
        throw fail(
          'UNAVAILABLE',
          `Kubernetes ${what}: HTTP ${status} after ${transient + 1} attempts${detail ? `: ${detail}` : ''}`,
          'KubeUnavailable',
        );
      }
      throw fail(
        'INTERNAL',
        `Kubernetes ${what}: unexpected HTTP ${status}${detail ? `: ${detail}` : ''}`,
        'KubeError',
      );
    }
  }

  #parse(body: Buffer, what: string): Json {
    let obj: unknown;
    try {
      obj = JSON.parse(body.toString('utf8'));
    } catch (err) {
      throw new ProviderError('INTERNAL', `Kubernetes ${what}: the answer is not JSON`, {
        reason: 'KubeError',
        cause: err,
      });
    }
    if (!isJsonMap(obj))
      throw new ProviderError('INTERNAL', `Kubernetes ${what}: the answer is not a JSON object`, {
        reason: 'KubeError',
      });
    return obj;
  }

  #request(path: string, token: string | undefined, signal: AbortSignal): Promise<HttpResult> {
    return new Promise<HttpResult>((resolve, reject) => {
      const headers: http.OutgoingHttpHeaders = { accept: 'application/json' };
      if (token !== undefined && token !== '') headers['authorization'] = `Bearer ${token}`;
      const req = this.#transport.request({
        protocol: this.#base.protocol,
        hostname: this.#base.hostname.replace(/^\[(.*)\]$/, '$1'),
        port: this.#base.port,
        path,
        method: 'GET',
        headers,
        agent: this.#agent,
      });
      let settled = false;
      let answering = false;
      const finish = (fn: () => void): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        fn();
      };
      const onAbort = (): void => {
        req.destroy();
        finish(() => reject(abortError(signal, `Kubernetes GET ${path}`)));
      };
      const timer = setTimeout(() => {
        req.destroy();
        const what = answering
          ? `no complete answer within ${this.#timeoutMs} ms (the answer was still arriving)`
          : `no answer within ${this.#timeoutMs} ms`;
        finish(() => reject(new TransientError('timeout', what, undefined)));
      }, this.#timeoutMs);
      signal.addEventListener('abort', onAbort, { once: true });
      req.on('error', (err: NodeJS.ErrnoException) => {
        const tlsRefused = /CERT|SELF_SIGNED|UNABLE_TO|HOSTNAME|ERR_TLS/.test(err.code ?? '');
        finish(() =>
          reject(
            tlsRefused
              ? new ProviderError(
                  'FAILED_PRECONDITION',
                  `Kubernetes GET ${path}: TLS verification of the API server failed (${err.code ?? 'error'}): ` +
                    `check the cluster CA (certificate-authority / ca.crt)`,
                  { reason: 'KubeTls', cause: err },
                )
              : new TransientError('network', `connection failed (${err.code ?? err.message})`, err),
          ),
        );
      });
      req.on('response', (res) => {
        answering = true;
        const tooLarge = (): void => {
          req.destroy();
          finish(() =>
            reject(
              new ProviderError(
                'INTERNAL',
                `Kubernetes GET ${path}: the API server answered more than ${MAX_KUBE_ANSWER_BYTES / 1048576} MiB ` +
                  `(HTTP ${res.statusCode ?? 0}), more than any object it stores; the rest was not read`,
                { reason: 'KubeError' },
              ),
            ),
          );
        };
        if (Number(res.headers['content-length']) > MAX_KUBE_ANSWER_BYTES) return tooLarge();
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_KUBE_ANSWER_BYTES) return tooLarge();
          chunks.push(chunk);
        });
        res.on('end', () =>
          finish(() => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) })),
        );
        res.on('error', (err) =>
          finish(() => reject(new TransientError('network', `answer interrupted (${err.message})`, err))),
        );
      });
      req.end();
    });
  }
}

function fail(code: StatusName, message: string, reason: string): ProviderError {
  return new ProviderError(code, message, { reason });
}

function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/** The `message` of a Kubernetes Status body (`serviceaccounts "x" not found`), or ''. */
function statusMessage(body: Buffer): string {
  try {
    const obj: unknown = JSON.parse(body.toString('utf8'));
    if (isJsonMap(obj) && typeof obj['message'] === 'string') return scrub(obj['message']);
  } catch {
    // Not a Status: the status code alone speaks.
  }
  return '';
}

function forbiddenMessage(r: Resource, detail: string): string {
  const where = r.namespace === undefined ? '' : ` in namespace ${JSON.stringify(r.namespace)}`;
  if (r.path !== undefined) {
    // Only `doctor` reads these, with the operator's kubeconfig: the rule is the operator's to get.
    const verb = r.verb ?? 'get';
    return (
      `may not ${verb} ${r.resource}${where} (${detail || '403 Forbidden'}): your Kubernetes user needs verb ` +
      `"${verb}" on resource "${r.resource}" (apiGroups ["${r.group ?? ''}"])`
    );
  }
  return (
    `the provider may not get ${r.resource}${where} (${detail || '403 Forbidden'}): ` +
    `its ClusterRole needs verb "get" on resource "${r.resource}" (apiGroups [""]) bound to the provider's service ` +
    `account`
  );
}

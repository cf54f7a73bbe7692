/**
 * @module k8s/lookups
 * What a Mount asks Kubernetes, cached: the IRSA role of a service account (short TTL: users fix
 * annotations) and the region of a node (for the process lifetime: a node cannot change region).
 * Concurrent misses for one key share one request. ASCP redoes these GETs on every Mount
 * (docs/behaviour.md, "Kubernetes API"); the warm path here makes none.
 */
import { ProviderError } from '../errors.js';
import type { KubeClient } from './client.js';
import { abortError } from './rate-limit.js';
import { setBounded } from '../bounded-map.js';

/** The IRSA annotation (exact key, docs/behaviour.md, "Identity"). */
export const ROLE_ARN_ANNOTATION = 'eks.amazonaws.com/role-arn';
/** The node label read for the region (docs/behaviour.md, "Region"). */
export const REGION_LABEL = 'topology.kubernetes.io/region';

/** STS's limit on RoleArn. */
export const MAX_ROLE_ARN_LENGTH = 2048;

/**
 * An IAM role ARN: `arn:<partition>:iam::<12 digits>:role/<path/><name>`, the path of IAM's
 * printable characters, the name of IAM's role-name characters (at most 64). Anything else in the
 * annotation is refused before any STS call, instead of being sent to STS and echoed back.
 */
const ROLE_ARN = /^arn:aws(?:-[a-z]+)*:iam::\d{12}:role\/(?:[\x21-\x7e]*\/)?[\w+=,.@-]{1,64}$/;

export function isRoleArn(value: string): boolean {
  return value.length <= MAX_ROLE_ARN_LENGTH && ROLE_ARN.test(value);
}

/**
 * An untrusted value in a message: at most `max` characters, in quotes, every character outside
 * printable ASCII escaped (a newline or an ANSI code shows as `\u000a`, `\u001b`), with its length when cut.
 */
export function quoteValue(value: string, max = 60): string {
  const head = value
    .slice(0, max)
    .replace(/[^\x20-\x7e]|["\\]/g, (c) =>
      c === '"' || c === '\\' ? `\\${c}` : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
    );
  return value.length > max ? `"${head}"… (${value.length} characters)` : `"${head}"`;
}

/**
 * How long a service account's role annotation is reused: 5 minutes. Driver v1.6 republishes each
 * pod about every 1–2 minutes, so a shorter TTL would put a GET on nearly every rotation poll (the
 * benchmark saw it with 60 s); role annotations change rarely, and a change takes effect within
 * this time. STS still checks every new token against the role's trust policy.
 */
export const ROLE_TTL_MS = 5 * 60_000;

export interface KubeLookupsOptions {
  /** How long a service account's role ARN is reused. Default ROLE_TTL_MS (5 min). */
  roleTtlMs?: number;
  now?: () => number;
  /** Called on every look-up (an in-flight join is a hit); the shape of `metrics.cacheRequest`. */
  onCache?: (cache: 'service-account' | 'node-region', hit: boolean) => void;
}

/**
 * Cache key of a service account. Namespace and name come from request attributes (user input), so
 * the key is an unambiguous encoding, not `ns/name`: `("a/b","c")` and `("a","b/c")` must differ.
 */
export function serviceAccountKey(ns: string, sa: string): string {
  return JSON.stringify([ns, sa]);
}

interface Flight<V> {
  promise: Promise<V>;
  controller: AbortController;
  waiters: number;
}

/**
 * One request in flight per key, shared by every concurrent caller. Each caller may give up on its
 * own signal; the shared request is cancelled only when every caller has given up.
 */
class SharedFlights<V> {
  readonly #flights = new Map<string, Flight<V>>();

  /** `start` is called only when no request for `key` is in flight; returns whether this call joined one. */
  run(
    key: string,
    signal: AbortSignal,
    what: string,
    start: (signal: AbortSignal) => Promise<V>,
  ): { joined: boolean; result: Promise<V> } {
    if (signal.aborted) return { joined: false, result: Promise.reject(abortError(signal, what)) };
    let flight = this.#flights.get(key);
    const joined = flight !== undefined;
    if (flight === undefined) {
      const controller = new AbortController();
      const promise = start(controller.signal);
      const created: Flight<V> = { promise, controller, waiters: 0 };
      const forget = (): void => {
        if (this.#flights.get(key) === created) this.#flights.delete(key);
      };
      promise.then(forget, forget);
      this.#flights.set(key, created);
      flight = created;
    }
    const f = flight;
    f.waiters++;
    const result = new Promise<V>((resolve, reject) => {
      const onAbort = (): void => {
        f.waiters--;
        if (f.waiters === 0) {
          if (this.#flights.get(key) === f) this.#flights.delete(key);
          f.controller.abort(signal.reason);
        }
        reject(abortError(signal, what));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      f.promise.then(
        (v) => {
          signal.removeEventListener('abort', onAbort);
          resolve(v);
        },
        (err: unknown) => {
          signal.removeEventListener('abort', onAbort);
          reject(err);
        },
      );
    });
    return { joined, result };
  }
}

function wrap(
  code: ProviderError['code'] | undefined,
  message: string,
  cause: unknown,
  reason?: string,
): ProviderError {
  return new ProviderError(code ?? 'INTERNAL', message, {
    cause,
    reason: reason ?? (cause instanceof ProviderError ? cause.reason : 'KubeError'),
  });
}

function causeOf(err: unknown): { code: ProviderError['code'] | undefined; message: string } {
  if (err instanceof ProviderError) return { code: err.code, message: err.message };
  return { code: undefined, message: err instanceof Error ? err.message : String(err) };
}

const REGION_PREFIX = 'failed to retrieve region from node. error ';

export class KubeLookups {
  readonly #client: Pick<KubeClient, 'getServiceAccount' | 'getPod' | 'getNode'>;
  readonly #roleTtlMs: number;
  readonly #now: () => number;
  /** Service account → role ARN, until `expires` (only non-empty ARNs: errors are not cached). */
  readonly #roles = new Map<string, { arn: string; expires: number }>();
  /** Node → region, for the process lifetime. */
  readonly #regions = new Map<string, string>();
  /** Pod (namespace, name, uid) → node: a pod's node never changes, and the uid tells incarnations apart. */
  readonly #podNodes = new Map<string, string>();
  readonly #roleFlights = new SharedFlights<string>();
  readonly #regionFlights = new SharedFlights<string>();
  readonly #onCache: (cache: 'service-account' | 'node-region', hit: boolean) => void;
  #hits = 0;
  #misses = 0;

  constructor(client: Pick<KubeClient, 'getServiceAccount' | 'getPod' | 'getNode'>, opts: KubeLookupsOptions = {}) {
    this.#client = client;
    this.#roleTtlMs = opts.roleTtlMs ?? ROLE_TTL_MS;
    this.#now = opts.now ?? Date.now;
    this.#onCache = opts.onCache ?? (() => undefined);
  }

  #count(cache: 'service-account' | 'node-region', hit: boolean): void {
    if (hit) this.#hits++;
    else this.#misses++;
    this.#onCache(cache, hit);
  }

  /** The `eks.amazonaws.com/role-arn` annotation of a service account (IRSA, docs/behaviour.md, "Identity"). */
  async roleArn(ns: string, sa: string, signal: AbortSignal): Promise<string> {
    const key = serviceAccountKey(ns, sa);
    const cached = this.#roles.get(key);
    const now = this.#now();
    if (cached !== undefined && now < cached.expires) {
      this.#count('service-account', true);
      return cached.arn;
    }
    if (cached !== undefined) this.#roles.delete(key);
    const { joined, result } = this.#roleFlights.run(key, signal, `get service account ${ns}/${sa}`, async (s) => {
      let annotations: Record<string, string>;
      try {
        ({ annotations } = await this.#client.getServiceAccount(ns, sa, s));
      } catch (err) {
        const cause = causeOf(err);
        throw wrap(cause.code, `failed to get service account ${ns}/${sa}: ${cause.message}`, err);
      }
      const arn = (annotations[ROLE_ARN_ANNOTATION] ?? '').trim();
      if (arn === '') {
        throw new ProviderError(
          'FAILED_PRECONDITION',
          `An IAM role must be associated with service account ${sa} (namespace: ${ns}): ` +
            `annotate it with \`kubectl annotate serviceaccount ` +
            `-n ${ns} ${sa} ${ROLE_ARN_ANNOTATION}=arn:aws:iam::<account>:role/<role>\`, ` +
            `or set usePodIdentity: "true" in the SecretProviderClass to use EKS Pod Identity`,
          { reason: 'NoRoleAnnotation', field: ROLE_ARN_ANNOTATION },
        );
      }
      if (!isRoleArn(arn)) {
        throw new ProviderError(
          'FAILED_PRECONDITION',
          `The ${ROLE_ARN_ANNOTATION} annotation of service account ${sa} (namespace: ${ns}) is not an IAM role ` +
            `ARN: ${quoteValue(arn)}; ` +
            `it must be arn:aws:iam::<account>:role/<role> (at most ${MAX_ROLE_ARN_LENGTH} characters): ` +
            `\`kubectl annotate --overwrite serviceaccount ` +
            `-n ${ns} ${sa} ${ROLE_ARN_ANNOTATION}=arn:aws:iam::<account>:role/<role>\``,
          { reason: 'BadRoleAnnotation', field: ROLE_ARN_ANNOTATION },
        );
      }
      this.#pruneRoles(this.#now());
      this.#roles.set(key, { arn, expires: this.#now() + this.#roleTtlMs });
      return arn;
    });
    this.#count('service-account', joined);
    return result;
  }

  /** The `topology.kubernetes.io/region` label of a node. Errors are wrapped as ASCP's (docs/behaviour.md, "Region").
   * */
  async nodeRegion(nodeName: string, signal: AbortSignal): Promise<string> {
    try {
      return await this.#nodeRegion(nodeName, signal);
    } catch (err) {
      throw this.#regionError(err);
    }
  }

  /**
   * Region through the pod: pod → `spec.nodeName` → node label (docs/behaviour.md, "Region"). With the
   * pod's uid (the driver sends it) the pod's node is remembered: it cannot change for that uid, so
   * rotation polls make no pod GET. Without a uid every call asks (a recreated pod may move).
   */
  async podRegion(ns: string, pod: string, signal: AbortSignal, uid = ''): Promise<string> {
    try {
      const key = uid === '' ? undefined : JSON.stringify([ns, pod, uid]);
      let nodeName = key === undefined ? undefined : this.#podNodes.get(key);
      if (nodeName === undefined) {
        ({ nodeName } = await this.#client.getPod(ns, pod, signal));
        if (nodeName !== '' && key !== undefined) {
          setBounded(this.#podNodes, key, nodeName, 4096);
        }
      }
      if (nodeName === '') {
        throw new ProviderError('FAILED_PRECONDITION', `pod ${ns}/${pod} has no spec.nodeName (not scheduled yet)`, {
          reason: 'RegionNotFound',
        });
      }
      return await this.#nodeRegion(nodeName, signal);
    } catch (err) {
      throw this.#regionError(err);
    }
  }

  stats(): { hits: number; misses: number } {
    return { hits: this.#hits, misses: this.#misses };
  }

  async #nodeRegion(nodeName: string, signal: AbortSignal): Promise<string> {
    const cached = this.#regions.get(nodeName);
    if (cached !== undefined) {
      this.#count('node-region', true);
      return cached;
    }
    const { joined, result } = this.#regionFlights.run(nodeName, signal, `get node ${nodeName}`, async (s) => {
      const { labels } = await this.#client.getNode(nodeName, s);
      const region = (labels[REGION_LABEL] ?? '').trim();
      if (region === '') {
        throw new ProviderError(
          'FAILED_PRECONDITION',
          `Region not found: node ${JSON.stringify(nodeName)} has no label ${REGION_LABEL}; set region in the ` +
            `SecretProviderClass or AWS_REGION on the provider`,
          { reason: 'RegionNotFound', field: 'region' },
        );
      }
      this.#regions.set(nodeName, region);
      return region;
    });
    this.#count('node-region', joined);
    return result;
  }

  #regionError(err: unknown): ProviderError {
    const cause = causeOf(err);
    if (cause.message.startsWith(REGION_PREFIX)) return err as ProviderError;
    return wrap(cause.code, `${REGION_PREFIX}${cause.message}`, err);
  }

  #pruneRoles(now: number): void {
    if (this.#roles.size < 1024) return;
    for (const [k, v] of this.#roles) if (now >= v.expires) this.#roles.delete(k);
  }
}

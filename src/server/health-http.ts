/**
 * @module server/health-http
 * The HTTP side: `/healthz` (the process runs), `/readyz` (a real readiness check, by default the
 * gRPC health probe over our own socket; one check at a time, its answer reused for a second, so
 * many callers cost one check) and `/metrics` (Prometheus text 0.0.4), on node:http.
 * Health and metrics share one server when given the same address. Addresses are checked when the
 * server is built, never per request.
 */
import type * as http from 'node:http';
import { http as nodeHttp } from '../node-http.js';
import { isIPv4, isIPv6, type AddressInfo } from 'node:net';
import { ProviderError } from '../errors.js';
import { EVENTS, renderPrometheus, scrub, type Logger, type Registry } from '../observability/index.js';

/** A parsed `HOST:PORT`. `host` is '' for "every interface" (`:8989`). */
export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

const HOSTNAME =
  /^(?=.{1,253}$)[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$/;
const EXAMPLES = 'use HOST:PORT such as ":8989", "0.0.0.0:8989", "[::]:8989" or "127.0.0.1:0"';

/**
 * `:8989` → {host: '', port: 8989}; `0.0.0.0:8989`, `[::]:8989`, `127.0.0.1:0`, `localhost:9000`.
 * Refuses a missing or out-of-range port, an unbracketed IPv6 address and anything else, naming
 * the flag and the fix.
 */
export function parseListenAddress(address: string, flag = 'address'): ListenAddress {
  const fail = (why: string): never => {
    throw new ProviderError('INVALID_ARGUMENT', `${flag} "${address}" is not a listen address: ${why}; ${EXAMPLES}`, {
      field: flag,
      reason: 'Config',
    });
  };
  const colon = address.lastIndexOf(':');
  if (colon === -1) return fail('no port');
  const hostPart = address.slice(0, colon);
  const portPart = address.slice(colon + 1);
  if (!/^\d{1,5}$/.test(portPart)) return fail(`port "${portPart}" is not a number`);
  const port = Number(portPart);
  if (port > 65535) return fail(`port ${port} is above 65535`);

  let host: string;
  if (hostPart.startsWith('[') || hostPart.endsWith(']')) {
    host = hostPart.slice(1, -1);
    if (!hostPart.startsWith('[') || !hostPart.endsWith(']') || !isIPv6(host))
      return fail(`"${hostPart}" is not a bracketed IPv6 address`);
  } else if (hostPart.includes(':')) {
    return fail('an IPv6 address needs brackets, as in "[::1]:8989"');
  } else {
    host = hostPart;
    const numeric = /^[\d.]+$/.test(host); // 999.1.1.1 is a bad address, not a host name
    if (host !== '' && !isIPv4(host) && (numeric || !HOSTNAME.test(host)))
      return fail(`"${host}" is not an IPv4 address or a host name`);
  }
  return { host, port };
}

export interface HealthServerOptions {
  /** `HOST:PORT` for /healthz and /readyz; '' or absent turns them off. */
  healthAddr?: string | undefined;
  /** `HOST:PORT` for /metrics; '' or absent turns it off. The same address as healthAddr shares one server. */
  metricsAddr?: string | undefined;
  /** Required when metricsAddr is set. */
  registry?: Registry | undefined;
  /**
   * Resolves when the provider can serve mounts; throws (with a reason, never a secret) when not.
   * Should stop when `signal` aborts; /readyz answers 503 at the timeout either way. Called at most
   * once at a time: concurrent /readyz requests share the check in flight.
   */
  ready: (signal: AbortSignal) => Promise<void>;
  /**
   * Run one readiness check as soon as the health port listens, so `ready` (or `not ready` and why)
   * is logged at start, not at the kubelet's first probe. Its answer serves /readyz for readyCacheMs.
   */
  checkAtStart?: boolean;
  logger: Logger;
  /** Budget of one readiness check; default 2000 ms. */
  readyTimeoutMs?: number;
  /** How long a readiness answer is reused; default 1000 ms (0: every request checks, one at a time). */
  readyCacheMs?: number;
  /** Connections each HTTP listener holds at most; more are closed at accept. Default 128. */
  maxConnections?: number;
}

export interface HealthServer {
  /** Base URL of the health server (`http://127.0.0.1:8990`); append /healthz or /readyz. */
  readonly healthUrl?: string;
  /** Full URL of the metrics endpoint (`http://127.0.0.1:8989/metrics`). */
  readonly metricsUrl?: string;
  /** Stops listening, drops open connections and cancels readiness checks in flight. */
  close(): Promise<void>;
}

type Route = 'health' | 'metrics';

const TEXT = 'text/plain; charset=utf-8';
/** The content type Prometheus expects for text format 0.0.4. */
export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
const MAX_REASON = 1024;

function urlHost(host: string): string {
  if (host === '' || host === '0.0.0.0') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return isIPv6(host) ? `[${host}]` : host;
}

/**
 * Starts the health and metrics listeners. Bad addresses (or metrics without a registry) reject
 * before anything listens; a port in use rejects with the address named.
 */
export async function startHealthServer(opts: HealthServerOptions): Promise<HealthServer> {
  const health = opts.healthAddr ? parseListenAddress(opts.healthAddr, '--health-addr') : undefined;
  const metrics = opts.metricsAddr ? parseListenAddress(opts.metricsAddr, '--metrics-addr') : undefined;
  const registry = opts.registry;
  if (metrics !== undefined && registry === undefined) {
    throw new ProviderError('INVALID_ARGUMENT', '--metrics-addr is set but no metric registry was given', {
      reason: 'Config',
    });
  }
  const readyTimeoutMs = opts.readyTimeoutMs ?? 2000;
  const readyCacheMs = opts.readyCacheMs ?? 1000;
  const maxConnections = opts.maxConnections ?? 128;
  const log = opts.logger;
  const checks = new Set<AbortController>();
  let lastReady: boolean | undefined;
  /** The last answer and when it was made (performance.now), reused for readyCacheMs. */
  let answer: { at: number; reason: string | undefined } | undefined;
  /** The check in flight, shared by every /readyz request that arrives meanwhile. */
  let inFlight: Promise<string | undefined> | undefined;

  /** One readiness check, bounded by readyTimeoutMs: resolves undefined when ready, else the reason. */
  const check = async (): Promise<string | undefined> => {
    const controller = new AbortController();
    checks.add(controller);
    const timer = setTimeout(
      () => controller.abort(new Error(`readiness check timed out after ${readyTimeoutMs} ms`)),
      readyTimeoutMs,
    );
    try {
      const aborted = new Promise<never>((_, reject) => {
        controller.signal.addEventListener('abort', () => reject(controller.signal.reason as Error), { once: true });
      });
      aborted.catch(() => {});
      await Promise.race([opts.ready(controller.signal), aborted]);
      if (lastReady !== true) log.info(EVENTS.ready);
      lastReady = true;
      return undefined;
    } catch (err) {
      const reason = scrub(err instanceof Error ? err.message : String(err)).slice(0, MAX_REASON);
      if (lastReady !== false) log.warn(EVENTS.notReady, { reason });
      lastReady = false;
      return reason;
    } finally {
      clearTimeout(timer);
      checks.delete(controller);
    }
  };

  /** The check in flight, or a new one whose answer is kept for readyCacheMs. */
  const sharedCheck = (): Promise<string | undefined> =>
    (inFlight ??= check().then((r) => {
      answer = { at: performance.now(), reason: r };
      inFlight = undefined;
      return r;
    }));

  const readiness = async (res: http.ServerResponse, head: boolean): Promise<void> => {
    let reason: string | undefined;
    if (answer !== undefined && performance.now() - answer.at < readyCacheMs) reason = answer.reason;
    else reason = await sharedCheck();
    if (reason === undefined) reply(res, 200, TEXT, 'ok\n', head);
    else reply(res, 503, TEXT, `not ready: ${reason}\n`, head);
  };

  const handler =
    (routes: ReadonlySet<Route>) =>
    (req: http.IncomingMessage, res: http.ServerResponse): void => {
      const path = (req.url ?? '/').split('?')[0];
      const known =
        (routes.has('health') && (path === '/healthz' || path === '/readyz')) ||
        (routes.has('metrics') && path === '/metrics');
      if (!known) {
        reply(res, 404, TEXT, 'not found\n', req.method === 'HEAD');
        return;
      }
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.setHeader('Allow', 'GET, HEAD');
        reply(res, 405, TEXT, 'method not allowed\n', false);
        return;
      }
      const head = req.method === 'HEAD';
      if (path === '/healthz') {
        reply(res, 200, TEXT, 'ok\n', head);
      } else if (path === '/readyz') {
        void readiness(res, head);
      } else {
        try {
          reply(res, 200, METRICS_CONTENT_TYPE, renderPrometheus(registry as Registry), head);
        } catch (err) {
          log.error(EVENTS.metricsRenderFailed, { error: err });
          reply(res, 500, TEXT, 'cannot render metrics\n', head);
        }
      }
    };

  // One server per distinct address; the same address serves both.
  const plan = new Map<string, { addr: ListenAddress; flag: string; routes: Set<Route> }>();
  for (const [addr, route, flag] of [
    [health, 'health', '--health-addr'],
    [metrics, 'metrics', '--metrics-addr'],
  ] as const) {
    if (addr === undefined) continue;
    const key = `${addr.host}|${addr.port}`;
    const entry = plan.get(key) ?? { addr, flag, routes: new Set<Route>() };
    entry.routes.add(route);
    plan.set(key, entry);
  }

  const servers: http.Server[] = [];
  const close = async (): Promise<void> => {
    for (const c of checks) c.abort(new Error('server closing'));
    await Promise.all(
      servers.map(
        (s) =>
          new Promise<void>((resolve) => {
            s.close(() => resolve());
            s.closeAllConnections();
          }),
      ),
    );
  };

  let healthUrl: string | undefined;
  let metricsUrl: string | undefined;
  try {
    for (const { addr, flag, routes } of plan.values()) {
      // Bounded: a slow or idle client is dropped within seconds (timeouts checked every second),
      // and a flood of connections is refused at accept instead of growing the process.
      const server = nodeHttp.createServer(
        { requestTimeout: 10_000, headersTimeout: 5_000, keepAliveTimeout: 5_000, connectionsCheckingInterval: 1_000 },
        handler(routes),
      );
      server.maxConnections = maxConnections;
      await new Promise<void>((resolve, reject) => {
        const onError = (err: NodeJS.ErrnoException): void => {
          reject(
            new ProviderError(
              'UNAVAILABLE',
              `cannot listen on ${flag} ${addr.host}:${addr.port}: ${err.code ?? err.message}`,
              {
                field: flag,
                cause: err,
              },
            ),
          );
        };
        server.once('error', onError);
        const listening = (): void => {
          server.off('error', onError);
          resolve();
        };
        if (addr.host === '') server.listen(addr.port, listening);
        else server.listen(addr.port, addr.host, listening);
      });
      servers.push(server);
      server.on('error', (err) => log.error(EVENTS.httpServerError, { error: err }));
      const bound = server.address() as AddressInfo;
      const base = `http://${urlHost(addr.host)}:${bound.port}`;
      if (routes.has('health')) healthUrl = base;
      if (routes.has('metrics')) metricsUrl = `${base}/metrics`;
      // The address as bound (0.0.0.0:8990 is every interface, the pod IP included), not a URL to curl.
      const address = `${isIPv6(bound.address) ? `[${bound.address}]` : bound.address}:${bound.port}`;
      log.info(EVENTS.httpListening, {
        address,
        paths: [...routes].flatMap((r) => (r === 'health' ? ['/healthz', '/readyz'] : ['/metrics'])),
      });
    }
  } catch (err) {
    await close();
    throw err;
  }
  if (opts.checkAtStart === true && health !== undefined) void sharedCheck();

  return {
    ...(healthUrl === undefined ? {} : { healthUrl }),
    ...(metricsUrl === undefined ? {} : { metricsUrl }),
    close,
  };
}

function reply(res: http.ServerResponse, status: number, contentType: string, body: string, head: boolean): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(status, {
    'Content-Type': contentType,
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
  });
  res.end(head ? undefined : body);
}

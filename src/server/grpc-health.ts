/**
 * @module server/grpc-health
 * The standard `grpc.health.v1.Health` service (Check, Watch) for our gRPC server, and
 * `SocketProbe`, which asks that service over the provider's own unix socket with one kept client:
 * `/readyz` uses it, so readiness means "the driver could reach us now", not "the process is alive".
 */
import { stat } from 'node:fs/promises';
import http2 from 'node:http2';
import net from 'node:net';
import { ProviderError } from '../errors.js';
import { healthCheckRequest, healthCheckResponse, healthService } from './codec.js';
import {
  decodeGrpcMessage,
  formatTimeout,
  frameMessage,
  GrpcError,
  GrpcStatus,
  MessageReader,
  serverStreamRoute,
  unaryRoute,
  type Route,
} from './grpc-wire.js';

export type ServingStatus = 'UNKNOWN' | 'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN';

/** The name that stands for the whole server in health checks. */
export const OVERALL_SERVICE = '';
/** Our driver-facing service, as the driver's proto names it (proto/service.proto). */
export const PROVIDER_SERVICE = 'v1alpha1.CSIDriverProvider';

interface HealthCheckRequest {
  service: string;
}
interface HealthCheckResponse {
  status: ServingStatus;
}

type Listener = (status: ServingStatus) => void;

/**
 * Serving status per service name, shared by the Health service and whoever runs the server.
 * Lives as long as the server. Starts with `''` and `v1alpha1.CSIDriverProvider` SERVING unless
 * told otherwise; `shutdown()` turns every service NOT_SERVING for good (later `set` calls are
 * ignored, as grpc-go's health server does) and ends open Watch streams, so they do not hold up
 * the server's shutdown.
 */
export class HealthStatus {
  private readonly statuses = new Map<string, ServingStatus>();
  private readonly listeners = new Map<string, Set<Listener>>();
  private readonly shutdownListeners = new Set<() => void>();
  private down = false;

  constructor(
    initial: Readonly<Record<string, ServingStatus>> = { [OVERALL_SERVICE]: 'SERVING', [PROVIDER_SERVICE]: 'SERVING' },
  ) {
    for (const [service, status] of Object.entries(initial)) this.statuses.set(service, status);
  }

  /** Sets one service's status; watchers hear of a change. Ignored after `shutdown()`. */
  set(service: string, status: ServingStatus): void {
    if (this.down) return;
    this.update(service, status);
  }

  /** Undefined when the service is not known. */
  get(service: string): ServingStatus | undefined {
    return this.statuses.get(service);
  }

  get isShutdown(): boolean {
    return this.down;
  }

  /** Every service NOT_SERVING; Watch streams get that status and are then ended. */
  shutdown(): void {
    if (this.down) return;
    for (const service of [...this.statuses.keys()]) this.update(service, 'NOT_SERVING');
    this.down = true;
    for (const end of [...this.shutdownListeners]) end();
    this.shutdownListeners.clear();
  }

  /** Calls `listener` on every change of `service`; returns the unsubscribe function. */
  watch(service: string, listener: Listener, onShutdown: () => void): () => void {
    let set = this.listeners.get(service);
    if (set === undefined) {
      set = new Set();
      this.listeners.set(service, set);
    }
    set.add(listener);
    this.shutdownListeners.add(onShutdown);
    return () => {
      this.listeners.get(service)?.delete(listener);
      this.shutdownListeners.delete(onShutdown);
    };
  }

  private update(service: string, status: ServingStatus): void {
    if (this.statuses.get(service) === status) return;
    this.statuses.set(service, status);
    for (const l of [...(this.listeners.get(service) ?? [])]) l(status);
  }
}

/** The Health service's two methods, answering from `status`. */
export function healthRoutes(status: HealthStatus): Route[] {
  const check = unaryRoute(healthService.Check, (req: HealthCheckRequest): HealthCheckResponse => {
    const s = status.get(req.service);
    if (s === undefined) throw new GrpcError(GrpcStatus.NOT_FOUND, `unknown service "${req.service}"`);
    return { status: s };
  });

  const watch = serverStreamRoute(healthService.Watch, (req: HealthCheckRequest, call, out) => {
    out.write({ status: status.get(req.service) ?? 'SERVICE_UNKNOWN' });
    if (status.isShutdown) {
      out.end();
      return;
    }
    const stop = status.watch(
      req.service,
      (s) => out.write({ status: s }),
      () => out.end(),
    );
    // The client cancelled, went away, or its deadline passed.
    call.signal.addEventListener('abort', stop, { once: true });
  });

  return [check, watch];
}

export interface ProbeOptions {
  /** Deadline of the Check call; default 1 s (under /readyz's 2 s budget). */
  timeoutMs?: number;
  /** Service to ask about; default '' (the whole server). */
  service?: string;
}

function notReady(message: string, cause?: unknown): ProviderError {
  return new ProviderError('UNAVAILABLE', message, { reason: 'NotReady', cause });
}

async function checkSocketFile(socketPath: string): Promise<void> {
  try {
    const st = await stat(socketPath);
    if (!st.isSocket()) throw notReady(`${socketPath} exists but is not a socket`);
  } catch (err) {
    if (err instanceof ProviderError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw notReady(`socket ${socketPath} does not exist: the gRPC server is not listening`, err);
    throw notReady(`cannot stat socket ${socketPath}: ${code ?? String(err)}`, err);
  }
}

/**
 * Health/Check over `unix:<socketPath>` (authority `localhost`, as the driver dials) on ONE HTTP/2
 * connection, kept between checks: /readyz asked by many callers opens no connection per request.
 * A check whose call fails drops the connection, and the next check dials a new one (so does a
 * check after the server closed it, idle or shutting down): a connection left half-broken after
 * the server restarted would fail checks long after the socket is back. `clientsCreated` counts the
 * connections dialled (tests, and whoever wants to know).
 */
export class SocketProbe {
  private session: http2.ClientHttp2Session | undefined;
  private created = 0;
  private readonly timeoutMs: number;
  private readonly service: string;

  constructor(
    readonly socketPath: string,
    opts: ProbeOptions = {},
  ) {
    this.timeoutMs = opts.timeoutMs ?? 1000;
    this.service = opts.service ?? OVERALL_SERVICE;
  }

  get clientsCreated(): number {
    return this.created;
  }

  /**
   * Resolves when the server answers SERVING. Rejects with a reason a person can act on: socket
   * missing, not a socket, connection refused, no health service, NOT_SERVING, timeout.
   */
  async check(signal: AbortSignal): Promise<void> {
    const { socketPath, service, timeoutMs } = this;
    signal.throwIfAborted();
    await checkSocketFile(socketPath);
    signal.throwIfAborted();
    const session = this.liveSession();
    let response: HealthCheckResponse;
    try {
      response = await this.ask(session, signal);
    } catch (err) {
      if (this.session === session) this.drop();
      throw notReady(probeFailure(socketPath, service, timeoutMs, err as Partial<GrpcError>), err);
    }
    if (response.status !== 'SERVING') {
      throw notReady(
        `gRPC server on ${socketPath} reports ${response.status}${service === '' ? '' : ` for "${service}"`}`,
      );
    }
  }

  /** Closes the connection (a later check dials a new one). */
  close(): void {
    this.drop();
  }

  private drop(): void {
    this.session?.destroy();
    this.session = undefined;
  }

  private liveSession(): http2.ClientHttp2Session {
    const s = this.session;
    if (s !== undefined && !s.closed && !s.destroyed) return s;
    this.drop();
    this.created++;
    const session = http2.connect('http://localhost', { createConnection: () => net.connect(this.socketPath) });
    // Each call hears of a failed connection through its own stream.
    session.on('error', () => {});
    session.once('close', () => {
      if (this.session === session) this.session = undefined;
    });
    // A kept connection does not keep the process alive (a call in progress has its deadline's timer).
    session.unref();
    this.session = session;
    return session;
  }

  /** One Health/Check call: its answer, or a GrpcError (its status, or what the transport said). */
  private ask(session: http2.ClientHttp2Session, signal: AbortSignal): Promise<HealthCheckResponse> {
    const { service, timeoutMs } = this;
    return new Promise<HealthCheckResponse>((resolve, reject) => {
      let settled = false;
      let message: Buffer | undefined;
      let status: GrpcError | undefined;
      let httpStatus: number | undefined;
      const reader = new MessageReader(64 * 1024);
      const finish = (err: GrpcError | undefined, res?: HealthCheckResponse): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        if (!stream.closed && !stream.destroyed) stream.close(http2.constants.NGHTTP2_CANCEL);
        if (err !== undefined) reject(err);
        else resolve(res as HealthCheckResponse);
      };
      let stream: http2.ClientHttp2Stream;
      try {
        stream = session.request({
          ':method': 'POST',
          ':path': healthService.Check.path,
          'content-type': 'application/grpc',
          te: 'trailers',
          'grpc-timeout': formatTimeout(timeoutMs),
        });
      } catch (err) {
        reject(new GrpcError(GrpcStatus.UNAVAILABLE, err instanceof Error ? err.message : String(err)));
        return;
      }
      const timer = setTimeout(
        () => finish(new GrpcError(GrpcStatus.DEADLINE_EXCEEDED, 'deadline exceeded')),
        timeoutMs,
      );
      const onAbort = (): void => finish(new GrpcError(GrpcStatus.CANCELLED, 'cancelled'));
      signal.addEventListener('abort', onAbort, { once: true });
      const pick = (h: http2.IncomingHttpHeaders): void => {
        if (h[':status'] !== undefined) httpStatus = Number(h[':status']);
        const code = h['grpc-status'];
        if (code === undefined) return;
        status = new GrpcError(
          Number(code) as GrpcError['code'],
          decodeGrpcMessage(typeof h['grpc-message'] === 'string' ? h['grpc-message'] : ''),
        );
      };
      stream.on('response', pick);
      stream.on('trailers', pick);
      stream.on('data', (chunk: Buffer) => {
        const problem = reader.push(chunk, (m) => (message ??= m));
        if (problem !== undefined) finish(problem);
      });
      stream.on('error', (err: Error) => finish(new GrpcError(GrpcStatus.UNAVAILABLE, err.message)));
      stream.on('close', () => {
        if (status === undefined) {
          finish(
            new GrpcError(
              httpStatus !== undefined && httpStatus !== 200 ? GrpcStatus.UNKNOWN : GrpcStatus.UNAVAILABLE,
              httpStatus !== undefined && httpStatus !== 200
                ? `HTTP status ${httpStatus} without a gRPC status`
                : `stream closed without a status (HTTP/2 code ${stream.rstCode ?? 'none'})`,
            ),
          );
        } else if (status.code !== GrpcStatus.OK) finish(status);
        else if (message === undefined) finish(new GrpcError(GrpcStatus.INTERNAL, 'no response message'));
        else {
          let res: HealthCheckResponse;
          try {
            res = healthCheckResponse.decode(message);
          } catch (err) {
            finish(new GrpcError(GrpcStatus.INTERNAL, `cannot decode the response: ${(err as Error).message}`));
            return;
          }
          finish(undefined, res);
        }
      });
      stream.end(frameMessage(healthCheckRequest.encode({ service })));
    });
  }
}

/** One check with a connection of its own, closed after: tests, and one-off callers. */
export async function probeSocket(socketPath: string, signal: AbortSignal, opts: ProbeOptions = {}): Promise<void> {
  const probe = new SocketProbe(socketPath, opts);
  try {
    await probe.check(signal);
  } finally {
    probe.close();
  }
}

function probeFailure(socketPath: string, service: string, timeoutMs: number, err: Partial<GrpcError>): string {
  switch (err.code) {
    case GrpcStatus.DEADLINE_EXCEEDED:
      return `no health answer from ${socketPath} within ${timeoutMs} ms`;
    case GrpcStatus.CANCELLED:
      return `health check of ${socketPath} cancelled`;
    case GrpcStatus.UNAVAILABLE:
      return `cannot reach the gRPC server on ${socketPath}: ${err.details ?? 'unavailable'}`;
    case GrpcStatus.UNIMPLEMENTED:
      return `the gRPC server on ${socketPath} has no health service`;
    case GrpcStatus.NOT_FOUND:
      return `the gRPC server on ${socketPath} does not know service "${service}"`;
    default:
      return `health check of ${socketPath} failed: ${err.details ?? err.message ?? 'unknown error'}`;
  }
}

/**
 * @module server/grpc-health
 * The standard `grpc.health.v1.Health` service (Check, Watch) for our gRPC server, and
 * `SocketProbe`, which asks that service over the provider's own unix socket with one kept client:
 * `/readyz` uses it, so readiness means "the driver could reach us now", not "the process is alive".
 */
import { stat } from 'node:fs/promises';
import * as grpc from '@grpc/grpc-js';
import { ProviderError } from '../errors.js';
import { healthService } from './codec.js';

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
 * `server.tryShutdown()`.
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

interface HealthClient extends grpc.Client {
  Check(
    request: HealthCheckRequest,
    options: grpc.CallOptions,
    callback: (err: grpc.ServiceError | null, response?: HealthCheckResponse) => void,
  ): grpc.ClientUnaryCall;
}

interface HealthPackage {
  service: grpc.ServiceDefinition;
  Client: new (address: string, credentials: grpc.ChannelCredentials, options?: grpc.ChannelOptions) => HealthClient;
}

let loaded: HealthPackage | undefined;

/** proto/health.proto's service, with the hand-written codec (server/codec.ts says why). */
function healthPackage(): HealthPackage {
  if (loaded === undefined) {
    const Client = grpc.makeGenericClientConstructor(healthService, 'Health');
    loaded = { service: healthService, Client: Client as unknown as HealthPackage['Client'] };
  }
  return loaded;
}

/** The handlers, typed against the proto's two methods. */
function handlers(status: HealthStatus): grpc.UntypedServiceImplementation {
  const check: grpc.handleUnaryCall<HealthCheckRequest, HealthCheckResponse> = (call, callback) => {
    const service = call.request.service;
    const s = status.get(service);
    if (s === undefined) {
      callback({ code: grpc.status.NOT_FOUND, details: `unknown service "${service}"` });
      return;
    }
    callback(null, { status: s });
  };

  const watch: grpc.handleServerStreamingCall<HealthCheckRequest, HealthCheckResponse> = (call) => {
    const service = call.request.service;
    call.write({ status: status.get(service) ?? 'SERVICE_UNKNOWN' });
    if (status.isShutdown) {
      call.end();
      return;
    }
    const stop = status.watch(
      service,
      (s) => call.write({ status: s }),
      () => call.end(),
    );
    call.on('cancelled', stop);
    call.on('close', stop);
  };

  return { Check: check, Watch: watch };
}

/** Adds `grpc.health.v1.Health` to `server`, answering from `status`. */
export function addHealthService(server: grpc.Server, status: HealthStatus): void {
  server.addService(healthPackage().service, handlers(status));
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
 * Health/Check over `unix:<socketPath>` (authority `localhost`, as the driver dials) with ONE client,
 * kept between checks: /readyz asked by many callers opens no connection per request. A check whose
 * call fails drops the client, and the next check makes a new one: a client left in reconnect
 * backoff after the server restarted would fail checks long after the socket is back.
 * `clientsCreated` counts the clients made (tests, and whoever wants to know).
 */
export class SocketProbe {
  private client: HealthClient | undefined;
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
    const client = (this.client ??= this.newClient());
    let response: HealthCheckResponse;
    try {
      response = await new Promise<HealthCheckResponse>((resolve, reject) => {
        const call = client.Check({ service }, { deadline: Date.now() + timeoutMs }, (err, res) => {
          signal.removeEventListener('abort', onAbort);
          if (err !== null) reject(err);
          else if (res === undefined) reject(new Error('empty response'));
          else resolve(res);
        });
        const onAbort = (): void => call.cancel();
        signal.addEventListener('abort', onAbort, { once: true });
      });
    } catch (err) {
      if (this.client === client) this.drop();
      throw notReady(probeFailure(socketPath, service, timeoutMs, err as grpc.ServiceError), err);
    }
    if (response.status !== 'SERVING') {
      throw notReady(
        `gRPC server on ${socketPath} reports ${response.status}${service === '' ? '' : ` for "${service}"`}`,
      );
    }
  }

  /** Closes the client (a later check makes a new one). */
  close(): void {
    this.drop();
  }

  private drop(): void {
    this.client?.close();
    this.client = undefined;
  }

  private newClient(): HealthClient {
    const { Client } = healthPackage();
    this.created++;
    return new Client(`unix:${this.socketPath}`, grpc.credentials.createInsecure(), {
      'grpc.default_authority': 'localhost',
      // Its own subchannel, closed with it: never one shared with (and left in backoff by) another client.
      'grpc.use_local_subchannel_pool': 1,
    });
  }
}

/** One check with a client of its own, closed after: tests, and one-off callers. */
export async function probeSocket(socketPath: string, signal: AbortSignal, opts: ProbeOptions = {}): Promise<void> {
  const probe = new SocketProbe(socketPath, opts);
  try {
    await probe.check(signal);
  } finally {
    probe.close();
  }
}

function probeFailure(socketPath: string, service: string, timeoutMs: number, err: Partial<grpc.ServiceError>): string {
  switch (err.code) {
    case grpc.status.DEADLINE_EXCEEDED:
      return `no health answer from ${socketPath} within ${timeoutMs} ms`;
    case grpc.status.CANCELLED:
      return `health check of ${socketPath} cancelled`;
    case grpc.status.UNAVAILABLE:
      return `cannot reach the gRPC server on ${socketPath}: ${err.details ?? 'unavailable'}`;
    case grpc.status.UNIMPLEMENTED:
      return `the gRPC server on ${socketPath} has no health service`;
    case grpc.status.NOT_FOUND:
      return `the gRPC server on ${socketPath} does not know service "${service}"`;
    default:
      return `health check of ${socketPath} failed: ${err.details ?? err.message ?? 'unknown error'}`;
  }
}

/**
 * @module server/grpc-server
 * Transport only: `v1alpha1.CSIDriverProvider` on `<provider-volume>/aws.sock` (docs/behaviour.md, "Transport").
 * A stale socket from a crash is removed at start; the socket is created owner-only; shutdown stops
 * accepting calls, lets calls in flight finish (bounded), and removes the socket. We own the
 * listening socket (grpc-js serves each connection we hand it), so connections are counted and
 * capped; server/transport.ts holds every limit. Mount is a handful of lines: proto → MountInput,
 * `await mount(input, signal)`, error → status.
 */
import { chmod, lstat, stat, unlink } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import net from 'node:net';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { isProviderError, ProviderError, type StatusName } from '../errors.js';
import { scrub, type Logger, type ProviderMetrics } from '../observability/index.js';
import type { MountFn, MountInput, MountSummary } from '../mount/index.js';
import { API_VERSION, NAME, VERSION } from '../version.js';
import { providerService } from './codec.js';
import { addHealthService, HealthStatus } from './grpc-health.js';
import {
  awaitHandshake,
  CallGate,
  DEFAULT_TRANSPORT_LIMITS,
  grpcServerOptions,
  type TransportLimits,
} from './transport.js';

/** gRPC status numbers by name; server/ alone maps them (errors elsewhere carry the name). */
export const STATUS: Record<StatusName | 'OK', number> = {
  OK: grpc.status.OK,
  CANCELLED: grpc.status.CANCELLED,
  INVALID_ARGUMENT: grpc.status.INVALID_ARGUMENT,
  DEADLINE_EXCEEDED: grpc.status.DEADLINE_EXCEEDED,
  NOT_FOUND: grpc.status.NOT_FOUND,
  PERMISSION_DENIED: grpc.status.PERMISSION_DENIED,
  RESOURCE_EXHAUSTED: grpc.status.RESOURCE_EXHAUSTED,
  FAILED_PRECONDITION: grpc.status.FAILED_PRECONDITION,
  INTERNAL: grpc.status.INTERNAL,
  UNAVAILABLE: grpc.status.UNAVAILABLE,
  UNAUTHENTICATED: grpc.status.UNAUTHENTICATED,
};

interface WireObjectVersion {
  id: string;
  version: string;
}
interface WireMountRequest {
  attributes: string;
  secrets: string;
  target_path: string;
  permission: string;
  current_object_version: WireObjectVersion[];
}
interface WireMountResponse {
  object_version: WireObjectVersion[];
  files: { path: string; mode: number; contents: Buffer }[];
}
interface WireVersionResponse {
  version: string;
  runtime_name: string;
  runtime_version: string;
}

interface ProviderHandlers extends grpc.UntypedServiceImplementation {
  Version: grpc.handleUnaryCall<{ version: string }, WireVersionResponse>;
  Mount: grpc.handleUnaryCall<WireMountRequest, WireMountResponse>;
}

export interface ServerOptions {
  /** `<provider-volume>/aws.sock`. */
  socketPath: string;
  mount: MountFn;
  logger: Logger;
  metrics?: ProviderMetrics | undefined;
  /** Longest a mount may run when the caller set no deadline (the kubelet's is ~2 min). */
  defaultDeadlineMs?: number;
  /** Limits of the socket; each defaults to DEFAULT_TRANSPORT_LIMITS'. */
  limits?: Partial<TransportLimits>;
  /**
   * Checks a Mount's target path before any work; a rejection (a ProviderError) is the answer.
   * Absent: every target is handed to `mount` as it is.
   */
  checkTarget?: ((targetPath: string) => Promise<void>) | undefined;
  /**
   * Admission's word on a Mount as it arrives, before anything else (its target checked, its
   * attributes parsed, the pipeline loaded): a `refusal` is the answer at once; else `entered` is
   * handed to the mount (MountInput.entered) and called again when the call ends.
   */
  arrive?:
    ((attributes: string, deadline: number) => { refusal: ProviderError | undefined; entered: () => void }) | undefined;
}

export interface RunningServer {
  socketPath: string;
  health: HealthStatus;
  /** Mounts in flight now. */
  inFlight(): number;
  /** Connections open on the socket, calls in flight of every method, bytes of requests still arriving. */
  transport(): { connections: number; callsInFlight: number; arrivingBytes: number };
  /** Stop accepting, wait up to `graceMs` for calls in flight, then cancel them; remove the socket. */
  close(graceMs?: number): Promise<void>;
}

/** Deadline and cancellation of one call as one AbortSignal, passed down to every call the mount makes. */
function callSignal(
  call: grpc.ServerUnaryCall<unknown, unknown>,
  defaultMs: number,
  extra: AbortSignal,
): { signal: AbortSignal; deadline: number; done: () => void } {
  const controller = new AbortController();
  const deadline = call.getDeadline();
  const at =
    deadline instanceof Date
      ? deadline.getTime()
      : typeof deadline === 'number' && Number.isFinite(deadline)
        ? deadline
        : Date.now() + defaultMs;
  // Leave a little time to answer before the caller gives up: nothing is written after this point.
  const ms = Math.max(0, at - Date.now() - 250);
  const timer = setTimeout(
    () =>
      controller.abort(
        Object.assign(new Error('deadline exceeded'), { name: 'TimeoutError', code: 'DEADLINE_EXCEEDED' }),
      ),
    ms,
  );
  const onCancel = (): void => controller.abort(Object.assign(new Error('cancelled'), { code: 'CANCELLED' }));
  call.on('cancelled', onCancel);
  const onExtra = (): void => controller.abort(extra.reason);
  extra.addEventListener('abort', onExtra, { once: true });
  return {
    signal: controller.signal,
    deadline: at - 250,
    done: () => {
      clearTimeout(timer);
      call.removeListener('cancelled', onCancel);
      extra.removeEventListener('abort', onExtra);
    },
  };
}

/**
 * Status messages travel as an HTTP/2 header and end up in a pod event: keep them well under the
 * header limits (the kubelet trims events to 1 KiB anyway; the full text is in our log).
 */
const MAX_DETAILS = 8 * 1024;

function details(message: string): string {
  const clean = scrub(message);
  return clean.length > MAX_DETAILS ? `${clean.slice(0, MAX_DETAILS)}… (truncated; see the provider's log)` : clean;
}

/** ProviderError → status; anything else is a bug: INTERNAL with an id to find the log line. */
export function toStatus(err: unknown, logger: Logger): { code: number; details: string; name: StatusName } {
  if (isProviderError(err)) return { code: STATUS[err.code], details: details(err.message), name: err.code };
  const id = randomUUID().slice(0, 8);
  logger.error('unexpected error in mount', {
    errorId: id,
    error: err instanceof Error ? `${err.name}: ${err.message}` : String(err),
    stack: err instanceof Error ? err.stack : undefined,
  });
  return {
    code: grpc.status.INTERNAL,
    details: `internal error in the provider (error id ${id}, see the provider's log)`,
    name: 'INTERNAL',
  };
}

/** How often mounts refused at capacity are logged, after the first: as one line with their count. */
const REFUSAL_LOG_MS = 10_000;

/**
 * Mounts refused at capacity, logged without costing what the refusal saves: in an overload
 * hundreds arrive at once, and a JSON line each (most of a refusal's CPU after the request itself)
 * would slow the answers of all the others. The first refusal is logged as any failed mount; the
 * next ones within REFUSAL_LOG_MS are counted, and logged as one line when that time is up. Each is
 * still counted in the metrics.
 */
class RefusalLog {
  private counted = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly logger: Logger) {}

  log(line: Record<string, unknown>): void {
    if (this.timer !== undefined) {
      this.counted++;
      return;
    }
    this.logger.warn('mount', line);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.counted > 0)
        this.logger.warn('mounts refused at capacity', { count: this.counted, seconds: REFUSAL_LOG_MS / 1000 });
      this.counted = 0;
    }, REFUSAL_LOG_MS);
    this.timer.unref();
  }
}

async function removeStaleSocket(socketPath: string): Promise<void> {
  const dir = path.dirname(socketPath);
  let st;
  try {
    st = await stat(dir);
  } catch {
    throw new ProviderError(
      'FAILED_PRECONDITION',
      `provider volume ${dir} does not exist: mount the host directory the driver searches for provider sockets ` +
        `(--provider-volume)`,
    );
  }
  if (!st.isDirectory()) throw new ProviderError('FAILED_PRECONDITION', `provider volume ${dir} is not a directory`);
  try {
    const s = await lstat(socketPath);
    if (s.isDirectory()) throw new ProviderError('FAILED_PRECONDITION', `${socketPath} is a directory, not a socket`);
    await unlink(socketPath);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      if (err instanceof ProviderError) throw err;
      throw new ProviderError(
        'FAILED_PRECONDITION',
        `cannot remove stale socket ${socketPath}: ${(err as Error).message}`,
      );
    }
  }
}

export async function startServer(opts: ServerOptions): Promise<RunningServer> {
  const { socketPath, logger } = opts;
  const defaultDeadlineMs = opts.defaultDeadlineMs ?? 120_000;
  await removeStaleSocket(socketPath);

  const limits: TransportLimits = { ...DEFAULT_TRANSPORT_LIMITS, ...opts.limits };
  const gate = new CallGate(limits, { refused: (why) => opts.metrics?.transportRefused(why) });
  const server = new grpc.Server(grpcServerOptions(limits, gate.interceptor));
  const health = new HealthStatus();
  const stopping = new AbortController();
  let inFlight = 0;
  const drained: (() => void)[] = [];
  const refusals = new RefusalLog(logger);

  const handlers = {
    Version: (_call, callback) => {
      callback(null, { version: API_VERSION, runtime_name: NAME, runtime_version: VERSION });
    },
    Mount: (call, callback) => {
      inFlight++;
      const req = call.request;
      const { signal, deadline, done } = callSignal(call, defaultDeadlineMs, stopping.signal);
      const arrival = opts.arrive?.(req.attributes, deadline);
      const input: MountInput = {
        attributes: req.attributes,
        secrets: req.secrets,
        targetPath: req.target_path,
        permission: req.permission,
        currentObjectVersion: req.current_object_version ?? [],
        deadline,
        entered: arrival?.entered,
      };
      const finishMetric = opts.metrics?.startMount();
      const summary: Partial<MountSummary> = {};
      const t0 = performance.now();
      // Promise.resolve().then: even a mount function that throws synchronously ends in a status.
      Promise.resolve()
        .then(() => {
          if (arrival?.refusal !== undefined) throw arrival.refusal;
        })
        .then(() => opts.checkTarget?.(input.targetPath))
        .then(() => opts.mount(input, signal, summary))
        .then(
          (res) => {
            const ms = Math.round(performance.now() - t0);
            finishMetric?.({ code: 'OK' });
            logger.info('mount', {
              outcome: 'success',
              ...summary,
              durationMs: ms,
              versions: res.objectVersions.length,
            });
            callback(null, {
              object_version: res.objectVersions,
              files: res.files.map((f) => ({ path: f.path, mode: f.mode, contents: Buffer.from(f.contents) })),
            });
          },
          (err: unknown) => {
            const ms = Math.round(performance.now() - t0);
            const st = toStatus(err, logger);
            finishMetric?.({ code: st.name, reason: isProviderError(err) ? err.reason : 'Internal' });
            const line = { outcome: 'error', ...summary, durationMs: ms, code: st.name, error: st.details };
            if (isProviderError(err) && err.reason === 'AtCapacity') refusals.log(line);
            else logger.warn('mount', line);
            callback({ code: st.code, details: st.details });
          },
        )
        .finally(() => {
          arrival?.entered();
          done();
          inFlight--;
          if (inFlight === 0) for (const d of drained.splice(0)) d();
        });
    },
  } satisfies ProviderHandlers;

  server.addService(providerService, handlers);
  addHealthService(server, health);

  // Our own listener: grpc-js serves each connection we inject, with the server's options
  // (streams, idle close, keepalive); the listener counts them and closes any beyond the cap.
  const injector = server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
  const listener = net.createServer();
  listener.maxConnections = limits.maxConnections;
  let connections = 0;
  listener.on('connection', (socket: net.Socket) => {
    connections++;
    socket.once('close', () => connections--);
    opts.metrics?.connectionAccepted();
    awaitHandshake(
      socket,
      limits.handshakeTimeoutMs,
      (s) => injector.injectConnection(s),
      () => opts.metrics?.transportRefused('handshake'),
    );
  });
  listener.on('drop', () => opts.metrics?.transportRefused('connections'));
  opts.metrics?.watchTransport(() => ({ connections, arrivingBytes: gate.stats().arrivingBytes }));

  const oldUmask = process.umask(0o077);
  try {
    await new Promise<void>((resolve, reject) => {
      listener.once('error', reject);
      listener.listen(socketPath, () => {
        listener.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    injector.destroy();
    throw new ProviderError(
      'FAILED_PRECONDITION',
      `Failed to listen on unix socket ${socketPath}: ` +
        `${(err as NodeJS.ErrnoException).code ?? (err as Error).message} (is the provider volume writable?)`,
    );
  } finally {
    process.umask(oldUmask);
  }
  listener.on('error', (err) => logger.error('socket listener error', { error: err.message }));
  await chmod(socketPath, 0o600).catch(() => {});
  logger.info('listening', { socket: socketPath, version: VERSION });

  let closed: Promise<void> | undefined;
  return {
    socketPath,
    health,
    inFlight: () => inFlight,
    transport: () => ({
      connections,
      callsInFlight: gate.stats().callsInFlight,
      arrivingBytes: gate.stats().arrivingBytes,
    }),
    close(graceMs = 30_000) {
      closed ??= (async () => {
        health.shutdown();
        // Stop accepting connections and new calls; calls in flight go on. Done when every
        // connection has ended (the listener's close waits for them), answers flushed.
        const shutdown = Promise.all([
          new Promise<void>((resolve) => listener.close(() => resolve())),
          new Promise<void>((resolve) => server.tryShutdown(() => resolve())),
        ]);
        if (inFlight > 0) {
          const idle = new Promise<void>((resolve) => drained.push(resolve));
          const timer = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), graceMs).unref());
          if ((await Promise.race([idle, timer])) === 'timeout') {
            logger.warn('shutdown grace period over: cancelling mounts in flight', { inFlight });
            stopping.abort(Object.assign(new Error('provider shutting down'), { code: 'CANCELLED' }));
            await Promise.race([idle, new Promise((r) => setTimeout(r, 2_000).unref())]);
          }
        }
        await Promise.race([shutdown, new Promise((r) => setTimeout(r, 2_000).unref())]);
        server.forceShutdown();
        injector.destroy();
        await unlink(socketPath).catch(() => {});
      })();
      return closed;
    },
  };
}

/**
 * @module server/grpc-server
 * Transport only: `v1alpha1.CSIDriverProvider` on `<provider-volume>/aws.sock` (docs/behaviour.md, "Transport").
 * A stale socket from a crash is removed at start; the socket is created owner-only; shutdown stops
 * accepting calls, lets calls in flight finish (bounded), and removes the socket. gRPC is served
 * here directly on `node:http2` (server/grpc-wire.ts holds the wire rules): no gRPC library is
 * loaded, which under the chart's 50m CPU limit is most of what start-up costs above an empty
 * HTTP/2 server (docs/benchmarks.md, "Start-up in the box"). We own the listening socket, so
 * connections are counted and capped; server/transport.ts holds every limit. Mount is a handful of
 * lines: proto → MountInput, `await mount(input, signal)`, error → status.
 */
import { chmod, lstat, stat, unlink } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import http2 from 'node:http2';
import net from 'node:net';
import path from 'node:path';
import { isProviderError, ProviderError, type StatusName } from '../errors.js';
import { scrub, type Logger, type ProviderMetrics } from '../observability/index.js';
import type { MountFn, MountInput, MountSummary } from '../mount/index.js';
import { API_VERSION, NAME, VERSION } from '../version.js';
import { providerService } from './codec.js';
import { healthRoutes, HealthStatus } from './grpc-health.js';
import {
  checkRequestHeaders,
  encodeGrpcMessage,
  GrpcError,
  GrpcStatus,
  messageHeader,
  MessageReader,
  parseTimeout,
  unaryRoute,
  type CallContext,
  type GrpcStatusCode,
  type Reply,
  type Route,
} from './grpc-wire.js';
import {
  awaitHandshake,
  CallGate,
  DEFAULT_TRANSPORT_LIMITS,
  http2ServerOptions,
  SessionWatch,
  type AdmittedCall,
  type TransportLimits,
} from './transport.js';

/** gRPC status numbers by name; server/ alone maps them (errors elsewhere carry the name). */
export const STATUS: Record<StatusName | 'OK', number> = {
  OK: GrpcStatus.OK,
  CANCELLED: GrpcStatus.CANCELLED,
  INVALID_ARGUMENT: GrpcStatus.INVALID_ARGUMENT,
  DEADLINE_EXCEEDED: GrpcStatus.DEADLINE_EXCEEDED,
  NOT_FOUND: GrpcStatus.NOT_FOUND,
  PERMISSION_DENIED: GrpcStatus.PERMISSION_DENIED,
  RESOURCE_EXHAUSTED: GrpcStatus.RESOURCE_EXHAUSTED,
  FAILED_PRECONDITION: GrpcStatus.FAILED_PRECONDITION,
  INTERNAL: GrpcStatus.INTERNAL,
  UNAVAILABLE: GrpcStatus.UNAVAILABLE,
  UNAUTHENTICATED: GrpcStatus.UNAUTHENTICATED,
};

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

/** The longest a timer may be set for (node fires longer ones at once). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Deadline and cancellation of one Mount as one AbortSignal, passed down to every call the mount
 * makes. `deadline` is when the mount must stop (ms since the epoch).
 */
function callSignal(
  call: CallContext,
  deadline: number,
  extra: AbortSignal,
): { signal: AbortSignal; done: () => void } {
  const controller = new AbortController();
  const ms = Math.min(MAX_TIMER_MS, Math.max(0, deadline - Date.now()));
  const timer = setTimeout(
    () =>
      controller.abort(
        Object.assign(new Error('deadline exceeded'), { name: 'TimeoutError', code: 'DEADLINE_EXCEEDED' }),
      ),
    ms,
  );
  // CANCELLED (the client cancelled or went away) or DEADLINE_EXCEEDED, as the call says.
  const onCancel = (): void => controller.abort(call.signal.reason);
  call.signal.addEventListener('abort', onCancel, { once: true });
  if (call.signal.aborted) onCancel();
  const onExtra = (): void => controller.abort(extra.reason);
  extra.addEventListener('abort', onExtra, { once: true });
  return {
    signal: controller.signal,
    done: () => {
      clearTimeout(timer);
      call.signal.removeEventListener('abort', onCancel);
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
    code: GrpcStatus.INTERNAL,
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

/** Response headers of every answer; content-type as the gRPC spec writes it. */
const RESPONSE_HEADERS: http2.OutgoingHttpHeaders = { ':status': 200, 'content-type': 'application/grpc' };
const OK_TRAILERS: http2.OutgoingHttpHeaders = { 'grpc-status': '0' };

function statusHeaders(error: GrpcError, acceptEncoding = false): http2.OutgoingHttpHeaders {
  const h: http2.OutgoingHttpHeaders = {
    'grpc-status': String(error.code),
    'grpc-message': encodeGrpcMessage(error.details),
  };
  if (acceptEncoding) h['grpc-accept-encoding'] = 'identity';
  return h;
}

function sessionError(): void {
  // A connection's socket errors (a peer gone) end its session; its calls are cancelled by their streams' close.
}

/** The gRPC server on node:http2: one `Route` per method path, the limits of `limits`. */
class GrpcServer {
  readonly gate: CallGate;
  readonly h2: http2.Http2Server;
  readonly sessions = new Set<http2.ServerHttp2Session>();
  private readonly routes = new Map<string, Route>();
  private readonly maxMessageBytes: number;
  /** The socket being handed to the HTTP/2 server: its 'session' event comes synchronously. */
  private accepting: net.Socket | undefined;

  constructor(
    routes: readonly Route[],
    readonly limits: TransportLimits,
    metrics: ProviderMetrics | undefined,
  ) {
    for (const r of routes) this.routes.set(r.path, r);
    this.maxMessageBytes = limits.maxReceiveMessageBytes;
    this.gate = new CallGate(limits, { refused: (why) => metrics?.transportRefused(why) });
    this.h2 = http2.createServer(http2ServerOptions(limits));
    this.h2.on('session', (session) => {
      this.sessions.add(session);
      const watch = new SessionWatch(session, limits, this.accepting);
      session.on('error', sessionError);
      session.once('close', () => this.sessions.delete(session));
      session.on('stream', (stream, headers) => {
        watch.opened();
        stream.once('close', () => watch.closed());
        this.call(stream, headers);
      });
    });
  }

  /** Serves one connection (its HTTP/2 preface already checked). */
  serve(socket: net.Socket): void {
    this.accepting = socket;
    try {
      this.h2.emit('connection', socket);
    } finally {
      this.accepting = undefined;
    }
  }

  /** GOAWAY on every connection: calls in flight go on, new ones go elsewhere. */
  goaway(): void {
    for (const s of this.sessions) if (!s.closed) s.close();
  }

  destroy(): void {
    for (const s of this.sessions) s.destroy();
  }

  private call(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
    stream.on('error', sessionError);
    const problem = checkRequestHeaders(headers[':method'], headers['content-type'], headers['grpc-encoding']);
    if (problem !== undefined) {
      if ('http' in problem) {
        // Not gRPC at all: an HTTP answer, without gRPC status (the gRPC spec says so for a wrong content-type).
        respondEarly(stream, { ':status': problem.http });
        return;
      }
      respondEarly(stream, { ...RESPONSE_HEADERS, ...statusHeaders(problem.grpc, problem.acceptEncoding) });
      return;
    }
    const route = this.routes.get(headers[':path'] ?? '');
    if (route === undefined) {
      const error = new GrpcError(GrpcStatus.UNIMPLEMENTED, `unknown method ${String(headers[':path']).slice(0, 200)}`);
      respondEarly(stream, { ...RESPONSE_HEADERS, ...statusHeaders(error) });
      return;
    }
    const timeout = parseTimeout(headers['grpc-timeout']);
    if (timeout === null) {
      const error = new GrpcError(GrpcStatus.INTERNAL, 'malformed grpc-timeout header');
      respondEarly(stream, { ...RESPONSE_HEADERS, ...statusHeaders(error) });
      return;
    }
    let call: Call | undefined;
    // The gate's refusals: at once (no call yet), or later, of the call it let in.
    const refuse = (details: string): void => {
      const error = new GrpcError(GrpcStatus.UNAVAILABLE, details);
      if (call !== undefined) call.finish(error);
      else respondEarly(stream, { ...RESPONSE_HEADERS, ...statusHeaders(error) });
    };
    const admitted = this.gate.admit(stream, refuse);
    if (admitted === undefined) return;
    call = new Call(stream, route, admitted, timeout, this.maxMessageBytes);
  }
}

/**
 * Answers a call at once (before or instead of reading its request) and resets its stream, unless
 * the client closed it meanwhile: a client that is still sending cannot keep the stream (and us
 * reading and dropping its bytes) alive. The answer goes first on the wire, so the client reads it
 * before the reset (RST_STREAM NO_ERROR: "stop sending, the answer is complete").
 */
function respondEarly(stream: http2.ServerHttp2Stream, headers: http2.OutgoingHttpHeaders): void {
  if (stream.destroyed || stream.closed) return;
  try {
    if (!stream.headersSent) stream.respond(headers, { endStream: true });
    else stream.sendTrailers(headers);
  } catch {
    // The stream ended under us: nothing to answer.
  }
  resetIfReceiving(stream);
}

/** Resets `stream` unless it is closed or its client has ended its side (nothing more would come). */
function resetIfReceiving(stream: http2.ServerHttp2Stream): void {
  if (stream.closed || stream.destroyed) return;
  let remoteClosed = false;
  try {
    remoteClosed = stream.state.remoteClose === 1;
  } catch {
    // No state: the stream is going away.
  }
  if (!remoteClosed) stream.close(http2.constants.NGHTTP2_NO_ERROR);
}

/**
 * One call: its request read (through the gate's budget and timer) into exactly one message, its
 * deadline, its cancellation, and its answer: headers, messages and trailers, or trailers alone.
 */
class Call implements Reply, CallContext {
  readonly deadline: number | undefined;
  /** Made when a handler first asks for the signal (most calls end without one). */
  private controller: AbortController | undefined;
  private readonly reader: MessageReader;
  private request: Buffer | undefined;
  private done = false;
  private receiving = true;
  private deadlineTimer: NodeJS.Timeout | undefined;
  private trailers: http2.OutgoingHttpHeaders | undefined;

  constructor(
    private readonly stream: http2.ServerHttp2Stream,
    private readonly route: Route,
    private readonly admitted: AdmittedCall,
    timeoutMs: number | undefined,
    maxMessageBytes: number,
  ) {
    this.reader = new MessageReader(maxMessageBytes);
    this.deadline = timeoutMs === undefined ? undefined : Date.now() + timeoutMs;
    if (timeoutMs !== undefined) {
      this.deadlineTimer = setTimeout(() => this.expire(), Math.min(MAX_TIMER_MS, timeoutMs));
      this.deadlineTimer.unref();
    }
    stream.on('data', (chunk: Buffer) => this.onData(chunk));
    stream.once('end', () => this.onEnd());
    stream.once('close', () => this.onClose());
  }

  get signal(): AbortSignal {
    return (this.controller ??= new AbortController()).signal;
  }

  get ended(): boolean {
    return this.done;
  }

  message(encoded: Buffer): void {
    if (this.done || this.stream.destroyed || this.stream.closed) return;
    if (!this.stream.headersSent) {
      this.stream.respond(RESPONSE_HEADERS, { waitForTrailers: true });
      this.stream.once('wantTrailers', () => {
        try {
          this.stream.sendTrailers(this.trailers ?? OK_TRAILERS);
        } catch {
          // Closed meanwhile.
        }
      });
    }
    this.stream.write(messageHeader(encoded.length));
    this.stream.write(encoded);
  }

  end(error?: GrpcError): void {
    this.finish(error);
  }

  /** The call's status: trailers after what was sent, or alone; the request is not read any further. */
  finish(error?: GrpcError): void {
    if (this.done) return;
    this.done = true;
    this.stopTimers();
    this.admitted.end();
    const { stream } = this;
    if (stream.destroyed || stream.closed) return;
    if (!stream.headersSent) {
      // Trailers-only: one HEADERS frame with END_STREAM. An OK without a message is one too.
      const status = error === undefined ? OK_TRAILERS : statusHeaders(error);
      respondEarly(stream, { ...RESPONSE_HEADERS, ...status });
      return;
    }
    this.trailers = error === undefined ? OK_TRAILERS : statusHeaders(error);
    stream.end();
    if (this.receiving) resetIfReceiving(stream);
  }

  private onData(chunk: Buffer): void {
    if (!this.receiving) return;
    const problem = this.reader.push(chunk, (m) => this.onMessage(m));
    if (this.done) return;
    if (problem !== undefined) {
      this.finish(problem);
      return;
    }
    this.admitted.received(chunk, !this.reader.partial);
  }

  private onMessage(message: Buffer): void {
    if (this.request !== undefined) {
      // As grpc-go answers it (grpc-js says UNIMPLEMENTED): docs/behaviour.md, "Transport".
      this.finish(new GrpcError(GrpcStatus.INTERNAL, 'received more than one request message for a unary call'));
      return;
    }
    this.request = message;
  }

  private onEnd(): void {
    if (this.done || !this.receiving) return;
    this.receiving = false;
    this.admitted.doneReceiving();
    if (this.request === undefined || this.reader.partial) {
      this.finish(
        new GrpcError(
          GrpcStatus.INTERNAL,
          this.reader.partial ? 'request ended inside a message' : 'received no request message for a unary call',
        ),
      );
      return;
    }
    const request = this.request;
    this.request = undefined;
    this.route.handle(request, this, this);
  }

  /** The stream closed: by us after the status, or by the client (cancelled, gone) before it. */
  private onClose(): void {
    this.receiving = false;
    if (this.done) return;
    this.done = true;
    this.stopTimers();
    this.admitted.end();
    this.controller?.abort(Object.assign(new Error('cancelled by the client'), { code: 'CANCELLED' }));
  }

  /** The caller's deadline passed: DEADLINE_EXCEEDED, and the handler is told to stop. */
  private expire(): void {
    this.deadlineTimer = undefined;
    if (this.done) return;
    this.finish(new GrpcError(GrpcStatus.DEADLINE_EXCEEDED, 'deadline exceeded'));
    this.controller?.abort(
      Object.assign(new Error('deadline exceeded'), { name: 'TimeoutError', code: 'DEADLINE_EXCEEDED' }),
    );
  }

  private stopTimers(): void {
    if (this.deadlineTimer !== undefined) clearTimeout(this.deadlineTimer);
    this.deadlineTimer = undefined;
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
  const health = new HealthStatus();
  const stopping = new AbortController();
  let inFlight = 0;
  const drained: (() => void)[] = [];
  const refusals = new RefusalLog(logger);

  const version = unaryRoute(providerService.Version, () => ({
    version: API_VERSION,
    runtime_name: NAME,
    runtime_version: VERSION,
  }));
  const mount = unaryRoute(providerService.Mount, async (req, call) => {
    inFlight++;
    // Leave a little time to answer before the caller gives up: nothing is written after this point.
    const deadline = (call.deadline ?? Date.now() + defaultDeadlineMs) - 250;
    const arrival = opts.arrive?.(req.attributes, deadline);
    const input: MountInput = {
      attributes: req.attributes,
      secrets: req.secrets,
      targetPath: req.target_path,
      permission: req.permission,
      currentObjectVersion: req.current_object_version,
      deadline,
      entered: arrival?.entered,
    };
    const finishMetric = opts.metrics?.startMount();
    const summary: Partial<MountSummary> = {};
    const t0 = performance.now();
    // A refusal at arrival (an overload's answer to most calls) sets up no signal, timer or listener.
    let done: (() => void) | undefined;
    try {
      if (arrival?.refusal !== undefined) throw arrival.refusal;
      const cs = callSignal(call, deadline, stopping.signal);
      done = cs.done;
      await opts.checkTarget?.(input.targetPath);
      const res = await opts.mount(input, cs.signal, summary);
      const ms = Math.round(performance.now() - t0);
      finishMetric?.({ code: 'OK' });
      logger.info('mount', { outcome: 'success', ...summary, durationMs: ms, versions: res.objectVersions.length });
      return {
        object_version: res.objectVersions,
        files: res.files.map((f) => ({ path: f.path, mode: f.mode, contents: f.contents })),
      };
    } catch (err) {
      const ms = Math.round(performance.now() - t0);
      const st = toStatus(err, logger);
      finishMetric?.({ code: st.name, reason: isProviderError(err) ? err.reason : 'Internal' });
      const line = { outcome: 'error', ...summary, durationMs: ms, code: st.name, error: st.details };
      if (isProviderError(err) && err.reason === 'AtCapacity') refusals.log(line);
      else logger.warn('mount', line);
      throw new GrpcError(st.code as GrpcStatusCode, st.details);
    } finally {
      arrival?.entered();
      done?.();
      inFlight--;
      if (inFlight === 0) for (const d of drained.splice(0)) d();
    }
  });

  const server = new GrpcServer([version, mount, ...healthRoutes(health)], limits, opts.metrics);
  const { gate } = server;

  // Our own listener: each connection is counted, closed beyond the cap, and served once it has
  // sent the HTTP/2 preface.
  let closing = false;
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
      (s) => (closing ? s.destroy() : server.serve(s)),
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
        closing = true;
        // Watch streams get NOT_SERVING and end.
        health.shutdown();
        // Stop accepting connections, and new calls (GOAWAY); calls in flight go on. Done when every
        // connection has ended (the listener's close waits for them), answers flushed.
        const shutdown = new Promise<void>((resolve) => listener.close(() => resolve()));
        server.goaway();
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
        server.destroy();
        await unlink(socketPath).catch(() => {});
      })();
      return closed;
    },
  };
}

/**
 * @module server/transport
 * The limits of the provider's unix socket, so no client — a driver gone wrong, a tool left
 * connected, a hostile process with access to the socket — can grow the provider without bound in
 * its 100 MiB box. Every one is counted, and refusals say why:
 *
 *   - connections: at most `maxConnections` open at once, more are closed as they are accepted; a
 *     connection must open with the HTTP/2 preface and SETTINGS within `handshakeTimeoutMs` (before
 *     that, neither grpc-js's idle timer nor its keepalive ever closes it); a connection without a
 *     call for `idleConnectionMs` is closed with GOAWAY (grpc-go dials again at its next call), and
 *     keepalive pings close one whose peer stopped answering;
 *   - streams: at most `maxStreamsPerConnection` per connection (HTTP/2 SETTINGS: a grpc-go client
 *     waits for a free stream instead of failing);
 *   - calls: at most `maxCallsInFlight` across connections, counted from their headers; one more is
 *     answered UNAVAILABLE "provider at capacity" at once, before its request is read (the driver
 *     retries UNAVAILABLE);
 *   - requests: a request must arrive whole within `receiveTimeoutMs` of its headers, or the call
 *     is ended (UNAVAILABLE: the driver retries) and its stream reset. The bytes of requests still arriving share
 *     a budget of `receiveBudgetBytes`: once it is spent, a call that receives more is paused (HTTP/2
 *     flow control then keeps the rest of its request in the client; a paused stream holds at most
 *     one 64 KiB window here) until the budget frees, and when `maxThrottled` calls are paused, the
 *     next one over budget is answered UNAVAILABLE and reset. However many half-sent 4 MiB requests
 *     are opened, they hold at most the budget plus `maxThrottled` windows, each for at most
 *     `receiveTimeoutMs`. The driver's requests are a few KiB and arrive at once: they never wait.
 */
import http2 from 'node:http2';
import type net from 'node:net';
import * as grpc from '@grpc/grpc-js';

export interface TransportLimits {
  /** Connections open at once; more are closed at accept. */
  readonly maxConnections: number;
  /** Time a new connection has to send the HTTP/2 preface and its SETTINGS. */
  readonly handshakeTimeoutMs: number;
  /** HTTP/2 streams (calls) one connection may have open at once. */
  readonly maxStreamsPerConnection: number;
  /** Calls in flight across connections, from their headers to their status. */
  readonly maxCallsInFlight: number;
  /** Bytes of requests still arriving, across calls, before calls that receive more are paused. */
  readonly receiveBudgetBytes: number;
  /** Calls paused for the budget at most; the next one over budget is refused UNAVAILABLE. */
  readonly maxThrottled: number;
  /** Longest a request may take to arrive whole after its headers. */
  readonly receiveTimeoutMs: number;
  /** A connection without a call for this long is closed. */
  readonly idleConnectionMs: number;
  /** Keepalive ping interval on a connection, and how long an answer may take. */
  readonly keepaliveMs: number;
  readonly keepaliveTimeoutMs: number;
  /** Largest request message accepted (the driver's and ASCP's gRPC default). */
  readonly maxReceiveMessageBytes: number;
  /** HTTP/2 flow-control window of a connection: bytes its client may send before the provider reads them. */
  readonly connectionWindowBytes: number;
}

export const DEFAULT_TRANSPORT_LIMITS: TransportLimits = Object.freeze({
  // The driver keeps one connection (our /readyz probe another; a driver that exits closes its own):
  // 8 leaves room for a tool. A connection flooded with streams costs a few MiB of HTTP/2 state.
  maxConnections: 8,
  // A gRPC client sends its preface as it connects.
  handshakeTimeoutMs: 10_000,
  // Admission works 8 mounts at once: 128 in flight on the driver's connection keeps it busy for
  // seconds; beyond, grpc-go holds the calls (each within its deadline) until a stream is free.
  maxStreamsPerConnection: 128,
  // Across connections, of every method: beyond, refused before any work.
  maxCallsInFlight: 1024,
  // Two whole 4 MiB requests arriving at once; the driver's few-KiB requests never come near it.
  receiveBudgetBytes: 8 * 1024 * 1024,
  // 64 paused windows ≈ 6 MiB.
  maxThrottled: 64,
  // What half-sent requests may hold is bounded by the budget above; this only frees their slots.
  // Under a 50m CPU quota a starved event loop reads a burst's requests late: a node coming up full
  // had half of 110 first mounts refused with 5 s, none with 60 s.
  receiveTimeoutMs: 60_000,
  // The driver polls every two minutes by default; an idle minute closes what is left over.
  idleConnectionMs: 60_000,
  keepaliveMs: 120_000,
  keepaliveTimeoutMs: 20_000,
  maxReceiveMessageBytes: 4 * 1024 * 1024,
  // A full node's 110 first mounts at once, with their tokens, in one window.
  connectionWindowBytes: 1024 * 1024,
});

/**
 * Streams of the driver's connection that mounts waiting for admission leave free. Each waiting mount
 * holds one; if they held them all, the driver's next calls would wait in its client, unanswered,
 * until a mount finished (at 50m CPU, tens of seconds) instead of being told at once to retry.
 */
export const STREAMS_KEPT_FREE = 16;

/**
 * The most mounts that may wait for admission beside `working` working ones, so that
 * STREAMS_KEPT_FREE streams of one connection stay free (at least 0).
 */
export function waitingRoom(working: number, limits: TransportLimits = DEFAULT_TRANSPORT_LIMITS): number {
  return Math.max(0, limits.maxStreamsPerConnection - working - STREAMS_KEPT_FREE);
}

/** Why a connection or call was turned away, as metrics label it. */
export type TransportRefusal = 'connections' | 'handshake' | 'calls_in_flight' | 'receive_budget' | 'request_too_slow';

export interface TransportObserver {
  connectionAccepted?(): void;
  refused?(why: TransportRefusal): void;
}

/** What every HTTP/2 client sends first (RFC 9113 §3.4), then a SETTINGS frame. */
const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
/** The preface and a SETTINGS frame's 9-byte header (type 0x4 at byte 3 of the header). */
const HANDSHAKE_BYTES = PREFACE.length + 9;
const SETTINGS_FRAME = 0x4;

/**
 * Hands `socket` to `serve` once it has sent the HTTP/2 preface and the header of its SETTINGS
 * frame (the bytes read are put back first), or destroys it: after `timeoutMs` without them, or at
 * once when its first bytes are something else. Returns nothing; `refused` hears of a destroy.
 */
export function awaitHandshake(
  socket: net.Socket,
  timeoutMs: number,
  serve: (socket: net.Socket) => void,
  refused: () => void,
): void {
  let received: Buffer = Buffer.alloc(0);
  const fail = (): void => {
    cleanup();
    refused();
    socket.destroy();
  };
  const timer = setTimeout(fail, timeoutMs);
  timer.unref();
  const onData = (chunk: Buffer): void => {
    received = received.length === 0 ? chunk : Buffer.concat([received, chunk]);
    const seen = Math.min(received.length, PREFACE.length);
    if (!received.subarray(0, seen).equals(PREFACE.subarray(0, seen))) return fail();
    if (received.length < HANDSHAKE_BYTES) return;
    if (received[PREFACE.length + 3] !== SETTINGS_FRAME) return fail();
    cleanup();
    socket.pause();
    socket.unshift(received);
    serve(socket);
  };
  const onGone = (): void => cleanup();
  const cleanup = (): void => {
    clearTimeout(timer);
    socket.off('data', onData);
    socket.off('close', onGone);
  };
  socket.on('data', onData);
  socket.once('close', onGone);
  socket.on('error', () => {});
}

/** grpc-js server options for these limits. */
export function grpcServerOptions(limits: TransportLimits, interceptor: grpc.ServerInterceptor): grpc.ServerOptions {
  return {
    'grpc.max_receive_message_length': limits.maxReceiveMessageBytes,
    'grpc.max_concurrent_streams': limits.maxStreamsPerConnection,
    'grpc.max_connection_idle_ms': limits.idleConnectionMs,
    'grpc.keepalive_time_ms': limits.keepaliveMs,
    'grpc.keepalive_timeout_ms': limits.keepaliveTimeoutMs,
    // Channelz keeps per-connection traces and counters nobody here reads.
    'grpc.enable_channelz': 0,
    interceptors: [interceptor],
  };
}

/**
 * The HTTP/2 stream under grpc-js's own first call object, when it is there (grpc-js keeps it as
 * `stream`). Used only to reset a stream we ended early, so a peer that never finishes sending
 * cannot pin the bytes it sent; without it the call still ends, only the reset is skipped.
 */
function streamOf(call: unknown): http2.ServerHttp2Stream | undefined {
  const s = (call as { stream?: unknown } | null)?.stream as Partial<http2.ServerHttp2Stream> | undefined;
  return s !== undefined && typeof s.close === 'function' && typeof s.closed === 'boolean'
    ? (s as http2.ServerHttp2Stream)
    : undefined;
}

type CallState = 'receiving' | 'received' | 'ended';

function sizeText(bytes: number): string {
  return bytes >= 1024 * 1024 ? `${Math.round((bytes / 1048576) * 10) / 10} MiB` : `${Math.ceil(bytes / 1024)} KiB`;
}

/** A call whose request is still arriving, paused because the receive budget is spent. */
interface Throttled {
  resume(): void;
}

/**
 * Counts calls and the bytes of requests still arriving; `interceptor` goes into the server's
 * options. Bytes are counted from the HTTP/2 stream's `data` events, when grpc-js exposes the
 * stream; without it, calls are still counted and timed, only the byte budget is not applied.
 */
export class CallGate {
  private inFlight = 0;
  /** Bytes received of requests not yet whole. */
  private arriving = 0;
  private readonly throttled = new Set<Throttled>();

  constructor(
    private readonly limits: TransportLimits,
    private readonly observer: TransportObserver = {},
  ) {}

  /** Calls in flight, bytes of requests still arriving, calls paused for the budget. */
  stats(): { callsInFlight: number; arrivingBytes: number; throttled: number } {
    return { callsInFlight: this.inFlight, arrivingBytes: this.arriving, throttled: this.throttled.size };
  }

  readonly interceptor: grpc.ServerInterceptor = (_method, next) => {
    let state: CallState = 'receiving';
    let counted = false;
    let bytes = 0;
    let timer: NodeJS.Timeout | undefined;
    const stream = streamOf(next);
    if (stream !== undefined) this.widen(stream.session);
    const self: Throttled = { resume: () => stream?.resume() };

    /**
     * Resets the stream once its status is on its way, unless the client closed it meanwhile: a
     * client that is still sending cannot keep the stream (and grpc-js reading and dropping its
     * bytes) alive. The status goes first on the wire, so the client reads it before the reset.
     */
    const reset = (): void => {
      if (stream !== undefined && !stream.closed && !stream.destroyed) stream.close(http2.constants.NGHTTP2_CANCEL);
    };
    const refuse = (why: TransportRefusal, code: grpc.status, details: string): void => {
      this.observer.refused?.(why);
      call.sendStatus({ code, details });
      reset();
    };
    /** The request is whole, or will never be: its bytes leave the budget. */
    const doneReceiving = (): void => {
      clearTimeout(timer);
      stream?.off('data', onData);
      this.throttled.delete(self);
      this.arriving -= bytes;
      bytes = 0;
      this.wake();
    };
    let head: Buffer = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      if (state !== 'receiving') return;
      bytes += chunk.length;
      this.arriving += chunk.length;
      // The gRPC frame header says how long the request is: one already whole is never held back.
      if (head.length < 5) head = Buffer.concat([head, chunk.subarray(0, 5 - head.length)]);
      const whole = head.length === 5 && bytes >= head.readUInt32BE(1) + 5;
      if (whole || this.arriving <= this.limits.receiveBudgetBytes || this.throttled.has(self)) return;
      if (this.throttled.size >= this.limits.maxThrottled) {
        refuse(
          'receive_budget',
          grpc.status.UNAVAILABLE,
          `provider at capacity: ${sizeText(this.limits.receiveBudgetBytes)} of requests are still arriving on the ` +
            `socket; nothing was done, the driver will retry`,
        );
        return;
      }
      // Flow control now keeps the rest of this request in the client until the budget frees.
      stream?.pause();
      this.throttled.add(self);
    };
    const end = (): void => {
      if (state === 'ended') return;
      doneReceiving();
      state = 'ended';
      if (counted) this.inFlight--;
      counted = false;
    };

    const call = new grpc.ServerInterceptingCall(next, {
      start: (go) => {
        if (this.inFlight >= this.limits.maxCallsInFlight) {
          state = 'ended';
          refuse(
            'calls_in_flight',
            grpc.status.UNAVAILABLE,
            `provider at capacity: ${this.limits.maxCallsInFlight} calls in flight on the socket; nothing was read ` +
              `or done, the driver will retry`,
          );
          return;
        }
        this.inFlight++;
        counted = true;
        stream?.on('data', onData);
        timer = setTimeout(
          () =>
            // UNAVAILABLE: the driver retries it (the slowness may be ours, on a starved node).
            refuse(
              'request_too_slow',
              grpc.status.UNAVAILABLE,
              `request not received whole within ${this.limits.receiveTimeoutMs} ms; nothing was done, the driver ` +
                `will retry`,
            ),
          this.limits.receiveTimeoutMs,
        );
        timer.unref();
        go({
          onReceiveMessage: (message, pass) => {
            if (state === 'receiving') {
              doneReceiving();
              state = 'received';
            }
            pass(message);
          },
          onCancel: () => end(),
        });
      },
      sendStatus: (status, pass) => {
        end();
        pass(status);
      },
    });
    return call;
  };

  private readonly widened = new WeakSet<object>();

  /**
   * HTTP/2 gives a connection 64 KiB of requests in flight until the server says it read them, and
   * node says so only as each call's stream is read: a driver sending a full node's first mounts at
   * once (a few KiB each) then sends about 18, waits for the provider (under a 50m CPU quota, up to
   * 100 ms for each turn of its event loop), sends 18 more… and a call the provider would refuse
   * at once waits seconds before it even arrives. The connection's window is widened once, at its
   * first call, to `connectionWindowBytes`: what a connection may send unread (streams keep their
   * own 64 KiB windows, and the receive budget still pauses calls that send more).
   */
  private widen(session: http2.Http2Session | undefined): void {
    if (session === undefined || this.widened.has(session) || session.destroyed) return;
    this.widened.add(session);
    try {
      session.setLocalWindowSize(this.limits.connectionWindowBytes);
    } catch {
      // A session closing under us: nothing to widen.
    }
  }

  /** Resumes paused calls, oldest first, while the budget has room. */
  private wake(): void {
    for (const t of this.throttled) {
      if (this.arriving > this.limits.receiveBudgetBytes) break;
      this.throttled.delete(t);
      t.resume();
    }
  }
}

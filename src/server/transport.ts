/**
 * @module server/transport
 * The limits of the provider's unix socket, so no client — a driver gone wrong, a tool left
 * connected, a hostile process with access to the socket — can grow the provider without bound in
 * its 100 MiB box. Every one is counted, and refusals say why:
 *
 *   - connections: at most `maxConnections` open at once, more are closed as they are accepted; a
 *     connection must open with the HTTP/2 preface and SETTINGS within `handshakeTimeoutMs` (before
 *     that, neither the idle timer nor the keepalive below ever closes it); a connection without a
 *     call for `idleConnectionMs` is closed with GOAWAY (grpc-go dials again at its next call), and
 *     keepalive pings close one whose peer stopped answering (SessionWatch);
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
import { describeBytes } from '../bytes.js';

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

/** HTTP/2 server options for these limits (the server is ours: server/grpc-server.ts). */
export function http2ServerOptions(limits: TransportLimits): http2.ServerOptions {
  return {
    settings: { maxConcurrentStreams: limits.maxStreamsPerConnection },
    // Node refuses streams past its own per-session memory cap (10 MB by default), and behaves badly
    // near it; the limits here bound what a connection may hold instead.
    maxSessionMemory: Number.MAX_SAFE_INTEGER,
    maxSendHeaderBlockLength: Number.MAX_SAFE_INTEGER,
  };
}

/**
 * Idle close and keepalive of one HTTP/2 connection. A connection without a stream for
 * `idleConnectionMs` (from its start, or from its last stream's end) is closed with GOAWAY; every
 * `keepaliveMs` it is pinged, and destroyed when no answer comes within `keepaliveTimeoutMs` (its
 * peer is gone or stuck: nothing it sends could be answered anyway). `opened`/`closed` are told of
 * each stream.
 *
 * HTTP/2 also gives a connection 64 KiB of requests in flight until the server says it read them,
 * and node says so only as each stream is read: a driver sending a full node's first mounts at once
 * (a few KiB each) then sends about 18, waits for the provider (under a 50m CPU quota, up to 100 ms
 * for each turn of its event loop), sends 18 more… and a call the provider would refuse at once
 * waits seconds before it even arrives. So the connection's window is widened as it starts, to
 * `connectionWindowBytes`: what a connection may send unread (streams keep their own 64 KiB
 * windows, and the receive budget still pauses calls that send more).
 */
export class SessionWatch {
  private streams = 0;
  private idle: NodeJS.Timeout | undefined;
  private readonly keepalive: NodeJS.Timeout | undefined;
  private pingTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly session: http2.ServerHttp2Session,
    private readonly limits: TransportLimits,
    /** The connection's socket: destroyed with a session whose peer stopped answering (see `ping`). */
    private readonly socket: net.Socket | undefined,
  ) {
    try {
      session.setLocalWindowSize(limits.connectionWindowBytes);
    } catch {
      // A session closing under us: nothing to widen.
    }
    this.armIdle();
    if (limits.keepaliveMs > 0) {
      this.keepalive = setInterval(() => this.ping(), limits.keepaliveMs);
      this.keepalive.unref();
    }
    session.once('close', () => this.stop());
  }

  /** Streams open now. */
  get open(): number {
    return this.streams;
  }

  opened(): void {
    this.streams++;
    if (this.idle !== undefined) clearTimeout(this.idle);
    this.idle = undefined;
  }

  closed(): void {
    this.streams--;
    if (this.streams === 0) this.armIdle();
  }

  stop(): void {
    if (this.idle !== undefined) clearTimeout(this.idle);
    if (this.keepalive !== undefined) clearInterval(this.keepalive);
    if (this.pingTimer !== undefined) clearTimeout(this.pingTimer);
    this.idle = this.pingTimer = undefined;
  }

  private armIdle(): void {
    if (this.limits.idleConnectionMs <= 0 || this.session.closed || this.session.destroyed) return;
    this.idle = setTimeout(() => {
      this.idle = undefined;
      // GOAWAY, then the connection ends (no stream is open; a stream racing the GOAWAY is refused,
      // and its client retries it on a new connection).
      if (this.streams === 0 && !this.session.closed) this.session.close();
    }, this.limits.idleConnectionMs);
    this.idle.unref();
  }

  private ping(): void {
    if (this.pingTimer !== undefined || this.session.closed || this.session.destroyed) return;
    const timer = setTimeout(() => {
      this.pingTimer = undefined;
      this.session.destroy();
      // The session's end waits for the socket's; a peer that reads nothing never lets it end.
      this.socket?.destroy();
    }, this.limits.keepaliveTimeoutMs);
    timer.unref();
    this.pingTimer = timer;
    const answered = (): void => {
      clearTimeout(timer);
      if (this.pingTimer === timer) this.pingTimer = undefined;
    };
    try {
      // The callback's error (the session closed meanwhile) needs nothing more either.
      if (!this.session.ping(answered)) answered();
    } catch {
      answered();
    }
  }
}

/** What the gate needs of a call's stream: flow control on its request. */
export interface Pausable {
  pause(): void;
  resume(): void;
}

/** One call let through the gate: told of its request's bytes, and of its end. */
export interface AdmittedCall {
  /** Counts `chunk` of the request; `whole`: no message is left half-received after it. */
  received(chunk: Buffer, whole: boolean): void;
  /** The request is whole (the client ended its side), or will never be: its bytes leave the budget. */
  doneReceiving(): void;
  /** The call ended (its status sent, or its stream closed). */
  end(): void;
}

/** A call whose request is still arriving, paused because the receive budget is spent. */
interface Throttled {
  resume(): void;
}

/**
 * Counts calls and the bytes of requests still arriving. `admit` is asked as a call's headers
 * arrive, before any of its request is read; the server then tells the admitted call of each chunk
 * of its request and of its end.
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

  /**
   * Lets a call in, or refuses it (undefined) when `maxCallsInFlight` are in flight. `refuse` answers
   * a call the gate turns away, then, or later (its request too slow, or over the budget): it must
   * send the status (UNAVAILABLE, with `details`), reset the stream, and end the call.
   */
  admit(stream: Pausable, refuse: (details: string) => void): AdmittedCall | undefined {
    const { limits } = this;
    if (this.inFlight >= limits.maxCallsInFlight) {
      this.observer.refused?.('calls_in_flight');
      refuse(
        `provider at capacity: ${limits.maxCallsInFlight} calls in flight on the socket; nothing was read or ` +
          `done, the driver will retry`,
      );
      return undefined;
    }
    this.inFlight++;
    let state: 'receiving' | 'received' | 'ended' = 'receiving';
    let bytes = 0;
    const self: Throttled = { resume: () => stream.resume() };
    const fail = (why: TransportRefusal, details: string): void => {
      if (state === 'ended') return;
      this.observer.refused?.(why);
      refuse(details);
    };
    const doneReceiving = (): void => {
      if (state !== 'receiving') return;
      state = 'received';
      clearTimeout(timer);
      this.throttled.delete(self);
      this.arriving -= bytes;
      bytes = 0;
      this.wake();
    };
    const timer = setTimeout(
      () =>
        // UNAVAILABLE: the driver retries it (the slowness may be ours, on a starved node).
        fail(
          'request_too_slow',
          `request not received whole within ${limits.receiveTimeoutMs} ms; nothing was done, the driver will retry`,
        ),
      limits.receiveTimeoutMs,
    );
    timer.unref();
    return {
      received: (chunk, whole) => {
        if (state !== 'receiving') return;
        bytes += chunk.length;
        this.arriving += chunk.length;
        // A request already whole is never held back.
        if (whole || this.arriving <= limits.receiveBudgetBytes || this.throttled.has(self)) return;
        if (this.throttled.size >= limits.maxThrottled) {
          fail(
            'receive_budget',
            `provider at capacity: ${describeBytes(limits.receiveBudgetBytes)} of requests are still arriving on the ` +
              `socket; nothing was done, the driver will retry`,
          );
          return;
        }
        // Flow control now keeps the rest of this request in the client until the budget frees.
        stream.pause();
        this.throttled.add(self);
      },
      doneReceiving,
      end: () => {
        if (state === 'ended') return;
        doneReceiving();
        state = 'ended';
        this.inFlight--;
      },
    };
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

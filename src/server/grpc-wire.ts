/**
 * @module server/grpc-wire
 * gRPC over HTTP/2, the parts that are plain data: status codes, message framing, the
 * `grpc-timeout` header, the encoding of `grpc-message`, the request headers a call must carry.
 * Pure functions; server/grpc-server.ts and server/transport.ts put them on `node:http2`
 * (docs/behaviour.md, "Transport", says why the provider serves gRPC itself).
 *
 * A message on the wire: 1 byte of flags (bit 0: compressed), 4 bytes of length (big-endian), the
 * bytes. A call's status travels in trailers (`grpc-status`, `grpc-message`), or alone in the
 * response's only HEADERS frame when nothing else is sent ("trailers-only").
 */

/** gRPC status codes, as every gRPC implementation numbers them. */
export const GrpcStatus = Object.freeze({
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
});
export type GrpcStatusName = keyof typeof GrpcStatus;
export type GrpcStatusCode = (typeof GrpcStatus)[GrpcStatusName];

/** A call's end that is not OK: its code and the text for `grpc-message`. */
export class GrpcError extends Error {
  constructor(
    readonly code: GrpcStatusCode,
    readonly details: string,
  ) {
    // No stack: a status is an answer, not a bug, and an overload makes hundreds of them at once
    // (capturing a stack was a tenth of a refusal's CPU).
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(details);
    Error.stackTraceLimit = limit;
    this.name = 'GrpcError';
  }
}

/** Bytes before each message: its flags and its length. */
export const MESSAGE_HEADER_BYTES = 5;

/** The 5-byte header of an uncompressed message of `length` bytes. */
export function messageHeader(length: number): Buffer {
  const head = Buffer.allocUnsafe(MESSAGE_HEADER_BYTES);
  head[0] = 0;
  head.writeUInt32BE(length, 1);
  return head;
}

/** One uncompressed message, framed. */
export function frameMessage(message: Buffer): Buffer {
  return Buffer.concat([messageHeader(message.length), message], MESSAGE_HEADER_BYTES + message.length);
}

/**
 * Splits the bytes of a stream into messages as they arrive. Refuses, before buffering it, a
 * message longer than `maxBytes` (RESOURCE_EXHAUSTED) and a compressed one (UNIMPLEMENTED: only
 * `identity` is accepted); after a refusal it takes nothing more.
 */
export class MessageReader {
  private readonly head = Buffer.alloc(MESSAGE_HEADER_BYTES);
  private headFill = 0;
  private body: Buffer | undefined;
  private bodyFill = 0;
  private failed = false;

  constructor(private readonly maxBytes: number) {}

  /** True between a message's first byte and its last. */
  get partial(): boolean {
    return this.headFill > 0;
  }

  /** The length the message being received declared; undefined before its header is whole. */
  get declared(): number | undefined {
    return this.headFill === MESSAGE_HEADER_BYTES ? this.head.readUInt32BE(1) : undefined;
  }

  /** Takes `chunk`; calls `onMessage` for each message it completes. Returns the refusal, if any. */
  push(chunk: Buffer, onMessage: (message: Buffer) => void): GrpcError | undefined {
    if (this.failed) return undefined;
    let at = 0;
    while (at < chunk.length) {
      if (this.headFill < MESSAGE_HEADER_BYTES) {
        const n = Math.min(MESSAGE_HEADER_BYTES - this.headFill, chunk.length - at);
        chunk.copy(this.head, this.headFill, at, at + n);
        this.headFill += n;
        at += n;
        if (this.headFill < MESSAGE_HEADER_BYTES) break;
        const problem = this.check();
        if (problem !== undefined) {
          this.failed = true;
          return problem;
        }
        const length = this.head.readUInt32BE(1);
        // A message wholly inside this chunk is a view of it, not a copy.
        if (chunk.length - at >= length) {
          const message = chunk.subarray(at, at + length);
          at += length;
          this.headFill = 0;
          onMessage(message);
          continue;
        }
        this.body = Buffer.allocUnsafe(length);
        this.bodyFill = 0;
      }
      const body = this.body as Buffer;
      const n = Math.min(body.length - this.bodyFill, chunk.length - at);
      chunk.copy(body, this.bodyFill, at, at + n);
      this.bodyFill += n;
      at += n;
      if (this.bodyFill === body.length) {
        this.body = undefined;
        this.headFill = 0;
        onMessage(body);
      }
    }
    return undefined;
  }

  private check(): GrpcError | undefined {
    const flags = this.head[0] as number;
    if ((flags & 1) !== 0)
      return new GrpcError(GrpcStatus.UNIMPLEMENTED, 'compressed message received; only identity encoding is accepted');
    const length = this.head.readUInt32BE(1);
    if (length > this.maxBytes)
      return new GrpcError(
        GrpcStatus.RESOURCE_EXHAUSTED,
        `received message larger than max (${length} vs. ${this.maxBytes})`,
      );
    return undefined;
  }
}

const TIMEOUT_UNIT_MS: Readonly<Record<string, number>> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 1e-3, n: 1e-6 };
const TIMEOUT = /^(\d{1,8})([HMSmun])$/;

/**
 * The `grpc-timeout` header in milliseconds: 1 to 8 ASCII digits and a unit (H hours, M minutes,
 * S seconds, m milliseconds, u microseconds, n nanoseconds). `undefined` when absent, `null` when
 * malformed (a caller then answers INTERNAL, as grpc-go and grpc-js do).
 */
export function parseTimeout(value: string | readonly string[] | undefined): number | undefined | null {
  if (value === undefined) return undefined;
  const text = typeof value === 'string' ? value : value.length === 1 ? (value[0] as string) : '';
  const m = TIMEOUT.exec(text);
  if (m === null) return null;
  return Number(m[1]) * (TIMEOUT_UNIT_MS[m[2] as string] as number);
}

/** The `grpc-timeout` value for `ms` milliseconds (whole milliseconds, up to 8 digits, else seconds or more). */
export function formatTimeout(ms: number): string {
  const whole = Math.max(0, Math.ceil(ms));
  if (whole < 1e8) return `${whole}m`;
  if (whole / 1000 < 1e8) return `${Math.ceil(whole / 1000)}S`;
  return `${Math.min(99_999_999, Math.ceil(whole / 3_600_000))}H`;
}

/**
 * `grpc-message` as the wire carries it: the UTF-8 bytes of `text`, each byte outside 0x20–0x7E
 * and every `%` written as `%XX` (upper-case hex). Plain printable ASCII passes as it is, except a
 * space at either end: an HTTP/2 field value must not start or end with one (a client's HTTP/2
 * layer may drop the header, and the message with it), so those are `%20`.
 */
export function encodeGrpcMessage(text: string): string {
  // Fast path: the common message needs nothing escaped.
  if (/^(?:[\x21-\x24\x26-\x7e](?:[\x20-\x24\x26-\x7e]*[\x21-\x24\x26-\x7e])?)?$/.test(text)) return text;
  const bytes = Buffer.from(text, 'utf8');
  let out = '';
  const last = bytes.length - 1;
  bytes.forEach((b, i) => {
    if (b >= 0x20 && b <= 0x7e && b !== 0x25 && !(b === 0x20 && (i === 0 || i === last))) out += String.fromCharCode(b);
    else out += `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  });
  return out;
}

/** The text of a `grpc-message` value: `%XX` sequences as bytes, then UTF-8; a stray `%` stays as it is. */
export function decodeGrpcMessage(value: string): string {
  if (!value.includes('%')) return value;
  const bytes: number[] = [];
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c === 0x25 && i + 2 < value.length && /^[0-9a-fA-F]{2}$/.test(value.slice(i + 1, i + 3))) {
      bytes.push(parseInt(value.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      bytes.push(...Buffer.from(value[i] as string, 'utf8'));
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

/**
 * What a request's headers say before any byte of it is read: `http` is an HTTP answer without
 * gRPC status (a request that is not gRPC at all), `grpc` a status (gRPC, but not one we take).
 */
export type RequestProblem = { http: 405 | 415 } | { grpc: GrpcError; acceptEncoding?: boolean } | undefined;

/**
 * Checks `:method` (POST, else 405), `content-type` (`application/grpc` or
 * `application/grpc+proto`, parameters after `;` allowed, else 415) and `grpc-encoding` (absent or
 * `identity`, else UNIMPLEMENTED, to be answered with `grpc-accept-encoding: identity`).
 */
export function checkRequestHeaders(
  method: string | undefined,
  contentType: string | undefined,
  encoding: string | readonly string[] | undefined,
): RequestProblem {
  if (method !== 'POST') return { http: 405 };
  if (contentType === undefined) return { http: 415 };
  const semi = contentType.indexOf(';');
  const type = (semi < 0 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
  if (type !== 'application/grpc' && type !== 'application/grpc+proto') return { http: 415 };
  if (encoding !== undefined && encoding !== 'identity') {
    const shown = typeof encoding === 'string' ? encoding : encoding.join(',');
    return {
      grpc: new GrpcError(
        GrpcStatus.UNIMPLEMENTED,
        `grpc-encoding "${shown.slice(0, 64)}" is not supported; only identity is accepted`,
      ),
      acceptEncoding: true,
    };
  }
  return undefined;
}

// ---- methods and their handlers -----------------------------------------------------------------

/** One method of a service: its path and the codec of its messages (server/codec.ts defines ours). */
export interface MethodDefinition<Req, Res> {
  /** `/<package>.<service>/<method>`. */
  readonly path: string;
  /** Whether the answer is a stream of messages (the request is always one message here). */
  readonly responseStream: boolean;
  readonly encodeRequest: (message: Req) => Buffer;
  readonly decodeRequest: (bytes: Buffer) => Req;
  readonly encodeResponse: (message: Res) => Buffer;
  readonly decodeResponse: (bytes: Buffer) => Res;
}

/** What a handler knows of its call. */
export interface CallContext {
  /** When the caller gives up (ms since the epoch), from `grpc-timeout`; undefined when it set none. */
  readonly deadline: number | undefined;
  /**
   * Aborts when the call ends before the handler answered: the client cancelled it or went away,
   * its deadline passed, or the server stopped it. Its reason has `code` CANCELLED or DEADLINE_EXCEEDED.
   */
  readonly signal: AbortSignal;
}

/** How a route answers on its call's stream (the server writes the frames). */
export interface Reply {
  /** One encoded response message. */
  message(encoded: Buffer): void;
  /** The call's status: OK without an error. Later calls do nothing. */
  end(error?: GrpcError): void;
  /** True once `end` was called or the call ended otherwise. */
  readonly ended: boolean;
}

/** A method with its handler, its messages as bytes: what the server routes a call's path to. */
export interface Route {
  readonly path: string;
  readonly handle: (request: Buffer, call: CallContext, reply: Reply) => void;
}

/** A thrown GrpcError stays what it is; anything else from a handler is a bug: INTERNAL. */
function asStatus(err: unknown): GrpcError {
  return err instanceof GrpcError ? err : new GrpcError(GrpcStatus.INTERNAL, 'internal error in the provider');
}

function decodeWith<Req, Res>(def: MethodDefinition<Req, Res>, request: Buffer): Req {
  try {
    return def.decodeRequest(request);
  } catch (err) {
    throw new GrpcError(
      GrpcStatus.INTERNAL,
      `cannot decode the request message: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
}

/** A unary method: the handler's value is the answer, what it throws (or rejects with) the status. */
export function unaryRoute<Req, Res>(
  def: MethodDefinition<Req, Res>,
  handler: (request: Req, call: CallContext) => Res | Promise<Res>,
): Route {
  return {
    path: def.path,
    handle(request, call, reply) {
      // Promise.resolve().then: a handler that throws synchronously still ends in a status.
      Promise.resolve()
        .then(() => handler(decodeWith(def, request), call))
        .then(
          (res) => {
            if (reply.ended) return;
            reply.message(def.encodeResponse(res));
            reply.end();
          },
          (err: unknown) => reply.end(asStatus(err)),
        );
    },
  };
}

/** A server-streaming method: the handler writes messages and ends the stream when it is done. */
export function serverStreamRoute<Req, Res>(
  def: MethodDefinition<Req, Res>,
  handler: (request: Req, call: CallContext, out: { write(message: Res): void; end(): void }) => void,
): Route {
  return {
    path: def.path,
    handle(request, call, reply) {
      try {
        handler(decodeWith(def, request), call, {
          write: (m) => {
            if (!reply.ended) reply.message(def.encodeResponse(m));
          },
          end: () => reply.end(),
        });
      } catch (err) {
        reply.end(asStatus(err));
      }
    },
  };
}

/**
 * @module aws/bounded-http
 * The request handler every AWS client shares: the SDK's NodeHttpHandler with two bounds per
 * attempt that the SDK does not have. Its socket timeout only measures silence, so a body that
 * trickles in a byte at a time never ends it; and it reads a body of any size into memory before
 * parsing it, so one 200 MiB answer takes the whole node's provider past its memory limit. Here:
 *
 * - each attempt (connection, headers and the whole body) ends after `attemptTimeoutMs`, with an
 *   AttemptTimedOut the SDK retries as one of its own timeouts;
 * - an answer over its limit (`maxBatchBodyBytes` for BatchGetSecretValue, `maxBodyBytes` for
 *   every other operation), by its Content-Length or counted as it arrives, closes the socket at
 *   once and fails with AnswerTooLarge; nothing more is read or buffered;
 * - all answers being read at once hold at most `maxInFlightBytes`: the one that would pass it is
 *   closed the same way. Without it, a proxy flooding every call would fill memory 4 MiB per call
 *   in flight (the shared agents allow 50 sockets per endpoint).
 *
 * Neither error quotes the body; aws-errors.ts turns them into messages that name the service,
 * the operation, the object and the region.
 */
import type { NodeHttpHandler } from '@smithy/node-http-handler';
import { Transform, type Readable } from 'node:stream';
import { AnswerTooLarge, AttemptTimedOut } from '../aws-errors.js';
import { callContext } from './call-context.js';

type Handle = NodeHttpHandler['handle'];
type HandlerRequest = Parameters<Handle>[0];
type HandlerOptions = NonNullable<Parameters<Handle>[1]>;
type HandlerOutput = Awaited<ReturnType<Handle>>;

export interface AttemptBounds {
  /** Most bytes of one answer's body. */
  maxBodyBytes: number;
  /** Most bytes of a BatchGetSecretValue answer's body (up to 20 secrets). */
  maxBatchBodyBytes: number;
  /** Most bytes of all answers being read at once (counted from the first byte of each until its end). */
  maxInFlightBytes: number;
  /** Most time for one attempt, the whole body included. */
  attemptTimeoutMs: number;
}

/** True for a BatchGetSecretValue request: AWS JSON requests name their operation in X-Amz-Target
 * (`secretsmanager.BatchGetSecretValue`). */
function isBatch(request: HandlerRequest): boolean {
  const target = request.headers['x-amz-target'] ?? request.headers['X-Amz-Target'];
  return typeof target === 'string' && target.endsWith('.BatchGetSecretValue');
}

/** An abort signal as the SDK hands it over: a real AbortSignal, or its older `onabort` form. */
type ParentSignal = NonNullable<HandlerOptions['abortSignal']>;

/** Aborts `controller` when `parent` aborts; returns the undo. */
function follow(parent: ParentSignal | undefined, controller: AbortController): () => void {
  if (parent === undefined) return () => undefined;
  const reason = (): unknown => ('reason' in parent ? parent.reason : undefined);
  if (parent.aborted) {
    controller.abort(reason());
    return () => undefined;
  }
  const onAbort = (): void => controller.abort(reason());
  if ('addEventListener' in parent && typeof parent.addEventListener === 'function') {
    parent.addEventListener('abort', onAbort, { once: true });
    return () => parent.removeEventListener('abort', onAbort);
  }
  const before = parent.onabort;
  parent.onabort = function (this: unknown, ...args: unknown[]) {
    (before as ((...a: unknown[]) => unknown) | null | undefined)?.apply(this, args);
    onAbort();
  } as typeof parent.onabort;
  return () => {
    parent.onabort = before;
  };
}

export class BoundedHttpHandler {
  readonly metadata: NodeHttpHandler['metadata'];
  /** Bytes of the answers being read now. */
  #inFlight = 0;

  constructor(
    private readonly inner: NodeHttpHandler,
    private readonly bounds: AttemptBounds,
  ) {
    this.metadata = inner.metadata;
  }

  /** Bytes of the answers being read now (a figure for tests). */
  get inFlightBytes(): number {
    return this.#inFlight;
  }

  /**
   * Counts the bytes of a body as they pass, against its own limit and the provider's; fails past
   * either (pipeline then closes the source). `release` gives its bytes back once, at the end.
   */
  #counter(status: number, maxBodyBytes: number): { body: Transform; release: () => void } {
    const { maxInFlightBytes } = this.bounds;
    let seen = 0;
    const body = new Transform({
      transform: (chunk: Buffer, _encoding, callback) => {
        seen += chunk.length;
        this.#inFlight += chunk.length;
        if (seen > maxBodyBytes) callback(new AnswerTooLarge(maxBodyBytes, status));
        else if (this.#inFlight > maxInFlightBytes) callback(new AnswerTooLarge(maxInFlightBytes, status, 'provider'));
        else callback(null, chunk);
      },
    });
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      this.#inFlight -= seen;
    };
    // Closed (read to the end, or destroyed on an error): nothing more is read into it.
    body.once('close', release);
    return { body, release };
  }

  async handle(request: HandlerRequest, options: HandlerOptions = {}): Promise<HandlerOutput> {
    const { attemptTimeoutMs } = this.bounds;
    const maxBodyBytes = isBatch(request) ? this.bounds.maxBatchBodyBytes : this.bounds.maxBodyBytes;
    const controller = new AbortController();
    // The call's signal: given by the SDK, or carried in the call's context (clients.ts binds it there).
    const unfollow = follow(options.abortSignal ?? callContext.getStore()?.signal, controller);
    let timedOut: AttemptTimedOut | undefined;
    let body: Transform | undefined;
    const timer = setTimeout(() => {
      timedOut = new AttemptTimedOut(attemptTimeoutMs, body === undefined ? 'headers' : 'body');
      body?.destroy(timedOut);
      controller.abort(timedOut);
    }, attemptTimeoutMs);
    timer.unref();
    const done = (): void => {
      clearTimeout(timer);
      unfollow();
    };

    let out: HandlerOutput;
    try {
      out = await this.inner.handle(request, { ...options, abortSignal: controller.signal });
    } catch (err) {
      done();
      throw timedOut ?? err;
    }
    const { response } = out;
    const source = response.body as Readable;
    const declared = Number(response.headers['content-length']);
    if (Number.isFinite(declared) && declared > maxBodyBytes) {
      done();
      source.destroy();
      throw new AnswerTooLarge(maxBodyBytes, response.statusCode);
    }
    const counted = this.#counter(response.statusCode, maxBodyBytes);
    const counter = counted.body;
    body = counter;
    // Piped by hand rather than with stream.pipeline, which makes an AbortController (and, once
    // done, a DOMException) for every answer. On an error either way both end: the source's socket
    // is closed, not drained.
    source.on('error', (err) => counter.destroy(err));
    counter.once('close', () => {
      if (!source.destroyed && !source.readableEnded) source.destroy();
      counted.release();
      done();
    });
    source.pipe(counter);
    response.body = counter;
    return out;
  }

  updateHttpClientConfig(...args: Parameters<NodeHttpHandler['updateHttpClientConfig']>): void {
    this.inner.updateHttpClientConfig(...args);
  }

  httpHandlerConfigs(): ReturnType<NodeHttpHandler['httpHandlerConfigs']> {
    return this.inner.httpHandlerConfigs();
  }

  destroy(): void {
    this.inner.destroy();
  }
}

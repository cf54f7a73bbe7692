// gRPC over HTTP/2 as the provider's own server speaks it (server/grpc-server.ts, server/grpc-wire.ts):
// the exact frames, seen by a raw node:http2 client, and the same rules through grpc-js's client (the
// driver's stand-in): OK and trailers-only answers, unknown methods, content types, encodings, message
// sizes and counts, deadlines, status details, cancellation, Health Watch, idle close, GOAWAY, keepalive.
import { mkdtemp, rm } from 'node:fs/promises';
import http2 from 'node:http2';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createDriverClient } from '../../tools/emulator/driver-client.js';
import { ProviderError } from '../errors.js';
import { silentLogger } from '../observability/logger.js';
import type { MountFn, MountInput } from '../mount/index.js';
import { encodeMountRequest, healthCheckRequest, healthCheckResponse, versionResponse } from './codec.js';
import { startServer, type RunningServer, type ServerOptions } from './grpc-server.js';
import { frameMessage, messageHeader } from './grpc-wire.js';

let dir: string;
const cleanups: (() => Promise<void> | void)[] = [];
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'grpc-server-'));
});
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
  await rm(dir, { recursive: true, force: true });
});

const answered: MountFn = async () => ({ objectVersions: [{ id: 'a', version: '1' }], files: [] });

/** A mount that runs until its signal aborts, tells `aborted` the reason, and fails with `error`. */
function untilAborted(error: ProviderError, aborted: (reason: unknown) => void, started?: () => void): MountFn {
  return (_i, signal) =>
    new Promise((_, reject) => {
      started?.();
      signal.addEventListener('abort', () => {
        aborted(signal.reason);
        reject(error);
      });
    });
}

async function serve(opts: Partial<ServerOptions> = {}): Promise<RunningServer> {
  const server = await startServer({
    socketPath: join(dir, 'aws.sock'),
    mount: answered,
    logger: silentLogger,
    ...opts,
  });
  cleanups.push(() => server.close(0));
  return server;
}

function session(server: RunningServer): http2.ClientHttp2Session {
  const s = http2.connect('http://localhost', { createConnection: () => net.connect(server.socketPath) });
  s.on('error', () => {});
  cleanups.push(() => void s.destroy());
  return s;
}

interface RawAnswer {
  headers: http2.IncomingHttpHeaders;
  /** The response's HEADERS frame ended the stream: a trailers-only answer. */
  headersOnly: boolean;
  data: Buffer;
  trailers: http2.IncomingHttpHeaders | undefined;
  rstCode: number | undefined;
}

const GRPC_HEADERS = { ':method': 'POST', 'content-type': 'application/grpc', te: 'trailers' };

/** One request by hand: `body` is sent as it is and the stream ended (null: ended with no DATA). */
function rawCall(
  s: http2.ClientHttp2Session,
  headers: http2.OutgoingHttpHeaders,
  body: Buffer | null,
): Promise<RawAnswer> {
  const stream = s.request({ ...GRPC_HEADERS, ...headers }, { endStream: body === null });
  stream.on('error', () => {});
  const chunks: Buffer[] = [];
  const answer: Partial<RawAnswer> = {};
  stream.on('response', (h, flags) => {
    answer.headers = h;
    answer.headersOnly = (flags & http2.constants.NGHTTP2_FLAG_END_STREAM) !== 0;
  });
  stream.on('trailers', (t: http2.IncomingHttpHeaders) => {
    answer.trailers = t;
  });
  stream.on('data', (c: Buffer) => chunks.push(c));
  if (body !== null) stream.end(body);
  return new Promise((resolve) =>
    stream.on('close', () =>
      resolve({
        headers: answer.headers ?? {},
        headersOnly: answer.headersOnly ?? false,
        data: Buffer.concat(chunks),
        trailers: answer.trailers,
        rstCode: stream.rstCode,
      }),
    ),
  );
}

const VERSION_PATH = '/v1alpha1.CSIDriverProvider/Version';
const MOUNT_PATH = '/v1alpha1.CSIDriverProvider/Mount';
const versionBody = (): Buffer => frameMessage(Buffer.from([0x0a, 0x02, 0x76, 0x31])); // version: "v1"
const mountBody = (attributes = '{}'): Buffer =>
  frameMessage(encodeMountRequest({ attributes, target_path: '/t', permission: '420' }));

/** A grpc-js client for any path of the provider's socket (the real gRPC client). */
function rawGrpcClient(server: RunningServer): grpc.Client {
  const c = new grpc.Client(`unix:${server.socketPath}`, grpc.credentials.createInsecure());
  cleanups.push(() => c.close());
  return c;
}

function grpcUnary(c: grpc.Client, path: string, body: Buffer): Promise<grpc.ServiceError | Buffer> {
  return new Promise((resolve) =>
    c.makeUnaryRequest(
      path,
      (b: Buffer) => b,
      (b: Buffer) => b,
      body,
      (err, res) => resolve(err ?? (res as Buffer)),
    ),
  );
}

describe('answers on the wire (a raw HTTP/2 client)', () => {
  it('OK: HEADERS (200, application/grpc), the DATA of one message, then trailers with grpc-status 0', async () => {
    const server = await serve();
    const a = await rawCall(session(server), { ':path': VERSION_PATH }, versionBody());
    expect(a.headersOnly).toBe(false);
    expect(a.headers[':status']).toBe(200);
    expect(a.headers['content-type']).toBe('application/grpc');
    expect(a.headers['grpc-status']).toBeUndefined();
    expect(a.data[0]).toBe(0);
    expect(a.data.readUInt32BE(1)).toBe(a.data.length - 5);
    expect(versionResponse.decode(a.data.subarray(5))).toMatchObject({ version: 'v1alpha1' });
    expect(a.trailers?.['grpc-status']).toBe('0');
  });

  it('an error is trailers-only: one HEADERS frame with END_STREAM, status and percent-encoded message', async () => {
    const server = await serve({
      mount: () => Promise.reject(new ProviderError('NOT_FOUND', 'secret "x" is 100% gone — é')),
    });
    const a = await rawCall(session(server), { ':path': MOUNT_PATH }, mountBody());
    expect(a.headersOnly).toBe(true);
    expect(a.headers).toMatchObject({
      ':status': 200,
      'content-type': 'application/grpc',
      'grpc-status': '5',
      'grpc-message': 'secret "x" is 100%25 gone %E2%80%94 %C3%A9',
    });
    expect(a.data.length).toBe(0);
    expect(a.trailers).toBeUndefined();
  });

  it('an unknown method or service is UNIMPLEMENTED, and the handler of no other method runs', async () => {
    let mounts = 0;
    const server = await serve({ mount: async (i, s, sum) => (mounts++, answered(i, s, sum)) });
    const s = session(server);
    for (const path of ['/v1alpha1.CSIDriverProvider/Nope', '/other.Service/Mount', '/', '/Mount']) {
      const a = await rawCall(s, { ':path': path }, mountBody());
      expect([a.headersOnly, a.headers['grpc-status']], path).toEqual([true, '12']);
    }
    expect(mounts).toBe(0);
  });

  it('a wrong content-type is HTTP 415 and another method 405, without gRPC status', async () => {
    const server = await serve();
    const s = session(server);
    for (const type of ['application/json', 'text/plain', 'application/grpc+json']) {
      const a = await rawCall(s, { ':path': VERSION_PATH, 'content-type': type }, versionBody());
      expect([a.headers[':status'], a.headers['grpc-status']], type).toEqual([415, undefined]);
    }
    const get = await rawCall(s, { ':path': VERSION_PATH, ':method': 'GET' }, null);
    expect([get.headers[':status'], get.headers['grpc-status']]).toEqual([405, undefined]);
    // application/grpc+proto is gRPC too.
    const proto = await rawCall(s, { ':path': VERSION_PATH, 'content-type': 'application/grpc+proto' }, versionBody());
    expect(proto.trailers?.['grpc-status']).toBe('0');
  });

  it('another grpc-encoding, or a compressed message: UNIMPLEMENTED with grpc-accept-encoding identity', async () => {
    const server = await serve();
    const s = session(server);
    const gzip = await rawCall(s, { ':path': VERSION_PATH, 'grpc-encoding': 'gzip' }, versionBody());
    expect(gzip.headers).toMatchObject({ 'grpc-status': '12', 'grpc-accept-encoding': 'identity' });
    const identity = await rawCall(s, { ':path': VERSION_PATH, 'grpc-encoding': 'identity' }, versionBody());
    expect(identity.trailers?.['grpc-status']).toBe('0');
    const compressed = versionBody();
    compressed[0] = 1;
    const flagged = await rawCall(s, { ':path': VERSION_PATH }, compressed);
    expect(flagged.headers['grpc-status']).toBe('12');
  });

  it('a unary call with no message, or two, is INTERNAL and its handler never runs', async () => {
    let mounts = 0;
    const server = await serve({ mount: async (i, s, sum) => (mounts++, answered(i, s, sum)) });
    const s = session(server);
    const none = await rawCall(s, { ':path': MOUNT_PATH }, null);
    expect([none.headers['grpc-status'], none.headers['grpc-message']]).toEqual([
      '13',
      'received no request message for a unary call',
    ]);
    const empty = await rawCall(s, { ':path': MOUNT_PATH }, Buffer.alloc(0));
    expect(empty.headers['grpc-status']).toBe('13');
    const two = await rawCall(s, { ':path': MOUNT_PATH }, Buffer.concat([mountBody(), mountBody()]));
    expect([two.headers['grpc-status'], two.headers['grpc-message']]).toEqual([
      '13',
      'received more than one request message for a unary call',
    ]);
    const cut = await rawCall(s, { ':path': MOUNT_PATH }, mountBody().subarray(0, 8));
    expect(cut.headers['grpc-status']).toBe('13');
    expect(mounts).toBe(0);
    // An empty message is one message (all fields default).
    const zero = await rawCall(s, { ':path': VERSION_PATH }, frameMessage(Buffer.alloc(0)));
    expect(zero.trailers?.['grpc-status']).toBe('0');
  });

  it('a message over 4 MiB is RESOURCE_EXHAUSTED from its header, before its bytes are read', async () => {
    let mounts = 0;
    const server = await serve({ mount: async (i, s, sum) => (mounts++, answered(i, s, sum)) });
    const s = session(server);
    const stream = s.request({ ...GRPC_HEADERS, ':path': MOUNT_PATH });
    stream.on('error', () => {});
    stream.write(messageHeader(4 * 1024 * 1024 + 1));
    stream.write(Buffer.alloc(1000));
    const headers = await new Promise<http2.IncomingHttpHeaders>((resolve) => stream.once('response', resolve));
    expect(headers['grpc-status']).toBe('8');
    expect(headers['grpc-message']).toBe('received message larger than max (4194305 vs. 4194304)');
    await new Promise((r) => stream.once('close', r));
    // The server reset the stream it will not read (the client was still sending).
    expect(stream.rstCode).toBe(http2.constants.NGHTTP2_NO_ERROR);
    expect(mounts).toBe(0);
    expect(server.transport()).toMatchObject({ callsInFlight: 0, arrivingBytes: 0 });
    // Exactly 4 MiB is taken (the attributes are whatever; the mount answers).
    const big = await rawCall(s, { ':path': MOUNT_PATH }, mountBody('x'.repeat(4 * 1024 * 1024 - 20)));
    expect(big.trailers?.['grpc-status']).toBe('0');
    expect(mounts).toBe(1);
  });

  it('a malformed grpc-timeout is INTERNAL', async () => {
    const server = await serve();
    const a = await rawCall(session(server), { ':path': VERSION_PATH, 'grpc-timeout': '123456789m' }, versionBody());
    expect(a.headers['grpc-status']).toBe('13');
  });
});

describe('deadlines', () => {
  /** The deadline the mount was handed, in ms from when the call was sent. */
  async function deadlineFor(timeout: string | undefined, defaultDeadlineMs = 7_000): Promise<number> {
    let input: MountInput | undefined;
    const server = await serve({
      defaultDeadlineMs,
      mount: async (i, s, sum) => ((input = i), answered(i, s, sum)),
    });
    const t0 = Date.now();
    const a = await rawCall(
      session(server),
      { ':path': MOUNT_PATH, ...(timeout === undefined ? {} : { 'grpc-timeout': timeout }) },
      mountBody(),
    );
    expect(a.trailers?.['grpc-status']).toBe('0');
    await server.close(0);
    return ((input as MountInput).deadline as number) - t0;
  }

  it.each([
    ['3S', 3000],
    ['2M', 120_000],
    ['1H', 3_600_000],
    ['4000m', 4000],
    ['5000000u', 5000],
  ])('grpc-timeout %s: the mount stops 250 ms before %d ms', async (timeout, ms) => {
    const d = await deadlineFor(timeout);
    expect(d).toBeGreaterThan(ms - 250 - 500);
    expect(d).toBeLessThanOrEqual(ms - 250 + 50);
  });

  it('no grpc-timeout: the default deadline', async () => {
    const d = await deadlineFor(undefined, 7_000);
    expect(d).toBeGreaterThan(7_000 - 250 - 500);
    expect(d).toBeLessThanOrEqual(7_000 - 250 + 50);
  });

  it("a short deadline aborts the mount's signal and the client hears DEADLINE_EXCEEDED", async () => {
    let reason: unknown;
    const server = await serve({
      mount: untilAborted(new ProviderError('DEADLINE_EXCEEDED', 'mount stopped at its deadline'), (r) => (reason = r)),
    });
    const t0 = Date.now();
    const a = await rawCall(session(server), { ':path': MOUNT_PATH, 'grpc-timeout': '600m' }, mountBody());
    expect(a.headers['grpc-status']).toBe('4');
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(reason).toMatchObject({ code: 'DEADLINE_EXCEEDED' });
    expect(server.inFlight()).toBe(0);
  });

  it('a streaming call ends DEADLINE_EXCEEDED at its deadline', async () => {
    const server = await serve();
    const a = await rawCall(
      session(server),
      { ':path': '/grpc.health.v1.Health/Watch', 'grpc-timeout': '300m' },
      frameMessage(healthCheckRequest.encode({ service: '' })),
    );
    expect(a.headersOnly).toBe(false);
    expect(a.trailers?.['grpc-status']).toBe('4');
    expect(server.transport().callsInFlight).toBe(0);
  });
});

describe('through the grpc-js client', () => {
  it('decodes status details with %, non-ASCII and control characters as they were', async () => {
    const text = ' class "x": 100% wrong — é, 日本, tab\there, line\nbreak, ends with a space ';
    const server = await serve({ mount: () => Promise.reject(new ProviderError('INVALID_ARGUMENT', text)) });
    const c = createDriverClient(server.socketPath);
    cleanups.push(() => c.close());
    await expect(c.mount({ attributes: {}, targetPath: '/t' })).rejects.toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
      details: text,
    });
  });

  it('an unknown method is UNIMPLEMENTED', async () => {
    const server = await serve();
    const err = await grpcUnary(rawGrpcClient(server), '/v1alpha1.CSIDriverProvider/Unmount', Buffer.alloc(0));
    expect(err).toMatchObject({ code: grpc.status.UNIMPLEMENTED });
  });

  it('a request message over 4 MiB is RESOURCE_EXHAUSTED', async () => {
    const server = await serve();
    const err = await grpcUnary(
      rawGrpcClient(server),
      MOUNT_PATH,
      encodeMountRequest({ attributes: 'x'.repeat(4 * 1024 * 1024 + 10) }),
    );
    expect(err).toMatchObject({ code: grpc.status.RESOURCE_EXHAUSTED });
  });

  it("the client's deadline reaches the mount; none means the default", async () => {
    const seen: number[] = [];
    const server = await serve({
      defaultDeadlineMs: 9_000,
      mount: async (i, s, sum) => (seen.push((i.deadline as number) - Date.now()), answered(i, s, sum)),
    });
    const c = createDriverClient(server.socketPath);
    cleanups.push(() => c.close());
    await c.mount({ attributes: {}, targetPath: '/t' }, { deadlineMs: 4_000 });
    await c.mount({ attributes: {}, targetPath: '/t' });
    expect(seen[0]).toBeGreaterThan(3_000);
    expect(seen[0]).toBeLessThan(4_000);
    expect(seen[1]).toBeGreaterThan(8_000);
    expect(seen[1]).toBeLessThanOrEqual(9_000);
  });

  it("a call the client cancels aborts the mount's signal (CANCELLED), and the call is let go", async () => {
    let reason: unknown;
    let started!: () => void;
    const running = new Promise<void>((r) => (started = r));
    const server = await serve({
      mount: untilAborted(new ProviderError('CANCELLED', 'cancelled'), (r) => (reason = r), started),
    });
    const c = createDriverClient(server.socketPath);
    cleanups.push(() => c.close());
    const ac = new AbortController();
    const call = c.mount({ attributes: {}, targetPath: '/t' }, { signal: ac.signal });
    await running;
    expect(server.inFlight()).toBe(1);
    ac.abort();
    await expect(call).rejects.toMatchObject({ code: grpc.status.CANCELLED });
    for (let i = 0; i < 100 && server.inFlight() > 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(reason).toMatchObject({ code: 'CANCELLED' });
    expect(server.inFlight()).toBe(0);
    expect(server.transport().callsInFlight).toBe(0);
  });
});

describe('Health Watch on the wire', () => {
  it('streams each change as a message, then ends OK at shutdown', async () => {
    const server = await serve();
    const s = session(server);
    const stream = s.request({ ...GRPC_HEADERS, ':path': '/grpc.health.v1.Health/Watch' });
    stream.end(frameMessage(healthCheckRequest.encode({ service: '' })));
    const statuses: string[] = [];
    let buffered = Buffer.alloc(0);
    stream.on('data', (c: Buffer) => {
      buffered = Buffer.concat([buffered, c]);
      while (buffered.length >= 5 && buffered.length >= 5 + buffered.readUInt32BE(1)) {
        const len = buffered.readUInt32BE(1);
        statuses.push(healthCheckResponse.decode(buffered.subarray(5, 5 + len)).status);
        buffered = buffered.subarray(5 + len);
      }
    });
    const trailers = new Promise<http2.IncomingHttpHeaders>((r) => stream.once('trailers', r));
    const waitFor = async (n: number): Promise<void> => {
      for (let i = 0; i < 200 && statuses.length < n; i++) await new Promise((r) => setTimeout(r, 5));
    };
    await waitFor(1);
    server.health.set('', 'NOT_SERVING');
    await waitFor(2);
    server.health.set('', 'SERVING');
    await waitFor(3);
    expect(statuses).toEqual(['SERVING', 'NOT_SERVING', 'SERVING']);
    const closing = server.close(30_000);
    expect((await trailers)['grpc-status']).toBe('0');
    expect(statuses).toEqual(['SERVING', 'NOT_SERVING', 'SERVING', 'NOT_SERVING']);
    const t0 = Date.now();
    await closing;
    // Nothing was left to wait for: no grace period, no fallback.
    expect(Date.now() - t0).toBeLessThan(1500);
  });
});

describe('connections', () => {
  it('tells the client its stream limit in SETTINGS', async () => {
    const server = await serve({ limits: { maxStreamsPerConnection: 7 } });
    const s = session(server);
    const settings = await new Promise<http2.Settings>((r) => s.once('remoteSettings', r));
    expect(settings.maxConcurrentStreams).toBe(7);
  });

  it('sends GOAWAY on a connection idle for idleConnectionMs, and not while a call is open', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const server = await serve({
      limits: { idleConnectionMs: 150 },
      mount: async (i, s, sum) => (await gate, answered(i, s, sum)),
    });
    const s = session(server);
    let goawayAt = 0;
    s.on('goaway', (code) => {
      expect(code).toBe(http2.constants.NGHTTP2_NO_ERROR);
      goawayAt = Date.now();
    });
    const call = rawCall(s, { ':path': MOUNT_PATH }, mountBody());
    await new Promise((r) => setTimeout(r, 400));
    expect(goawayAt).toBe(0);
    release();
    const done = Date.now();
    expect((await call).trailers?.['grpc-status']).toBe('0');
    await new Promise((r) => s.once('close', r));
    expect(goawayAt - done).toBeGreaterThanOrEqual(100);
    for (let i = 0; i < 200 && server.transport().connections > 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(server.transport().connections).toBe(0);
  });

  it('close(): GOAWAY, a call in flight still answers within the grace period, the socket is removed', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const server = await serve({ mount: async (i, s, sum) => (await gate, answered(i, s, sum)) });
    const s = session(server);
    const goaway = new Promise<number>((r) => s.once('goaway', r));
    const call = rawCall(s, { ':path': MOUNT_PATH }, mountBody());
    for (let i = 0; i < 100 && server.inFlight() === 0; i++) await new Promise((r) => setTimeout(r, 10));
    const closing = server.close(5_000);
    expect(await goaway).toBe(http2.constants.NGHTTP2_NO_ERROR);
    release();
    expect((await call).trailers?.['grpc-status']).toBe('0');
    await closing;
    await expect(
      new Promise((_, reject) => net.connect(server.socketPath).once('error', reject)),
    ).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('close(): a mount past the grace period is cancelled', async () => {
    let reason: unknown;
    const server = await serve({
      mount: untilAborted(new ProviderError('CANCELLED', 'provider shutting down'), (r) => (reason = r)),
    });
    const call = rawCall(session(server), { ':path': MOUNT_PATH }, mountBody());
    for (let i = 0; i < 100 && server.inFlight() === 0; i++) await new Promise((r) => setTimeout(r, 10));
    await server.close(100);
    expect(reason).toMatchObject({ message: 'provider shutting down' });
    expect((await call).headers['grpc-status']).toBe('1');
  });

  it('keepalive: a peer that stops answering pings is disconnected; one that answers is kept', async () => {
    const server = await serve({ limits: { keepaliveMs: 100, keepaliveTimeoutMs: 100, idleConnectionMs: 60_000 } });
    // The preface and an empty SETTINGS frame, then silence: never a PING ACK.
    const mute = net.connect(server.socketPath);
    mute.on('error', () => {});
    mute.resume(); // reads (and drops) what the server sends, so its end is seen
    cleanups.push(() => void mute.destroy());
    mute.write(
      Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0])]),
    );
    const alive = session(server);
    const t0 = Date.now();
    await new Promise((r) => mute.once('close', r));
    expect(Date.now() - t0).toBeLessThan(2000);
    await new Promise((r) => setTimeout(r, 400));
    expect(alive.closed || alive.destroyed).toBe(false);
    expect((await rawCall(alive, { ':path': VERSION_PATH }, versionBody())).trailers?.['grpc-status']).toBe('0');
  });
});

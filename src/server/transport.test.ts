// The socket's limits (server/transport.ts) through the real server: handshake, connection cap,
// idle close, calls in flight, a request that never finishes arriving, the receive budget.
import { mkdtemp, rm } from 'node:fs/promises';
import http2 from 'node:http2';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createDriverClient } from '../../tools/emulator/driver-client.js';
import { createLogger, silentLogger } from '../observability/logger.js';
import { ProviderError } from '../errors.js';
import { createProviderMetrics, renderPrometheus } from '../observability/index.js';
import type { MountFn } from '../mount/index.js';
import { startServer, type RunningServer } from './grpc-server.js';
import { DEFAULT_TRANSPORT_LIMITS, STREAMS_KEPT_FREE, waitingRoom, type TransportLimits } from './transport.js';

let dir: string;
const cleanups: (() => Promise<void> | void)[] = [];
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'transport-'));
});
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
  await rm(dir, { recursive: true, force: true });
});

const answered: MountFn = async () => ({ objectVersions: [{ id: 'a', version: '1' }], files: [] });
const hanging: MountFn = (_input, signal) =>
  new Promise((_, reject) =>
    signal.addEventListener('abort', () => reject(Object.assign(new Error('stopped'), { code: 'CANCELLED' })), {
      once: true,
    }),
  );

async function serve(limits: Partial<TransportLimits>, mount: MountFn = answered) {
  const metrics = createProviderMetrics({ objectNames: false });
  const server = await startServer({ socketPath: join(dir, 'aws.sock'), mount, logger: silentLogger, metrics, limits });
  cleanups.push(() => server.close(0));
  return { server, metrics };
}

function driver(server: RunningServer): ReturnType<typeof createDriverClient> {
  const c = createDriverClient(server.socketPath);
  cleanups.push(() => c.close());
  return c;
}

/** A raw connection; resolves `closed` when the server closes it. */
function rawConnection(socketPath: string): { socket: net.Socket; closed: Promise<void> } {
  const socket = net.connect(socketPath);
  socket.on('error', () => {});
  cleanups.push(() => void socket.destroy());
  return { socket, closed: new Promise((resolve) => socket.once('close', () => resolve())) };
}

/** An HTTP/2 session to the socket (what a gRPC client opens), for streams the test drives by hand. */
function session(socketPath: string): http2.ClientHttp2Session {
  const s = http2.connect('http://localhost', { createConnection: () => net.connect(socketPath) });
  s.on('error', () => {});
  cleanups.push(() => void s.destroy());
  return s;
}

/** A Mount call whose request says `declared` bytes and sends only `sent` of them, never ending. */
function halfSent(
  s: http2.ClientHttp2Session,
  declared: number,
  sent: number,
): { stream: http2.ClientHttp2Stream; status: Promise<string | undefined>; closed: Promise<void> } {
  const stream = s.request({
    ':method': 'POST',
    ':path': '/v1alpha1.CSIDriverProvider/Mount',
    'content-type': 'application/grpc',
    te: 'trailers',
  });
  stream.on('error', () => {});
  const head = Buffer.alloc(5);
  head.writeUInt32BE(declared, 1);
  stream.write(head);
  stream.write(Buffer.alloc(sent, 0x61));
  let grpcStatus: string | undefined;
  const pick = (h: http2.IncomingHttpHeaders): void => {
    const v = h['grpc-status'];
    if (v !== undefined) grpcStatus = String(v);
  };
  stream.on('response', pick);
  stream.on('trailers', pick);
  const closed = new Promise<void>((resolve) => stream.once('close', () => resolve()));
  return { stream, closed, status: closed.then(() => grpcStatus) };
}

const metric = (m: ReturnType<typeof createProviderMetrics>, line: string): boolean =>
  renderPrometheus(m.registry).includes(line + '\n');

describe('defaults', () => {
  it('are the documented ones', () => {
    expect(DEFAULT_TRANSPORT_LIMITS).toMatchObject({
      maxConnections: 8,
      maxStreamsPerConnection: 128,
      maxCallsInFlight: 1024,
      receiveBudgetBytes: 8 * 1024 * 1024,
      maxThrottled: 64,
      receiveTimeoutMs: 60_000,
      idleConnectionMs: 60_000,
      maxReceiveMessageBytes: 4 * 1024 * 1024,
      connectionWindowBytes: 1024 * 1024,
    });
  });

  it('leave room for the driver: mounts waiting for admission never take the last streams of its connection', () => {
    expect(waitingRoom(8)).toBe(128 - 8 - STREAMS_KEPT_FREE);
    expect(waitingRoom(8)).toBeGreaterThanOrEqual(110 - 8); // a full node's first mounts all wait their turn
    expect(waitingRoom(200)).toBe(0);
  });
});

describe('connections', () => {
  it('closes a connection without the HTTP/2 preface in time, and one that sends something else at once', async () => {
    const { server, metrics } = await serve({ handshakeTimeoutMs: 200 });
    const silent = rawConnection(server.socketPath);
    const garbage = rawConnection(server.socketPath);
    garbage.socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    await garbage.closed;
    await silent.closed;
    expect(metric(metrics, 'csi_provider_aws_grpc_connections_total{outcome="handshake"} 2')).toBe(true);
    expect((await driver(server).version()).runtime_name).toBeTruthy();
  });

  it('closes connections beyond maxConnections at accept and keeps serving', async () => {
    const { server, metrics } = await serve({ maxConnections: 3, handshakeTimeoutMs: 60_000 });
    const held = [rawConnection(server.socketPath), rawConnection(server.socketPath)];
    for (const h of held) await new Promise((r) => h.socket.once('connect', r));
    const c = driver(server);
    await c.version(); // the third connection
    const refused = rawConnection(server.socketPath);
    await refused.closed;
    expect(server.transport().connections).toBe(3);
    expect(metric(metrics, 'csi_provider_aws_grpc_connections_total{outcome="refused"} 1')).toBe(true);
    await c.version(); // its connection stays usable
  });

  it('closes a connection idle for idleConnectionMs; the client dials again at its next call', async () => {
    const { server } = await serve({ idleConnectionMs: 200 });
    const c = driver(server);
    await c.version();
    expect(server.transport().connections).toBe(1);
    for (let i = 0; i < 100 && server.transport().connections > 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(server.transport().connections).toBe(0);
    await c.version();
  });
});

describe('calls', () => {
  it('refuses a call beyond maxCallsInFlight with UNAVAILABLE "provider at capacity" before reading it', async () => {
    const { server, metrics } = await serve({ maxCallsInFlight: 3 }, hanging);
    const c = driver(server);
    const ac = new AbortController();
    const held = [1, 2, 3].map(() =>
      c.mount({ attributes: {}, targetPath: '/t' }, { signal: ac.signal }).catch(() => undefined),
    );
    for (let i = 0; i < 100 && server.transport().callsInFlight < 3; i++) await new Promise((r) => setTimeout(r, 10));
    expect(server.transport().callsInFlight).toBe(3);
    await expect(c.mount({ attributes: {}, targetPath: '/t' })).rejects.toMatchObject({
      code: grpc.status.UNAVAILABLE,
      details: expect.stringMatching(/^provider at capacity: 3 calls in flight on the socket/),
    });
    expect(metric(metrics, 'csi_provider_aws_grpc_calls_refused_total{reason="calls_in_flight"} 1')).toBe(true);
    ac.abort();
    await Promise.all(held);
    for (let i = 0; i < 100 && server.transport().callsInFlight > 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(server.transport().callsInFlight).toBe(0);
  });

  it("widens a connection's flow-control window at its first call: a burst is not sent 64 KiB at a time", async () => {
    const { server } = await serve({ connectionWindowBytes: 512 * 1024 });
    const s = session(server.socketPath);
    await new Promise<void>((resolve) => s.once('remoteSettings', () => resolve()));
    expect(s.state.remoteWindowSize).toBe(65_535);
    const call = halfSent(s, 100, 100);
    call.stream.end();
    expect(await call.status).toBeDefined();
    // The client's view: the provider may now be sent the widened window (less what it has not read).
    expect(s.state.remoteWindowSize).toBeGreaterThan(400 * 1024);
  });

  it('ends and resets a call whose request does not arrive whole in time, and forgets its bytes', async () => {
    const { server, metrics } = await serve({ receiveTimeoutMs: 200 });
    const s = session(server.socketPath);
    const call = halfSent(s, 1024 * 1024, 10_000);
    for (let i = 0; i < 100 && server.transport().arrivingBytes < 10_005; i++)
      await new Promise((r) => setTimeout(r, 10));
    expect(server.transport().arrivingBytes).toBe(10_005);
    expect(await call.status).toBe(String(grpc.status.UNAVAILABLE));
    expect(server.transport()).toMatchObject({ callsInFlight: 0, arrivingBytes: 0 });
    expect(metric(metrics, 'csi_provider_aws_grpc_calls_refused_total{reason="request_too_slow"} 1')).toBe(true);
    expect((await driver(server).version()).version).toBe('v1alpha1');
  });

  it('pauses calls over the receive budget, refuses beyond maxThrottled, and still serves small requests', async () => {
    const { server, metrics } = await serve({ receiveBudgetBytes: 100_000, maxThrottled: 2, receiveTimeoutMs: 2_000 });
    const s = session(server.socketPath);
    // Each sends 60 KB of a 1 MB request: the first two fit or go just over, the next are paused, then refused.
    const calls = Array.from({ length: 5 }, () => halfSent(s, 1024 * 1024, 60_000));
    for (
      let i = 0;
      i < 100 && !metric(metrics, 'csi_provider_aws_grpc_calls_refused_total{reason="receive_budget"} 2');
      i++
    ) {
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(metric(metrics, 'csi_provider_aws_grpc_calls_refused_total{reason="receive_budget"} 2')).toBe(true);
    // Held: what arrived before each call was paused, never the 5 MB declared.
    expect(server.transport().arrivingBytes).toBeLessThan(5 * 65_536);
    // A whole small request is still answered at once, on another connection.
    expect((await driver(server).mount({ attributes: {}, targetPath: '/t' })).objectVersion).toEqual([
      { id: 'a', version: '1' },
    ]);
    const statuses = await Promise.all(calls.map((c) => c.status));
    // Two refused over the budget, three (paused, then never finished) over the receive time: all retried by the
    // driver.
    expect(statuses.filter((x) => x === String(grpc.status.UNAVAILABLE))).toHaveLength(5);
    expect(metric(metrics, 'csi_provider_aws_grpc_calls_refused_total{reason="request_too_slow"} 3')).toBe(true);
    expect(server.transport()).toMatchObject({ callsInFlight: 0, arrivingBytes: 0 });
  });
});

describe('admission at arrival', () => {
  it('refused at arrival: UNAVAILABLE before its target or the pipeline; later refusals in one line', async () => {
    const lines: string[] = [];
    let checked = 0;
    let mounted = 0;
    let entered = 0;
    const server = await startServer({
      socketPath: join(dir, 'aws.sock'),
      mount: async (input) => {
        mounted++;
        input.entered?.();
        return { objectVersions: [{ id: 'a', version: '1' }], files: [] };
      },
      logger: createLogger({ write: (l) => lines.push(l) }),
      checkTarget: async () => {
        checked++;
      },
      arrive: (attributes) =>
        attributes.includes('refuse')
          ? {
              refusal: new ProviderError('UNAVAILABLE', 'provider at capacity: test', { reason: 'AtCapacity' }),
              entered: () => {},
            }
          : { refusal: undefined, entered: () => entered++ },
    });
    cleanups.push(() => server.close(0));
    const c = driver(server);
    for (let i = 0; i < 3; i++) {
      await expect(c.mount({ attributes: { refuse: 'yes' }, targetPath: '/t' })).rejects.toMatchObject({
        code: grpc.status.UNAVAILABLE,
        details: 'provider at capacity: test',
      });
    }
    expect([checked, mounted]).toEqual([0, 0]);
    await c.mount({ attributes: { pod: 'p' }, targetPath: '/t' });
    expect([checked, mounted]).toEqual([1, 1]);
    // Its arrival was ended (admission's `entered` may be called again: it does nothing then).
    expect(entered).toBeGreaterThanOrEqual(1);
    const refusedLines = lines.filter((l) => l.includes('provider at capacity'));
    expect(refusedLines).toHaveLength(1); // the first; the next two are counted, logged later as one line
  });
});

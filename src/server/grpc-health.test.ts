import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../observability/logger.js';
import { HealthStatus, PROVIDER_SERVICE, SocketProbe, probeSocket, type ServingStatus } from './grpc-health.js';
import { startServer as startProviderServer, type RunningServer } from './grpc-server.js';

let dir: string;
const cleanups: (() => Promise<void> | void)[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'grpc-health-'));
});

afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
  await rm(dir, { recursive: true, force: true });
});

/** The provider's server (its Health service answers from `server.health`); `initial` sets statuses first. */
async function startServer(
  initial: Readonly<Record<string, ServingStatus>> = {},
): Promise<{ server: RunningServer; status: HealthStatus; socket: string }> {
  const socket = join(dir, 'aws.sock');
  const server = await startProviderServer({
    socketPath: socket,
    mount: () => Promise.reject(new Error('no mounts here')),
    logger: silentLogger,
  });
  for (const [service, s] of Object.entries(initial)) server.health.set(service, s);
  cleanups.push(() => server.close(0));
  return { server, status: server.health, socket };
}

/** A client built from the proto file, as grpc-health-probe or a kubelet gRPC probe would be. */
function healthClient(socket: string): grpc.Client & Record<string, (...args: unknown[]) => unknown> {
  const def = protoLoader.loadSync(fileURLToPath(new URL('../../proto/health.proto', import.meta.url)), {
    keepCase: true,
    enums: String,
    defaults: true,
  });
  const root = grpc.loadPackageDefinition(def) as unknown as {
    grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } };
  };
  const client = new root.grpc.health.v1.Health(`unix:${socket}`, grpc.credentials.createInsecure());
  cleanups.push(() => client.close());
  return client as unknown as grpc.Client & Record<string, (...args: unknown[]) => unknown>;
}

function check(
  client: ReturnType<typeof healthClient>,
  service: string,
): Promise<{ status?: ServingStatus; code?: number }> {
  return new Promise((resolve) => {
    client['Check']?.({ service }, (err: grpc.ServiceError | null, res?: { status: ServingStatus }) =>
      resolve(err ? { code: err.code } : { status: res?.status as ServingStatus }),
    );
  });
}

describe('Health service', () => {
  it('answers Check per service; unknown service is NOT_FOUND', async () => {
    const { socket, status } = await startServer();
    const client = healthClient(socket);
    expect(await check(client, '')).toEqual({ status: 'SERVING' });
    expect(await check(client, PROVIDER_SERVICE)).toEqual({ status: 'SERVING' });
    expect(await check(client, 'nope')).toEqual({ code: grpc.status.NOT_FOUND });
    status.set(PROVIDER_SERVICE, 'NOT_SERVING');
    expect(await check(client, PROVIDER_SERVICE)).toEqual({ status: 'NOT_SERVING' });
  });

  it("streams Watch updates, and ends the stream on shutdown so the server's close is not held up", async () => {
    const { server, socket, status } = await startServer({ '': 'NOT_SERVING' });
    const client = healthClient(socket);
    const call = client['Watch']?.({ service: '' }) as grpc.ClientReadableStream<{ status: ServingStatus }>;
    const seen: ServingStatus[] = [];
    const ended = once(call, 'end');
    const next = (): Promise<void> => new Promise((resolve) => call.once('data', () => resolve()));
    call.on('data', (m: { status: ServingStatus }) => seen.push(m.status));

    await next();
    expect(seen).toEqual(['NOT_SERVING']);
    status.set('', 'SERVING');
    await next();
    status.set('', 'SERVING'); // no change, no message
    status.shutdown();
    await ended;
    expect(seen).toEqual(['NOT_SERVING', 'SERVING', 'NOT_SERVING']);
    status.set('', 'SERVING'); // ignored after shutdown
    expect(status.get('')).toBe('NOT_SERVING');
    // The connection is idle now (the Watch ended): close needs no grace period nor its 2 s fallback.
    const t0 = Date.now();
    await server.close(30_000);
    expect(Date.now() - t0).toBeLessThan(1500);
  });

  it('Watch of an unknown service says SERVICE_UNKNOWN', async () => {
    const { socket } = await startServer();
    const call = healthClient(socket)['Watch']?.({ service: 'other' }) as grpc.ClientReadableStream<{
      status: ServingStatus;
    }>;
    const [msg] = (await once(call, 'data')) as [{ status: ServingStatus }];
    expect(msg.status).toBe('SERVICE_UNKNOWN');
    call.on('error', () => {}); // the CANCELLED status our cancel() causes
    call.cancel();
  });
});

describe('probeSocket', () => {
  it('resolves when the server says SERVING', async () => {
    const { socket } = await startServer();
    await expect(probeSocket(socket, new AbortController().signal)).resolves.toBeUndefined();
    await expect(
      probeSocket(socket, new AbortController().signal, { service: PROVIDER_SERVICE }),
    ).resolves.toBeUndefined();
  });

  it('rejects NOT_SERVING and unknown services', async () => {
    const { socket, status } = await startServer();
    status.shutdown();
    await expect(probeSocket(socket, new AbortController().signal)).rejects.toThrow(
      `gRPC server on ${socket} reports NOT_SERVING`,
    );
    await expect(probeSocket(socket, new AbortController().signal, { service: 'x' })).rejects.toThrow(
      'does not know service "x"',
    );
  });

  it('rejects a missing socket and a file that is not a socket', async () => {
    const missing = join(dir, 'missing.sock');
    await expect(probeSocket(missing, new AbortController().signal)).rejects.toThrow(
      `socket ${missing} does not exist`,
    );
    const file = join(dir, 'plain');
    await writeFile(file, '');
    await expect(probeSocket(file, new AbortController().signal)).rejects.toThrow('exists but is not a socket');
  });

  it('rejects a stale socket (nobody listening) as unreachable', async () => {
    const socket = join(dir, 'stale.sock');
    // A process that dies without cleaning up leaves its socket file behind, as a crash does.
    const child = spawn(
      process.execPath,
      ['-e', `require('net').createServer().listen(process.argv[1], () => console.log('up'))`, socket],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    await once(child.stdout, 'data');
    child.kill('SIGKILL');
    await once(child, 'exit');
    const err = await probeSocket(socket, new AbortController().signal).catch((e: unknown) => e);
    expect(String(err)).toContain(`cannot reach the gRPC server on ${socket}`);
    expect(err).toMatchObject({ code: 'UNAVAILABLE', reason: 'NotReady' });
  });

  it('rejects a server that never answers, at the deadline', async () => {
    const socket = join(dir, 'mute.sock');
    const mute = net.createServer(() => {});
    await new Promise<void>((resolve) => mute.listen(socket, resolve));
    cleanups.push(() => new Promise<void>((resolve) => mute.close(() => resolve())));
    const sockets: net.Socket[] = [];
    mute.on('connection', (s) => sockets.push(s));
    cleanups.push(() => sockets.forEach((s) => s.destroy()));
    await expect(probeSocket(socket, new AbortController().signal, { timeoutMs: 100 })).rejects.toThrow(
      `no health answer from ${socket} within 100 ms`,
    );
  });

  it('stops when its signal aborts', async () => {
    const { socket } = await startServer();
    const ac = new AbortController();
    ac.abort(new Error('gone'));
    await expect(probeSocket(socket, ac.signal)).rejects.toThrow('gone');
  });
});

describe('SocketProbe', () => {
  it('keeps one client for every check', async () => {
    const { socket } = await startServer();
    const probe = new SocketProbe(socket);
    cleanups.push(() => probe.close());
    for (let i = 0; i < 20; i++) await probe.check(new AbortController().signal);
    await Promise.all(Array.from({ length: 50 }, () => probe.check(new AbortController().signal)));
    expect(probe.clientsCreated).toBe(1);
  });

  it('drops its client after a failed call, and reaches a restarted server with a new one', async () => {
    const first = await startServer();
    const probe = new SocketProbe(first.socket, { timeoutMs: 200 });
    cleanups.push(() => probe.close());
    await probe.check(new AbortController().signal);
    await first.server.close(0);
    await rm(first.socket, { force: true });
    // Something that accepts and never answers: the call fails at its deadline.
    const mute = net.createServer(() => {});
    await new Promise<void>((resolve) => mute.listen(first.socket, resolve));
    const held: net.Socket[] = [];
    mute.on('connection', (c) => held.push(c));
    await expect(probe.check(new AbortController().signal)).rejects.toThrow(
      `no health answer from ${first.socket} within 200 ms`,
    );
    // One connection to the first server, one dialled to the mute one after the first server closed its own.
    expect(probe.clientsCreated).toBe(2);
    held.forEach((c) => c.destroy());
    await new Promise<void>((resolve) => mute.close(() => resolve()));
    await rm(first.socket, { force: true });
    await startServer();
    await expect(probe.check(new AbortController().signal)).resolves.toBeUndefined();
    // The failed call's connection was dropped: a new one reached the restarted server.
    expect(probe.clientsCreated).toBe(3);
  });

  it('a NOT_SERVING answer keeps the client', async () => {
    const { socket, status } = await startServer();
    const probe = new SocketProbe(socket);
    cleanups.push(() => probe.close());
    await probe.check(new AbortController().signal);
    status.shutdown();
    await expect(probe.check(new AbortController().signal)).rejects.toThrow('reports NOT_SERVING');
    expect(probe.clientsCreated).toBe(1);
  });
});

import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { EVENTS } from '../observability/events.js';
import { createLogger, silentLogger } from '../observability/logger.js';
import { createProviderMetrics, renderPrometheus } from '../observability/index.js';
import { probeSocket } from './grpc-health.js';
import { startServer as startProviderServer } from './grpc-server.js';
import { METRICS_CONTENT_TYPE, parseListenAddress, startHealthServer, type HealthServer } from './health-http.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

async function start(opts: Parameters<typeof startHealthServer>[0]): Promise<HealthServer> {
  const s = await startHealthServer(opts);
  cleanups.push(() => s.close());
  return s;
}

async function get(url: string, init?: RequestInit): Promise<{ status: number; type: string | null; body: string }> {
  const res = await fetch(url, init);
  return { status: res.status, type: res.headers.get('content-type'), body: await res.text() };
}

const okReady = async (): Promise<void> => {};

describe('parseListenAddress', () => {
  it.each([
    [':8989', '', 8989],
    ['0.0.0.0:8989', '0.0.0.0', 8989],
    ['[::]:8989', '::', 8989],
    ['[::1]:0', '::1', 0],
    ['127.0.0.1:0', '127.0.0.1', 0],
    ['localhost:65535', 'localhost', 65535],
  ])('%s → host %j port %d', (addr, host, port) => {
    expect(parseListenAddress(addr)).toEqual({ host, port });
  });

  it.each([
    ['8989', /no port/],
    ['0.0.0.0', /no port/],
    ['0.0.0.0:', /port "" is not a number/],
    [':http', /port "http" is not a number/],
    [':65536', /port 65536 is above 65535/],
    [':-1', /port "-1" is not a number/],
    ['::1:8989', /needs brackets/],
    ['[::1:8989', /needs brackets|bracketed/],
    ['[nope]:80', /not a bracketed IPv6 address/],
    ['999.1.1.1:80', /not an IPv4 address or a host name/],
    ['bad host:80', /not an IPv4 address or a host name/],
    ['http://0.0.0.0:80', /not a number|brackets|host name/],
  ])('refuses %j', (addr, why) => {
    expect(() => parseListenAddress(addr, '--health-addr')).toThrow(why);
    expect(() => parseListenAddress(addr, '--health-addr')).toThrow(`--health-addr "${addr}" is not a listen address`);
  });
});

describe('startHealthServer', () => {
  it('refuses a bad address before listening', async () => {
    await expect(startHealthServer({ healthAddr: '127.0.0.1', ready: okReady, logger: silentLogger })).rejects.toThrow(
      /--health-addr "127.0.0.1" is not a listen address: no port; use HOST:PORT such as ":8989"/,
    );
    await expect(
      startHealthServer({ healthAddr: '127.0.0.1:0', metricsAddr: '[::1:0', ready: okReady, logger: silentLogger }),
    ).rejects.toThrow(/--metrics-addr/);
    await expect(
      startHealthServer({ metricsAddr: '127.0.0.1:0', ready: okReady, logger: silentLogger }),
    ).rejects.toThrow(/no metric registry/);
  });

  it('names the address when the port is taken', async () => {
    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => taken.close(() => resolve())));
    const port = (taken.address() as net.AddressInfo).port;
    await expect(
      startHealthServer({ healthAddr: `127.0.0.1:${port}`, ready: okReady, logger: silentLogger }),
    ).rejects.toThrow(`cannot listen on --health-addr 127.0.0.1:${port}: EADDRINUSE`);
  });

  it('serves nothing when both addresses are empty', async () => {
    const s = await start({ healthAddr: '', metricsAddr: '', ready: okReady, logger: silentLogger });
    expect(s.healthUrl).toBeUndefined();
    expect(s.metricsUrl).toBeUndefined();
  });

  it('serves /healthz, /metrics and 404/405 on one shared server', async () => {
    const metrics = createProviderMetrics({ objectNames: false });
    metrics.cacheRequest('value', true);
    const s = await start({
      healthAddr: '127.0.0.1:0',
      metricsAddr: '127.0.0.1:0',
      registry: metrics.registry,
      ready: okReady,
      logger: silentLogger,
    });
    expect(s.metricsUrl).toBe(`${s.healthUrl}/metrics`);

    expect(await get(`${s.healthUrl}/healthz`)).toEqual({
      status: 200,
      type: 'text/plain; charset=utf-8',
      body: 'ok\n',
    });
    const m = await get(s.metricsUrl as string);
    expect(m.status).toBe(200);
    expect(m.type).toBe(METRICS_CONTENT_TYPE);
    expect(m.type).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(m.body).toContain('csi_provider_aws_cache_requests_total{cache="value",result="hit"} 1\n');
    expect(m.body).toContain('# TYPE process_resident_memory_bytes gauge\n');
    // The body is exactly the writer's output (process figures aside, which move between reads).
    const stable = (t: string): string => t.replace(/^(process_|nodejs_).*$/gm, '');
    expect(stable(m.body)).toBe(stable(renderPrometheus(metrics.registry)));

    expect((await get(`${s.healthUrl}/nope`)).status).toBe(404);
    const post = await fetch(`${s.healthUrl}/healthz`, { method: 'POST' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
    const head = await fetch(`${s.healthUrl}/healthz`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe('');
  });

  it('keeps health and metrics apart on different addresses', async () => {
    const metrics = createProviderMetrics({ objectNames: false });
    const s = await start({
      healthAddr: '127.0.0.1:0',
      metricsAddr: '[::1]:0',
      registry: metrics.registry,
      ready: okReady,
      logger: silentLogger,
    }).catch(
      // A machine without IPv6 loopback: fall back to a second IPv4 listener.
      () =>
        start({
          healthAddr: '127.0.0.1:0',
          metricsAddr: 'localhost:0',
          registry: metrics.registry,
          ready: okReady,
          logger: silentLogger,
        }),
    );
    const metricsBase = (s.metricsUrl as string).replace(/\/metrics$/, '');
    expect(metricsBase).not.toBe(s.healthUrl);
    expect((await get(`${metricsBase}/healthz`)).status).toBe(404);
    expect((await get(`${s.healthUrl}/metrics`)).status).toBe(404);
    expect((await get(s.metricsUrl as string)).status).toBe(200);
    expect((await get(`${s.healthUrl}/readyz`)).status).toBe(200);
  });

  it('answers /readyz from the gRPC health service on a unix socket, then 503 once it is gone', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'health-http-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const socket = join(dir, 'aws.sock');
    const server = await startProviderServer({
      socketPath: socket,
      mount: () => Promise.reject(new Error('no mounts here')),
      logger: silentLogger,
    });
    const status = server.health;
    cleanups.push(() => server.close(0));

    const lines: string[] = [];
    const s = await start({
      healthAddr: '127.0.0.1:0',
      readyCacheMs: 0,
      ready: (signal) => probeSocket(socket, signal),
      logger: createLogger({ write: (l) => lines.push(l) }),
    });
    expect(await get(`${s.healthUrl}/readyz`)).toEqual({
      status: 200,
      type: 'text/plain; charset=utf-8',
      body: 'ok\n',
    });

    status.shutdown();
    expect(await get(`${s.healthUrl}/readyz`)).toMatchObject({
      status: 503,
      body: `not ready: gRPC server on ${socket} reports NOT_SERVING\n`,
    });

    await server.close(0);
    await rm(socket, { force: true });
    expect(await get(`${s.healthUrl}/readyz`)).toMatchObject({
      status: 503,
      body: `not ready: socket ${socket} does not exist: the gRPC server is not listening\n`,
    });
    expect(await get(`${s.healthUrl}/healthz`)).toMatchObject({ status: 200 });

    // Transitions are logged once each, not on every probe.
    const msgs = lines.map((l) => (JSON.parse(l) as { msg: string }).msg).filter((m) => m !== EVENTS.httpListening);
    expect(msgs).toEqual([EVENTS.ready, EVENTS.notReady]);
  });

  it('answers 503 at the timeout even when ready() ignores its signal', async () => {
    let sawAbort = false;
    const s = await start({
      healthAddr: '127.0.0.1:0',
      readyTimeoutMs: 50,
      ready: (signal) =>
        new Promise<void>(() => {
          signal.addEventListener('abort', () => (sawAbort = true));
        }),
      logger: silentLogger,
    });
    expect(await get(`${s.healthUrl}/readyz`)).toMatchObject({
      status: 503,
      body: 'not ready: readiness check timed out after 50 ms\n',
    });
    expect(sawAbort).toBe(true);
  });

  it('never echoes a token in the 503 reason', async () => {
    const jwt = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW0ifQ.c2lnbmF0dXJl';
    const s = await start({
      healthAddr: '127.0.0.1:0',
      ready: () => Promise.reject(new Error(`upstream said ${jwt}`)),
      logger: silentLogger,
    });
    const r = await get(`${s.healthUrl}/readyz`);
    expect(r.status).toBe(503);
    expect(r.body).not.toContain(jwt);
    expect(r.body).toBe('not ready: upstream said [REDACTED-TOKEN]\n');
  });

  it('checkAtStart: one check as soon as it listens, logged, its answer reused by the first probe', async () => {
    const lines: string[] = [];
    let calls = 0;
    const s = await start({
      healthAddr: '127.0.0.1:0',
      readyCacheMs: 60_000,
      checkAtStart: true,
      ready: () => {
        calls++;
        return Promise.resolve();
      },
      logger: createLogger({ level: 'info', format: 'json', write: (l) => lines.push(l) }),
    });
    await new Promise((r) => setTimeout(r, 50));
    const logged = lines.map((l) => JSON.parse(l) as { msg: string; address?: string });
    expect(logged.map((l) => l.msg)).toEqual([EVENTS.httpListening, EVENTS.ready]);
    expect(logged[0]?.address).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(calls).toBe(1);
    expect((await get(`${s.healthUrl}/readyz`)).status).toBe(200);
    expect(calls).toBe(1);
  });

  it('without checkAtStart nothing is checked until a probe asks', async () => {
    let calls = 0;
    await start({ healthAddr: '127.0.0.1:0', ready: () => Promise.resolve(void calls++), logger: silentLogger });
    await new Promise((r) => setTimeout(r, 50));
    expect(calls).toBe(0);
  });

  it('100 concurrent /readyz share one check, and its answer is reused for readyCacheMs', async () => {
    let calls = 0;
    let release: () => void = () => {};
    const s = await start({
      healthAddr: '127.0.0.1:0',
      readyCacheMs: 60_000,
      ready: () => {
        calls++;
        return new Promise<void>((resolve) => (release = resolve));
      },
      logger: silentLogger,
    });
    const answers = Array.from({ length: 100 }, () => get(`${s.healthUrl}/readyz`));
    while (calls === 0) await new Promise((r) => setTimeout(r, 5));
    await new Promise((r) => setTimeout(r, 50));
    release();
    expect((await Promise.all(answers)).map((a) => a.status)).toEqual(new Array(100).fill(200));
    expect(calls).toBe(1);
    expect((await get(`${s.healthUrl}/readyz`)).status).toBe(200);
    expect(calls).toBe(1);
  });

  it('reuses a failure for readyCacheMs too, then checks again', async () => {
    let calls = 0;
    const s = await start({
      healthAddr: '127.0.0.1:0',
      readyCacheMs: 100,
      ready: async () => {
        calls++;
        if (calls === 1) throw new Error('not yet');
      },
      logger: silentLogger,
    });
    expect(await get(`${s.healthUrl}/readyz`)).toMatchObject({ status: 503, body: 'not ready: not yet\n' });
    expect(await get(`${s.healthUrl}/readyz`)).toMatchObject({ status: 503 });
    expect(calls).toBe(1);
    await new Promise((r) => setTimeout(r, 150));
    expect(await get(`${s.healthUrl}/readyz`)).toMatchObject({ status: 200 });
    expect(calls).toBe(2);
  });

  it('refuses connections beyond maxConnections, and serves again once they close', async () => {
    const s = await start({ healthAddr: '127.0.0.1:0', maxConnections: 4, ready: okReady, logger: silentLogger });
    const { port } = new URL(s.healthUrl as string);
    const held: net.Socket[] = [];
    for (let i = 0; i < 4; i++) {
      const c = net.connect(Number(port), '127.0.0.1');
      await new Promise((r) => c.once('connect', r));
      held.push(c);
    }
    const extra = net.connect(Number(port), '127.0.0.1');
    extra.on('error', () => {});
    await new Promise((r) => extra.once('close', r));
    for (const c of held) c.destroy();
    await new Promise((r) => setTimeout(r, 50));
    expect((await get(`${s.healthUrl}/healthz`)).status).toBe(200);
  });

  it('close() stops listening', async () => {
    const s = await startHealthServer({ healthAddr: '127.0.0.1:0', ready: okReady, logger: silentLogger });
    const url = `${s.healthUrl}/healthz`;
    expect((await get(url)).status).toBe(200);
    await s.close();
    await expect(fetch(url)).rejects.toThrow();
  });
});

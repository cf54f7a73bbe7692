/**
 * The provider's two doors, as a hostile tenant on the node (the socket) or in the cluster (HTTP)
 * tries them: /metrics names no tenant's objects and its series stay capped however many distinct
 * error codes AWS answers; /readyz under 100 callers at once answers from one check over one
 * connection while another tenant mounts; 1,000 idle connections to the socket are capped and
 * closed, half-sent requests are ended, and the provider keeps serving; a target path outside the
 * kubelet's CSI volume mounts, or reached through a symbolic link, is refused before any work and
 * nothing is written or touched (and in driver-writes mode, not touched). Everything goes through
 * the real provider (the harness's `start()`), the real socket and the AWS emulator.
 */
import { mkdir, readdir, stat, symlink, utimes } from 'node:fs/promises';
import http2 from 'node:http2';
import net from 'node:net';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_TRANSPORT_LIMITS } from '../../src/server/transport.js';
import { outcomeOf, pool } from './hardening-helpers.js';
import { REGION, startHarness, type Harness, type Pod } from '../helpers/harness.js';

const P = 'csi_provider_aws_';
const SM = (name: string): string => `- {objectName: ${name}, objectType: secretsmanager}`;

let h: Harness;
let pod: Pod;

beforeAll(async () => {
  h = await startHarness();
  pod = h.pod();
  h.emu.putSecret(REGION, 'tenant-a/db-password', 'v-a');
  h.emu.putSecret(REGION, 'arn-like/prod/payments-key', 'v-b');
}, 60_000);
afterAll(async () => h?.close());

async function scrape(): Promise<string> {
  const res = await fetch(String(h.provider.metricsUrl));
  expect(res.status).toBe(200);
  return res.text();
}

/** The value of one sample line (`name{labels}`), 0 when absent. */
function sample(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}

async function mountOk(): Promise<void> {
  const target = await h.target();
  await h.client.mount(
    { attributes: pod.attributes({ region: REGION, objects: SM('tenant-a/db-password') }), targetPath: target },
    { deadlineMs: 20_000 },
  );
  expect(await readdir(target)).toEqual(['tenant-a_db-password']);
}

describe('/metrics', () => {
  it("names no object by default: a tenant's secret names and ARNs are not in the scrape", async () => {
    const target = await h.target();
    await h.client.mount({
      attributes: pod.attributes({
        region: REGION,
        objects: `${SM('tenant-a/db-password')}\n${SM('arn-like/prod/payments-key')}`,
      }),
      targetPath: target,
    });
    const text = await scrape();
    expect(sample(text, `${P}objects_fetched_total{type="secretsmanager",outcome="success"}`)).toBeGreaterThanOrEqual(
      2,
    );
    for (const name of ['tenant-a', 'db-password', 'payments-key', 'arn-like']) expect(text).not.toContain(name);
  });

  it('1,100 AWS error codes: at most 1,000 series plus overflow, the drop counted, the scrape valid', async () => {
    const n = 1100;
    for (let i = 0; i < n; i++) {
      h.emu.putSecret(REGION, `codes/s${i}`, 'v');
      h.emu.addFault({
        service: 'secretsmanager',
        operation: 'GetSecretValue',
        target: `codes/s${i}`,
        status: 400,
        code: `Tenant${i}Exception`,
        times: 1,
      });
    }
    const results = await pool(
      Array.from({ length: n }, (_, i) => i),
      50,
      async (i) =>
        outcomeOf(
          h.client.mount(
            {
              attributes: pod.attributes({ region: REGION, objects: SM(`codes/s${i}`) }),
              targetPath: await h.target(),
            },
            { deadlineMs: 30_000 },
          ),
        ),
    );
    expect(results.filter((r) => r.ok)).toEqual([]);
    const text = await scrape();
    const calls = text.split('\n').filter((l) => l.startsWith(`${P}aws_calls_total{`));
    expect(calls.length).toBeLessThanOrEqual(1001);
    expect(calls.filter((l) => /code="Tenant\d+Exception"/.test(l)).length).toBeLessThan(1000);
    const overflow = sample(
      text,
      `${P}aws_calls_total{service="other",operation="other",region="other",outcome="other",code="other"}`,
    );
    const dropped = sample(text, `${P}metric_series_dropped_total{metric="${P}aws_calls_total"}`);
    expect(overflow).toBeGreaterThanOrEqual(100);
    expect(dropped).toBe(overflow);
    // Every line a comment or a sample; one TYPE per family.
    const types = text.split('\n').filter((l) => l.startsWith('# TYPE '));
    expect(new Set(types).size).toBe(types.length);
    for (const line of text.trimEnd().split('\n'))
      expect(line).toMatch(/^(# (HELP|TYPE) \S+ .*|[a-zA-Z_:][a-zA-Z0-9_:]*(\{.*\})? \S+)$/);
    // Under 1 MiB (the unbounded registry made 14 MiB).
    expect(Buffer.byteLength(text)).toBeLessThan(1024 * 1024);
    await mountOk();
  }, 120_000);
});

describe('/readyz', () => {
  it('100 callers at once, a tenant mounting: all ok from one check, at most one new socket connection', async () => {
    const before = sample(await scrape(), `${P}grpc_connections_total{outcome="accepted"}`);
    const base = String(h.provider.healthUrl);
    const [answers] = await Promise.all([
      Promise.all(
        Array.from({ length: 100 }, () => fetch(`${base}/readyz`).then(async (r) => [r.status, await r.text()])),
      ),
      mountOk(),
    ]);
    expect(answers.every(([code, body]) => code === 200 && body === 'ok\n')).toBe(true);
    const after = sample(await scrape(), `${P}grpc_connections_total{outcome="accepted"}`);
    expect(after - before).toBeLessThanOrEqual(1);
    // A second burst reuses the probe's connection (or the cached answer): no new one.
    await Promise.all(Array.from({ length: 100 }, () => fetch(`${base}/readyz`).then((r) => r.text())));
    expect(sample(await scrape(), `${P}grpc_connections_total{outcome="accepted"}`)).toBe(after);
  });
});

describe('the socket', () => {
  it('1,000 idle connections: cap held till the handshake timeout, the rest closed at once; mounts go on', async () => {
    await mountOk(); // the driver's own connection is open
    const sockets: net.Socket[] = [];
    let closed = 0;
    for (let i = 0; i < 1000; i++) {
      const s = net.connect(h.socketPath);
      s.on('error', () => {});
      s.on('close', () => closed++);
      sockets.push(s);
      if (i % 100 === 99) await new Promise((r) => setTimeout(r, 20));
    }
    try {
      for (let i = 0; i < 200 && closed < 1000 - DEFAULT_TRANSPORT_LIMITS.maxConnections; i++)
        await new Promise((r) => setTimeout(r, 25));
      const text = await scrape();
      expect(sample(text, `${P}grpc_connections`)).toBeLessThanOrEqual(DEFAULT_TRANSPORT_LIMITS.maxConnections);
      expect(closed).toBeGreaterThanOrEqual(1000 - DEFAULT_TRANSPORT_LIMITS.maxConnections);
      // The driver's connection was there first: it keeps serving while the socket is full.
      await mountOk();
      // Connections that never speak HTTP/2 are closed after the handshake timeout.
      const until = Date.now() + DEFAULT_TRANSPORT_LIMITS.handshakeTimeoutMs + 5_000;
      while (closed < 1000 && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
      expect(closed).toBe(1000);
      expect(sample(await scrape(), `${P}grpc_connections_total{outcome="handshake"}`)).toBeGreaterThanOrEqual(1);
      await mountOk();
    } finally {
      for (const s of sockets) s.destroy();
    }
  }, 60_000);

  it('20 half-sent 4 MiB requests hold at most the receive budget; mounts go on; all freed on disconnect', async () => {
    const budget = DEFAULT_TRANSPORT_LIMITS.receiveBudgetBytes;
    const arriving = async (): Promise<number> => sample(await scrape(), `${P}grpc_request_bytes_arriving`);
    const session = http2.connect('http://localhost', { createConnection: () => net.connect(h.socketPath) });
    session.on('error', () => {});
    try {
      for (let i = 0; i < 20; i++) {
        const stream = session.request({
          ':method': 'POST',
          ':path': '/v1alpha1.CSIDriverProvider/Mount',
          'content-type': 'application/grpc',
          te: 'trailers',
        });
        stream.on('error', () => {});
        const head = Buffer.alloc(5);
        head.writeUInt32BE(4 * 1024 * 1024 - 5, 1);
        stream.write(head);
        stream.write(Buffer.alloc(1024 * 1024, 0x61)); // a quarter of it, never the rest
      }
      // 20 MiB sent: the budget fills, and the calls over it are paused (their bytes stay in the client).
      let seen = 0;
      for (let i = 0; i < 100 && seen < budget; i++) {
        seen = await arriving();
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(seen).toBeGreaterThanOrEqual(budget);
      await mountOk();
      await new Promise((r) => setTimeout(r, 200));
      // Over the budget by at most what one paused call had received when it was paused.
      expect(await arriving()).toBeLessThanOrEqual(budget + 20 * 128 * 1024);
    } finally {
      session.destroy();
    }
    for (let i = 0; i < 100 && (await arriving()) > 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(await arriving()).toBe(0);
    await mountOk();
  }, 30_000);
});

describe('target paths', () => {
  const old = new Date('2001-02-03T04:05:06Z');

  /** A directory the tenant would like the provider to write into, with a known mtime. */
  async function victim(name: string): Promise<string> {
    const dir = path.join(path.dirname(h.kubeletRoot), `${name}-${randomUUID()}`);
    await mkdir(dir);
    await utimes(dir, old, old);
    return dir;
  }
  /** `<kubelet-root>/pods/<uid>/volumes/kubernetes.io~csi/<volume>/mount` as a link to `to`. */
  async function linkedTarget(to: string): Promise<string> {
    const volumeDir = path.join(h.kubeletRoot, 'pods', randomUUID(), 'volumes', 'kubernetes.io~csi', 'evil');
    await mkdir(volumeDir, { recursive: true });
    await symlink(to, path.join(volumeDir, 'mount'));
    return path.join(volumeDir, 'mount');
  }
  async function untouched(dir: string): Promise<void> {
    expect(await readdir(dir)).toEqual([]);
    expect((await stat(dir)).mtime.getTime()).toBe(old.getTime());
  }

  it('provider writes: outside the kubelet root or via a link: INVALID_ARGUMENT, no AWS call, untouched', async () => {
    const outside = await victim('outside');
    const linkedTo = await victim('linked-to');
    const cases: [string, RegExp][] = [
      [outside, /not under the kubelet root/],
      [await linkedTarget(linkedTo), /reached through a symbolic link/],
      [
        `${h.kubeletRoot}/pods/${randomUUID()}/volumes/kubernetes.io~csi/v/mount/../../../../../..`,
        /not a normalized path/,
      ],
    ];
    for (const [targetPath, why] of cases) {
      const calls = h.emu.callCount({ service: 'secretsmanager' });
      const r = await outcomeOf(
        h.client.mount({
          attributes: pod.attributes({ region: REGION, objects: SM('tenant-a/db-password') }),
          targetPath,
        }),
      );
      expect(r).toMatchObject({ ok: false, code: status.INVALID_ARGUMENT });
      if (r.ok) continue;
      expect(r.details).toContain(`target path ${JSON.stringify(targetPath)} refused`);
      expect(r.details).toMatch(why);
      expect(r.details).toContain('<kubelet-root>/pods/<pod-uid>/volumes/kubernetes.io~csi/<volume>/mount');
      expect(h.emu.callCount({ service: 'secretsmanager' })).toBe(calls);
    }
    await untouched(outside);
    await untouched(linkedTo);
    await mountOk();
  });

  it('driver-writes mode: the files go to the driver, but a target that breaks the rule is not touched', async () => {
    const dw = await startHarness({ flags: ['--driver-writes-secrets'] });
    try {
      dw.emu.putSecret(REGION, 'dw/s', 'v');
      const p = dw.pod();
      const outside = path.join(path.dirname(dw.kubeletRoot), 'dw-outside');
      await mkdir(outside);
      await utimes(outside, old, old);
      const res = await dw.client.mount({
        attributes: p.attributes({ region: REGION, objects: SM('dw/s') }),
        targetPath: outside,
      });
      expect(res.files.map((f) => f.path)).toEqual(['dw_s']);
      expect(await readdir(outside)).toEqual([]);
      expect((await stat(outside)).mtime.getTime()).toBe(old.getTime());
      expect(dw.logs.some((l) => l.includes('target path not touched'))).toBe(true);
      // A kubelet target is touched as before (driver v1.6 times its next call from it).
      const good = await dw.target();
      await utimes(good, old, old);
      await dw.client.mount({ attributes: p.attributes({ region: REGION, objects: SM('dw/s') }), targetPath: good });
      expect((await stat(good)).mtime.getTime()).toBeGreaterThan(old.getTime());
    } finally {
      await dw.close();
    }
  });
});

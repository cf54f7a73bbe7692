// The driver-side client against a small provider stand-in on a real unix socket, the attributes
// the driver builds, and the driver's atomic writer.
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  createDriverClient,
  driverPathProblem,
  mountAttributes,
  PROTO_PATH,
  writeFilesLikeDriver,
  type DriverClient,
} from './driver-client.js';
import { startEmulator } from './emulator.js';

let dir: string;
let server: grpc.Server;
let client: DriverClient;
let lastRequest: Record<string, unknown> | undefined;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'emu-driver-'));
  const def = protoLoader.loadSync(PROTO_PATH, {
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  const pkg = grpc.loadPackageDefinition(def) as unknown as {
    v1alpha1: { CSIDriverProvider: { service: grpc.ServiceDefinition } };
  };
  server = new grpc.Server();
  server.addService(pkg.v1alpha1.CSIDriverProvider.service, {
    Version: (_call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) =>
      cb(null, { version: 'v1alpha1', runtime_name: 'fake', runtime_version: '0.0.1' }),
    Mount: (call: grpc.ServerUnaryCall<Record<string, unknown>, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      lastRequest = call.request;
      const attrs = JSON.parse(String(call.request['attributes'])) as Record<string, string>;
      if (attrs['fail'] === 'yes') return cb({ code: grpc.status.PERMISSION_DENIED, details: 'no access to prod/db' });
      if (attrs['slow'] === 'yes') return; // never answers: the deadline or a cancel ends it
      cb(null, {
        object_version: [{ id: 'a', version: 'v1' }],
        files: [{ path: 'a', mode: 0o600, contents: Buffer.from('bytes\u0000\u00ff', 'latin1') }],
      });
    },
  });
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(`unix:${path.join(dir, 'aws.sock')}`, grpc.ServerCredentials.createInsecure(), (e) =>
      e ? reject(e) : resolve(),
    ),
  );
  client = createDriverClient(path.join(dir, 'aws.sock'));
});
afterAll(async () => {
  client.close();
  server.forceShutdown();
  await rm(dir, { recursive: true, force: true });
});

describe('createDriverClient', () => {
  test('Version', async () => {
    expect(await client.version()).toEqual({ version: 'v1alpha1', runtime_name: 'fake', runtime_version: '0.0.1' });
  });

  test('Mount sends what the driver sends and decodes files', async () => {
    const out = await client.mount({
      attributes: { objects: '[]' },
      targetPath: '/t',
      currentObjectVersion: [{ id: 'a', version: 'v0' }],
    });
    expect(lastRequest).toMatchObject({
      attributes: '{"objects":"[]"}',
      secrets: 'null',
      target_path: '/t',
      permission: '420',
      current_object_version: [{ id: 'a', version: 'v0' }],
    });
    expect(out.objectVersion).toEqual([{ id: 'a', version: 'v1' }]);
    expect(out.files).toEqual([{ path: 'a', mode: 0o600, contents: Buffer.from('bytes\u0000\u00ff', 'latin1') }]);
  });

  test('rejects with the gRPC status', async () => {
    await expect(client.mount({ attributes: { fail: 'yes' }, targetPath: '/t' })).rejects.toMatchObject({
      code: grpc.status.PERMISSION_DENIED,
      details: 'no access to prod/db',
    });
  });

  test('deadline and cancellation', async () => {
    await expect(
      client.mount({ attributes: { slow: 'yes' }, targetPath: '/t' }, { deadlineMs: 50 }),
    ).rejects.toMatchObject({ code: grpc.status.DEADLINE_EXCEEDED });
    const ac = new AbortController();
    const p = client.mount({ attributes: { slow: 'yes' }, targetPath: '/t' }, { signal: ac.signal });
    ac.abort();
    await expect(p).rejects.toMatchObject({ code: grpc.status.CANCELLED });
  });
});

describe('mountAttributes', () => {
  test('pod info, ephemeral and tokens with expirationTimestamp from the JWT', async () => {
    const emu = await startEmulator({ now: () => Date.UTC(2026, 0, 1) });
    try {
      const token = emu.issueToken({
        namespace: 'ns',
        serviceAccount: 'sa',
        audience: 'sts.amazonaws.com',
        expiresInSeconds: 600,
      });
      const a = mountAttributes({
        podName: 'p',
        namespace: 'ns',
        serviceAccount: 'sa',
        podUid: 'u-1',
        tokens: { 'sts.amazonaws.com': token },
        parameters: { objects: 'x', 'csi.storage.k8s.io/pod.name': 'spoof' },
        secretProviderClass: 'spc',
      });
      expect(a).toMatchObject({
        objects: 'x',
        secretProviderClass: 'spc',
        'csi.storage.k8s.io/pod.name': 'p',
        'csi.storage.k8s.io/pod.namespace': 'ns',
        'csi.storage.k8s.io/pod.uid': 'u-1',
        'csi.storage.k8s.io/serviceAccount.name': 'sa',
        'csi.storage.k8s.io/ephemeral': 'true',
      });
      expect(JSON.parse(a['csi.storage.k8s.io/serviceAccount.tokens'] ?? '')).toEqual({
        'sts.amazonaws.com': { token, expirationTimestamp: '2026-01-01T00:10:00Z' },
      });
      expect(
        mountAttributes({ podName: 'p', namespace: 'ns', serviceAccount: 'sa', parameters: {} })[
          'csi.storage.k8s.io/serviceAccount.tokens'
        ],
      ).toBeUndefined();
    } finally {
      await emu.close();
    }
  });
});

describe('writeFilesLikeDriver', () => {
  const file = (p: string, text: string, mode = 0o644) => ({ path: p, mode, contents: Buffer.from(text) });

  test('writes through ..data symlinks, skips unchanged content, removes vanished names', async () => {
    const target = path.join(dir, 'w1');
    await mkdir(target);
    await writeFilesLikeDriver(target, [file('a', 'A', 0o600), file('dir/b', 'B')]);
    expect(await readFile(path.join(target, 'a'), 'utf8')).toBe('A');
    expect(await readFile(path.join(target, 'dir/b'), 'utf8')).toBe('B');
    expect(await readlink(path.join(target, 'a'))).toBe('..data/a');
    expect((await stat(path.join(target, 'a'))).mode & 0o777).toBe(0o600);
    const first = await readlink(path.join(target, '..data'));

    await writeFilesLikeDriver(target, [file('a', 'A', 0o600), file('dir/b', 'B')]);
    expect(await readlink(path.join(target, '..data'))).toBe(first);

    await writeFilesLikeDriver(target, [file('a', 'A2')]);
    expect(await readFile(path.join(target, 'a'), 'utf8')).toBe('A2');
    await expect(lstat(path.join(target, 'dir'))).rejects.toThrow();
    const entries = (await readdir(target)).sort();
    // the old timestamp dir is gone
    expect(entries.filter((e) => e.startsWith('..') && e !== '..data')).toHaveLength(1);
    expect(entries).toContain('a');
  });

  test('replaces files a provider wrote itself (migration)', async () => {
    const target = path.join(dir, 'w2');
    await mkdir(target);
    await writeFile(path.join(target, 'a'), 'old');
    await writeFilesLikeDriver(target, [file('a', 'new')]);
    expect((await lstat(path.join(target, 'a'))).isSymbolicLink()).toBe(true);
    expect(await readFile(path.join(target, 'a'), 'utf8')).toBe('new');
  });

  test.each([
    ['', 'empty path'],
    ['/abs', 'absolute path'],
    ['a/../b', "path contains '..'"],
    ['..data', "path starts with '..'"],
    ['./a', 'path is not clean'],
    ['a//b', 'path is not clean'],
    ['a/', 'path is not clean'],
    ['x'.repeat(256), 'path element longer than 255'],
  ])('the driver refuses %j', async (p, problem) => {
    expect(driverPathProblem(p)).toBe(problem);
    await expect(writeFilesLikeDriver(path.join(dir, 'never'), [file(p, 'x')])).rejects.toThrow(problem);
  });

  test.each([['a/..b'], ['a.b'], ['dir/file']])('the driver accepts %j', (p) => {
    expect(driverPathProblem(p)).toBeUndefined();
  });
});

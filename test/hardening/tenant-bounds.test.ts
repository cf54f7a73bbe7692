/**
 * What one tenant's class may cost the node's provider: identical fetches are made once however many
 * objects name them, and the values one mount holds are bounded (RESOURCE_EXHAUSTED naming the limit),
 * while another tenant's mounts go on.
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REGION, startHarness, type Harness } from '../helpers/harness.js';
import { refused } from '../helpers/failure.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
  h.emu.putSecret(REGION, 'bystander/db', 'bystander-value');
});
afterAll(() => h?.close());

/** Another tenant's pod, mounting while the hostile class is served. */
async function bystanderMounts(): Promise<void> {
  const pod = h.pod();
  const target = await h.target();
  await h.client.mount({
    attributes: pod.attributes({ region: REGION, objects: '- {objectName: bystander/db, objectType: secretsmanager}' }),
    targetPath: target,
  });
  expect(await readFile(path.join(target, 'bystander_db'), 'utf8')).toBe('bystander-value');
}

describe('per-mount bounds', () => {
  it('500 objects naming one secret under distinct aliases: one GetSecretValue, every file', async () => {
    h.emu.putSecret(REGION, 'fan/out', 'same-value');
    const objects = Array.from(
      { length: 500 },
      (_, i) => `- {objectName: fan/out, objectType: secretsmanager, objectAlias: copy-${i}}`,
    ).join('\n');
    const pod = h.pod();
    const target = await h.target();
    h.emu.resetCalls();
    await h.client.mount({ attributes: pod.attributes({ region: REGION, objects }), targetPath: target });
    expect(h.emu.callCount({ service: 'secretsmanager', operation: 'GetSecretValue' })).toBe(1);
    expect(await readFile(path.join(target, 'copy-499'), 'utf8')).toBe('same-value');
  });

  it('a class whose values exceed 4 MiB: RESOURCE_EXHAUSTED naming the limit, once; nothing is written', async () => {
    const big = 'x'.repeat(64 * 1024 - 16);
    for (let i = 0; i < 80; i++) h.emu.putSecret(REGION, `huge/s${i}`, `${i}:${big}`);
    const objects = Array.from({ length: 80 }, (_, i) => `- {objectName: huge/s${i}, objectType: secretsmanager}`).join(
      '\n',
    );
    const pod = h.pod();
    const target = await h.target();
    const [e] = await Promise.all([
      refused(h.client.mount({ attributes: pod.attributes({ region: REGION, objects }), targetPath: target })),
      bystanderMounts(),
    ]);
    expect(e.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(e.details).toMatch(
      /more than the 4\.0 MiB one mount may read: split the class, or name fewer or smaller objects/,
    );
    expect(e.details.match(/4\.0 MiB one mount may read/g)).toHaveLength(1);
    expect(e.details).not.toContain(big.slice(0, 64));
    expect(await readdir(target)).toEqual([]);
    await bystanderMounts();
  });
});

describe('per-mount file bounds', () => {
  it('allKeys over 6,000 keys: RESOURCE_EXHAUSTED naming the file limit and the object, nothing written', async () => {
    h.emu.putSecret(
      REGION,
      'keys/many',
      JSON.stringify(Object.fromEntries(Array.from({ length: 6_000 }, (_, i) => [`k${i}`, 'v']))),
    );
    const pod = h.pod();
    const target = await h.target();
    const e = await refused(
      h.client.mount({
        attributes: pod.attributes({
          region: REGION,
          objects: '- {objectName: keys/many, objectType: secretsmanager, allKeys: true}',
        }),
        targetPath: target,
      }),
    );
    expect(e.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(e.details).toContain('this class makes more than 5000 files (reached at object keys/many)');
    expect(await readdir(target)).toEqual([]);
    await bystanderMounts();
  });
});

describe('per-mount bytes of files', () => {
  it('100 aliases of one 64 KiB secret: RESOURCE_EXHAUSTED at 4 MiB naming the object; nothing written', async () => {
    h.emu.putSecret(REGION, 'fan/big', 'z'.repeat(64 * 1024 - 16));
    const objects = Array.from(
      { length: 100 },
      (_, i) => `- {objectName: fan/big, objectType: secretsmanager, objectAlias: big-${i}}`,
    ).join('\n');
    const pod = h.pod();
    const target = await h.target();
    h.emu.resetCalls();
    const [e] = await Promise.all([
      refused(h.client.mount({ attributes: pod.attributes({ region: REGION, objects }), targetPath: target })),
      bystanderMounts(),
    ]);
    expect(e.code).toBe(status.RESOURCE_EXHAUSTED);
    // 64 aliases fit in 4 MiB; the 65th (big-64) passes it.
    expect(e.details).toContain(
      'the files of this class take more than 4 MiB (reached at object fan/big): name fewer objects or aliases of ' +
        'the same one',
    );
    // this mount's one fetch, and the bystander's
    expect(h.emu.callCount({ service: 'secretsmanager', operation: 'GetSecretValue' })).toBe(2);
    expect(await readdir(target)).toEqual([]);
  });
});

describe("the bounds are the operator's: --max-mount-files and --max-mount-bytes", () => {
  let small: Harness;
  beforeAll(async () => {
    small = await startHarness({ flags: ['--max-mount-files=3', '--max-mount-bytes=64Ki'] });
    for (let i = 0; i < 4; i++) small.emu.putSecret(REGION, `few/s${i}`, `v${i}`);
    small.emu.putSecret(REGION, 'few/big', 'b'.repeat(40 * 1024));
  });
  afterAll(() => small?.close());
  const list = (names: string[]): string =>
    names.map((n) => `- {objectName: ${n}, objectType: secretsmanager}`).join('\n');

  it("3 files mount; a fourth is refused naming the operator's limit and the object", async () => {
    const pod = small.pod();
    await small.client.mount({
      attributes: pod.attributes({ region: REGION, objects: list(['few/s0', 'few/s1', 'few/s2']) }),
      targetPath: await small.target(),
    });
    const target = await small.target();
    const e = await refused(
      small.client.mount({
        attributes: pod.attributes({ region: REGION, objects: list(['few/s0', 'few/s1', 'few/s2', 'few/s3']) }),
        targetPath: target,
      }),
    );
    expect(e.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(e.details).toContain('this class makes more than 3 files (reached at object few/s3)');
    expect(await readdir(target)).toEqual([]);
  });

  it('40 KiB read once but written twice passes 64 KiB of files: refused naming 64 KiB', async () => {
    const objects = [
      '- {objectName: few/big, objectType: secretsmanager, objectAlias: one}',
      '- {objectName: few/big, objectType: secretsmanager, objectAlias: two}',
    ].join('\n');
    const e = await refused(
      small.client.mount({
        attributes: small.pod().attributes({ region: REGION, objects }),
        targetPath: await small.target(),
      }),
    );
    expect(e.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(e.details).toContain('the files of this class take more than 64 KiB (reached at object few/big)');
  });
});

describe("driver-writes: the answer is checked against the driver's limit before it is built", () => {
  let dw: Harness;
  beforeAll(async () => {
    dw = await startHarness({ flags: ['--driver-writes-secrets'] });
  });
  afterAll(() => dw?.close());

  it("3.8 MiB of files: RESOURCE_EXHAUSTED that names the driver's 4 MiB limit (not a transport error)", async () => {
    const big = 'y'.repeat(62 * 1024);
    for (let i = 0; i < 62; i++) dw.emu.putSecret(REGION, `dw/s${i}`, big);
    const objects = Array.from({ length: 62 }, (_, i) => `- {objectName: dw/s${i}, objectType: secretsmanager}`).join(
      '\n',
    );
    const pod = dw.pod();
    const e = await refused(
      dw.client.mount({ attributes: pod.attributes({ region: REGION, objects }), targetPath: await dw.target() }),
    );
    expect(e.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(e.details).toMatch(
      /the files of this class take 3\.\d MiB, more than the driver accepts in one answer \(4 MiB\) in driver-writes/,
    );
  });
});

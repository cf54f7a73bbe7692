/**
 * The opt-in value cache (--cache-ttl): a warm poll inside the TTL makes no AWS call, and a value is
 * never served to another identity — a pod without access is refused even right after one with
 * access mounted the same secret.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { REGION, startHarness, type Harness } from '../helpers/harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ flags: ['--cache-ttl=60s'] });
});
afterAll(async () => h?.close());

const OBJECTS = Array.from({ length: 10 }, (_, i) => `- {objectName: vc-${i}, objectType: secretsmanager}`).join('\n');

it('warm polls inside the TTL make no AWS call; other identities never get the cached values', async () => {
  for (let i = 0; i < 10; i++) h.emu.putSecret(REGION, `vc-${i}`, `value-${i}`);
  const reader = h.pod({ allowSecrets: ['vc-*'] });
  const target = await h.target();
  const attributes = reader.attributes({ region: REGION, objects: OBJECTS });
  await h.client.mount({ attributes, targetPath: target });

  h.emu.resetCalls();
  for (let i = 0; i < 3; i++) await h.client.mount({ attributes, targetPath: target });
  expect(h.emu.callCount({ service: 'secretsmanager' })).toBe(0);
  expect(h.emu.callCount({ service: 'sts' })).toBe(0);

  // A pod whose role may not read these secrets: refused, from AWS itself.
  const outsider = h.pod({ allowSecrets: ['nothing'] });
  const err = await h.client
    .mount({ attributes: outsider.attributes({ region: REGION, objects: OBJECTS }), targetPath: await h.target() })
    .catch((e: { code: number }) => e);
  expect((err as { code: number }).code).toBe(status.PERMISSION_DENIED);

  // Another pod with access fetches for itself.
  const other = h.pod({ allowSecrets: ['vc-*'] });
  h.emu.resetCalls();
  const t2 = await h.target();
  await h.client.mount({ attributes: other.attributes({ region: REGION, objects: OBJECTS }), targetPath: t2 });
  expect(h.emu.callCount({ service: 'secretsmanager', operation: 'GetSecretValue' })).toBe(10);
  expect(await readFile(path.join(t2, 'vc-3'), 'utf8')).toBe('value-3');
});

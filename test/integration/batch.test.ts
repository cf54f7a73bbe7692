/**
 * BatchGetSecretValue where the role allows it (one call per 20 secrets on the warm path), and a
 * clean fallback where it does not (no IAM action beyond ASCP's is required: docs/behaviour.md,
 * "Fetching"). A first mount never waits for the batch: it reads one by one and probes alongside.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { REGION, startHarness, type Harness } from '../helpers/harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => h?.close());

const objects = (p: string, n: number, extra = ''): string =>
  Array.from({ length: n }, (_, i) => `- {objectName: ${p}-${i}, objectType: secretsmanager}`).join('\n') + extra;

it('role allows the batch: warm polls make one BatchGetSecretValue per 20 secrets and no GetSecretValue', async () => {
  for (let i = 0; i < 25; i++) h.emu.putSecret(REGION, `bt-${i}`, `value-${i}`);
  const pod = h.pod({ allowBatch: true });
  const target = await h.target();
  const attributes = pod.attributes({ region: REGION, objects: objects('bt', 25) });
  h.emu.resetCalls();
  await h.client.mount({ attributes, targetPath: target });
  // first mount: one by one
  expect(h.emu.callCount({ service: 'secretsmanager', operation: 'GetSecretValue' })).toBe(25);
  h.emu.resetCalls();
  h.emu.putSecret(REGION, 'bt-7', 'rotated');
  const res = await h.client.mount({ attributes, targetPath: target });
  expect(h.emu.callCount({ service: 'secretsmanager', operation: 'BatchGetSecretValue' })).toBe(2);
  expect(h.emu.callCount({ service: 'secretsmanager', operation: 'GetSecretValue' })).toBe(0);
  expect(await readFile(path.join(target, 'bt-7'), 'utf8')).toBe('rotated');
  expect(res.objectVersion).toHaveLength(25);
});

it('role may not batch: one refused probe, then one by one, and the refusal is remembered', async () => {
  for (let i = 0; i < 5; i++) h.emu.putSecret(REGION, `nb-${i}`, `v${i}`);
  const pod = h.pod();
  const target = await h.target();
  const attributes = pod.attributes({ region: REGION, objects: objects('nb', 5) });
  h.emu.resetCalls();
  await h.client.mount({ attributes, targetPath: target });
  await h.client.mount({ attributes, targetPath: target });
  await h.client.mount({ attributes, targetPath: target });
  expect(h.emu.callCount({ service: 'secretsmanager', operation: 'BatchGetSecretValue' })).toBe(1);
  expect(h.emu.callCount({ service: 'secretsmanager', operation: 'GetSecretValue' })).toBe(15);
});

it('the refusal is learned once per role, not once per pod', async () => {
  for (let i = 0; i < 3; i++) h.emu.putSecret(REGION, `rr-${i}`, `v${i}`);
  const first = h.pod({
    role: 'arn:aws:iam::123456789012:role/shared-no-batch',
    serviceAccount: 'shared',
    namespace: 'rr',
  });
  const second = h.pod({
    role: 'arn:aws:iam::123456789012:role/shared-no-batch',
    serviceAccount: 'shared',
    namespace: 'rr',
    pod: 'rr-pod-2',
  });
  h.emu.resetCalls();
  await h.client.mount({
    attributes: first.attributes({ region: REGION, objects: objects('rr', 3) }),
    targetPath: await h.target(),
  });
  await h.client.mount({
    attributes: second.attributes({ region: REGION, objects: objects('rr', 3) }),
    targetPath: await h.target(),
  });
  expect(h.emu.callCount({ service: 'secretsmanager', operation: 'BatchGetSecretValue' })).toBe(1);
});

it('a secret the batch cannot return is read alone, so its error is the exact one', async () => {
  for (let i = 0; i < 3; i++) h.emu.putSecret(REGION, `be-${i}`, `v${i}`);
  const pod = h.pod({ allowBatch: true, allowSecrets: ['be-0', 'be-1', 'be-2'] });
  const target = await h.target();
  await h.client.mount({
    attributes: pod.attributes({ region: REGION, objects: objects('be', 3) }),
    targetPath: target,
  });
  h.emu.putSecret(REGION, 'be-x', 'not yours');
  const err = await h.client
    .mount({
      attributes: pod.attributes({
        region: REGION,
        objects: objects('be', 3, '\n- {objectName: be-x, objectType: secretsmanager}'),
      }),
      targetPath: target,
    })
    .catch((e: { code: number; details: string }) => e);
  expect((err as { code: number }).code).toBe(status.PERMISSION_DENIED);
  expect((err as { details: string }).details).toContain('secretsmanager:GetSecretValue');
  expect((err as { details: string }).details).toContain('be-x');
});

it('pods of one role that mount at once share one probe', async () => {
  for (let i = 0; i < 3; i++) h.emu.putSecret(REGION, `cp-${i}`, `v${i}`);
  const role = 'arn:aws:iam::123456789012:role/shared-concurrent';
  const pods = Array.from({ length: 6 }, (_, i) =>
    h.pod({ role, serviceAccount: 'shared', namespace: 'cp', pod: `cp-pod-${i}` }),
  );
  const targets = await Promise.all(pods.map(() => h.target()));
  h.emu.resetCalls();
  await Promise.all(
    pods.map((p, i) =>
      h.client.mount({
        attributes: p.attributes({ region: REGION, objects: objects('cp', 3) }),
        targetPath: targets[i] as string,
      }),
    ),
  );
  expect(h.emu.callCount({ service: 'secretsmanager', operation: 'BatchGetSecretValue' })).toBe(1);
  expect(h.emu.callCount({ service: 'secretsmanager', operation: 'GetSecretValue' })).toBe(18);
  for (const t of targets) expect(await readFile(path.join(t, 'cp-2'), 'utf8')).toBe('v2');
});

/**
 * Admission through the real socket: with one mount working and none allowed to wait, a second
 * concurrent mount is answered UNAVAILABLE at once (the driver retries it) and says the provider is at
 * capacity, before the working mount ends and without any call made for it; the first is unharmed, and
 * the refused one mounts when tried again.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REGION, startHarness, type Harness } from '../helpers/harness.js';
import { refused } from '../helpers/failure.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ flags: ['--max-concurrent-mounts=1', '--max-queued-mounts=0'] });
  h.emu.putSecret(REGION, 'slow', 'slow-value');
  h.emu.putSecret(REGION, 'quick', 'quick-value');
});
afterAll(() => h?.close());

const SM = (name: string): string => `- objectName: ${name}\n  objectType: secretsmanager\n`;

describe('admission', () => {
  it('a full provider answers UNAVAILABLE at once, names the cause, and does no work for it', async () => {
    const first = h.pod();
    const second = h.pod();
    const fault = h.emu.addFault({ service: 'secretsmanager', target: 'slow', delayMs: 800, times: 1 });
    try {
      const firstTarget = await h.target();
      let slowDone = false;
      const slow = h.client
        .mount({ attributes: first.attributes({ region: REGION, objects: SM('slow') }), targetPath: firstTarget })
        .finally(() => {
          slowDone = true;
        });
      // Wait until the first mount is at work (its secret is being fetched).
      while (h.emu.callCount({ service: 'secretsmanager', operation: 'GetSecretValue' }) === 0)
        await new Promise((r) => setTimeout(r, 10));
      const before = h.emu.calls.length;
      const e = await refused(
        h.client.mount({
          attributes: second.attributes({ region: REGION, objects: SM('quick') }),
          targetPath: await h.target(),
        }),
      );
      expect(e.code).toBe(status.UNAVAILABLE);
      expect(e.details).toMatch(/^provider at capacity: 1 mounts working and 0 waiting/);
      expect(e.details).toContain('the driver will retry');
      expect(slowDone).toBe(false); // refused at once, not after the working mount
      expect(h.emu.calls.length).toBe(before); // no Kubernetes, STS or Secrets Manager call for it
      await slow;
      expect(await readFile(path.join(firstTarget, 'slow'), 'utf8')).toBe('slow-value');
      // The driver's retry, once there is room.
      const target = await h.target();
      await h.client.mount({
        attributes: second.attributes({ region: REGION, objects: SM('quick') }),
        targetPath: target,
      });
      expect(await readFile(path.join(target, 'quick'), 'utf8')).toBe('quick-value');
    } finally {
      h.emu.removeFault(fault);
    }
  });
});

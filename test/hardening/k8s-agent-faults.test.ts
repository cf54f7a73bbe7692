/**
 * Faults of the Kubernetes API (403, 404, 429 with Retry-After, 500, timeouts) and of the EKS Pod
 * Identity agent (5xx, refused connections, no answer, refusals), through the socket.
 * Each ends with a clear error naming what failed, and the next mount after the fault
 * clears succeeds. Attempts are counted at the emulator.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Pod } from '../helpers/harness.js';
import { REGION } from '../helpers/harness.js';
import {
  callsSince,
  listDir,
  refused,
  startFaultHarness,
  withFault as withFaultOn,
  type FaultHarness,
} from './fault-harness.js';

const SM = (name: string): string => `- {objectName: ${name}, objectType: secretsmanager}`;

let h: FaultHarness;
beforeAll(async () => {
  // Each agent attempt bounded to 250 ms, so an agent that never answers is given up on quickly.
  h = await startFaultHarness({ flags: ['--pod-identity-http-timeout=250ms'] });
});
afterAll(async () => h?.close());

function withFault<T>(fault: Parameters<FaultHarness['emu']['addFault']>[0], body: () => Promise<T>): Promise<T> {
  return withFaultOn(h.emu, fault, body);
}

describe('Kubernetes API faults (the IRSA service-account lookup)', () => {
  const saPath = (pod: Pod): string => `/namespaces/${pod.namespace}/serviceaccounts/${pod.serviceAccount}`;

  async function setup(name: string): Promise<{ pod: Pod; target: string; attributes: Record<string, string> }> {
    h.emu.putSecret(REGION, name, 'v');
    const pod = h.pod();
    return { pod, target: await h.target(), attributes: pod.attributes({ region: REGION, objects: SM(name) }) };
  }

  it.each([
    [403, 'Forbidden', status.PERMISSION_DENIED, /serviceaccounts.*namespace "NS".*verb "get"/],
    [404, 'NotFound', status.NOT_FOUND, /SA/],
  ] as const)(
    'HTTP %i %s: refused at once with a message naming the service account; the next mount succeeds',
    async (httpStatus, reason, want, pattern) => {
      const { pod, target, attributes } = await setup(`k8s-${httpStatus}`);
      const mark = h.emu.calls.length;
      const e = await withFault(
        {
          service: 'k8s',
          target: saPath(pod),
          status: httpStatus,
          code: reason,
          message: `serviceaccounts "${pod.serviceAccount}" is ${reason}`,
        },
        () => refused(h.client.mount({ attributes, targetPath: target })),
      );
      expect(e.code).toBe(want);
      expect(e.details).toMatch(
        new RegExp(pattern.source.replace('NS', pod.namespace).replace('SA', pod.serviceAccount)),
      );
      expect(callsSince(h.emu, mark, { service: 'k8s' })).toHaveLength(1);
      expect(callsSince(h.emu, mark, { service: 'sts' })).toHaveLength(0);
      await h.client.mount({ attributes, targetPath: target });
      expect(await readFile(path.join(target, `k8s-${httpStatus}`), 'utf8')).toBe('v');
    },
  );

  it('a service account that does not exist: NOT_FOUND naming it and its namespace', async () => {
    h.emu.putSecret(REGION, 'k8s-no-sa', 'v');
    const pod = h.pod();
    const target = await h.target();
    const e = await withFault(
      {
        service: 'k8s',
        target: saPath(pod),
        status: 404,
        code: 'NotFound',
        message: `serviceaccounts "${pod.serviceAccount}" not found`,
      },
      () =>
        refused(
          h.client.mount({
            attributes: pod.attributes({ region: REGION, objects: SM('k8s-no-sa') }),
            targetPath: target,
          }),
        ),
    );
    expect(e.code).toBe(status.NOT_FOUND);
    expect(e.details).toContain(pod.serviceAccount);
    expect(e.details).toContain(pod.namespace);
  });

  it('429 with Retry-After once: waited for, retried, the mount succeeds', async () => {
    const { pod, target, attributes } = await setup('k8s-429-once');
    const mark = h.emu.calls.length;
    await withFault(
      { service: 'k8s', target: saPath(pod), status: 429, code: 'TooManyRequests', retryAfterSeconds: 1, times: 1 },
      () => h.client.mount({ attributes, targetPath: target }),
    );
    const calls = callsSince(h.emu, mark, { service: 'k8s' });
    expect(calls.map((c) => c.status)).toEqual([429, 200]);
    // Retry-After: 1 was honoured (emulator clock = real clock here).
    expect((calls[1]?.at ?? 0) - (calls[0]?.at ?? 0)).toBeGreaterThanOrEqual(900);
  });

  it('429 on every attempt: bounded (4 attempts), then UNAVAILABLE naming the service account', async () => {
    const { pod, target, attributes } = await setup('k8s-429');
    const mark = h.emu.calls.length;
    const e = await withFault(
      { service: 'k8s', target: saPath(pod), status: 429, code: 'TooManyRequests', retryAfterSeconds: 0 },
      () => refused(h.client.mount({ attributes, targetPath: target })),
    );
    expect(e.code).toBe(status.UNAVAILABLE);
    expect(e.details).toContain('429');
    expect(e.details).toContain(pod.serviceAccount);
    expect(callsSince(h.emu, mark, { service: 'k8s' })).toHaveLength(4);
    await h.client.mount({ attributes, targetPath: target });
  });

  it('429 with a Retry-After longer than the provider waits: UNAVAILABLE at once (the driver retries)', async () => {
    const { pod, target, attributes } = await setup('k8s-429-long');
    const mark = h.emu.calls.length;
    const e = await withFault(
      { service: 'k8s', target: saPath(pod), status: 429, code: 'TooManyRequests', retryAfterSeconds: 120 },
      () => refused(h.client.mount({ attributes, targetPath: target })),
    );
    expect(e.code).toBe(status.UNAVAILABLE);
    expect(e.details).toContain('Retry-After 120 s');
    expect(callsSince(h.emu, mark, { service: 'k8s' })).toHaveLength(1);
    await h.client.mount({ attributes, targetPath: target });
  });

  it('500 on every attempt: 3 attempts, UNAVAILABLE naming the service account; once: retried and fine', async () => {
    const { pod, target, attributes } = await setup('k8s-500');
    let mark = h.emu.calls.length;
    const e = await withFault({ service: 'k8s', target: saPath(pod), status: 500, code: 'InternalError' }, () =>
      refused(h.client.mount({ attributes, targetPath: target })),
    );
    expect(e.code).toBe(status.UNAVAILABLE);
    expect(e.details).toContain('500');
    expect(e.details).toContain(pod.serviceAccount);
    expect(callsSince(h.emu, mark, { service: 'k8s' })).toHaveLength(3);

    mark = h.emu.calls.length;
    await withFault({ service: 'k8s', target: saPath(pod), status: 500, times: 1 }, () =>
      h.client.mount({ attributes, targetPath: target }),
    );
    expect(callsSince(h.emu, mark, { service: 'k8s' }).map((c) => c.status)).toEqual([500, 200]);
    expect(await listDir(target)).toEqual(['k8s-500']);
  });

  it("API server hangs: DEADLINE_EXCEEDED before the driver's, nothing written; the next mount succeeds", async () => {
    const { pod, target, attributes } = await setup('k8s-hang');
    const t0 = performance.now();
    const e = await withFault({ service: 'k8s', target: saPath(pod), hang: true }, () =>
      refused(h.client.mount({ attributes, targetPath: target }, { deadlineMs: 1_500 })),
    );
    expect(performance.now() - t0).toBeLessThan(1_500);
    expect(e.code).toBe(status.DEADLINE_EXCEEDED);
    expect(e.details).toContain(`service account ${pod.namespace}/${pod.serviceAccount}`);
    expect(await listDir(target)).toEqual([]);
    await h.client.mount({ attributes, targetPath: target });
    expect(await listDir(target)).toEqual(['k8s-hang']);
  });

  it("the region from the pod's node: a 500 on the pod lookup names the pod", async () => {
    h.emu.putSecret(REGION, 'k8s-region', 'v');
    const pod = h.pod();
    const target = await h.target();
    const attributes = pod.attributes({ objects: SM('k8s-region') }); // no region: pod → node → label
    const e = await withFault(
      { service: 'k8s', target: `/namespaces/${pod.namespace}/pods/${pod.pod}`, status: 500 },
      () => refused(h.client.mount({ attributes, targetPath: target })),
    );
    expect(e.code).toBe(status.UNAVAILABLE);
    expect(e.details).toContain(pod.pod);
    await h.client.mount({ attributes, targetPath: target });
    expect(await listDir(target)).toEqual(['k8s-region']);
  });
});

describe('Pod Identity agent faults', () => {
  async function setup(name: string): Promise<{ pod: Pod; target: string; attributes: Record<string, string> }> {
    h.emu.putSecret(REGION, name, 'v');
    const pod = h.pod({ noAnnotation: true });
    h.emu.addPodIdentityAssociation({
      namespace: pod.namespace,
      serviceAccount: pod.serviceAccount,
      roleArn: pod.roleArn,
    });
    const attributes = pod.attributes(
      { region: REGION, usePodIdentity: 'true', objects: SM(name) },
      { tokens: 'pod-identity' },
    );
    return { pod, target: await h.target(), attributes };
  }
  const agent = (pod: Pod): string => `${pod.namespace}/${pod.serviceAccount}`;

  it('the agent answers 500 twice (not ready): retried, the mount succeeds; no STS or Kubernetes call', async () => {
    const { pod, target, attributes } = await setup('agent-500-twice');
    const mark = h.emu.calls.length;
    await withFault({ service: 'pod-identity', target: agent(pod), status: 500, times: 2 }, () =>
      h.client.mount({ attributes, targetPath: target }),
    );
    expect(callsSince(h.emu, mark, { service: 'pod-identity' }).map((c) => c.status)).toEqual([500, 500, 200]);
    expect(callsSince(h.emu, mark, { service: 'sts' })).toHaveLength(0);
    expect(callsSince(h.emu, mark, { service: 'k8s' })).toHaveLength(0);
    expect(await readFile(path.join(target, 'agent-500-twice'), 'utf8')).toBe('v');
  });

  it('the agent answers 500 every time: bounded (6 rounds), UNAVAILABLE naming the agent and its answer', async () => {
    const { pod, target, attributes } = await setup('agent-500');
    const mark = h.emu.calls.length;
    const e = await withFault({ service: 'pod-identity', target: agent(pod), status: 500 }, () =>
      refused(h.client.mount({ attributes, targetPath: target }, { deadlineMs: 20_000 })),
    );
    expect(e.code).toBe(status.UNAVAILABLE);
    expect(e.details).toContain('Pod Identity agent');
    expect(e.details).toContain(h.agentGate.url);
    expect(e.details).toContain('InternalServerException');
    expect(callsSince(h.emu, mark, { service: 'pod-identity' })).toHaveLength(6);
    await h.client.mount({ attributes, targetPath: target });
    expect(await listDir(target)).toEqual(['agent-500']);
  });

  it('the agent drops connections, then comes up: the mount that started during the outage succeeds', async () => {
    const { target, attributes } = await setup('agent-down-then-up');
    h.agentGate.drop();
    const before = h.agentGate.accepted;
    const mounting = h.client.mount({ attributes, targetPath: target }, { deadlineMs: 20_000 });
    try {
      // Two attempts dropped (the second after a backoff), then the agent is up.
      await vi.waitFor(() => expect(h.agentGate.accepted - before).toBeGreaterThanOrEqual(2), {
        timeout: 5_000,
        interval: 20,
      });
    } finally {
      h.agentGate.forwardTo(h.emu.url);
    }
    await mounting;
    expect(await listDir(target)).toEqual(['agent-down-then-up']);
  });

  it("agent refusing connections: DEADLINE_EXCEEDED before the driver's, no files; next mount succeeds", async () => {
    const { target, attributes } = await setup('agent-refused');
    await h.agentGate.refuse();
    let e: { code: number; details: string };
    const t0 = performance.now();
    try {
      e = await refused(h.client.mount({ attributes, targetPath: target }, { deadlineMs: 1_500 }));
    } finally {
      await h.agentGate.open();
    }
    expect(performance.now() - t0).toBeLessThan(1_500);
    expect(e.code).toBe(status.DEADLINE_EXCEEDED);
    expect(await listDir(target)).toEqual([]);
    await h.client.mount({ attributes, targetPath: target });
    expect(await listDir(target)).toEqual(['agent-refused']);
  });

  // Each fault ends with a clear error naming the object and region (docs/behaviour.md, "Errors"). When the deadline
  // ends the agent's retries, the answer is mount.ts's generic "mount deadline exceeded before every
  // object was fetched": the cause (the agent refused connections) is lost.
  it('a deadline hit while the agent refuses connections says the agent was the cause', async () => {
    const { target, attributes } = await setup('agent-refused-cause');
    await h.agentGate.refuse();
    let e: { code: number; details: string };
    try {
      e = await refused(h.client.mount({ attributes, targetPath: target }, { deadlineMs: 1_500 }));
    } finally {
      await h.agentGate.open();
    }
    expect(e.details).toContain('Pod Identity agent');
  });

  it('the agent never answers: each attempt ends at --pod-identity-http-timeout; the next mount succeeds', async () => {
    const { pod, target, attributes } = await setup('agent-hang');
    const mark = h.emu.calls.length;
    const e = await withFault({ service: 'pod-identity', target: agent(pod), hang: true }, () =>
      refused(h.client.mount({ attributes, targetPath: target }, { deadlineMs: 2_000 })),
    );
    expect(e.code).toBe(status.DEADLINE_EXCEEDED);
    // 250 ms per attempt + backoff: several attempts within the 2 s, not one stuck call.
    expect(callsSince(h.emu, mark, { service: 'pod-identity' }).length).toBeGreaterThanOrEqual(3);
    expect(await listDir(target)).toEqual([]);
    await h.client.mount({ attributes, targetPath: target });
    expect(await listDir(target)).toEqual(['agent-hang']);
  });

  it.each([
    [404, 'ResourceNotFoundException', status.PERMISSION_DENIED],
    [403, 'AccessDeniedException', status.PERMISSION_DENIED],
    [401, 'ExpiredTokenException', status.UNAUTHENTICATED],
  ] as const)(
    'the agent refuses (%i %s): not retried, a message naming the agent and the association; the next mount succeeds',
    async (httpStatus, code, want) => {
      const { pod, target, attributes } = await setup(`agent-${httpStatus}`);
      const mark = h.emu.calls.length;
      const e = await withFault({ service: 'pod-identity', target: agent(pod), status: httpStatus, code }, () =>
        refused(h.client.mount({ attributes, targetPath: target })),
      );
      expect(e.code).toBe(want);
      expect(e.details).toContain('Pod Identity agent');
      expect(e.details).toContain(code);
      expect(e.details).toContain('pod identity association');
      expect(callsSince(h.emu, mark, { service: 'pod-identity' })).toHaveLength(1);
      await h.client.mount({ attributes, targetPath: target });
      expect(await listDir(target)).toEqual([`agent-${httpStatus}`]);
    },
  );

  // Errors name the object and the region (docs/behaviour.md, "Errors"). Agent failures name neither
  // (identity/pod-identity.ts messages; fetcher.ts credentialError keeps the region as a field only).
  it('an agent refusal names the object and the region', async () => {
    const { pod, target, attributes } = await setup('agent-names');
    const e = await withFault(
      { service: 'pod-identity', target: agent(pod), status: 404, code: 'ResourceNotFoundException' },
      () => refused(h.client.mount({ attributes, targetPath: target })),
    );
    expect(e.details).toContain('agent-names');
    expect(e.details).toContain(REGION);
  });
});

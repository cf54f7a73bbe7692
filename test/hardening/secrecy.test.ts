/**
 * Secrets stay secret: the hardening scenarios run again with marker secret values
 * and tokens — hostile input (generated and named), one poisoned identity among many, concurrent
 * load, rotation that fails and succeeds, AWS and agent errors that echo the caller's input (the
 * web identity token, the external id, the Pod Identity token) — and every provider log line, every
 * gRPC error message and the whole /metrics text are scanned for the markers (also base64 and hex
 * of the values). Only values and tokens carry markers; names never do.
 */
import fc from 'fast-check';
import { stringify } from 'yaml';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { leaks, outcomeOf, pool, tokenMarkers, watchProcess } from './hardening-helpers.js';
import { REGION, startHarness, type Harness, type Pod } from '../helpers/harness.js';
import { freePort } from '../helpers/ports.js';

const MARK = 'MRK7f3aSECRETVALUE';
const EXTERNAL_ID = `ext-${MARK}-id`;
const watcher = watchProcess();
let h: Harness;
let pod: Pod;
const errors: string[] = [];
const markers: string[] = [
  MARK,
  Buffer.from(MARK).toString('base64').slice(0, 20),
  Buffer.from(MARK).toString('hex'),
  EXTERNAL_ID,
];
const pods: Pod[] = [];

/** One call; its error message (if any) is kept for the scan. */
async function call(
  p: Pod,
  params: Record<string, string>,
  o: { secrets?: string; tokens?: 'both' | 'irsa' | 'pod-identity' | 'none'; attributes?: Record<string, string> } = {},
): Promise<boolean> {
  const attributes =
    o.attributes ?? p.attributes({ region: REGION, ...params }, o.tokens === undefined ? {} : { tokens: o.tokens });
  const res = await outcomeOf(
    h.client.mount(
      {
        attributes,
        targetPath: await h.target(),
        secrets: o.secrets ?? JSON.stringify({ token: p.irsaToken, note: MARK }),
      },
      { deadlineMs: 20_000 },
    ),
  );
  if (!res.ok) errors.push(res.details);
  return res.ok;
}

function newPod(spec: Parameters<Harness['pod']>[0] = {}): Pod {
  const p = h.pod(spec);
  pods.push(p);
  markers.push(...tokenMarkers(p.irsaToken), ...tokenMarkers(p.podIdentityToken));
  return p;
}

/** Each scenario scans what it produced itself, so a leak names its scenario. */
let seen = { logs: 0, errors: 0 };
beforeEach(() => {
  seen = { logs: h.logs.length, errors: errors.length };
});
afterEach(() => {
  expect(leaks({ logs: h.logs.slice(seen.logs), errors: errors.slice(seen.errors) }, markers)).toEqual([]);
});

beforeAll(async () => {
  // The agent is the emulator's: its port is chosen first so the flag can name it.
  const port = await freePort();
  h = await startHarness({
    emulator: { port },
    flags: [`--pod-identity-endpoint=http://127.0.0.1:${port}/v1/credentials`],
  });
  h.emu.putSecret(REGION, 'sx/plain', `${MARK}-plain`);
  h.emu.putSecret(
    REGION,
    'sx/json',
    JSON.stringify({ user: `${MARK}-user`, n: 12345, obj: { k: `${MARK}-nested` }, arr: [MARK], 'weird key': MARK }),
  );
  h.emu.putSecret(REGION, 'sx/bin', Buffer.from(`${MARK}-binary\u0000`));
  h.emu.putSecret(REGION, 'sx/notjson', `not json ${MARK} {`);
  h.emu.putSecret(REGION, 'sx/b64', Buffer.from(`${MARK}-b64\u0000`).toString('base64'));
  h.emu.putSecret(REGION, 'sx/hexjson', Buffer.from(JSON.stringify({ user: `${MARK}-hexuser` })).toString('hex'));
  h.emu.putSecret(REGION, 'sx/kms', `${MARK}-kms`, { kmsFails: true });
  h.emu.putParameter(REGION, 'sx-param', `${MARK}-param`, { type: 'SecureString' });
  h.emu.putParameter(REGION, 'sx-kms-param', `${MARK}-kms-param`, { type: 'SecureString', kmsFails: true });
  pod = newPod({ allowSecrets: ['sx/*'], allowParameters: ['sx-*'] });
});

afterAll(async () => {
  watcher.stop();
  await h?.close();
});

describe('scenarios with markers', () => {
  it('successful mounts: string, binary, SecureString, jmesPath, allKeys, render json, objectEncoding', async () => {
    const objects = stringify([
      { objectName: 'sx/plain', objectType: 'secretsmanager' },
      { objectName: 'sx/bin', objectType: 'secretsmanager' },
      { objectName: 'sx-param', objectType: 'ssmparameter' },
      {
        objectName: 'sx/json',
        objectType: 'secretsmanager',
        allKeys: true,
        jmesPath: [
          { path: 'obj', objectAlias: 'o', render: 'json' },
          { path: 'user', objectAlias: 'u' },
        ],
      },
      { objectName: 'sx/b64', objectType: 'secretsmanager', objectEncoding: 'base64' },
      {
        objectName: 'sx/hexjson',
        objectType: 'secretsmanager',
        ObjectEncoding: 'HEX',
        jmesPath: [{ path: 'user', objectAlias: 'hu' }],
      },
    ]);
    expect(await call(pod, { objects })).toBe(true);
  });

  it.each<[string, unknown[]]>([
    [
      'jmesPath result not a string',
      [{ objectName: 'sx/json', objectType: 'secretsmanager', jmesPath: [{ path: 'obj', objectAlias: 'o' }] }],
    ],
    [
      'jmesPath number',
      [{ objectName: 'sx/json', objectType: 'secretsmanager', jmesPath: [{ path: 'n', objectAlias: 'o' }] }],
    ],
    [
      'jmesPath array',
      [{ objectName: 'sx/json', objectType: 'secretsmanager', jmesPath: [{ path: 'arr', objectAlias: 'o' }] }],
    ],
    [
      'jmesPath missing path',
      [{ objectName: 'sx/json', objectType: 'secretsmanager', jmesPath: [{ path: 'nope', objectAlias: 'o' }] }],
    ],
    [
      'jmesPath over a value that is not JSON',
      [{ objectName: 'sx/notjson', objectType: 'secretsmanager', jmesPath: [{ path: 'a', objectAlias: 'o' }] }],
    ],
    [
      'jmesPath over binary',
      [{ objectName: 'sx/bin', objectType: 'secretsmanager', jmesPath: [{ path: 'a', objectAlias: 'o' }] }],
    ],
    [
      'jmesPath function error over the value',
      [{ objectName: 'sx/json', objectType: 'secretsmanager', jmesPath: [{ path: 'abs(user)', objectAlias: 'o' }] }],
    ],
    [
      'allKeys over a value that is not JSON',
      [{ objectName: 'sx/notjson', objectType: 'secretsmanager', allKeys: true }],
    ],
    ['allKeys over a string', [{ objectName: 'sx/plain', objectType: 'secretsmanager', allKeys: true }]],
    [
      'objectEncoding base64 over a value that is not base64',
      [{ objectName: 'sx/notjson', objectType: 'secretsmanager', objectEncoding: 'base64' }],
    ],
    ['objectEncoding hex over JSON', [{ objectName: 'sx/json', objectType: 'secretsmanager', objectEncoding: 'hex' }]],
    [
      'objectEncoding base64 over binary',
      [{ objectName: 'sx/bin', objectType: 'secretsmanager', objectEncoding: 'base64' }],
    ],
    [
      'objectEncoding base64 on a jmesPath result that is not base64',
      [
        {
          objectName: 'sx/json',
          objectType: 'secretsmanager',
          jmesPath: [{ path: 'user', objectAlias: 'o', objectEncoding: 'base64' }],
        },
      ],
    ],
    ['KMS decrypt refused (Secrets Manager)', [{ objectName: 'sx/kms', objectType: 'secretsmanager' }]],
    ['KMS decrypt refused (SSM)', [{ objectName: 'sx-kms-param', objectType: 'ssmparameter' }]],
    ['access denied', [{ objectName: 'other/secret', objectType: 'secretsmanager' }]],
    ['not found', [{ objectName: 'sx/absent', objectType: 'secretsmanager' }]],
    [
      'one good object, one missing (all or nothing)',
      [
        { objectName: 'sx/plain', objectType: 'secretsmanager' },
        { objectName: 'sx/absent', objectType: 'secretsmanager' },
      ],
    ],
  ])('failure: %s', async (_name, entries) => {
    expect(await call(pod, { objects: stringify(entries) })).toBe(false);
  });

  it('broken tokens attribute that holds the token text, a token for another pod', async () => {
    const a = pod.attributes({ region: REGION, objects: '- {objectName: sx/plain, objectType: secretsmanager}' });
    const cases: Record<string, string>[] = [
      { ...a, 'csi.storage.k8s.io/serviceAccount.tokens': `{"sts.amazonaws.com": {"token": "${pod.irsaToken}", ` },
      {
        ...a,
        'csi.storage.k8s.io/serviceAccount.tokens': JSON.stringify({
          'sts.amazonaws.com': { token: 5, note: pod.irsaToken },
        }),
      },
      { ...a, 'csi.storage.k8s.io/serviceAccount.tokens': JSON.stringify({ 'sts.amazonaws.com': pod.irsaToken }) },
      { ...a, 'csi.storage.k8s.io/serviceAccount.tokens': JSON.stringify([pod.irsaToken]) },
      {
        ...a,
        assumeRoleArn: 'arn:aws:iam::123456789012:role/x',
        assumeRoleExternalId: `${EXTERNAL_ID}!!invalid chars`,
      },
    ];
    for (const attributes of cases) await call(pod, {}, { attributes });
    // A token for another pod (the confused deputy): refused without echoing it.
    const other = newPod();
    await call(
      pod,
      {},
      {
        attributes: {
          ...a,
          'csi.storage.k8s.io/serviceAccount.tokens': JSON.stringify({
            'sts.amazonaws.com': { token: other.irsaToken, expirationTimestamp: '' },
          }),
        },
      },
    );
  });

  // FINDING: status messages are not scrubbed. A token pasted into a user-controlled attribute
  // comes back verbatim in the gRPC status (the pod's FailedMount event): `region` through the SDK's
  // "Region not accepted: region=…" (and as UNAVAILABLE, retried by the driver: a malformed region
  // should be INVALID_ARGUMENT at parse time), `objectType` through "Invalid objectType: …". The log
  // line is scrubbed by the logger; the status is not. Fix: `scrub()` the details in toStatus
  // (src/server/grpc-server.ts), as the logger does, and validate `region` in src/spc/attributes.ts.
  it.each([
    ['region', (t: string) => ({ region: t, objects: '- {objectName: sx/plain, objectType: secretsmanager}' })],
    ['objectType', (t: string) => ({ objects: `- {objectName: sx/plain, objectType: ${t}}` })],
  ])('a token pasted into %s is not echoed in the status message', async (_name, params) => {
    await call(pod, { ...params(pod.irsaToken) });
  });

  // FINDING: the Pod Identity agent's error message is passed through unscrubbed
  // (src/identity/pod-identity.ts: `msg = body['message']` → "refused the pod's token: ${e.message}"),
  // so an agent that echoes the Authorization header puts the pod's token in the status message
  // (the log line is masked by the logger). Fix: scrub() the agent's message, and replace the exact
  // token text, where the AttemptError is built. NOTE (passes, but fragile): src/aws-errors.ts:132
  // truncates AWS messages to 500 characters *before* scrub(), so a JWT cut mid-payload escapes the
  // mask (its signature is cut off, its claims are not): scrub first, then truncate.
  it('STS and Secrets Manager echoing the web identity token, the agent echoing its Authorization header', async () => {
    const fresh = newPod({ allowSecrets: ['sx/*'] });
    h.emu.addFault({
      service: 'sts',
      operation: 'AssumeRoleWithWebIdentity',
      code: 'InvalidIdentityToken',
      message: `Token ${fresh.irsaToken} rejected`,
      times: 1,
    });
    expect(await call(fresh, { objects: '- {objectName: sx/plain, objectType: secretsmanager}' })).toBe(false);
    h.emu.addFault({
      service: 'secretsmanager',
      operation: 'GetSecretValue',
      status: 400,
      code: 'UnrecognizedClientException',
      message: `The security token ${fresh.irsaToken} is invalid`,
      times: 5,
    });
    expect(await call(fresh, { objects: '- {objectName: sx/plain, objectType: secretsmanager}' })).toBe(false);
    const agent = newPod({ allowSecrets: ['sx/*'] });
    h.emu.addPodIdentityAssociation({
      namespace: agent.namespace,
      serviceAccount: agent.serviceAccount,
      roleArn: agent.roleArn,
    });
    h.emu.addFault({
      service: 'pod-identity',
      status: 400,
      code: 'InvalidTokenException',
      message: `bad Authorization: ${agent.podIdentityToken}`,
      times: 1,
    });
    expect(
      await call(
        agent,
        { objects: '- {objectName: sx/plain, objectType: secretsmanager}', usePodIdentity: 'true' },
        { tokens: 'pod-identity' },
      ),
    ).toBe(false);
    h.emu.clearFaults();
    expect(
      await call(
        agent,
        { objects: '- {objectName: sx/plain, objectType: secretsmanager}', usePodIdentity: 'true' },
        { tokens: 'pod-identity' },
      ),
    ).toBe(true);
  });

  // FINDING: the AWS message is passed through with only JWT-shaped text masked
  // (src/aws-errors.ts:132 `scrub(raw)`), so an external id echoed by STS reaches the status message
  // and the log line. Fix: give classifyAwsError the request's own secrets (external id, token) in
  // AwsErrorContext and replace them with [REDACTED] before building the message.
  it('sts:AssumeRole echoing the external id', async () => {
    const chained = newPod({ allowSecrets: [] });
    const cross = `arn:aws:iam::123456789012:role/sx-cross`;
    h.emu.addRole({
      arn: cross,
      trustedRoles: [chained.roleArn],
      externalId: EXTERNAL_ID,
      allow: { secretsmanager: ['sx/*'] },
    });
    h.emu.addFault({
      service: 'sts',
      operation: 'AssumeRole',
      status: 403,
      code: 'AccessDenied',
      message: `not authorized with ExternalId ${EXTERNAL_ID}`,
      times: 1,
    });
    expect(
      await call(chained, {
        objects: '- {objectName: sx/plain, objectType: secretsmanager}',
        assumeRoleArn: cross,
        assumeRoleExternalId: EXTERNAL_ID,
      }),
    ).toBe(false);
    // Without the fault the chain works: the marker external id is used, and not logged.
    expect(
      await call(chained, {
        objects: '- {objectName: sx/plain, objectType: secretsmanager}',
        assumeRoleArn: cross,
        assumeRoleExternalId: EXTERNAL_ID,
      }),
    ).toBe(true);
  });

  it('generated hostile classes over the marker secrets (fast-check)', async () => {
    const name = fc.constantFrom(
      'sx/plain',
      'sx/json',
      'sx/bin',
      'sx/notjson',
      'sx/b64',
      'sx/hexjson',
      'sx/kms',
      'sx-param',
      'sx-kms-param',
      'sx/absent',
    );
    const expr = fc.oneof(
      fc.constantFrom(
        'user',
        'obj',
        'obj.k',
        'arr[0]',
        '"weird key"',
        'n',
        '@',
        '*',
        'keys(@)',
        'values(@)',
        'to_string(@)',
        'join(`,`, arr)',
        'abs(user)',
        'length(user)',
        '[',
      ),
      fc.string({ maxLength: 8 }),
    );
    const entry = fc.record(
      {
        objectName: name,
        objectType: fc.constantFrom('secretsmanager', 'ssmparameter'),
        objectAlias: fc.constantFrom('a', 'b', '../x', 'a\u0000'),
        allKeys: fc.boolean(),
        jmesPath: fc.array(
          fc.record(
            {
              path: expr,
              objectAlias: fc.constantFrom('j1', 'j2'),
              render: fc.constantFrom('json', 'x'),
              objectEncoding: fc.constantFrom('base64', 'hex', 'bogus'),
            },
            { requiredKeys: ['path', 'objectAlias'] },
          ),
          { maxLength: 2 },
        ),
        objectEncoding: fc.constantFrom('base64', 'Hex', 'utf-8', 'bogus'),
      },
      { requiredKeys: ['objectName', 'objectType'] },
    );
    await fc.assert(
      fc.asyncProperty(fc.array(entry, { minLength: 1, maxLength: 3 }), async (entries) => {
        await call(pod, { objects: stringify(entries) });
      }),
      { numRuns: 300, interruptAfterTimeLimit: 20_000, markInterruptAsFailure: false },
    );
  }, 60_000);

  it('load: 120 concurrent mounts over 30 identities, one identity refused by STS', async () => {
    const ids = Array.from({ length: 30 }, () => newPod({ allowSecrets: ['sx/*'] }));
    h.emu.addFault({
      service: 'sts',
      operation: 'AssumeRoleWithWebIdentity',
      target: (ids[7] as Pod).roleArn,
      code: 'InvalidIdentityToken',
      message: `bad token ${(ids[7] as Pod).irsaToken}`,
    });
    await pool(
      Array.from({ length: 120 }, (_, i) => i),
      120,
      (i) =>
        call(ids[i % 30] as Pod, {
          objects: '- {objectName: sx/json, objectType: secretsmanager, jmesPath: [{path: user, objectAlias: u}]}',
        }),
    );
    h.emu.clearFaults();
  });

  it('rotation: a failed rotation and a successful one', async () => {
    h.emu.putSecret(REGION, 'sx/rot', `${MARK}-v1`);
    const attributes = pod.attributes({
      region: REGION,
      objects: '- {objectName: sx/rot, objectType: secretsmanager}',
    });
    const target = await h.target();
    await h.client.mount({ attributes, targetPath: target });
    h.emu.addFault({ service: 'secretsmanager', target: 'sx/rot', code: 'InternalServiceError', times: 10 });
    await outcomeOf(h.client.mount({ attributes, targetPath: target })).then((r) => !r.ok && errors.push(r.details));
    h.emu.clearFaults();
    h.emu.putSecret(REGION, 'sx/rot', `${MARK}-v2`);
    await h.client.mount({ attributes, targetPath: target });
  });
});

it('over the whole run: no marker in the metrics text; no unhandled rejection', async () => {
  const metrics = await fetch(String(h.provider.metricsUrl)).then((r) => r.text());
  expect(errors.length).toBeGreaterThan(20);
  expect(h.logs.length).toBeGreaterThan(50);
  expect(leaks({ metrics: [metrics] }, markers)).toEqual([]);
  expect(watcher.seen).toEqual([]);
});

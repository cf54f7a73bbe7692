// Fault injection through the real SDK: throttling (HTTP 400), 500s, Retry-After, delays, hangs
// that end when the emulator closes, and one-shot faults.
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { GetParametersCommand, SSMClient } from '@aws-sdk/client-ssm';
import { startEmulator, type Emulator } from './emulator.js';

const ROLE = 'arn:aws:iam::123456789012:role/reader';
let emu: Emulator;
let sm: SecretsManagerClient;
let ssm: SSMClient;

async function rejection(p: Promise<unknown>): Promise<{ name: string; status: number | undefined; message: string }> {
  try {
    await p;
  } catch (e) {
    const err = e as { name: string; message: string; $metadata?: { httpStatusCode?: number } };
    return { name: err.name, status: err.$metadata?.httpStatusCode, message: err.message };
  }
  throw new Error('expected a rejection');
}

beforeAll(async () => {
  emu = await startEmulator();
  emu.addRole({ arn: ROLE, allow: { secretsmanager: ['*'], ssm: ['*'] } });
  emu.putSecret('us-east-1', 'a', 'A');
  emu.putSecret('us-east-1', 'b', 'B');
  emu.putSecret('us-west-2', 'a', 'west');
  emu.putParameter('us-east-1', '/p', 'P');
  const credentials = emu.issueCredentials(ROLE);
  sm = new SecretsManagerClient({ region: 'us-east-1', endpoint: emu.url, credentials, maxAttempts: 1 });
  ssm = new SSMClient({ region: 'us-east-1', endpoint: emu.url, credentials, maxAttempts: 1 });
});
afterAll(async () => {
  await emu.close();
});
beforeEach(() => {
  emu.clearFaults();
  emu.resetCalls();
});

describe('error faults', () => {
  test.each([
    ['throttling', { code: 'ThrottlingException' }, 'ThrottlingException', 400],
    ['a bare 500', { status: 500 }, 'InternalServiceError', 500],
    ['a 503', { status: 503 }, 'ServiceUnavailable', 503],
    [
      'a named 400',
      { code: 'InvalidRequestException', message: 'marked for deletion' },
      'InvalidRequestException',
      400,
    ],
  ])('Secrets Manager %s', async (_, fault, name, status) => {
    emu.addFault({ service: 'secretsmanager', ...fault });
    const err = await rejection(sm.send(new GetSecretValueCommand({ SecretId: 'a' })));
    expect(err).toMatchObject({ name, status });
    expect(emu.calls[0]).toMatchObject({ service: 'secretsmanager', status, errorCode: name });
  });

  test('targets one secret and one region only', async () => {
    emu.addFault({ service: 'secretsmanager', target: 'a', region: 'us-east-1', code: 'ThrottlingException' });
    expect((await rejection(sm.send(new GetSecretValueCommand({ SecretId: 'a' })))).name).toBe('ThrottlingException');
    expect((await sm.send(new GetSecretValueCommand({ SecretId: 'b' }))).SecretString).toBe('B');
    const west = new SecretsManagerClient({
      region: 'us-west-2',
      endpoint: emu.url,
      credentials: emu.issueCredentials(ROLE),
      maxAttempts: 1,
    });
    expect((await west.send(new GetSecretValueCommand({ SecretId: 'a' }))).SecretString).toBe('west');
  });

  test('times: a one-shot throttle is absorbed by the SDK retry', async () => {
    emu.addFault({ service: 'ssm', operation: 'GetParameters', code: 'ThrottlingException', times: 1 });
    const retrying = new SSMClient({
      region: 'us-east-1',
      endpoint: emu.url,
      credentials: emu.issueCredentials(ROLE),
      maxAttempts: 2,
    });
    const out = await retrying.send(new GetParametersCommand({ Names: ['/p'] }));
    expect(out.Parameters?.[0]?.Value).toBe('P');
    expect(emu.calls.map((c) => c.status)).toEqual([400, 200]);
  });

  test('removeFault stops it; Retry-After is sent', async () => {
    const id = emu.addFault({ service: 'ssm', status: 429, code: 'ThrottlingException', retryAfterSeconds: 7 });
    const res = await fetch(emu.url, {
      method: 'POST',
      headers: { 'x-amz-target': 'AmazonSSM.GetParameters', 'content-type': 'application/x-amz-json-1.1' },
      body: '{"Names":["/p"]}',
    });
    expect([res.status, res.headers.get('retry-after'), res.headers.get('x-amzn-errortype')]).toEqual([
      429,
      '7',
      'ThrottlingException',
    ]);
    expect(res.headers.get('x-amzn-requestid')).toMatch(/^[0-9a-f-]{36}$/);
    emu.removeFault(id);
    expect((await ssm.send(new GetParametersCommand({ Names: ['/p'] }))).Parameters).toHaveLength(1);
  });

  test('k8s and agent faults answer in their own shapes', async () => {
    emu.addFault({ service: 'k8s', target: '/nodes/', status: 500 });
    const k = await fetch(`${emu.url}/api/v1/nodes/n1`, { headers: { authorization: `Bearer ${emu.apiToken}` } });
    expect([k.status, ((await k.json()) as { kind: string }).kind]).toEqual([500, 'Status']);
    emu.addFault({ service: 'pod-identity', status: 500 });
    const a = await fetch(emu.podIdentityUrl, { headers: { authorization: 'x' } });
    expect([a.status, ((await a.json()) as { code: string }).code]).toEqual([500, 'InternalServerException']);
  });
});

describe('timing faults', () => {
  test('delayMs delays, then answers normally', async () => {
    emu.addFault({ service: 'secretsmanager', delayMs: 60, times: 1 });
    const t0 = performance.now();
    expect((await sm.send(new GetSecretValueCommand({ SecretId: 'a' }))).SecretString).toBe('A');
    expect(performance.now() - t0).toBeGreaterThanOrEqual(55);
  });

  test('setLatency adds to every answer', async () => {
    emu.setLatency(40);
    try {
      const t0 = performance.now();
      await sm.send(new GetSecretValueCommand({ SecretId: 'a' }));
      expect(performance.now() - t0).toBeGreaterThanOrEqual(35);
    } finally {
      emu.setLatency(0);
    }
  });

  test('a hang is ended by close(), leaving no open request', async () => {
    const own = await startEmulator();
    own.addRole({ arn: ROLE, allow: { secretsmanager: ['*'] } });
    own.putSecret('us-east-1', 'a', 'A');
    own.addFault({ service: 'secretsmanager', hang: true });
    const client = new SecretsManagerClient({
      region: 'us-east-1',
      endpoint: own.url,
      credentials: own.issueCredentials(ROLE),
      maxAttempts: 1,
    });
    const pending = client.send(new GetSecretValueCommand({ SecretId: 'a' }));
    await expect.poll(() => own.callCount({ service: 'secretsmanager' })).toBe(1);
    expect(own.calls[0]).toMatchObject({ status: 0, errorCode: 'Hang' });
    await own.close();
    await expect(pending).rejects.toThrow();
    client.destroy();
  });
});

describe('broken-upstream faults', () => {
  const post = (target: string, body: string): Promise<Response> =>
    fetch(emu.url, {
      method: 'POST',
      headers: { 'x-amz-target': target, 'content-type': 'application/x-amz-json-1.1' },
      body,
    });

  test('rawBody: exactly that text, in the service content type, any status', async () => {
    emu.addFault({ service: 'secretsmanager', rawBody: 'not json at all', times: 1 });
    const ok = await post('secretsmanager.GetSecretValue', '{"SecretId":"a"}');
    expect([ok.status, ok.headers.get('content-type'), await ok.text()]).toEqual([
      200,
      'application/x-amz-json-1.1',
      'not json at all',
    ]);
    emu.addFault({ service: 'secretsmanager', rawBody: '<html>bad gateway</html>', status: 502, times: 1 });
    const bad = await post('secretsmanager.GetSecretValue', '{"SecretId":"a"}');
    expect([bad.status, bad.headers.get('x-amzn-errortype'), await bad.text()]).toEqual([
      502,
      null,
      '<html>bad gateway</html>',
    ]);
    expect(emu.calls.map((c) => c.errorCode)).toEqual(['RawBody', 'RawBody']);
    expect(() => emu.addFault({ service: 'ssm', rawBody: 'x', code: 'ThrottlingException' })).toThrow(RangeError);
  });

  test('bodyBytes: that many bytes, valid JSON padding by default, with or without Content-Length', async () => {
    emu.addFault({ service: 'ssm', bodyBytes: 300_000, times: 1 });
    const sized = await post('AmazonSSM.GetParameters', '{"Names":["/p"]}');
    const text = await sized.text();
    expect([sized.headers.get('content-length'), text.length]).toEqual(['300000', 300_000]);
    expect(Object.keys(JSON.parse(text) as object)).toEqual(['Padding']);
    emu.addFault({ service: 'ssm', bodyBytes: 200_000, chunked: true, rawBody: 'hunter2-', times: 1 });
    const chunked = await post('AmazonSSM.GetParameters', '{"Names":["/p"]}');
    const raw = await chunked.text();
    expect([
      chunked.headers.get('content-length'),
      chunked.headers.get('transfer-encoding'),
      raw.length,
      raw.slice(0, 9),
    ]).toEqual([null, 'chunked', 200_000, 'hunter2-A']);
  });

  test('bodyBytes: a client that goes away stops the stream (the emulator never holds the body)', async () => {
    emu.addFault({ service: 'secretsmanager', bodyBytes: 1024 * 1024 * 1024, chunked: true, times: 1 });
    const ac = new AbortController();
    const res = await fetch(emu.url, {
      method: 'POST',
      headers: { 'x-amz-target': 'secretsmanager.GetSecretValue', 'content-type': 'application/x-amz-json-1.1' },
      body: '{"SecretId":"a"}',
      signal: ac.signal,
    });
    const reader = res.body!.getReader();
    let got = 0;
    while (got < 1024 * 1024) got += ((await reader.read()).value as Uint8Array | undefined)?.length ?? 0;
    ac.abort();
    await reader.closed.catch(() => undefined);
    // The next call is answered normally.
    expect((await sm.send(new GetSecretValueCommand({ SecretId: 'a' }))).SecretString).toBe('A');
  });

  test('trickleMs: the real answer, one byte at a time', async () => {
    emu.addFault({ service: 'secretsmanager', trickleMs: 1, times: 1 });
    const t0 = performance.now();
    const out = await sm.send(new GetSecretValueCommand({ SecretId: 'a' }));
    expect(out.SecretString).toBe('A');
    // ~200 bytes at ≥1 ms each
    expect(performance.now() - t0).toBeGreaterThanOrEqual(150);
  });

  test('answerFields and entryFields: wrong-typed fields in a real answer', async () => {
    emu.addFault({ service: 'secretsmanager', answerFields: { VersionId: 5 }, times: 1 });
    expect((await sm.send(new GetSecretValueCommand({ SecretId: 'a' }))).VersionId).toBe(5);
    emu.addFault({ service: 'ssm', entryFields: { Version: { a: 1 } }, times: 1 });
    const out = await ssm.send(new GetParametersCommand({ Names: ['/p'] }));
    expect(out.Parameters?.[0]).toMatchObject({ Name: '/p', Value: 'P', Version: { a: 1 } });
    emu.addFault({ service: 'pod-identity', answerFields: { Token: 7 }, times: 1 });
    // Only a successful answer is reshaped: this token is refused, so the error comes back as is.
    const a = await fetch(emu.podIdentityUrl, { headers: { authorization: 'x' } });
    expect(((await a.json()) as { code: string }).code).toBe('InvalidTokenException');
  });
});

/**
 * The bounds of every AWS attempt, through the factory's real SDK clients against the emulator
 * (short limits here; 10 s and 4 MiB in the provider): a body that trickles in ends at the
 * whole-attempt limit and the SDK retries it; a silent socket ends sooner at the idle limit; an
 * answer over the size limit closes the socket as it arrives, or at once by its Content-Length;
 * the caller's own abort still wins; answers within the bounds pass untouched. Then what
 * classifyAwsError makes of each: messages that name service, operation, object and region, and
 * never text of the body.
 */
import { BatchGetSecretValueCommand, GetSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { AnswerTooLarge, AttemptTimedOut, classifyAwsError } from '../aws-errors.js';
import type { Emulator } from '../../tools/emulator/index.js';
import { credentialsOf, startSdkEmulator, type SdkEmulator } from '../../test/helpers/sdk-emulator.js';
import {
  AwsClientFactory,
  MAX_ANSWER_BYTES,
  MAX_ANSWER_BYTES_IN_FLIGHT,
  MAX_BATCH_ANSWER_BYTES,
  type AwsCredentials,
} from './clients.js';

const ROLE = 'arn:aws:iam::123456789012:role/bounded';
const REGION = 'us-east-1';
const MARK = 'hunter2-BOUNDED-MARK';

let sdk: SdkEmulator;
let emu: Emulator;
let creds: AwsCredentials;
const factories: AwsClientFactory[] = [];

beforeAll(async () => {
  sdk = await startSdkEmulator();
  emu = sdk.emu;
  emu.addRole({ arn: ROLE, allow: { secretsmanager: ['*'] } });
  emu.putSecret(REGION, 'small', 'value');
  creds = credentialsOf(emu, ROLE);
});

afterEach(() => {
  emu.clearFaults();
  emu.resetCalls();
});

afterAll(async () => {
  for (const f of factories) f.close();
  await sdk?.close();
});

function factory(
  o: {
    requestTimeoutMs?: number;
    idleTimeoutMs?: number;
    maxAnswerBytes?: number;
    maxBatchAnswerBytes?: number;
    maxAnswerBytesInFlight?: number;
    maxAttempts?: number;
  } = {},
): AwsClientFactory {
  const f = new AwsClientFactory({ appId: 'test', maxAttempts: 1, ...o });
  factories.push(f);
  return f;
}

async function getSecret(f: AwsClientFactory, signal?: AbortSignal): Promise<unknown> {
  const sm = await f.secretsManager(REGION, creds);
  return sm.send(new GetSecretValueCommand({ SecretId: 'small' }), signal ? { abortSignal: signal } : {}).then(
    (out) => out,
    (err: unknown) => err,
  );
}

const ctx = {
  what: 'Failed fetching secret small',
  region: REGION,
  object: 'small',
  service: 'Secrets Manager',
  operation: 'GetSecretValue',
};

describe('whole-attempt time limit', () => {
  test('a body trickling a byte per 50 ms (never idle) ends at the limit; the SDK retries as a timeout', async () => {
    emu.addFault({ service: 'secretsmanager', trickleMs: 50 });
    const f = factory({ requestTimeoutMs: 600, maxAttempts: 2 });
    const t0 = performance.now();
    const err = await getSecret(f);
    const ms = performance.now() - t0;
    expect(err).toBeInstanceOf(AttemptTimedOut);
    expect(err).toMatchObject({ name: 'TimeoutError', phase: 'body', ms: 600 });
    expect(emu.callCount({ service: 'secretsmanager' })).toBe(2);
    expect(ms).toBeGreaterThanOrEqual(1_150);
    expect(ms).toBeLessThan(3_000);
    const e = classifyAwsError(err, ctx);
    expect([e.code, e.reason, e.fatal]).toEqual(['UNAVAILABLE', 'Timeout', false]);
    expect(e.message).toBe(
      'us-east-1: Failed fetching secret small: Secrets Manager GetSecretValue did not answer completely within 0.6 ' +
        "s (the answer was still arriving when the attempt's time was up)",
    );
  });

  test('a silent socket ends sooner, at the idle limit', async () => {
    emu.addFault({ service: 'secretsmanager', hang: true });
    const f = factory({ requestTimeoutMs: 3_000, idleTimeoutMs: 300 });
    const t0 = performance.now();
    const err = (await getSecret(f)) as Error;
    expect(err.name).toBe('TimeoutError');
    expect(err).not.toBeInstanceOf(AttemptTimedOut);
    expect(performance.now() - t0).toBeLessThan(2_000);
    expect(classifyAwsError(err, ctx).code).toBe('UNAVAILABLE');
  });

  test('no answer at all within the limit (headers never come)', async () => {
    emu.addFault({ service: 'secretsmanager', hang: true });
    const f = factory({ requestTimeoutMs: 400, idleTimeoutMs: 10_000 });
    const err = await getSecret(f);
    expect(err).toMatchObject({ name: 'TimeoutError', phase: 'headers' });
    expect(classifyAwsError(err, ctx).message).toContain('did not answer completely within 0.4 s (no answer when');
  });

  test.each([
    ['before the headers', { hang: true }, 'AbortError'],
    ['while the body arrives', { trickleMs: 50 }, 'AbortError'],
  ])(
    "the caller's abort %s still ends the call: not retried, not a timeout, not a malformed answer",
    async (_name, fault, name) => {
      emu.addFault({ service: 'secretsmanager', ...fault });
      const f = factory({ requestTimeoutMs: 5_000, idleTimeoutMs: 5_000, maxAttempts: 3 });
      const t0 = performance.now();
      const err = (await getSecret(f, AbortSignal.timeout(300))) as Error;
      expect(performance.now() - t0).toBeLessThan(1_500);
      expect(err.name).toBe(name);
      expect(err).not.toBeInstanceOf(AttemptTimedOut);
      expect(emu.callCount({ service: 'secretsmanager' })).toBe(1);
      expect(classifyAwsError(err, ctx).reason).not.toBe('MalformedAnswer');
    },
  );

  test('a slow but complete answer inside the limit passes', async () => {
    emu.addFault({ service: 'secretsmanager', trickleMs: 1, times: 1 });
    const out = (await getSecret(factory({ requestTimeoutMs: 5_000 }))) as { SecretString?: string };
    expect(out.SecretString).toBe('value');
  });
});

describe('answer size limit', () => {
  test('the defaults: 1 MiB, 4 MiB for BatchGetSecretValue', () => {
    expect(MAX_ANSWER_BYTES).toBe(1024 * 1024);
    expect(MAX_BATCH_ANSWER_BYTES).toBe(4 * 1024 * 1024);
  });

  test('BatchGetSecretValue has a larger limit: 2 MiB passes as a batch, is refused as GetSecretValue', async () => {
    const f = factory();
    const sm = await f.secretsManager(REGION, creds);
    emu.addFault({ service: 'secretsmanager', bodyBytes: 2 * 1024 * 1024, chunked: true });
    const batch = await sm.send(new BatchGetSecretValueCommand({ SecretIdList: ['small', 'other'] }));
    expect(batch.SecretValues).toBeUndefined();
    expect(await getSecret(f)).toMatchObject({ name: 'AnswerTooLarge', limit: 1024 * 1024 });
  });

  test('a chunked answer of 1 GiB is cut at the limit as it arrives: no retry, nothing more read', async () => {
    emu.addFault({
      service: 'secretsmanager',
      bodyBytes: 1024 * 1024 * 1024,
      chunked: true,
      rawBody: `{"SecretString":"${MARK}`,
    });
    const f = factory({ maxAnswerBytes: 256 * 1024, maxAttempts: 3 });
    const t0 = performance.now();
    const err = await getSecret(f);
    expect(err).toBeInstanceOf(AnswerTooLarge);
    expect(err).toMatchObject({ limit: 256 * 1024, status: 200 });
    expect(performance.now() - t0).toBeLessThan(2_000);
    expect(emu.callCount({ service: 'secretsmanager' })).toBe(1);
    const e = classifyAwsError(err, ctx);
    expect([e.code, e.reason, e.fatal]).toEqual(['INTERNAL', 'AnswerTooLarge', false]);
    expect(e.message).toBe(
      'us-east-1: Failed fetching secret small: Secrets Manager GetSecretValue answered more than 256 KiB, ' +
        'more than any AWS answer (an endpoint or proxy in between?); the rest was not read',
    );
    expect(e.cause).toBeUndefined();
  });

  test('an answer whose Content-Length is over the limit is refused at the headers', async () => {
    emu.addFault({ service: 'secretsmanager', bodyBytes: 5 * 1024 * 1024, status: 503 });
    const err = await getSecret(factory({ maxAttempts: 3 }));
    expect(err).toMatchObject({ name: 'AnswerTooLarge', status: 503 });
    expect(emu.callCount({ service: 'secretsmanager' })).toBe(1);
    expect(classifyAwsError(err, ctx).message).toContain('answered more than 1 MiB');
  });

  test('an answer just under the limit passes', async () => {
    emu.addFault({ service: 'secretsmanager', answerFields: { Padding: 'x'.repeat(900) }, times: 1 });
    const out = (await getSecret(factory({ maxAnswerBytes: 1_200 }))) as { SecretString?: string };
    expect(out.SecretString).toBe('value');
  });

  test('the client keeps working after a refused answer (the socket was closed, not reused half-read)', async () => {
    const f = factory({ maxAnswerBytes: 64 * 1024 });
    emu.addFault({ service: 'secretsmanager', bodyBytes: 10 * 1024 * 1024, chunked: true, times: 1 });
    expect(await getSecret(f)).toBeInstanceOf(AnswerTooLarge);
    expect(((await getSecret(f)) as { SecretString?: string }).SecretString).toBe('value');
  });
});

describe('provider-wide limit on answers being read at once', () => {
  test('the default is 16 MiB', () => {
    expect(MAX_ANSWER_BYTES_IN_FLIGHT).toBe(16 * 1024 * 1024);
  });

  test('two stalled answers together over the limit: one cut (UNAVAILABLE), one times out; bytes freed', async () => {
    emu.addFault({
      service: 'secretsmanager',
      bodyBytes: 2 * 1024 * 1024,
      chunked: true,
      trickleMs: 1_000,
      burstBytes: 400 * 1024,
      rawBody: `{"SecretString":"${MARK}`,
    });
    const f = factory({ maxAnswerBytes: 1024 * 1024, maxAnswerBytesInFlight: 600 * 1024, requestTimeoutMs: 1_500 });
    const results = await Promise.all([getSecret(f), getSecret(f)]);
    const cut = results.filter((r) => r instanceof AnswerTooLarge);
    expect(cut).toHaveLength(1);
    expect(cut[0]).toMatchObject({ scope: 'provider', limit: 600 * 1024 });
    expect(results.filter((r) => r instanceof AttemptTimedOut)).toHaveLength(1);
    const e = classifyAwsError(cut[0], ctx);
    expect([e.code, e.reason, e.fatal]).toEqual(['UNAVAILABLE', 'AnswersTooLarge', false]);
    expect(e.message).toBe(
      "us-east-1: Failed fetching secret small: Secrets Manager GetSecretValue's answer was not read further: the " +
        'AWS answers this provider was reading at once held more than 600 KiB, far more than AWS sends (an ' +
        'endpoint or proxy in between?)',
    );
    expect(f.answerBytesInFlight).toBe(0);
    emu.clearFaults();
    expect(((await getSecret(f)) as { SecretString?: string }).SecretString).toBe('value');
    expect(f.answerBytesInFlight).toBe(0);
  });

  test("a flood under the per-answer limit but over the provider's is cut too", async () => {
    emu.addFault({ service: 'secretsmanager', bodyBytes: 1024 * 1024 * 1024, chunked: true });
    const f = factory({ maxAnswerBytes: 64 * 1024 * 1024, maxAnswerBytesInFlight: 512 * 1024 });
    expect(await getSecret(f)).toMatchObject({ name: 'AnswerTooLarge', scope: 'provider' });
    expect(f.answerBytesInFlight).toBe(0);
  });
});

describe('answers the SDK cannot read', () => {
  test.each([
    [
      'not JSON',
      200,
      `${MARK} is the password`,
      'INTERNAL',
      'MalformedAnswer',
      'Unexpected token \'h\', "hunter2-BO"... is not valid JSON',
    ],
    ['JSON cut short', 200, `{"SecretString":"${MARK}`, 'INTERNAL', 'MalformedAnswer', 'Unterminated string in JSON'],
    [
      'a proxy page with a 5xx',
      502,
      `<html>${MARK}</html>`,
      'UNAVAILABLE',
      'ServerError',
      '"<html>hunt"... is not valid JSON',
    ],
  ])(
    '%s: the SDK error may quote the body; the classified one never does, and keeps no cause that holds it',
    async (_name, httpStatus, rawBody, code, reason, sdkSays) => {
      emu.addFault({ service: 'secretsmanager', status: httpStatus, rawBody });
      const err = (await getSecret(factory())) as Error;
      // What the SDK says (this is why it is never shown).
      expect(err.message).toContain(sdkSays);
      const e = classifyAwsError(err, ctx);
      expect([e.code, e.reason, e.awsName, e.fatal]).toEqual([code, reason, 'MalformedAnswer', false]);
      expect(e.message).toBe(
        `us-east-1: Failed fetching secret small: Secrets Manager GetSecretValue answered ` +
          `(HTTP ${httpStatus}) something that is not a readable AWS answer (an endpoint or proxy in between?); its ` +
          `text is not shown`,
      );
      expect(e.cause).toBeUndefined();
    },
  );

  test("an error AWS sent in its own shape still carries AWS's words", async () => {
    emu.addFault({ service: 'secretsmanager', code: 'InvalidRequestException', message: 'marked for deletion' });
    const e = classifyAwsError(await getSecret(factory()), ctx);
    expect(e.message).toContain('InvalidRequestException: marked for deletion');
  });
});

/**
 * One SDK client per service and region serves every identity: each call is signed with its own
 * credentials, concurrent calls of different identities never trade them, the number of clients
 * does not grow with identities, and a request signed with another call's key is never sent.
 */
import { GetCallerIdentityCommand } from '@aws-sdk/client-sts';
import { GetSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import { GetParametersCommand } from '@aws-sdk/client-ssm';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { Emulator } from '../../tools/emulator/index.js';
import { credentialsOf, startSdkEmulator, type SdkEmulator } from '../../test/helpers/sdk-emulator.js';
import { AwsClientFactory, type AwsCredentials } from './clients.js';

const ACCOUNT = '123456789012';
const roleOf = (i: number): string => `arn:aws:iam::${ACCOUNT}:role/tenant-${i}`;
const TENANTS = 12;

let sdk: SdkEmulator;
let emu: Emulator;
let clients: AwsClientFactory;
const creds: AwsCredentials[] = [];

beforeAll(async () => {
  sdk = await startSdkEmulator();
  emu = sdk.emu;
  for (let i = 0; i < TENANTS; i++) {
    // Each tenant may read only its own secret and parameter.
    emu.addRole({ arn: roleOf(i), allow: { secretsmanager: [`tenant-${i}/*`], ssm: [`/tenant-${i}/*`] } });
    emu.putSecret('us-east-1', `tenant-${i}/db`, `value-of-${i}`);
    emu.putParameter('us-east-1', `/tenant-${i}/p`, `param-of-${i}`);
    creds.push(credentialsOf(emu, roleOf(i)));
  }
  clients = new AwsClientFactory({ appId: 'test', maxAttempts: 1 });
});

afterAll(async () => {
  clients?.close();
  await sdk?.close();
});

const signal = (): AbortSignal => new AbortController().signal;

describe('one client per service and region, credentials per call', () => {
  test('concurrent calls of many identities each read only what their own role allows', async () => {
    const rounds = 5;
    const calls: Promise<void>[] = [];
    for (let r = 0; r < rounds; r++) {
      for (let i = 0; i < TENANTS; i++) {
        const own = creds[i] as AwsCredentials;
        calls.push(
          (async () => {
            const sm = await clients.secretsManager('us-east-1', own);
            const out = await sm.send(new GetSecretValueCommand({ SecretId: `tenant-${i}/db` }), {
              abortSignal: signal(),
            });
            expect(out.SecretString).toBe(`value-of-${i}`);
            // The neighbour's secret is refused: these are this tenant's credentials, not a cached other's.
            const other = (i + 1) % TENANTS;
            await expect(sm.send(new GetSecretValueCommand({ SecretId: `tenant-${other}/db` }))).rejects.toMatchObject({
              name: 'AccessDeniedException',
            });
            const ssm = await clients.ssm('us-east-1', own);
            const p = await ssm.send(new GetParametersCommand({ Names: [`/tenant-${i}/p`], WithDecryption: true }));
            expect(p.Parameters?.[0]?.Value).toBe(`param-of-${i}`);
            const sts = await clients.sts('us-east-1', own);
            const who = await sts.send(new GetCallerIdentityCommand({}));
            expect(who.Arn).toContain(`tenant-${i}`);
          })(),
        );
      }
    }
    await Promise.all(calls);
    // Secrets Manager, SSM and STS in one region: three clients, whatever the number of identities.
    expect(clients.size).toBe(3);
  });

  test("a call without credentials is not signed with anyone else's", async () => {
    const sm = await clients.secretsManager('us-east-1', creds[0] as AwsCredentials);
    await sm.send(new GetSecretValueCommand({ SecretId: 'tenant-0/db' }));
    // The unsigned STS sender (web identity) has no credentials: a signed operation through it fails
    // before anything is sent rather than borrowing the last caller's.
    const unsigned = await clients.sts('us-east-1');
    const before = emu.callCount({ service: 'sts' });
    await expect(unsigned.send(new GetCallerIdentityCommand({}))).rejects.toThrow(/no credentials for this AWS call/);
    expect(emu.callCount({ service: 'sts' })).toBe(before);
  });

  test('middleware resolved once per command, not per call; the abort signal still reaches the request', async () => {
    const proto = GetSecretValueCommand.prototype as unknown as { resolveMiddleware: (...a: unknown[]) => unknown };
    const original = proto.resolveMiddleware;
    let resolved = 0;
    proto.resolveMiddleware = function (this: unknown, ...a: unknown[]) {
      resolved++;
      return original.apply(this, a);
    };
    const own = new AwsClientFactory({ appId: 'test', maxAttempts: 1 });
    try {
      for (let i = 0; i < 4; i++) {
        const sm = await own.secretsManager('us-east-1', creds[i] as AwsCredentials);
        expect(
          (await sm.send(new GetSecretValueCommand({ SecretId: `tenant-${i}/db` }), { abortSignal: signal() }))
            .SecretString,
        ).toBe(`value-of-${i}`);
      }
      expect(resolved).toBe(1);
      emu.addFault({ service: 'secretsmanager', hang: true, times: 1 });
      const sm = await own.secretsManager('us-east-1', creds[0] as AwsCredentials);
      const t0 = performance.now();
      await expect(
        sm.send(new GetSecretValueCommand({ SecretId: 'tenant-0/db' }), { abortSignal: AbortSignal.timeout(200) }),
      ).rejects.toMatchObject({ name: 'AbortError' });
      expect(performance.now() - t0).toBeLessThan(5_000);
    } finally {
      proto.resolveMiddleware = original;
      own.close();
    }
  });

  test('clients live per region, bounded', async () => {
    const small = new AwsClientFactory({ appId: 'test', maxAttempts: 1, maxClients: 2 });
    try {
      for (const r of ['us-east-1', 'eu-west-1', 'ap-south-1'])
        await small.secretsManager(r, creds[0] as AwsCredentials);
      expect(small.size).toBe(2);
    } finally {
      small.close();
    }
  });
});

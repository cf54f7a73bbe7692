// The seed format, the example seed end to end through the SDK, and the CLI's argument parser and start-up.
import { readFile } from 'node:fs/promises';
import { describe, expect, test } from 'vitest';
import { AssumeRoleWithWebIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { GetParametersCommand, SSMClient } from '@aws-sdk/client-ssm';
import { parseCliArgs, startCli } from './cli.js';
import { exampleSeed, parseSeed } from './seed.js';

describe('parseCliArgs', () => {
  test.each([
    [[], { port: 0, host: '127.0.0.1', latencyMs: 0 }],
    [
      ['--port', '8080', '--host=::1', '--seed', 's.json', '--latency=20'],
      { port: 8080, host: '::1', seedFile: 's.json', latencyMs: 20 },
    ],
    [['--help'], 'help'],
  ])('%j', (argv, want) => {
    expect(parseCliArgs(argv)).toEqual(want);
  });

  test.each([
    [['--port', 'x'], '--port: expected a non-negative integer'],
    [['--port', '70000'], 'is not a port'],
    [['--nope', '1'], 'unknown flag --nope'],
    [['--seed'], '--seed needs a value'],
  ])('refuses %j', (argv, message) => {
    expect(() => parseCliArgs(argv)).toThrow(message);
  });
});

describe('parseSeed', () => {
  test('the example seed passes', () => {
    expect(parseSeed(JSON.parse(JSON.stringify(exampleSeed())))).toEqual(exampleSeed());
  });

  test('reports every problem at once', () => {
    expect(() => parseSeed({ roles: [{ arn: 'x' }], secrets: [{ region: 'r', name: 'n' }], pods: {} })).toThrow(
      'seed: 3 problem(s): roles[0].allow: expected an object ({"secretsmanager": ["prod/*"], "ssm": ["/app/*"]}); ' +
        'pods: expected a list; secrets[0]: give exactly one of value and binaryBase64',
    );
  });
});

describe('startCli with the example seed', () => {
  test('prints how to use it, and the seeded world answers through the SDK', async () => {
    const lines: string[] = [];
    const cli = await startCli({ port: 0, host: '127.0.0.1', latencyMs: 0 }, (l) => lines.push(l));
    try {
      const { emu } = cli;
      const text = lines.join('\n');
      expect(text).toContain(`export AWS_ENDPOINT_URL=${emu.url}`);
      expect(text).toContain(`export KUBECONFIG=${cli.kubeconfig}`);
      expect(await readFile(cli.kubeconfig, 'utf8')).toContain(emu.url);
      const token = /default\/app sts\.amazonaws\.com: (\S+)/.exec(text)?.[1] ?? '';
      const sts = new STSClient({ region: 'us-east-1', endpoint: emu.url });
      const c = (
        await sts.send(
          new AssumeRoleWithWebIdentityCommand({
            RoleArn: 'arn:aws:iam::123456789012:role/app-reader',
            RoleSessionName: 'demo',
            WebIdentityToken: token,
          }),
        )
      ).Credentials;
      const credentials = {
        accessKeyId: c?.AccessKeyId ?? '',
        secretAccessKey: c?.SecretAccessKey ?? '',
        sessionToken: c?.SessionToken ?? '',
      };
      const sm = new SecretsManagerClient({ region: 'us-east-1', endpoint: emu.url, credentials });
      expect(
        JSON.parse((await sm.send(new GetSecretValueCommand({ SecretId: 'prod/db-creds' }))).SecretString ?? ''),
      ).toEqual({ username: 'app', password: 's3cr3t-demo', port: 5432 });
      expect((await sm.send(new GetSecretValueCommand({ SecretId: 'prod/tls-cert' }))).SecretBinary).toBeInstanceOf(
        Uint8Array,
      );
      const ssm = new SSMClient({ region: 'us-east-1', endpoint: emu.url, credentials });
      const out = await ssm.send(
        new GetParametersCommand({ Names: ['/app/feature-flag', '/app/db-host'], WithDecryption: true }),
      );
      expect(out.Parameters?.map((p) => [p.Name, p.Value, p.Type])).toEqual([
        ['/app/feature-flag', 'enabled', 'String'],
        ['/app/db-host', 'db.demo.internal', 'SecureString'],
      ]);
      const k = await fetch(`${emu.url}/api/v1/namespaces/default/serviceaccounts/app`, {
        headers: { authorization: `Bearer ${emu.apiToken}` },
      });
      expect(
        ((await k.json()) as { metadata: { annotations: Record<string, string> } }).metadata.annotations[
          'eks.amazonaws.com/role-arn'
        ],
      ).toBe('arn:aws:iam::123456789012:role/app-reader');
    } finally {
      await cli.close();
    }
  });
});

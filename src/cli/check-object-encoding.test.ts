// `check` and the objectEncoding extension (docs/extensions.md): a known key in any case (no
// "unknown key" warning), a warning that ASCP ignores it, and its class problems as errors.
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import type { CommandIO } from './io.js';
import { run } from './check.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

async function check(stdin: string): Promise<{ code: number; stdout: string }> {
  let stdout = '';
  const io: CommandIO = {
    stdout: (t) => (stdout += t),
    stderr: () => undefined,
    env: {},
    cwd: ROOT,
    readStdin: () => Promise.resolve(stdin),
  };
  const code = await run(['-'], io);
  return { code, stdout };
}

const CLASS = (objects: string): string =>
  `apiVersion: secrets-store.csi.x-k8s.io/v1\nkind: SecretProviderClass\nmetadata:\n  name: app\nspec:\n  provider: ` +
  `aws\n  parameters:\n    region: us-east-1\n    objects: |\n${objects.replace(/^/gm, '      ')}\n`;

it("objectEncoding (ObjectEncoding: Base64, an entry's hex) loads, warned per use, not as an unknown key", async () => {
  const r = await check(
    CLASS(
      '- objectName: prod/cert\n  objectType: secretsmanager\n  ObjectEncoding: Base64\n- objectName: prod/tls\n  ' +
        'objectType: secretsmanager\n  jmesPath:\n    - {path: key, objectAlias: tls.key, objectEncoding: hex}',
    ),
  );
  expect(r.code).toBe(0);
  expect(r.stdout).not.toContain('unknown key');
  expect(r.stdout).toContain(
    'objects[0].objectEncoding: objectEncoding is our extension: ASCP ignores it and mounts the base64 text as stored',
  );
  expect(r.stdout).toContain('objects[1].jmesPath[0].objectEncoding: objectEncoding is our extension');
});

it('an unknown encoding and objectEncoding with allKeys are errors naming the object', async () => {
  const r = await check(
    CLASS(
      '- objectName: prod/other\n  objectType: secretsmanager\n  objectEncoding: base32\n- objectName: prod/keys\n  ' +
        'objectType: secretsmanager\n  allKeys: true\n  objectEncoding: hex',
    ),
  );
  expect(r.code).toBe(1);
  expect(r.stdout).toContain(
    'error: objects[0].objectEncoding: object "prod/other": objectEncoding must be one of utf-8, base64, hex (how ' +
      'the value is stored), got "base32"',
  );
  expect(r.stdout).toContain(
    'error: objects[1].objectEncoding: object "prod/keys": objectEncoding hex cannot be used with allKeys',
  );
});

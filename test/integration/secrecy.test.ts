/**
 * Secrets stay secret: marker values and tokens never appear in a log line or an error message,
 * across successes and failures (docs/behaviour.md, "Errors").
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { REGION, startHarness, type Harness } from '../helpers/harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => h?.close());

it('no secret value, token or secrets field in any log line or error', async () => {
  const MARK = 'MARKER-S3CRET-VALUE-7f3a';
  h.emu.putSecret(REGION, 'leak/json', JSON.stringify({ username: MARK + '-user', n: 5 }));
  h.emu.putSecret(REGION, 'leak/plain', MARK + '-plain');
  h.emu.putParameter(REGION, 'leak-param', MARK + '-param', { type: 'SecureString' });
  const pod = h.pod({ allowSecrets: ['leak/json', 'leak/plain'] });
  const errors: string[] = [];
  const cases = [
    // success
    `- {objectName: leak/plain, objectType: secretsmanager}\n- {objectName: leak-param, objectType: ssmparameter}`,
    // JMESPath over a value: non-string result, missing path, not-JSON value
    `- objectName: leak/json\n  objectType: secretsmanager\n  jmesPath:\n    - {path: n, objectAlias: n}`,
    `- objectName: leak/plain\n  objectType: secretsmanager\n  jmesPath:\n    - {path: a, objectAlias: a}`,
    // access denied
    `- {objectName: leak-other, objectType: secretsmanager}`,
  ];
  for (const objects of cases) {
    const attributes = pod.attributes({ region: REGION, objects });
    await h.client
      .mount({
        attributes,
        targetPath: await h.target(),
        secrets: JSON.stringify({ token: pod.irsaToken, extra: MARK }),
      })
      .catch((e: { details: string }) => errors.push(e.details));
  }
  expect(errors.length).toBe(3);
  const everything = [...h.logs, ...errors].join('\n');
  expect(everything).not.toContain(MARK);
  expect(everything).not.toContain(pod.irsaToken);
  expect(everything).not.toContain(pod.podIdentityToken);
  expect(everything).not.toContain(pod.irsaToken.split('.')[2]);
  // and there is one log line per mount
  expect(h.logs.filter((l) => (JSON.parse(l) as { msg?: string }).msg === 'mount')).toHaveLength(4);
});

/**
 * Every refusal in the core's scope: a deliberate gRPC status and a message naming the object, the
 * field or region and the real cause (docs/behaviour.md, "Errors"). Nothing is written when a mount fails.
 */
import { readdir } from 'node:fs/promises';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REGION, startHarness, type Harness } from '../helpers/harness.js';
import { refused } from '../helpers/failure.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => h?.close());

const SM = (name: string, extra = ''): string => `- {objectName: ${name}, objectType: secretsmanager${extra}}`;

describe('refusals', () => {
  it('X02: missing mount path', async () => {
    const pod = h.pod();
    const e = await refused(
      h.client.mount({ attributes: pod.attributes({ region: REGION, objects: SM('x') }), targetPath: '' }),
    );
    expect(e.code).toBe(status.INVALID_ARGUMENT);
    expect(e.details).toContain('Missing mount path');
  });

  it('X01: attributes that are not JSON', async () => {
    const e = await refused(h.client.mount({ attributes: 'not json', targetPath: await h.target() }));
    expect(e.code).toBe(status.INVALID_ARGUMENT);
    expect(e.details).toContain('failed to unmarshal attributes');
  });

  it('S15: empty permission', async () => {
    const pod = h.pod();
    const e = await refused(
      h.client.mount({
        attributes: pod.attributes({ region: REGION, objects: SM('x') }),
        targetPath: await h.target(),
        permission: '',
      }),
    );
    expect(e.code).toBe(status.INVALID_ARGUMENT);
    expect(e.details).toContain('failed to unmarshal file permission');
  });

  it('S16: service account without a role annotation', async () => {
    const pod = h.pod({ noAnnotation: true });
    const e = await refused(
      h.client.mount({
        attributes: pod.attributes({ region: REGION, objects: SM('x') }),
        targetPath: await h.target(),
      }),
    );
    expect(e.code).toBe(status.FAILED_PRECONDITION);
    expect(e.details).toContain(
      `An IAM role must be associated with service account ${pod.serviceAccount} (namespace: ${pod.namespace})`,
    );
  });

  it('S17: usePodIdentity that is not a Go boolean', async () => {
    const pod = h.pod();
    const e = await refused(
      h.client.mount({
        attributes: pod.attributes({ region: REGION, objects: SM('x'), usePodIdentity: 'yes' }),
        targetPath: await h.target(),
      }),
    );
    expect(e.code).toBe(status.INVALID_ARGUMENT);
    expect(e.details).toContain('failed to parse usePodIdentity value');
  });

  it('S18 + S02 + S26: every problem of a class in one error, before any AWS call', async () => {
    const pod = h.pod();
    h.emu.resetCalls();
    const objects = `
- objectName: ok
  objectType: secretsmanager
  filePermission: "0900"
- objectType: ssmparameter
`;
    const e = await refused(
      h.client.mount({ attributes: pod.attributes({ region: REGION, objects }), targetPath: await h.target() }),
    );
    expect(e.code).toBe(status.INVALID_ARGUMENT);
    expect(e.details).toContain('Invalid File Permission: 0900');
    expect(e.details).toContain('Object name must be specified');
    expect(h.emu.callCount({ service: 'secretsmanager' })).toBe(0);
    expect(h.emu.callCount({ service: 'sts' })).toBe(0);
    const t = await refused(
      h.client.mount({
        attributes: pod.attributes({ region: REGION, objects: SM('x'), pathTranslation: '--' }),
        targetPath: await h.target(),
      }),
    );
    expect(t.details).toContain('pathTranslation must be either');
  });

  it('S22/S23: path traversal refused at validation', async () => {
    const pod = h.pod();
    for (const name of ['../TestParm1', './../TestSecret1', '..', 'a/../../b']) {
      const e = await refused(
        h.client.mount({
          attributes: pod.attributes({ region: REGION, objects: SM(JSON.stringify(name)), pathTranslation: 'False' }),
          targetPath: await h.target(),
        }),
      );
      expect(e.code, name).toBe(status.INVALID_ARGUMENT);
    }
  });

  it('empty objects is refused (better: ASCP succeeds and the driver fails obscurely)', async () => {
    const pod = h.pod();
    const e = await refused(
      h.client.mount({ attributes: pod.attributes({ region: REGION, objects: '  ' }), targetPath: await h.target() }),
    );
    expect(e.code).toBe(status.INVALID_ARGUMENT);
  });

  it('X07/X08: tokens missing, or no token for the audience', async () => {
    const pod = h.pod();
    const a = await refused(
      h.client.mount({
        attributes: pod.attributes({ region: REGION, objects: SM('x') }, { tokens: 'none' }),
        targetPath: await h.target(),
      }),
    );
    expect(a.details).toContain('serviceAccount.tokens not provided');
    const b = await refused(
      h.client.mount({
        attributes: pod.attributes({ region: REGION, objects: SM('x'), usePodIdentity: 'true' }, { tokens: 'irsa' }),
        targetPath: await h.target(),
      }),
    );
    expect(b.details).toContain('Pod Identity token extraction failed');
    expect(b.details).toContain('pods.eks.amazonaws.com');
  });

  it('S12/S14: region cannot be found', async () => {
    const pod = h.pod({ node: 'node-without-label' });
    h.emu.addNode('node-without-label', {});
    const e = await refused(
      h.client.mount({ attributes: pod.attributes({ objects: SM('x') }), targetPath: await h.target() }),
    );
    expect(e.details).toContain('failed to retrieve region');
    const ghost = pod.attributes({ objects: SM('x') });
    ghost['csi.storage.k8s.io/pod.name'] = 'FailPod';
    const f = await refused(h.client.mount({ attributes: ghost, targetPath: await h.target() }));
    expect(f.details).toContain('failed to retrieve region');
  });

  it('a secret that does not exist: NOT_FOUND naming object and region, nothing written', async () => {
    h.emu.putSecret(REGION, 'exists', 'x');
    const pod = h.pod();
    const target = await h.target();
    const e = await refused(
      h.client.mount({
        attributes: pod.attributes({ region: REGION, objects: `${SM('exists')}\n${SM('missing-one')}` }),
        targetPath: target,
      }),
    );
    expect(e.code).toBe(status.NOT_FOUND);
    expect(e.details).toContain('missing-one');
    expect(e.details).toContain(REGION);
    expect(e.details).toContain('ResourceNotFoundException');
    expect(e.details).not.toContain('Failed to fetch secret from all regions');
    expect(await readdir(target)).toEqual([]);
  });

  it('access denied: PERMISSION_DENIED with the IAM action; several failures in one error', async () => {
    h.emu.putSecret(REGION, 'team-a/secret', 'a');
    h.emu.putSecret(REGION, 'team-b/secret', 'b');
    h.emu.putParameter(REGION, 'team-b-param', 'p');
    const pod = h.pod({ allowSecrets: ['team-a/*'], allowParameters: [] });
    const target = await h.target();
    const objects =
      `${SM('team-a/secret')}\n${SM('team-b/secret')}\n- {objectName: team-b-param, objectType: ` + `ssmparameter}`;
    const e = await refused(
      h.client.mount({ attributes: pod.attributes({ region: REGION, objects }), targetPath: target }),
    );
    expect(e.code).toBe(status.PERMISSION_DENIED);
    expect(e.details).toContain('team-b/secret');
    expect(e.details).toContain('secretsmanager:GetSecretValue');
    expect(e.details).toContain('ssm:GetParameters');
    expect(e.details).toContain('2 objects failed');
    expect(await readdir(target)).toEqual([]);
  });

  it('S21: missing SSM parameters are listed', async () => {
    h.emu.putParameter(REGION, 'TestParm1', 'p1');
    const pod = h.pod();
    const objects = ['TestParm1', 'FailParm2', 'FailParm4']
      .map((n) => `- {objectName: ${n}, objectType: ssmparameter}`)
      .join('\n');
    const e = await refused(
      h.client.mount({ attributes: pod.attributes({ region: REGION, objects }), targetPath: await h.target() }),
    );
    expect(e.code).toBe(status.NOT_FOUND);
    expect(e.details).toContain('FailParm2');
    expect(e.details).toContain('FailParm4');
  });

  it('JMESPath that matches nothing, or a non-string: named with the type found', async () => {
    h.emu.putSecret(REGION, 'json1', '{"username": 3}');
    const pod = h.pod();
    const miss =
      `- objectName: json1\n  objectType: secretsmanager\n  jmesPath:\n    - {path: nothere, ` + `objectAlias: a}`;
    const e = await refused(
      h.client.mount({ attributes: pod.attributes({ region: REGION, objects: miss }), targetPath: await h.target() }),
    );
    expect(e.details).toContain('JMES Path - nothere for object alias - a does not point to a valid object.');
    const num =
      `- objectName: json1\n  objectType: secretsmanager\n  jmesPath:\n    - {path: username, ` + `objectAlias: u}`;
    const f = await refused(
      h.client.mount({ attributes: pod.attributes({ region: REGION, objects: num }), targetPath: await h.target() }),
    );
    expect(f.details).toContain('Invalid JMES search result type for path:username');
    expect(f.details).toContain('number');
  });

  it('KMS refusal names KMS', async () => {
    h.emu.putSecret(REGION, 'kms-locked', 'x', { kmsFails: true });
    const pod = h.pod();
    const e = await refused(
      h.client.mount({
        attributes: pod.attributes({ region: REGION, objects: SM('kms-locked') }),
        targetPath: await h.target(),
      }),
    );
    expect(e.code).toBe(status.PERMISSION_DENIED);
    expect(e.details).toContain('DecryptionFailure');
    expect(e.details).toContain('kms:Decrypt');
  });

  it('STS refuses a role that does not trust the pod', async () => {
    const other = h.pod();
    const pod = h.pod({ role: other.roleArn, foreignRole: true });
    h.emu.putSecret(REGION, 'sts-refused', 'x');
    const e = await refused(
      h.client.mount({
        attributes: pod.attributes({ region: REGION, objects: SM('sts-refused') }),
        targetPath: await h.target(),
      }),
    );
    expect(e.code).toBe(status.PERMISSION_DENIED);
    expect(e.details).toContain('AssumeRoleWithWebIdentity');
    expect(e.details).toContain(other.roleArn);
  });

  it('throttling after retries is UNAVAILABLE (the driver retries only that)', async () => {
    h.emu.putSecret(REGION, 'throttled', 'x');
    const pod = h.pod();
    const id = h.emu.addFault({
      service: 'secretsmanager',
      target: 'throttled',
      status: 400,
      code: 'ThrottlingException',
      message: 'Rate exceeded',
    });
    try {
      const e = await refused(
        h.client.mount({
          attributes: pod.attributes({ region: REGION, objects: SM('throttled') }),
          targetPath: await h.target(),
        }),
      );
      expect(e.code).toBe(status.UNAVAILABLE);
      expect(e.details).toContain('ThrottlingException');
    } finally {
      h.emu.removeFault(id);
    }
    await h.client.mount({
      attributes: pod.attributes({ region: REGION, objects: SM('throttled') }),
      targetPath: await h.target(),
    });
  });

  it('an answer that never comes: the mount fails before the deadline and writes nothing afterwards', async () => {
    h.emu.putSecret(REGION, 'hangs', 'x');
    const pod = h.pod();
    const target = await h.target();
    const id = h.emu.addFault({ service: 'secretsmanager', target: 'hangs', hang: true });
    try {
      const e = await refused(
        h.client.mount(
          { attributes: pod.attributes({ region: REGION, objects: SM('hangs') }), targetPath: target },
          { deadlineMs: 1500 },
        ),
      );
      expect(e.code).toBe(status.DEADLINE_EXCEEDED);
    } finally {
      h.emu.removeFault(id);
    }
    await new Promise((r) => setTimeout(r, 300));
    expect(await readdir(target)).toEqual([]);
  });
});

/**
 * Failover regions through the socket (docs/behaviour.md, "Failover"): every outcome of the table for
 * Secrets Manager and SSM, `failoverObject` by name and by ARN with its validation rules, and ASCP's
 * multi-region tests (M01–M25, docs/behaviour.md, "ASCP's test cases") where we keep its behaviour.
 *
 * Where we differ on purpose:
 * - M04, M17, M18, M19: when the primary answers, the failover region is not asked at all (ASCP asks
 *   it for every object and fails the mount on its 4xx even though the primary had the value).
 * - M05, M06, M13, M16: when both regions fail, the error names each region's real cause instead of
 *   "Failed to fetch secret/parameters from all regions".
 * - M20: an ARN names its region, so without `failoverObject` the failover region is asked for the
 *   primary region's ARN and AWS (the emulator) cannot find it; the mount fails naming both causes.
 *   With `failoverObject` carrying the failover region's ARN it succeeds (tested below).
 * - Unmodelled refusals (AccessDenied) are non-fatal as in ASCP, so they fail over too.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  ACCOUNT,
  FAILOVER_REGION,
  REGION,
  startIdentityHarness,
  type IdentityHarness,
} from '../helpers/identity-harness.js';
import { refused } from '../helpers/failure.js';

let h: IdentityHarness;
beforeAll(async () => {
  h = await startIdentityHarness();
});
afterAll(async () => h?.close());
beforeEach(() => {
  h.emu.clearFaults();
  h.emu.resetCalls();
});

const BOTH = { region: REGION, failoverRegion: FAILOVER_REGION };
let seq = 0;
const unique = (p: string): string => `${p}-${++seq}`;

type Svc = 'secretsmanager' | 'ssm';
type Region = 'ok' | '500' | 'throttle' | 'denied' | 'notfound' | 'kms';

interface Row {
  primary: Region;
  failover: Region;
  result: 'primary' | 'failover' | 'fail';
  asked: boolean;
}

// Every outcome of the failover rule (README, "Failover regions").
const TABLE: Row[] = [
  { primary: 'ok', failover: 'ok', result: 'primary', asked: false },
  { primary: 'ok', failover: '500', result: 'primary', asked: false },
  { primary: 'ok', failover: 'notfound', result: 'primary', asked: false },
  { primary: '500', failover: 'ok', result: 'failover', asked: true },
  { primary: 'throttle', failover: 'ok', result: 'failover', asked: true },
  { primary: 'denied', failover: 'ok', result: 'failover', asked: true },
  { primary: 'notfound', failover: 'ok', result: 'fail', asked: false },
  { primary: 'kms', failover: 'ok', result: 'fail', asked: false },
  { primary: '500', failover: 'notfound', result: 'fail', asked: true },
  { primary: '500', failover: '500', result: 'fail', asked: true },
  { primary: 'denied', failover: 'denied', result: 'fail', asked: true },
];

const CODES: Record<Svc, Record<Exclude<Region, 'ok'>, string>> = {
  secretsmanager: {
    '500': 'InternalServiceError',
    throttle: 'ThrottlingException',
    denied: 'AccessDeniedException',
    notfound: 'ResourceNotFoundException',
    kms: 'DecryptionFailure',
  },
  ssm: {
    '500': 'InternalServerError',
    throttle: 'ThrottlingException',
    denied: 'AccessDeniedException',
    notfound: 'InvalidParameters',
    kms: 'InvalidKeyId',
  },
};

function arnPattern(svc: Svc, region: string): string {
  return `arn:aws:${svc}:${region}:*`;
}

/**
 * Puts the object in a region in the given state; returns the role patterns that region allows:
 * the region's ARNs (so 'denied' in one region does not leak from the other), or, for an object
 * that does not exist (no ARN to match), its name.
 */
function prepare(svc: Svc, name: string, region: string, state: Region): string[] {
  if (state === 'notfound') return [name];
  const value = `${region}-value`;
  if (svc === 'secretsmanager') h.emu.putSecret(region, name, value, { kmsFails: state === 'kms' });
  else h.emu.putParameter(region, name, value, { type: 'SecureString', kmsFails: state === 'kms' });
  if (state === '500') h.emu.addFault({ service: svc, region, target: name, status: 500 });
  if (state === 'throttle') h.emu.addFault({ service: svc, region, target: name, code: 'ThrottlingException' });
  return state === 'denied' ? [] : [arnPattern(svc, region)];
}

for (const svc of ['secretsmanager', 'ssm'] as const) {
  const type = svc === 'secretsmanager' ? 'secretsmanager' : 'ssmparameter';
  const op = svc === 'secretsmanager' ? 'GetSecretValue' : 'GetParameters';
  describe(`failover table, ${svc}`, () => {
    it.each(TABLE)('primary $primary, failover $failover → $result (failover asked: $asked)', async (row) => {
      const name = unique(`fo-${svc === 'ssm' ? 'p' : 's'}-${row.primary}-${row.failover}`);
      const allow = [...prepare(svc, name, REGION, row.primary), ...prepare(svc, name, FAILOVER_REGION, row.failover)];
      const pod = h.pod(svc === 'secretsmanager' ? { allowSecrets: allow } : { allowParameters: allow });
      const target = await h.target();
      const attributes = pod.attributes({ ...BOTH, objects: `- {objectName: ${name}, objectType: ${type}}` });
      const asked = (): number => h.emu.callCount({ service: svc, operation: op, region: FAILOVER_REGION });
      if (row.result === 'fail') {
        const e = await refused(h.client.mount({ attributes, targetPath: target }));
        expect(e.details).toContain(name);
        expect(e.details).not.toMatch(/all regions/i);
        if (row.primary !== 'ok') expect(e.details).toContain(`${REGION}: `);
        if (row.primary !== 'ok') expect(e.details).toContain(CODES[svc][row.primary]);
        if (row.asked) {
          expect(e.details).toContain(`${FAILOVER_REGION}: `);
          if (row.failover !== 'ok') expect(e.details).toContain(CODES[svc][row.failover]);
        } else {
          expect(e.details).not.toContain(FAILOVER_REGION);
        }
        if (row.primary === 'notfound') expect(e.code).toBe(status.NOT_FOUND);
      } else {
        await h.client.mount({ attributes, targetPath: target });
        const want = row.result === 'primary' ? `${REGION}-value` : `${FAILOVER_REGION}-value`;
        expect(await readFile(path.join(target, name), 'utf8')).toBe(want);
      }
      expect(asked() > 0).toBe(row.asked);
    });
  });
}

describe('failover: what is logged', () => {
  it("served from the failover region: one warning naming the primary's cause (no value)", async () => {
    const name = unique('fo-log');
    h.emu.putSecret(REGION, name, 'p');
    h.emu.putSecret(FAILOVER_REGION, name, 'f');
    h.emu.addFault({ service: 'secretsmanager', region: REGION, target: name, status: 500 });
    const pod = h.pod();
    const before = h.logs.length;
    await h.client.mount({
      attributes: pod.attributes({ ...BOTH, objects: `- {objectName: ${name}, objectType: secretsmanager}` }),
      targetPath: await h.target(),
    });
    const lines = h.logs.slice(before).filter((l) => l.includes('failover region answered'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('InternalServiceError');
    expect(lines[0]).toContain(FAILOVER_REGION);
    expect(lines[0]).not.toContain('"f"');
  });
});

describe('failoverObject', () => {
  it('by name: the failover region reads another name, the alias names the file', async () => {
    const name = unique('fob-primary');
    const other = unique('fob-replica');
    h.emu.putSecret(REGION, name, 'p');
    h.emu.putSecret(FAILOVER_REGION, other, 'replica');
    h.emu.addFault({ service: 'secretsmanager', region: REGION, status: 500 });
    const pod = h.pod();
    const target = await h.target();
    const objects = `
- objectName: ${name}
  objectType: secretsmanager
  objectAlias: db
  failoverObject: {objectName: ${other}}
`;
    await h.client.mount({ attributes: pod.attributes({ ...BOTH, objects }), targetPath: target });
    expect(await readFile(path.join(target, 'db'), 'utf8')).toBe('replica');
    expect(
      h.emu.calls.filter((c) => c.region === FAILOVER_REGION && c.service === 'secretsmanager').flatMap((c) => c.names),
    ).toEqual([other]);
  });

  it('by ARN (M20 done right): each region gets its own ARN', async () => {
    const name = unique('fob-arn');
    const p = h.emu.putSecret(REGION, name, 'p');
    const f = h.emu.putSecret(FAILOVER_REGION, name, 'from-replica-arn');
    h.emu.addFault({ service: 'secretsmanager', region: REGION, status: 500 });
    const pod = h.pod();
    const target = await h.target();
    const objects = `
- objectName: "${p.arn}"
  objectAlias: TestSecret1
  failoverObject: {objectName: "${f.arn}"}
`;
    await h.client.mount({ attributes: pod.attributes({ ...BOTH, objects }), targetPath: target });
    expect(await readFile(path.join(target, 'TestSecret1'), 'utf8')).toBe('from-replica-arn');
  });

  it('SSM by name with equal versions (M24 shape): the failover selector carries the version', async () => {
    const name = unique('fob-parm');
    const other = unique('fob-parm-other');
    h.emu.putParameter(REGION, name, 'p');
    h.emu.putParameter(FAILOVER_REGION, other, 'parm15');
    h.emu.addFault({ service: 'ssm', region: REGION, status: 500 });
    const pod = h.pod();
    const target = await h.target();
    const objects = `
- objectName: ${name}
  objectType: ssmparameter
  objectVersion: "1"
  objectAlias: TestParm15Alias
  inFallback: ignored
  failoverObject: {objectName: ${other}, objectVersion: "1"}
`;
    const res = await h.client.mount({ attributes: pod.attributes({ ...BOTH, objects }), targetPath: target });
    expect(await readFile(path.join(target, 'TestParm15Alias'), 'utf8')).toBe('parm15');
    expect(res.objectVersion).toEqual([{ id: 'TestParm15Alias', version: '1' }]);
    expect(
      h.emu.calls.filter((c) => c.region === FAILOVER_REGION && c.service === 'ssm').flatMap((c) => c.names),
    ).toEqual([`${other}:1`]);
  });

  const arnP = (region: string, n: string): string => `arn:aws:secretsmanager:${region}:${ACCOUNT}:secret:${n}-AbCdEf`;
  it.each([
    [
      'failoverObject without objectAlias',
      BOTH,
      `- {objectName: a, objectType: secretsmanager, failoverObject: {objectName: b}}`,
      'objectAlias',
    ],
    [
      'failoverObject without failoverRegion',
      { region: REGION },
      `- {objectName: a, objectType: secretsmanager, objectAlias: x, failoverObject: {objectName: b}}`,
      'failover',
    ],
    [
      'failoverObject ARN of another region than failoverRegion',
      BOTH,
      `- {objectName: a, objectType: secretsmanager, objectAlias: x, failoverObject: {objectName: ` +
        `"${arnP('eu-west-1', 'b')}"}}`,
      'eu-west-1',
    ],
    [
      'primary ARN of another region than region',
      BOTH,
      `- {objectName: "${arnP('eu-west-1', 'a')}", objectAlias: x}`,
      'eu-west-1',
    ],
    [
      'versions that differ',
      BOTH,
      `- {objectName: a, objectType: ssmparameter, objectVersion: "1", objectAlias: x, failoverObject: {objectName: ` +
        `b, objectVersion: "2"}}`,
      'objectVersion',
    ],
    [
      'failoverRegion equal to region (M08)',
      { region: REGION, failoverRegion: REGION },
      `- {objectName: a, objectType: secretsmanager}`,
      'failover region cannot be the same as the primary region',
    ],
  ])('refused before any AWS call: %s', async (_what, regions, objects, fragment) => {
    const pod = h.pod();
    const e = await refused(
      h.client.mount({ attributes: pod.attributes({ ...regions, objects }), targetPath: await h.target() }),
    );
    expect(e.code).toBe(status.INVALID_ARGUMENT);
    expect(e.details).toContain(fragment);
    expect(
      h.emu.callCount({ service: 'secretsmanager' }) +
        h.emu.callCount({ service: 'ssm' }) +
        h.emu.callCount({ service: 'sts' }),
    ).toBe(0);
  });
});

describe('ASCP multi-region catalogue (mountTestsForMultiRegion)', () => {
  /** Puts `name` = value in both regions, as ASCP's generate-test-files.py does. */
  function both(svc: Svc, name: string, value: string): void {
    for (const r of [REGION, FAILOVER_REGION]) {
      if (svc === 'secretsmanager') h.emu.putSecret(r, name, value);
      else h.emu.putParameter(r, name, value);
    }
  }
  const fault500 = (svc: Svc, region: string, target?: string): string =>
    h.emu.addFault({ service: svc, region, status: 500, ...(target ? { target } : {}) });

  it('M01/M12: Secrets Manager primary 500 → failover value', async () => {
    const n = unique('M01');
    both('secretsmanager', n, 'secret1');
    fault500('secretsmanager', REGION, n);
    const t = await h.target();
    await h.client.mount({
      attributes: h.pod().attributes({ ...BOTH, objects: `- {objectName: ${n}, objectType: secretsmanager}` }),
      targetPath: t,
    });
    expect(await readFile(path.join(t, n), 'utf8')).toBe('secret1');
  });

  it('M02/M15: SSM primary 500 → failover value', async () => {
    const n = unique('M02');
    both('ssm', n, 'parm1');
    fault500('ssm', REGION, n);
    const t = await h.target();
    await h.client.mount({
      attributes: h.pod().attributes({ ...BOTH, objects: `- {objectName: ${n}, objectType: ssmparameter}` }),
      targetPath: t,
    });
    expect(await readFile(path.join(t, n), 'utf8')).toBe('parm1');
  });

  it('M03: both services fail in the primary → both from the failover', async () => {
    const s = unique('M03s');
    const p = unique('M03p');
    both('secretsmanager', s, 'secret1');
    both('ssm', p, 'parm1');
    fault500('secretsmanager', REGION);
    fault500('ssm', REGION);
    const t = await h.target();
    await h.client.mount({
      attributes: h.pod().attributes({
        ...BOTH,
        objects: `- {objectName: ${s}, objectType: secretsmanager}\n- {objectName: ${p}, objectType: ssmparameter}`,
      }),
      targetPath: t,
    });
    expect(await readFile(path.join(t, s), 'utf8')).toBe('secret1');
    expect(await readFile(path.join(t, p), 'utf8')).toBe('parm1');
  });

  it('M04 (differs: failover not asked): both regions answer → values and versions from the primary', async () => {
    const s = unique('M04s');
    const p = unique('M04p');
    const sv = h.emu.putSecret(REGION, s, 'secret1');
    h.emu.putSecret(FAILOVER_REGION, s, 'wrongSecret');
    h.emu.putParameter(REGION, p, 'parm1');
    h.emu.putParameter(FAILOVER_REGION, p, 'wrong');
    h.emu.putParameter(FAILOVER_REGION, p, 'wrong2');
    const t = await h.target();
    const res = await h.client.mount({
      attributes: h.pod().attributes({
        ...BOTH,
        objects: `- {objectName: ${s}, objectType: secretsmanager}\n- {objectName: ${p}, objectType: ssmparameter}`,
      }),
      targetPath: t,
    });
    expect(await readFile(path.join(t, s), 'utf8')).toBe('secret1');
    expect(await readFile(path.join(t, p), 'utf8')).toBe('parm1');
    expect(Object.fromEntries(res.objectVersion.map((v) => [v.id, v.version]))).toEqual({
      [s]: sv.versionId,
      [p]: '1',
    });
    expect(h.emu.calls.filter((c) => c.region === FAILOVER_REGION)).toEqual([]);
  });

  it.each([
    ['M05', 'secretsmanager', 'InternalServiceError'],
    ['M06', 'ssm', 'InternalServerError'],
  ] as const)('%s (differs: each region\'s cause, no "all regions"): %s 500 in both regions', async (id, svc, code) => {
    const n = unique(id);
    both(svc, n, 'x');
    fault500(svc, REGION, n);
    fault500(svc, FAILOVER_REGION, n);
    const e = await refused(
      h.client.mount({
        attributes: h.pod().attributes({
          ...BOTH,
          objects: `- {objectName: ${n}, objectType: ${svc === 'ssm' ? 'ssmparameter' : 'secretsmanager'}}`,
        }),
        targetPath: await h.target(),
      }),
    );
    expect(e.details).toMatch(new RegExp(`${REGION}: Failed fetching (secret|parameters?) ${n}.*${code}`));
    expect(e.details).toMatch(new RegExp(`${FAILOVER_REGION}: Failed fetching (secret|parameters?) ${n}.*${code}`));
    expect(e.details).not.toMatch(/all regions/i);
  });

  it('M07: no region attribute, the node has no region label → "failed to retrieve region from node"', async () => {
    const pod = h.pod({ node: 'unlabelled-node' });
    h.emu.addNode('unlabelled-node', {});
    const e = await refused(
      h.client.mount({
        attributes: pod.attributes({
          failoverRegion: FAILOVER_REGION,
          objects: '- {objectName: x, objectType: secretsmanager}',
        }),
        targetPath: await h.target(),
      }),
    );
    expect(e.details).toContain('failed to retrieve region from node');
  });

  it('M09: no role annotation with a failover region → "An IAM role must be associated"', async () => {
    const pod = h.pod({ noAnnotation: true });
    const e = await refused(
      h.client.mount({
        attributes: pod.attributes({ ...BOTH, objects: '- {objectName: x, objectType: secretsmanager}' }),
        targetPath: await h.target(),
      }),
    );
    expect(e.details).toContain(
      `An IAM role must be associated with service account ${pod.serviceAccount} (namespace: ${pod.namespace})`,
    );
  });

  it('M10: a parameter missing in the primary is fatal; the failover is never asked', async () => {
    const p1 = unique('M10-TestParm1');
    const p2 = unique('M10-TestParm2');
    h.emu.putParameter(REGION, p2, 'parm2');
    both('ssm', p1, 'only-in-failover');
    h.emu.deleteParameter(REGION, p1);
    const e = await refused(
      h.client.mount({
        attributes: h.pod().attributes({
          ...BOTH,
          objects: `- {objectName: ${p1}, objectType: ssmparameter}\n- {objectName: ${p2}, objectType: ssmparameter}`,
        }),
        targetPath: await h.target(),
      }),
    );
    expect(e.code).toBe(status.NOT_FOUND);
    expect(e.details).toContain(`${REGION}: Failed fetching parameter ${p1}: InvalidParameters`);
    expect(e.details).not.toContain(p2);
    expect(h.emu.callCount({ service: 'ssm', region: FAILOVER_REGION })).toBe(0);
  });

  it('M11: Secrets Manager primary ResourceNotFound is fatal; failover not called', async () => {
    const n = unique('M11');
    h.emu.putSecret(FAILOVER_REGION, n, 'secret1');
    const e = await refused(
      h.client.mount({
        attributes: h.pod().attributes({ ...BOTH, objects: `- {objectName: ${n}, objectType: secretsmanager}` }),
        targetPath: await h.target(),
      }),
    );
    expect(e.details).toContain(`${REGION}: Failed fetching secret ${n}: ResourceNotFoundException`);
    expect(h.emu.callCount({ service: 'secretsmanager', region: FAILOVER_REGION })).toBe(0);
  });

  it('M13: primary 500, failover ResourceNotFound → both causes named', async () => {
    const n = unique('M13');
    h.emu.putSecret(REGION, n, 'x');
    fault500('secretsmanager', REGION, n);
    const e = await refused(
      h.client.mount({
        attributes: h.pod().attributes({ ...BOTH, objects: `- {objectName: ${n}, objectType: secretsmanager}` }),
        targetPath: await h.target(),
      }),
    );
    expect(e.details).toContain(`${FAILOVER_REGION}: Failed fetching secret ${n}: ResourceNotFoundException`);
    expect(e.details).toContain(`${REGION}: Failed fetching secret ${n}: InternalServiceError`);
  });

  it('M14: SSM primary InvalidKeyId is fatal; failover not called', async () => {
    const n = unique('M14');
    h.emu.putParameter(REGION, n, 'x', { type: 'SecureString', kmsFails: true });
    h.emu.putParameter(FAILOVER_REGION, n, 'x');
    const e = await refused(
      h.client.mount({
        attributes: h.pod().attributes({ ...BOTH, objects: `- {objectName: ${n}, objectType: ssmparameter}` }),
        targetPath: await h.target(),
      }),
    );
    expect(e.details).toContain(`${REGION}: Failed fetching parameters ${n}: InvalidKeyId`);
    expect(h.emu.callCount({ service: 'ssm', region: FAILOVER_REGION })).toBe(0);
  });

  it('M16: SSM primary 500, failover InvalidKeyId → both causes named', async () => {
    const n = unique('M16');
    h.emu.putParameter(REGION, n, 'x');
    h.emu.putParameter(FAILOVER_REGION, n, 'x', { type: 'SecureString', kmsFails: true });
    fault500('ssm', REGION, n);
    const e = await refused(
      h.client.mount({
        attributes: h.pod().attributes({ ...BOTH, objects: `- {objectName: ${n}, objectType: ssmparameter}` }),
        targetPath: await h.target(),
      }),
    );
    expect(e.details).toContain(`${FAILOVER_REGION}: Failed fetching parameters ${n}: InvalidKeyId`);
    expect(e.details).toContain(`${REGION}: Failed fetching parameters ${n}: InternalServerError`);
  });

  it.each([
    [
      'M17',
      'failover lacks both parameters (InvalidParameters)',
      'ssm',
      (n: string[]) => n.forEach((x) => h.emu.putParameter(REGION, x, `v-${x}`)),
    ],
    [
      'M18',
      'failover InvalidKeyId',
      'ssm',
      (n: string[]) =>
        n.forEach(
          (x) => (
            h.emu.putParameter(REGION, x, `v-${x}`),
            h.emu.putParameter(FAILOVER_REGION, x, 'k', { type: 'SecureString', kmsFails: true })
          ),
        ),
    ],
    [
      'M19',
      'failover ResourceNotFound',
      'secretsmanager',
      (n: string[]) => n.forEach((x) => h.emu.putSecret(REGION, x, `v-${x}`)),
    ],
  ] as const)('%s (differs: success, failover not asked): primary answers, %s', async (id, _what, svc, setup) => {
    const names = [unique(`${id}-1`), unique(`${id}-2`)];
    setup(names);
    const t = await h.target();
    const type = svc === 'ssm' ? 'ssmparameter' : 'secretsmanager';
    await h.client.mount({
      attributes: h
        .pod()
        .attributes({ ...BOTH, objects: names.map((n) => `- {objectName: ${n}, objectType: ${type}}`).join('\n') }),
      targetPath: t,
    });
    for (const n of names) expect(await readFile(path.join(t, n), 'utf8')).toBe(`v-${n}`);
    expect(h.emu.calls.filter((c) => c.region === FAILOVER_REGION)).toEqual([]);
  });

  it('M20 (differs): ARN without failoverObject → not found in the failover region; both causes named', async () => {
    const n = unique('M20');
    const p = h.emu.putSecret(REGION, n, 'x');
    h.emu.putSecret(FAILOVER_REGION, n, 'secret1');
    fault500('secretsmanager', REGION);
    const e = await refused(
      h.client.mount({
        attributes: h.pod().attributes({
          ...BOTH,
          objects:
            `- {objectName: "${p.arn}", backupArn: ignored, objectType: secretsmanager, objectAlias: ` + `TestSecret1}`,
        }),
        targetPath: await h.target(),
      }),
    );
    expect(e.details).toContain(`${FAILOVER_REGION}: Failed fetching secret ${p.arn}: ResourceNotFoundException`);
    expect(e.details).toContain('InternalServiceError');
  });

  const big = (prefix: string, n: number): string[] =>
    Array.from({ length: n }, (_, i) => `${prefix}-TestParm${i + 1}`);
  const bigObjects = (s: string[], p: string[]): string =>
    [
      ...s.map((x) => `- {objectName: ${x}, objectType: secretsmanager}`),
      ...p.map((x) => `- {objectName: ${x}, objectType: ssmparameter}`),
    ].join('\n');

  it('M21: primary SSM 500 (both batches), failover lacks TestParm11 → fatal naming it and that region', async () => {
    const pre = unique('M21');
    const parms = big(pre, 15);
    const secrets = [`${pre}-TestSecret1`, `${pre}-BinarySecret1`];
    for (const s of secrets) both('secretsmanager', s, 's');
    for (const [i, p] of parms.entries()) {
      h.emu.putParameter(REGION, p, `parm${i + 1}`);
      if (i !== 10) h.emu.putParameter(FAILOVER_REGION, p, `parm${i + 1}`);
    }
    fault500('ssm', REGION);
    const e = await refused(
      h.client.mount({
        attributes: h.pod().attributes({ ...BOTH, objects: bigObjects(secrets, parms) }),
        targetPath: await h.target(),
      }),
    );
    expect(e.details).toContain(`${FAILOVER_REGION}: Failed fetching parameter ${pre}-TestParm11: InvalidParameters`);
    expect(e.details).not.toContain(`${pre}-TestParm10:`);
  });

  it('M22: primary SSM 500 (both batches) → 17 files from the failover, 2 failover GetParameters calls', async () => {
    const pre = unique('M22');
    const parms = big(pre, 15);
    const secrets = [`${pre}-TestSecret1`, `${pre}-BinarySecret1`];
    h.emu.putSecret(REGION, secrets[0] as string, 'secret1');
    h.emu.putSecret(REGION, secrets[1] as string, Buffer.from('BinarySecret'));
    for (const [i, p] of parms.entries()) both('ssm', p, `parm${i + 1}`);
    fault500('ssm', REGION);
    const t = await h.target();
    const res = await h.client.mount({
      attributes: h.pod().attributes({ ...BOTH, objects: bigObjects(secrets, parms) }),
      targetPath: t,
    });
    expect(res.objectVersion).toHaveLength(17);
    expect(await readFile(path.join(t, secrets[1] as string), 'utf8')).toBe('BinarySecret');
    for (const [i, p] of parms.entries()) expect(await readFile(path.join(t, p), 'utf8')).toBe(`parm${i + 1}`);
    expect(h.emu.callCount({ service: 'ssm', operation: 'GetParameters', region: FAILOVER_REGION })).toBe(2);
    expect(h.emu.callCount({ service: 'secretsmanager', region: FAILOVER_REGION })).toBe(0);
  });

  it('M23: primary lacks TestParm6–10 → fatal, naming each; failover never asked', async () => {
    const pre = unique('M23');
    const parms = big(pre, 10);
    for (const [i, p] of parms.entries()) {
      if (i < 5) h.emu.putParameter(REGION, p, 'x');
      h.emu.putParameter(FAILOVER_REGION, p, 'x');
    }
    const e = await refused(
      h.client.mount({
        attributes: h.pod().attributes({ ...BOTH, objects: bigObjects([], parms) }),
        targetPath: await h.target(),
      }),
    );
    for (const p of parms.slice(5))
      expect(e.details).toContain(`${REGION}: Failed fetching parameter ${p}: InvalidParameters`);
    for (const p of parms.slice(0, 5)) expect(e.details).not.toContain(`${p}:`);
    expect(h.emu.callCount({ service: 'ssm', region: FAILOVER_REGION })).toBe(0);
  });

  it('M24/M25: primary SSM 500; 20 parameters (jmesPath, failoverObject) → 32 files from the failover', async () => {
    const pre = unique('M25');
    const parms = big(pre, 20);
    const secrets = [`${pre}-TestSecret1`, `${pre}-BinarySecret1`];
    for (const s of secrets) h.emu.putSecret(REGION, s, 'secret');
    for (const [i, p] of parms.entries()) {
      const n = i + 1;
      const value =
        n <= 10
          ? `{"dbUser": {"username": "ParameterStoreUser${n}", "password" : "ParameterStorePassword${n}"}}`
          : `parm${n}`;
      h.emu.putParameter(REGION, p, value);
      if (n === 15) h.emu.putParameter(FAILOVER_REGION, `${p}AnotherRegion`, value);
      else h.emu.putParameter(FAILOVER_REGION, p, value);
    }
    fault500('ssm', REGION);
    const objects = [
      ...secrets.map((s) => `- {objectName: ${s}, objectType: secretsmanager}`),
      ...parms.map((p, i) => {
        const n = i + 1;
        if (n <= 10)
          return (
            `- objectName: ${p}\n  objectType: ssmparameter\n  jmesPath:\n    - {path: dbUser.username, ` +
            `objectAlias: ${pre}-ssm${n}Username}`
          );
        if (n === 15)
          return (
            `- objectName: ${p}\n  objectType: ssmparameter\n  objectVersion: "1"\n  ` +
            `objectAlias: ${pre}-TestParm15Alias\n  failoverObject: {objectName: ${p}AnotherRegion, objectVersion: "1"}`
          );
        return `- {objectName: ${p}, objectType: ssmparameter}`;
      }),
    ].join('\n');
    const t = await h.target();
    const res = await h.client.mount({ attributes: h.pod().attributes({ ...BOTH, objects }), targetPath: t });
    expect(res.objectVersion).toHaveLength(32);
    expect(await readFile(path.join(t, `${pre}-ssm7Username`), 'utf8')).toBe('ParameterStoreUser7');
    expect(await readFile(path.join(t, `${pre}-TestParm15Alias`), 'utf8')).toBe('parm15');
    expect(await readFile(path.join(t, `${pre}-TestParm20`), 'utf8')).toBe('parm20');
  });
});

import { describe, expect, it } from 'vitest';
import { ProviderError } from '../errors.js';
import { isRoleArn, KubeLookups, MAX_ROLE_ARN_LENGTH, quoteValue, serviceAccountKey } from './lookups.js';
import { failure } from '../../test/helpers/failure.js';

const ROLE = 'arn:aws:iam::111122223333:role/app';

interface Calls {
  sa: string[];
  pod: string[];
  node: string[];
}

/** A fake client: answers from maps, counts calls, and can hold answers until released. */
function fakeClient(data: {
  sas?: Record<string, Record<string, string> | Error>;
  pods?: Record<string, string | Error>;
  nodes?: Record<string, Record<string, string> | Error>;
}) {
  const calls: Calls = { sa: [], pod: [], node: [] };
  const gates: (() => void)[] = [];
  const state = { hold: false, lastSignal: undefined as AbortSignal | undefined };
  const gate = async (signal: AbortSignal): Promise<void> => {
    state.lastSignal = signal;
    if (!state.hold) return;
    await new Promise<void>((resolve, reject) => {
      gates.push(resolve);
      signal.addEventListener('abort', () => reject(new ProviderError('CANCELLED', 'shared request cancelled')));
    });
  };
  const answer = <T>(v: T | Error | undefined, notFound: string): T => {
    if (v === undefined) throw new ProviderError('NOT_FOUND', notFound);
    if (v instanceof Error) throw v;
    return v;
  };
  const client = {
    async getServiceAccount(ns: string, name: string, signal: AbortSignal) {
      calls.sa.push(`${ns}/${name}`);
      await gate(signal);
      return { annotations: answer(data.sas?.[`${ns}/${name}`], `serviceaccounts "${name}" not found`) };
    },
    async getPod(ns: string, name: string, signal: AbortSignal) {
      calls.pod.push(`${ns}/${name}`);
      await gate(signal);
      return { nodeName: answer(data.pods?.[`${ns}/${name}`], `pods "${name}" not found`) };
    },
    async getNode(name: string, signal: AbortSignal) {
      calls.node.push(name);
      await gate(signal);
      return { labels: answer(data.nodes?.[name], `nodes "${name}" not found`) };
    },
  };
  return {
    client,
    calls,
    state,
    release: () => {
      for (const g of gates.splice(0)) g();
    },
  };
}

const signal = () => new AbortController().signal;
const tick = () => new Promise((r) => setImmediate(r));

describe('serviceAccountKey', () => {
  it('separates identities that a naive ns/name key would merge', () => {
    expect(serviceAccountKey('a/b', 'c')).not.toBe(serviceAccountKey('a', 'b/c'));
    expect(serviceAccountKey('a', 'b')).not.toBe(serviceAccountKey('b', 'a'));
    expect(serviceAccountKey('a', 'b')).toBe(serviceAccountKey('a', 'b'));
  });
});

describe('KubeLookups.roleArn', () => {
  it('caches per namespace/name for the TTL, then asks again', async () => {
    const clock = { now: 0 };
    const f = fakeClient({
      sas: {
        'ns/app': { 'eks.amazonaws.com/role-arn': ROLE },
        'other/app': { 'eks.amazonaws.com/role-arn': `${ROLE}2` },
      },
    });
    const events: string[] = [];
    const l = new KubeLookups(f.client, {
      roleTtlMs: 60_000,
      now: () => clock.now,
      onCache: (cache, hit) => events.push(`${cache}:${hit ? 'hit' : 'miss'}`),
    });
    expect(await l.roleArn('ns', 'app', signal())).toBe(ROLE);
    clock.now = 59_999;
    expect(await l.roleArn('ns', 'app', signal())).toBe(ROLE);
    expect(await l.roleArn('other', 'app', signal())).toBe(`${ROLE}2`);
    expect(f.calls.sa).toEqual(['ns/app', 'other/app']);
    expect(l.stats()).toEqual({ hits: 1, misses: 2 });
    clock.now = 60_000;
    expect(await l.roleArn('ns', 'app', signal())).toBe(ROLE);
    expect(f.calls.sa).toEqual(['ns/app', 'other/app', 'ns/app']);
    expect(l.stats()).toEqual({ hits: 1, misses: 3 });
    expect(events).toEqual([
      'service-account:miss',
      'service-account:hit',
      'service-account:miss',
      'service-account:miss',
    ]);
  });

  it('10 concurrent calls make one GET', async () => {
    const f = fakeClient({ sas: { 'ns/app': { 'eks.amazonaws.com/role-arn': ROLE } } });
    f.state.hold = true;
    const l = new KubeLookups(f.client);
    const all = Promise.all(Array.from({ length: 10 }, () => l.roleArn('ns', 'app', signal())));
    await tick();
    f.release();
    expect(await all).toEqual(Array(10).fill(ROLE));
    expect(f.calls.sa).toHaveLength(1);
    expect(l.stats()).toEqual({ hits: 9, misses: 1 });
  });

  it('one caller giving up does not cancel the shared GET; the last one does', async () => {
    const f = fakeClient({ sas: { 'ns/app': { 'eks.amazonaws.com/role-arn': ROLE } } });
    f.state.hold = true;
    const l = new KubeLookups(f.client);
    const a = new AbortController();
    const b = new AbortController();
    const pa = l.roleArn('ns', 'app', a.signal);
    const pb = l.roleArn('ns', 'app', b.signal);
    await tick();
    a.abort();
    expect((await failure(pa)).code).toBe('CANCELLED');
    expect(f.state.lastSignal?.aborted).toBe(false);
    f.release();
    expect(await pb).toBe(ROLE);

    // Everyone gives up: the shared request is cancelled, and a later call starts afresh.
    const f2 = fakeClient({ sas: { 'ns/app': { 'eks.amazonaws.com/role-arn': ROLE } } });
    f2.state.hold = true;
    const l2 = new KubeLookups(f2.client);
    const c = new AbortController();
    const pc = l2.roleArn('ns', 'app', c.signal);
    await tick();
    c.abort();
    expect((await failure(pc)).code).toBe('CANCELLED');
    expect(f2.state.lastSignal?.aborted).toBe(true);
    f2.state.hold = false;
    expect(await l2.roleArn('ns', 'app', signal())).toBe(ROLE);
    expect(f2.calls.sa).toHaveLength(2);
  });

  it('an already aborted signal makes no request', async () => {
    const f = fakeClient({});
    const ac = new AbortController();
    ac.abort();
    expect((await failure(new KubeLookups(f.client).roleArn('ns', 'app', ac.signal))).code).toBe('CANCELLED');
    expect(f.calls.sa).toHaveLength(0);
  });

  it.each([
    {
      name: 'missing annotation',
      sas: { 'ns/app': { other: 'x' } },
      code: 'FAILED_PRECONDITION',
      message: /^An IAM role must be associated with service account app \(namespace: ns\): annotate it with `kubectl/,
    },
    {
      name: 'empty annotation',
      sas: { 'ns/app': { 'eks.amazonaws.com/role-arn': ' ' } },
      code: 'FAILED_PRECONDITION',
      message: /^An IAM role must be associated/,
    },
    {
      name: 'service account not found',
      sas: {},
      code: 'NOT_FOUND',
      message: /^failed to get service account ns\/app: serviceaccounts "app" not found$/,
    },
    {
      name: 'forbidden',
      sas: { 'ns/app': new ProviderError('PERMISSION_DENIED', 'the provider may not get serviceaccounts') },
      code: 'PERMISSION_DENIED',
      message: /^failed to get service account ns\/app: the provider may not get serviceaccounts$/,
    },
    {
      name: 'unexpected error',
      sas: { 'ns/app': new Error('boom') },
      code: 'INTERNAL',
      message: /^failed to get service account ns\/app: boom$/,
    },
    {
      name: 'an annotation that is not a role ARN',
      sas: { 'ns/app': { 'eks.amazonaws.com/role-arn': 'arn:aws:iam::111122223333:user/app' } },
      code: 'FAILED_PRECONDITION',
      message: new RegExp(
        '^The eks\\.amazonaws\\.com/role-arn annotation of service account app \\(namespace: ns\\) ' +
          'is not an IAM role ARN: "arn:aws:iam::111122223333:user/app"; it must be',
      ),
    },
  ])('$name → $code, not cached', async ({ sas, code, message }) => {
    const f = fakeClient({ sas });
    const l = new KubeLookups(f.client);
    for (let i = 0; i < 2; i++) {
      const err = await failure(l.roleArn('ns', 'app', signal()));
      expect(err.code).toBe(code);
      expect(err.message).toMatch(message);
    }
    expect(f.calls.sa).toHaveLength(2);
  });
});

describe('isRoleArn', () => {
  it.each([
    'arn:aws:iam::111122223333:role/app',
    'arn:aws:iam::111122223333:role/team/apps/app+reader=,.@-_',
    'arn:aws-cn:iam::111122223333:role/app',
    'arn:aws-us-gov:iam::111122223333:role/app',
    'arn:aws-iso-b:iam::111122223333:role/app',
    `arn:aws:iam::111122223333:role/${'p/'.repeat(900)}${'n'.repeat(64)}`,
  ])('accepts %s', (arn) => {
    expect(isRoleArn(arn)).toBe(true);
  });

  it.each([
    ['a user', 'arn:aws:iam::111122223333:user/app'],
    ['a short account', 'arn:aws:iam::1111:role/app'],
    ['another service', 'arn:aws:sts::111122223333:role/app'],
    ['a region where IAM has none', 'arn:aws:iam:us-east-1:111122223333:role/app'],
    ['no name', 'arn:aws:iam::111122223333:role/'],
    ['a name over 64 characters', `arn:aws:iam::111122223333:role/${'n'.repeat(65)}`],
    ['a space in the name', 'arn:aws:iam::111122223333:role/my app'],
    ['a newline', 'arn:aws:iam::111122223333:role/app\nx'],
    ['an ANSI code', 'arn:aws:iam::111122223333:role/\u001b[31mapp'],
    ['not aws', 'arn:gcp:iam::111122223333:role/app'],
    ['a bare name', 'app'],
    ["over STS's length", `arn:aws:iam::111122223333:role/${'p/'.repeat(1100)}app`],
  ])('refuses %s', (_name, arn) => {
    expect(isRoleArn(arn)).toBe(false);
  });

  it("the length limit is STS's", () => {
    expect(MAX_ROLE_ARN_LENGTH).toBe(2048);
  });
});

describe('quoteValue', () => {
  it.each([
    ['plain', 'arn:aws:iam::1:role/x', '"arn:aws:iam::1:role/x"'],
    ['control characters and quotes escaped', 'a\nb\u001b[0m"c\\', '"a\\u000ab\\u001b[0m\\"c\\\\"'],
    ['non-ASCII escaped (no bidi tricks)', 'a\u202eb', '"a\\u202eb"'],
    ['cut at 60 with the length', 'x'.repeat(100_000), `"${'x'.repeat(60)}"… (100000 characters)`],
  ])('%s', (_name, value, shown) => {
    expect(quoteValue(value)).toBe(shown);
  });
});

describe('KubeLookups regions', () => {
  const nodes = {
    'node-1': { 'topology.kubernetes.io/region': 'eu-west-1' },
    'node-bare': {},
    'node-down': new ProviderError('UNAVAILABLE', 'Kubernetes GET /api/v1/nodes/node-down: HTTP 503 after 3 attempts'),
  };
  const pods = {
    'ns/p1': 'node-1',
    'ns/p2': 'node-1',
    'ns/bare': 'node-bare',
    'ns/unscheduled': '',
    'ns/lost': 'node-gone',
  };

  it('caches a node region for the process lifetime and shares it across pods', async () => {
    const f = fakeClient({ nodes, pods });
    const l = new KubeLookups(f.client);
    expect(await l.podRegion('ns', 'p1', signal())).toBe('eu-west-1');
    expect(await l.podRegion('ns', 'p2', signal())).toBe('eu-west-1');
    expect(await l.nodeRegion('node-1', signal())).toBe('eu-west-1');
    expect(f.calls).toEqual({ sa: [], pod: ['ns/p1', 'ns/p2'], node: ['node-1'] });
    expect(l.stats()).toEqual({ hits: 2, misses: 1 });
  });

  it('concurrent nodeRegion calls share one GET', async () => {
    const f = fakeClient({ nodes });
    f.state.hold = true;
    const l = new KubeLookups(f.client);
    const all = Promise.all(Array.from({ length: 5 }, () => l.nodeRegion('node-1', signal())));
    await tick();
    f.release();
    expect(await all).toEqual(Array(5).fill('eu-west-1'));
    expect(f.calls.node).toEqual(['node-1']);
  });

  it.each([
    {
      name: 'pod not found',
      call: (l: KubeLookups) => l.podRegion('ns', 'FailPod', signal()),
      code: 'NOT_FOUND',
      message: 'failed to retrieve region from node. error pods "FailPod" not found',
    },
    {
      name: 'node not found',
      call: (l: KubeLookups) => l.podRegion('ns', 'lost', signal()),
      code: 'NOT_FOUND',
      message: 'failed to retrieve region from node. error nodes "node-gone" not found',
    },
    {
      name: 'node not found (direct)',
      call: (l: KubeLookups) => l.nodeRegion('node-gone', signal()),
      code: 'NOT_FOUND',
      message: 'failed to retrieve region from node. error nodes "node-gone" not found',
    },
    {
      name: 'no region label',
      call: (l: KubeLookups) => l.podRegion('ns', 'bare', signal()),
      code: 'FAILED_PRECONDITION',
      message:
        'failed to retrieve region from node. error Region not found: node "node-bare" has no label ' +
        'topology.kubernetes.io/region; set region in the SecretProviderClass or AWS_REGION on the provider',
    },
    {
      name: 'no region label (direct)',
      call: (l: KubeLookups) => l.nodeRegion('node-bare', signal()),
      code: 'FAILED_PRECONDITION',
      message: /^failed to retrieve region from node\. error Region not found/,
    },
    {
      name: 'pod not scheduled',
      call: (l: KubeLookups) => l.podRegion('ns', 'unscheduled', signal()),
      code: 'FAILED_PRECONDITION',
      message: /error pod ns\/unscheduled has no spec\.nodeName/,
    },
    {
      name: 'node GET unavailable',
      call: (l: KubeLookups) => l.nodeRegion('node-down', signal()),
      code: 'UNAVAILABLE',
      message: /^failed to retrieve region from node\. error Kubernetes GET/,
    },
  ])('$name → $code', async ({ call, code, message }) => {
    const f = fakeClient({ nodes, pods });
    const l = new KubeLookups(f.client);
    for (let i = 0; i < 2; i++) {
      const err = await failure(call(l));
      expect(err.code).toBe(code);
      if (typeof message === 'string') expect(err.message).toBe(message);
      else expect(err.message).toMatch(message);
    }
    // Errors are not cached: the second call asked again.
    expect(f.calls.pod.length + f.calls.node.length).toBeGreaterThanOrEqual(2);
  });
});

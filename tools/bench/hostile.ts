/**
 * @module bench/hostile
 * `npm run bench -- --box-hostile`: the hostile tenant of README "One tenant's class, one node's
 * provider", played against the built provider in the chart's box (a real cgroup, 50m CPU / 100Mi,
 * the Dockerfile's NODE_OPTIONS, NODE_NAME; see ./cgroup.ts and ./box.ts). One tenant (`tenant-b`)
 * owns a class and a pod and tries, one attack after another, to take the node's provider down or
 * make it unusable; meanwhile a second tenant (`tenant-a`) mounts its own class every ~500 ms, as
 * the kubelet's retries and rotation polls would, and `/healthz` is polled as the kubelet's
 * liveness probe would (its 3 s timeout).
 *
 * For each attack it records what the provider answered the attacker, the box's peak working set
 * during the attack (charge − inactive page cache, sampled every 50 ms: the figure box.ts prints),
 * the second tenant's mounts (OK after the driver's retries of UNAVAILABLE, and OK at the first
 * attempt) and the /healthz answers. Every attack says what answer the README documents for it;
 * `problems` lists where the answer differs. test/box/hostile.test.ts asserts on the same runs.
 *
 * One provider serves every attack, as one node's provider serves every tenant; if one dies (a
 * restart in a cluster), that is recorded and a new one is started for the next attack.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import http2 from 'node:http2';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { status } from '@grpc/grpc-js';
import {
  mountAttributes,
  startEmulator,
  type DriverClient,
  type Emulator,
  type ObjectVersion,
} from '../emulator/index.js';
import { cgroupSupport, type BoxLimits } from './cgroup.js';
import type { BenchOptions } from './options.js';
import { startBoxedProvider, type BoxEnv } from './box.js';
import { describeExit, DOCKERFILE_NODE_OPTIONS, freePort, type ProviderProcess } from './provider-process.js';
import { mib, table } from './report.js';
import type { BenchIO } from './run.js';

const MiB = 1024 * 1024;
const KiB = 1024;
export const HOSTILE_REGION = 'us-east-1';
const NODE = 'node-1';
/** The second tenant mounts this often (a mount starts ~500 ms after the previous one ended). */
export const VICTIM_EVERY_MS = 500;
/** The kubelet's liveness probe of the chart: 3 s timeout (periodSeconds 10, failureThreshold 3). */
export const PROBE_TIMEOUT_MS = 3_000;
/** Probe failures in a row that make the kubelet restart the container (the chart's failureThreshold). */
export const LIVENESS_FAILURES = 3;
/** The kubelet's retries of a Mount answered UNAVAILABLE: after 1 s, 2 s, 4 s. */
const VICTIM_ATTEMPTS = 4;
/** Deadline of one Mount attempt: generous (the kubelet gives 2 minutes). */
const DEADLINE_MS = 90_000;

const sleep = (msecs: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, msecs));
const CODE_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(status)
    .filter(([, v]) => typeof v === 'number')
    .map(([k, v]) => [v, k]),
);

// ------------------------------------------------------------------ the provider

export interface HostileProvider {
  readonly proc: ProviderProcess;
  readonly client: DriverClient;
  readonly healthUrl: string;
  /** Aborted when the process ends before `stop()`. */
  readonly dead: AbortSignal;
  stop(): Promise<void>;
}

export interface HostileEnv {
  node: string;
  mainJs: string;
  emulatorUrl: string;
  kubeconfig: string;
  dir: string;
  kubeletRoot: string;
  /** The box; undefined runs the provider without one (no cgroup on this machine). */
  limits: BoxLimits | undefined;
  nodeOptions?: string;
}

/** The built provider as the chart starts it (./box.ts's startBoxedProvider), with /healthz on a loopback port. */
export async function startHostileProvider(
  env: HostileEnv,
  onLine?: (stream: 'stdout' | 'stderr', line: string) => void,
): Promise<HostileProvider> {
  const healthPort = await freePort();
  const boxEnv: BoxEnv = { ...env, extraFlags: [`--health-addr=127.0.0.1:${healthPort}`] };
  const p = await startBoxedProvider(boxEnv, 'hostile', env.limits, onLine);
  const healthUrl = `http://127.0.0.1:${healthPort}/healthz`;
  // The socket comes first; the kubelet probes only after its initial delay.
  for (const until = performance.now() + 60_000; performance.now() < until && !p.dead.aborted; await sleep(100)) {
    const up = await fetch(healthUrl, { signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) }).then(
      (r) => r.ok,
      () => false,
    );
    if (up) break;
  }
  return { proc: p.proc, client: p.client, healthUrl, dead: p.dead, stop: () => p.stop() };
}

// ------------------------------------------------------------------ the two tenants

export interface Outcome {
  code: string;
  details: string;
  ms: number;
  /** Files written into the target (provider-writes mode), when OK. */
  files?: string[];
  versions?: ObjectVersion[];
}

interface TenantPod {
  name: string;
  uid: string;
  tokens: Record<string, string>;
  target: string;
  versions: ObjectVersion[];
}

/** A namespace with a service account annotated with its own role, allowed its own secrets only. */
class Tenant {
  readonly serviceAccount = 'app';
  readonly roleArn: string;
  private made = 0;

  constructor(
    private readonly scene: HostileScene,
    readonly namespace: string,
  ) {
    const emu = scene.emu;
    this.roleArn = `arn:aws:iam::${emu.accountId}:role/${namespace}-reader`;
    emu.addRole({
      arn: this.roleArn,
      trust: { subjects: [`system:serviceaccount:${namespace}:${this.serviceAccount}`] },
      allow: { secretsmanager: [`${namespace}/*`] },
    });
    emu.addServiceAccount(namespace, this.serviceAccount, { 'eks.amazonaws.com/role-arn': this.roleArn });
  }

  /** A new pod of the tenant: its own pod-bound tokens and kubelet-shaped target (a new volume for every call of
   * `target`). */
  async pod(): Promise<TenantPod> {
    const name = `pod-${++this.made}`;
    const uid = randomUUID();
    this.scene.emu.addPod(this.namespace, name, NODE);
    const issue = (audience: string): string =>
      this.scene.emu.issueToken({
        namespace: this.namespace,
        serviceAccount: this.serviceAccount,
        audience,
        podName: name,
        podUid: uid,
      });
    const tokens = {
      'sts.amazonaws.com': issue('sts.amazonaws.com'),
      'pods.eks.amazonaws.com': issue('pods.eks.amazonaws.com'),
    };
    for (const t of Object.values(tokens)) this.scene.tokens.push(t);
    const pod: TenantPod = { name, uid, tokens, target: '', versions: [] };
    pod.target = await this.volume(pod);
    return pod;
  }

  /** A fresh volume of the pod (`<root>/pods/<uid>/volumes/kubernetes.io~csi/<volume>/mount`). */
  async volume(pod: TenantPod): Promise<string> {
    const target = path.join(
      this.scene.kubeletRoot,
      'pods',
      pod.uid,
      'volumes',
      'kubernetes.io~csi',
      `v-${randomBytes(4).toString('hex')}`,
      'mount',
    );
    await mkdir(target, { recursive: true });
    return target;
  }

  attributes(pod: TenantPod, parameters: Record<string, string>): Record<string, string> {
    return mountAttributes({
      podName: pod.name,
      namespace: this.namespace,
      serviceAccount: this.serviceAccount,
      podUid: pod.uid,
      tokens: pod.tokens,
      parameters,
      secretProviderClass: `${this.namespace}-class`,
    });
  }
}

/** The emulated node, its AWS account, the second tenant (`tenant-a`) and the attacker (`tenant-b`). */
export class HostileScene {
  readonly victim: Tenant;
  readonly attacker: Tenant;
  /** Every token issued and every secret marker, for leak checks. */
  readonly tokens: string[] = [];
  readonly markers: string[] = [];
  /** The second tenant's class and the files it must find. */
  readonly victimObjects: string;
  private readonly victimValues = new Map<string, string>();

  constructor(
    readonly emu: Emulator,
    readonly kubeletRoot: string,
  ) {
    emu.addNode(NODE, { 'topology.kubernetes.io/region': HOSTILE_REGION });
    this.victim = new Tenant(this, 'tenant-a');
    this.attacker = new Tenant(this, 'tenant-b');
    const lines: string[] = [];
    for (let k = 0; k < 3; k++) {
      const name = `tenant-a/db-${k}`;
      const value = JSON.stringify({ username: `a-user-${k}`, password: this.marker() });
      this.victimValues.set(name.replace('/', '_'), value);
      emu.putSecret(HOSTILE_REGION, name, value);
      lines.push(`- objectName: ${name}`, '  objectType: secretsmanager');
      if (k === 0) lines.push('  jmesPath:', '    - path: username', '      objectAlias: user');
    }
    this.victimValues.set('user', 'a-user-0');
    this.victimObjects = `${lines.join('\n')}\n`;
  }

  /** A fresh secret-looking marker (registered for the leak check). */
  marker(): string {
    const m = `pw-${randomBytes(12).toString('hex')}`;
    this.markers.push(m);
    return m;
  }

  /** An attacker's secret (its name must start with `tenant-b/`: the attacker's role reads only those). */
  putAttackerSecret(name: string, value: string): void {
    this.emu.putSecret(HOSTILE_REGION, name, value);
  }

  /** What the second tenant's volume must hold. */
  victimFiles(): Record<string, string> {
    return Object.fromEntries(this.victimValues);
  }
}

// ------------------------------------------------------------------ mounts

async function call(
  client: DriverClient,
  attributes: Record<string, string>,
  pod: TenantPod,
  o: { withVersions: boolean; deadlineMs?: number; signal?: AbortSignal },
): Promise<Outcome> {
  const t0 = performance.now();
  if (o.signal?.aborted === true) return { code: 'CANCELLED', details: 'the provider process had ended', ms: 0 };
  try {
    const res = await client.mount(
      { attributes, targetPath: pod.target, currentObjectVersion: o.withVersions ? pod.versions : [] },
      { deadlineMs: o.deadlineMs ?? DEADLINE_MS, ...(o.signal === undefined ? {} : { signal: o.signal }) },
    );
    pod.versions = res.objectVersion;
    const files = await readdir(pod.target).catch(() => []);
    return { code: 'OK', details: '', ms: performance.now() - t0, files, versions: res.objectVersion };
  } catch (err) {
    const e = err as { code?: unknown; details?: unknown };
    const code = typeof e?.code === 'number' ? (CODE_NAMES[e.code] ?? String(e.code)) : 'CLIENT_ERROR';
    const details = typeof e?.details === 'string' ? e.details : err instanceof Error ? err.message : String(err);
    return { code, details, ms: performance.now() - t0 };
  }
}

/** What an attack may use: the attacker's pod and mounts, the scene, the provider's socket and metrics. */
export interface AttackCtx {
  scene: HostileScene;
  provider: HostileProvider;
  /** One Mount of the attacker's pod with these class parameters (region: the node's, unless given), into a fresh
   * volume. */
  mount(
    parameters: Record<string, string>,
    o?: { extra?: Record<string, string>; withVersions?: boolean },
  ): Promise<Outcome>;
  /** Size of sizes: quick runs use smaller ones where the bound does not depend on them. */
  quick: boolean;
}

/** What an attack came to: the attacker's answers and where they differ from the documented ones. */
export interface AttackReport {
  outcomes: Outcome[];
  /** Differences from what the README documents (empty: as documented). */
  problems: string[];
  /** What the attack sent, in a few words. */
  sent: string;
  /** Anything else worth printing. */
  note?: string;
}

export interface Attack {
  id: string;
  title: string;
  /** The answer the README documents for it, in a few words. */
  documented: string;
  run(ctx: AttackCtx): Promise<AttackReport>;
}

/** The gRPC code names and message patterns an outcome must match; a problem line for each that does not. */
function expectRefused(
  outcomes: readonly Outcome[],
  codes: readonly string[],
  message: RegExp,
  what = 'the attacker',
): string[] {
  const problems: string[] = [];
  outcomes.forEach((o, i) => {
    if (!codes.includes(o.code))
      problems.push(`${what}'s call ${i + 1}: ${o.code} (want ${codes.join(' or ')}): ${o.details.slice(0, 300)}`);
    else if (!message.test(o.details))
      problems.push(
        `${what}'s call ${i + 1}: ${o.code} with a message not matching ${message}: ${o.details.slice(0, 300)}`,
      );
    else if (o.details.length > 16 * KiB)
      problems.push(`${what}'s call ${i + 1}: a message of ${o.details.length} characters (an event keeps ~1 KB)`);
  });
  return problems;
}

/** `INVALID_ARGUMENT ×3` style summary of outcomes, with the first message of each code. */
export function answered(outcomes: readonly Outcome[]): string {
  const by = new Map<string, { n: number; first: string }>();
  for (const o of outcomes) {
    const e = by.get(o.code) ?? { n: 0, first: o.details };
    e.n++;
    by.set(o.code, e);
  }
  return [...by].map(([code, { n }]) => `${code}${n > 1 ? ` ×${n}` : ''}`).join(', ');
}

/** The first message of each code, for the notes. */
function firstMessages(outcomes: readonly Outcome[]): string[] {
  const seen = new Map<string, string>();
  for (const o of outcomes) if (!seen.has(o.code) && o.details !== '') seen.set(o.code, o.details);
  return [...seen].map(([c, d]) => `${c}: ${d}`);
}

/**
 * The size refusals, before parsing: `objects` over 128 KiB, or the whole attributes (JSON, where
 * every newline of `objects` takes two bytes) over 512 KiB.
 */
const TOO_BIG = new RegExp(
  String.raw`objects: the text is \d+ KiB, more than the 128 KiB this provider reads|` +
    String.raw`attributes are \d+ KiB, more than the 512 KiB this provider reads`,
);
/** `part(0) + part(1) + …` until the text is `bytes` long (cut there). */
function upTo(bytes: number, part: (i: number) => string): string {
  const parts: string[] = [];
  for (let i = 0, n = 0; n < bytes; i++) {
    const p = part(i);
    parts.push(p);
    n += p.length;
  }
  return parts.join('').slice(0, bytes);
}
const kib = (text: string): string => `${(text.length / KiB).toFixed(0)} KiB`;
const sm = (name: string, extra = ''): string => `- {objectName: ${name}, objectType: secretsmanager${extra}}`;
/** The jmesPath bombs are evaluated against this secret (the attacker's own, JSON). */
const JMES_SECRET = 'tenant-b/json';
const DIGITS = '`[0,1,2,3,4,5,6,7,8,9]`';
/** A 10-element literal projected into itself 7 levels deep: 10⁷ arrays if evaluated unbounded. */
export const LITERAL_BOMB = Array.from({ length: 7 }).reduce<string>((inner) => `${DIGITS}[*].[${inner}]`, '@');
const AT = '@,'.repeat(9) + '@';
/** Filters nested 8 deep over a 10-element list: 10⁸ filter steps if evaluated unbounded. */
export const FILTER_BOMB = Array.from({ length: 8 }).reduce<string>((inner) => `[${AT}][?${inner}]`, '@');

/** The attacks, in the README's order. Sizes follow the hostile tenant the README's bounds answer. */
export function attacks(): Attack[] {
  return [
    {
      id: 'nested-brackets',
      title: 'objects: 100 KiB of nested [[[…]]] (50,000 deep)',
      documented: 'INVALID_ARGUMENT: nesting, before parsing',
      async run(ctx) {
        const objects = '['.repeat(50_000) + ']'.repeat(50_000);
        const outcomes = [await ctx.mount({ objects }), await ctx.mount({ objects })];
        return {
          sent: `${kib(objects)}, twice`,
          outcomes,
          problems: expectRefused(outcomes, ['INVALID_ARGUMENT'], /objects: .*nested too deeply/),
        };
      },
    },
    {
      id: 'yaml-documents',
      title: 'objects: one valid document, then 0.5 MiB of --- documents',
      documented: 'INVALID_ARGUMENT: size, before parsing',
      async run(ctx) {
        ctx.scene.putAttackerSecret('tenant-b/first', 'first-doc-value');
        const objects = `${sm('tenant-b/first')}\n${'---\n- [a, b, {c: d}]\n'.repeat(Math.ceil((512 * KiB) / 21))}`;
        const outcomes = [await ctx.mount({ objects }), await ctx.mount({ objects })];
        return {
          sent: `${(objects.length / KiB).toFixed(0)} KiB, twice`,
          outcomes,
          problems: expectRefused(outcomes, ['INVALID_ARGUMENT'], TOO_BIG),
        };
      },
    },
    {
      id: 'yaml-documents-small',
      title: 'objects: one valid document, then 120 KiB of --- documents',
      documented: 'OK: only the first document read (as go-yaml)',
      async run(ctx) {
        ctx.scene.putAttackerSecret('tenant-b/first', 'first-doc-value');
        const doc = `---\n${'['.repeat(40)}${']'.repeat(40)}\n${sm('tenant-b/never')}\n`;
        const objects = `${sm('tenant-b/first')}\n${doc.repeat(Math.floor((120 * KiB) / doc.length))}`;
        const outcomes = [await ctx.mount({ objects }), await ctx.mount({ objects })];
        const problems: string[] = [];
        for (const [i, o] of outcomes.entries()) {
          if (o.code !== 'OK')
            problems.push(
              `call ${i + 1}: ${o.code} ${o.details.slice(0, 300)} (want OK with the first document's file)`,
            );
          else if (JSON.stringify(o.files) !== JSON.stringify(['tenant-b_first']))
            problems.push(`call ${i + 1}: files ${JSON.stringify(o.files)} (want only the first document's)`);
        }
        return { sent: `${(objects.length / KiB).toFixed(0)} KiB, twice`, outcomes, problems };
      },
    },
    {
      id: 'flow-map',
      title: 'objects: a 0.5 MiB flow map; a 1 MiB list',
      documented: 'INVALID_ARGUMENT: size, before parsing',
      async run(ctx) {
        const map = `{${upTo(512 * KiB, (i) => `k${i}: ${i}, `)}k: end}`;
        const list = upTo(MiB, (i) => `- k${i}: ${i}\n`);
        const byMap = [await ctx.mount({ objects: map })];
        const byList = [await ctx.mount({ objects: list })];
        return {
          sent: `${kib(map)} map, ${kib(list)} list`,
          outcomes: [...byMap, ...byList],
          problems: [
            ...expectRefused(byMap, ['INVALID_ARGUMENT'], TOO_BIG),
            ...expectRefused(
              byList,
              ['INVALID_ARGUMENT'],
              /attributes are \d+ KiB, more than the 512 KiB this provider reads/,
            ),
          ],
        };
      },
    },
    {
      id: 'big-classes',
      title: "two 0.9 MiB classes alternating; new valid 127 KiB classes past the cache's 1 MiB",
      documented: 'INVALID_ARGUMENT: attributes over 512 KiB; the rest OK, cache bounded (1 MiB)',
      async run(ctx) {
        ctx.scene.putAttackerSecret('tenant-b/first', 'first-doc-value');
        const big = (tag: string): string =>
          `${sm('tenant-b/first')}\n# ${tag.repeat(Math.ceil((0.9 * MiB) / tag.length))}\n`;
        const huge: Outcome[] = [];
        for (let i = 0; i < 4; i++) huge.push(await ctx.mount({ objects: big(i % 2 === 0 ? 'a' : 'b') }));
        // Valid classes just under 128 KiB, each new: every one is parsed and would be cached.
        const valid: Outcome[] = [];
        // 9 × 127 KiB is more than the 1 MiB of class text the cache keeps.
        const n = ctx.quick ? 9 : 12;
        for (let i = 0; i < n; i++) {
          const pad = Array.from({ length: 3_000 }, (_, k) => `# ${i}-${k} ${'x'.repeat(30)}`).join('\n');
          valid.push(
            await ctx.mount({
              objects: `${sm('tenant-b/first', `, objectAlias: copy-${i}`)}\n${pad}\n`.slice(0, 127 * KiB),
            }),
          );
        }
        const problems = expectRefused(
          huge,
          ['INVALID_ARGUMENT'],
          /attributes are \d+ KiB, more than the 512 KiB this provider reads/,
        );
        for (const [i, o] of valid.entries()) {
          if (o.code !== 'OK') problems.push(`valid class ${i + 1}: ${o.code} ${o.details.slice(0, 300)}`);
          else if (JSON.stringify(o.files) !== JSON.stringify([`copy-${i}`]))
            problems.push(`valid class ${i + 1}: files ${JSON.stringify(o.files)}`);
        }
        return { sent: `4 × 0.9 MiB, then ${n} × 127 KiB`, outcomes: [...huge, ...valid], problems };
      },
    },
    {
      id: 'jmes-literal',
      title: `jmesPath: a ${LITERAL_BOMB.length}-byte literal projected 7 deep (10⁷ nodes)`,
      documented: 'INVALID_ARGUMENT: evaluation budget (16 MiB / 100 ms CPU)',
      async run(ctx) {
        ctx.scene.putAttackerSecret(JMES_SECRET, JSON.stringify({ password: ctx.scene.marker(), n: [1, 2, 3] }));
        const objects = [
          `- objectName: ${JMES_SECRET}`,
          '  objectType: secretsmanager',
          '  jmesPath:',
          `    - path: '${LITERAL_BOMB}'`,
          '      objectAlias: boom',
        ].join('\n');
        const outcomes = [await ctx.mount({ objects }), await ctx.mount({ objects })];
        return {
          sent: `${LITERAL_BOMB.length} B path, twice`,
          outcomes,
          problems: expectRefused(
            outcomes,
            ['INVALID_ARGUMENT'],
            /jmesPath path of boom in tenant-b\/json exceeded the evaluation budget/,
          ),
        };
      },
    },
    {
      id: 'jmes-filters',
      title: `jmesPath: filters nested 8 deep (${FILTER_BOMB.length} B, 10⁸ steps)`,
      documented: 'INVALID_ARGUMENT: evaluation budget; the next poll not evaluated again',
      async run(ctx) {
        ctx.scene.putAttackerSecret(JMES_SECRET, JSON.stringify({ password: ctx.scene.marker(), n: [1, 2, 3] }));
        const objects = [
          `- objectName: ${JMES_SECRET}`,
          '  objectType: secretsmanager',
          '  jmesPath:',
          `    - path: '${FILTER_BOMB}'`,
          '      objectAlias: boom',
        ].join('\n');
        const outcomes = [await ctx.mount({ objects }), await ctx.mount({ objects }), await ctx.mount({ objects })];
        const problems = expectRefused(
          outcomes,
          ['INVALID_ARGUMENT'],
          /jmesPath path of boom in tenant-b\/json exceeded the evaluation budget/,
        );
        if (!outcomes.slice(1).some((o) => /not evaluated again until/.test(o.details)))
          problems.push('no later call was refused without evaluating the path again');
        return { sent: `${FILTER_BOMB.length} B path, 3 times`, outcomes, problems };
      },
    },
    {
      id: 'alias-fan-out',
      title: 'one 64 KiB secret named by 450 objects under distinct aliases (28 MiB of files)',
      documented: 'one fetch; RESOURCE_EXHAUSTED naming the bytes (4 MiB a mount)',
      async run(ctx) {
        // Under the 500 objects one class may name (1,700 fit in the 128 KiB of `objects`, and are
        // refused before parsing); far over the 4 MiB of files one mount may make.
        const n = 450;
        ctx.scene.putAttackerSecret('tenant-b/f', `${ctx.scene.marker()}:${'v'.repeat(64 * KiB - 40)}`);
        const objects = Array.from({ length: n }, (_, i) => sm('tenant-b/f', `, objectAlias: f${i}`)).join('\n');
        const named = (): number =>
          ctx.scene.emu.calls.filter((c) => c.service === 'secretsmanager' && c.names.includes('tenant-b/f')).length;
        const before = named();
        const outcomes = [await ctx.mount({ objects }), await ctx.mount({ objects })];
        const calls = named() - before;
        const problems = expectRefused(outcomes, ['RESOURCE_EXHAUSTED'], /one mount may read|files/);
        // De-duplicated: a handful of Secrets Manager calls per mount, not one per object.
        if (calls > 2 * outcomes.length)
          problems.push(`${calls} Secrets Manager calls for ${outcomes.length} mounts of one secret`);
        return {
          sent: `${n} objects (${(objects.length / KiB).toFixed(0)} KiB), twice`,
          outcomes,
          problems,
          note: `${calls} Secrets Manager calls for ${outcomes.length} mounts`,
        };
      },
    },
    {
      id: 'all-keys',
      title: 'allKeys on 20 secrets of 64 KiB (~5,000 keys each)',
      documented: 'RESOURCE_EXHAUSTED: files one mount makes (5,000)',
      async run(ctx) {
        const names: string[] = [];
        for (let s = 0; s < 20; s++) {
          const name = `tenant-b/keys-${s}`;
          // `"k1234":"v",` is 12 bytes: ~5,400 keys make 64 KiB.
          const keys = Array.from(
            { length: Math.floor((64 * KiB - 64) / 12) },
            (_, k) => `"k${String(k).padStart(4, '0')}":"v"`,
          );
          ctx.scene.putAttackerSecret(name, `{"password":"${ctx.scene.marker()}",${keys.join(',')}}`);
          names.push(name);
        }
        const objects = names.map((n) => sm(n, ', allKeys: true')).join('\n');
        const outcomes = [await ctx.mount({ objects }), await ctx.mount({ objects })];
        return {
          sent: '20 objects with allKeys, twice',
          outcomes,
          problems: expectRefused(
            outcomes,
            ['RESOURCE_EXHAUSTED'],
            /this class makes more than 5000 files \(reached at object tenant-b\/keys-\d+\)/,
          ),
        };
      },
    },
    {
      id: 'regions',
      title: "invented regions: 100 not of an AWS form; 2 × N of a partition's form",
      documented: 'INVALID_ARGUMENT naming the region; form-valid names: AWS answers, label `other`',
      async run(ctx) {
        ctx.scene.putAttackerSecret('tenant-b/r', 'r-value');
        const bad: Outcome[] = [];
        for (let i = 0; i < 100; i++)
          bad.push(await ctx.mount({ objects: sm('tenant-b/r'), region: `hostile-region-${i}` }));
        // Names of the aws partition's form that no region has: each becomes SDK clients unless bounded.
        const prefixes = ['us', 'eu', 'ap', 'sa', 'ca', 'me', 'af', 'il', 'mx'];
        // Quick: 80 names, more than the 64 regions whose SDK clients are kept.
        const formValid = ctx.quick ? 40 : 100;
        const name = (i: number): string =>
          `${prefixes[i % prefixes.length] as string}-hostile-${Math.floor(i / prefixes.length) + 1}`;
        const good: Outcome[] = [];
        for (let i = 0; i < formValid; i++)
          good.push(
            await ctx.mount({ objects: sm('tenant-b/r'), region: name(2 * i), failoverRegion: name(2 * i + 1) }),
          );
        const problems = expectRefused(
          bad,
          ['INVALID_ARGUMENT'],
          /region "hostile-region-\d+" .*is not an AWS region name|hostile-region-\d+.*is not an AWS region name/,
        );
        for (const [i, o] of good.entries()) {
          if (['INTERNAL', 'UNKNOWN', 'DEADLINE_EXCEEDED', 'CANCELLED', 'CLIENT_ERROR'].includes(o.code))
            problems.push(`form-valid region ${name(2 * i)}: ${o.code} ${o.details.slice(0, 300)}`);
        }
        const metrics = await fetch(ctx.provider.proc.metricsUrl, { signal: AbortSignal.timeout(10_000) }).then(
          (r) => r.text(),
          (e: unknown) => `unreadable: ${String(e)}`,
        );
        if (metrics.startsWith('unreadable')) problems.push(`/metrics ${metrics}`);
        else if (metrics.includes('hostile')) problems.push('/metrics names an invented region');
        return {
          sent: `100 + ${formValid} mounts (${2 * formValid} form-valid names)`,
          outcomes: [...bad, ...good],
          problems,
        };
      },
    },
    {
      id: 'socket-flood',
      title: 'the socket: 300 idle connections, 20 half-sent 4 MiB requests',
      documented: 'connections over the cap (8) closed; requests within the 8 MiB budget',
      async run(ctx) {
        const socketPath = ctx.provider.proc.socketPath;
        // The half-sent requests first: their connection takes one of the socket's 8 slots before the flood.
        const session = http2.connect('http://localhost', { createConnection: () => net.connect(socketPath) });
        session.on('error', () => {});
        await new Promise<void>((resolve) => {
          session.once('connect', () => resolve());
          session.once('error', () => resolve());
          session.once('close', () => resolve());
        });
        for (let i = 0; i < 20; i++) {
          const stream = session.request({
            ':method': 'POST',
            ':path': '/v1alpha1.CSIDriverProvider/Mount',
            'content-type': 'application/grpc',
            te: 'trailers',
          });
          stream.on('error', () => {});
          const head = Buffer.alloc(5);
          head.writeUInt32BE(4 * MiB - 5, 1);
          stream.write(head);
          stream.write(Buffer.alloc(MiB, 0x61)); // a quarter of it, never the rest
        }
        // Then a flood of connections that never send a byte.
        const sockets: net.Socket[] = [];
        let closed = 0;
        for (let i = 0; i < 300; i++) {
          const s = net.connect(socketPath);
          s.on('error', () => {});
          s.on('close', () => closed++);
          sockets.push(s);
          if (i % 50 === 49) await sleep(20);
        }
        // All held for 8 s while the second tenant mounts, then let go. What the half-sent requests hold
        // in the provider: at most the receive budget (8 MiB) and a flow-control window per paused call
        // (src/server/transport.ts).
        let arriving = 0;
        for (const until = performance.now() + 8_000; performance.now() < until; await sleep(500)) {
          const text = await fetch(ctx.provider.proc.metricsUrl, {
            signal: AbortSignal.timeout(PROBE_TIMEOUT_MS),
          }).then(
            (r) => r.text(),
            () => '',
          );
          arriving = Math.max(
            arriving,
            Number(/^csi_provider_aws_grpc_request_bytes_arriving (\S+)$/m.exec(text)?.[1] ?? 0),
          );
        }
        const closedWhileHeld = closed;
        for (const s of sockets) s.destroy();
        session.destroy();
        const problems: string[] = [];
        // The cap is 8 connections, the second tenant's and this session among them.
        if (closedWhileHeld < 300 - 8)
          problems.push(`${closedWhileHeld} of 300 idle connections closed within 8 s (want all over the cap of 8)`);
        if (arriving === 0)
          problems.push('no bytes of the half-sent requests were seen arriving: the attack did not reach the provider');
        if (arriving > 8 * MiB + 20 * 128 * KiB)
          problems.push(
            `half-sent requests held ${mib(arriving)} in the provider (want at most the 8 MiB budget and a window ` +
              `per paused call)`,
          );
        const outcomes: Outcome[] = [
          {
            code: closedWhileHeld >= 300 - 8 ? 'CLOSED' : 'HELD',
            details: `${closedWhileHeld} of 300 idle connections closed at once or by the handshake timeout`,
            ms: 0,
          },
          { code: 'HELD', details: `half-sent requests held at most ${mib(arriving)} in the provider`, ms: 0 },
        ];
        return { sent: '300 connections, 20 × 1 MiB of 4 MiB', outcomes, problems };
      },
    },
  ];
}

// ------------------------------------------------------------------ the runner

export interface VictimStats {
  mounts: number;
  ok: number;
  okFirstAttempt: number;
  /** Mounts that did not end OK (after retries), or whose files were wrong. */
  failures: string[];
  unavailable: number;
  /** Slowest mount, retries included, ms. */
  slowestMs: number;
}

export interface HealthStats {
  probes: number;
  ok: number;
  /** Longest run of failed probes in a row. */
  worstRun: number;
  failures: string[];
}

export interface AttackResult {
  attack: Attack;
  report: AttackReport;
  victim: VictimStats;
  health: HealthStats;
  /** Peak working set of the box during the attack (NaN without a box). */
  peakWorkingSet: number;
  peakAnon: number;
  oomKills: number;
  /** The provider ended during the attack (a restart in a cluster), and how. */
  died: string | undefined;
  wallMs: number;
}

/** The second tenant: a mount every ~500 ms from a few pods, UNAVAILABLE retried as the driver does, files checked. */
async function victimLoop(
  scene: HostileScene,
  p: HostileProvider,
  pods: TenantPod[],
  stop: AbortSignal,
): Promise<VictimStats> {
  const s: VictimStats = { mounts: 0, ok: 0, okFirstAttempt: 0, failures: [], unavailable: 0, slowestMs: 0 };
  const want = scene.victimFiles();
  let i = 0;
  while (!stop.aborted) {
    const t0 = performance.now();
    const pod = pods[i++ % pods.length] as TenantPod;
    const attributes = scene.victim.attributes(pod, { objects: scene.victimObjects });
    let o = await call(p.client, attributes, pod, { withVersions: pod.versions.length > 0, signal: p.dead });
    const first = o.code;
    for (let n = 1; o.code === 'UNAVAILABLE' && n < VICTIM_ATTEMPTS && !p.dead.aborted; n++) {
      s.unavailable++;
      await sleep(1_000 * 2 ** (n - 1));
      o = await call(p.client, attributes, pod, { withVersions: pod.versions.length > 0, signal: p.dead });
    }
    if (o.code === 'UNAVAILABLE') s.unavailable++;
    s.mounts++;
    s.slowestMs = Math.max(s.slowestMs, performance.now() - t0);
    let wrong = '';
    if (o.code === 'OK') {
      for (const [file, value] of Object.entries(want)) {
        const got = await readFile(path.join(pod.target, file), 'utf8').catch(() => undefined);
        if (got !== value) wrong = `${file} ${got === undefined ? 'missing' : 'has a wrong value'}`;
      }
    }
    if (o.code === 'OK' && wrong === '') {
      s.ok++;
      if (first === 'OK') s.okFirstAttempt++;
    } else
      s.failures.push(
        o.code === 'OK'
          ? `mount ${s.mounts}: OK but ${wrong}`
          : `mount ${s.mounts}: ${o.code} after ${(o.ms / 1000).toFixed(1)} s: ${o.details.slice(0, 300)}`,
      );
    const left = VICTIM_EVERY_MS - (performance.now() - t0);
    if (left > 0 && !stop.aborted) await sleep(left);
  }
  return s;
}

/** /healthz every ~500 ms with the liveness probe's timeout. */
async function healthLoop(p: HostileProvider, stop: AbortSignal): Promise<HealthStats> {
  const s: HealthStats = { probes: 0, ok: 0, worstRun: 0, failures: [] };
  let run = 0;
  while (!stop.aborted) {
    const t0 = performance.now();
    let problem = '';
    try {
      const res = await fetch(p.healthUrl, { signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) });
      const body = await res.text();
      if (res.status !== 200) problem = `HTTP ${res.status} ${body.slice(0, 100)}`;
    } catch (err) {
      problem = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    }
    s.probes++;
    if (problem === '') {
      s.ok++;
      run = 0;
    } else {
      run++;
      s.worstRun = Math.max(s.worstRun, run);
      if (s.failures.length < 5) s.failures.push(problem);
    }
    const left = VICTIM_EVERY_MS - (performance.now() - t0);
    if (left > 0 && !stop.aborted) await sleep(left);
  }
  return s;
}

export interface HostileSession {
  scene: HostileScene;
  /** Results of the attacks run so far, in order. */
  results: AttackResult[];
  /** Every line the providers printed (for leak checks). */
  output: string[];
  boxed: boolean;
  /** The first provider's start-up (exec → socket), s. */
  startupS: number;
  /** Providers started: 1 unless one died (a restart in a cluster). */
  starts: number;
  /** Runs one attack (by id) on the current provider, starting a new one first if the last died. */
  attack(id: string): Promise<AttackResult>;
  close(): Promise<void>;
}

/** The result of a whole run: every attack, in order. */
export type HostileRun = Omit<HostileSession, 'attack'>;

export interface HostileRunOptions {
  node: string;
  mainJs: string;
  limits: BoxLimits | undefined;
  /** Every attack lasts at least this long, so the second tenant mounts several times meanwhile. */
  minWindowMs?: number;
  quick?: boolean;
  nodeOptions?: string;
  progress?: (line: string) => void;
}

/** Where the kubelet-shaped volumes go: a tmpfs when there is one (the driver mounts each volume as one). */
function volumeBase(): string {
  return process.platform === 'linux' ? '/dev/shm' : os.tmpdir();
}

/**
 * Starts the emulator and a provider, and the second tenant's pods with their first mounts done.
 * `attack(id)` then runs one attack with the second tenant mounting and /healthz polled meanwhile.
 * `close()` stops everything (also after a failure).
 */
export async function startHostileSession(o: HostileRunOptions): Promise<HostileSession> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'csi-aws-hostile-'));
  const volumes = await mkdtemp(path.join(volumeBase(), 'csi-aws-hostile-volumes-')).catch(() =>
    mkdtemp(path.join(os.tmpdir(), 'csi-aws-hostile-volumes-')),
  );
  const emu = await startEmulator({ latencyMs: 0 });
  const kubeconfig = path.join(dir, 'kubeconfig');
  await emu.writeKubeconfig(kubeconfig);
  const kubeletRoot = path.join(volumes, 'kubelet');
  const scene = new HostileScene(emu, kubeletRoot);
  const output: string[] = [];
  const env: HostileEnv = {
    node: o.node,
    mainJs: o.mainJs,
    emulatorUrl: emu.url,
    kubeconfig,
    dir,
    kubeletRoot,
    limits: o.limits,
    ...(o.nodeOptions === undefined ? {} : { nodeOptions: o.nodeOptions }),
  };
  const onLine = (_: string, line: string): void => {
    output.push(line);
  };
  const running = new Set<HostileProvider>();
  const close = async (): Promise<void> => {
    for (const p of running) await p.stop().catch(() => {});
    running.clear();
    await emu.close();
    await rm(dir, { recursive: true, force: true });
    await rm(volumes, { recursive: true, force: true });
  };
  try {
    let p = await startHostileProvider(env, onLine);
    running.add(p);
    const victimPods = await Promise.all([scene.victim.pod(), scene.victim.pod(), scene.victim.pod()]);
    // The second tenant's pods were running before the attacker came: their first mounts are done.
    for (const pod of victimPods) {
      const first = await call(p.client, scene.victim.attributes(pod, { objects: scene.victimObjects }), pod, {
        withVersions: false,
        signal: p.dead,
      });
      if (first.code !== 'OK')
        throw new Error(`the second tenant's first mount failed before any attack: ${first.code} ${first.details}`);
    }
    const byId = new Map(attacks().map((a) => [a.id, a]));
    const session: HostileSession = {
      scene,
      results: [],
      output,
      boxed: o.limits !== undefined,
      startupS: p.proc.startupWallMs / 1000,
      starts: 1,
      async attack(id) {
        const attack = byId.get(id);
        if (attack === undefined) throw new RangeError(`no attack ${id}`);
        if (p.dead.aborted) {
          running.delete(p);
          await p.stop().catch(() => {});
          o.progress?.('  starting a new provider (the last one died)');
          p = await startHostileProvider(env, onLine);
          running.add(p);
          session.starts++;
        }
        o.progress?.(`  attack: ${attack.title}`);
        const r = await runOne(scene, p, attack, victimPods, o);
        session.results.push(r);
        return r;
      },
      close,
    };
    return session;
  } catch (err) {
    await close();
    throw err;
  }
}

/** Every attack (or those named), in order, on one session. */
export async function runHostile(o: HostileRunOptions & { only?: readonly string[] }): Promise<HostileRun> {
  const session = await startHostileSession(o);
  try {
    for (const a of attacks()) if (o.only === undefined || o.only.includes(a.id)) await session.attack(a.id);
  } catch (err) {
    await session.close();
    throw err;
  }
  return session;
}

async function runOne(
  scene: HostileScene,
  p: HostileProvider,
  attack: Attack,
  victimPods: TenantPod[],
  o: HostileRunOptions,
): Promise<AttackResult> {
  const box = p.proc.box;
  const oomBefore = box?.stats().oomKills ?? 0;
  let peakWorkingSet = box === undefined ? Number.NaN : 0;
  let peakAnon = box === undefined ? Number.NaN : 0;
  const sampler = setInterval(() => {
    const st = box?.stats();
    if (st === undefined) return;
    peakWorkingSet = Math.max(peakWorkingSet, st.workingSetBytes);
    peakAnon = Math.max(peakAnon, st.anonBytes);
  }, 50);
  const stop = new AbortController();
  const t0 = performance.now();
  const victim = victimLoop(scene, p, victimPods, stop.signal);
  const health = healthLoop(p, stop.signal);
  const attackerPod = await scene.attacker.pod();
  const ctx: AttackCtx = {
    scene,
    provider: p,
    quick: o.quick === true,
    async mount(parameters, m = {}) {
      const params = { ...parameters };
      attackerPod.target = await scene.attacker.volume(attackerPod);
      const attributes = { ...scene.attacker.attributes(attackerPod, params), ...m.extra };
      return call(p.client, attributes, attackerPod, { withVersions: m.withVersions ?? false, signal: p.dead });
    },
  };
  let report: AttackReport;
  try {
    report = await attack.run(ctx);
  } catch (err) {
    report = {
      sent: '?',
      outcomes: [],
      problems: [`the attack itself failed: ${err instanceof Error ? err.message : String(err)}`],
    };
  }
  const minWindow = o.minWindowMs ?? 5_000;
  while (performance.now() - t0 < minWindow && !p.dead.aborted) await sleep(100);
  stop.abort();
  const [v, h] = await Promise.all([victim, health]);
  clearInterval(sampler);
  const st = box?.stats();
  if (st !== undefined) {
    peakWorkingSet = Math.max(peakWorkingSet, st.workingSetBytes);
    peakAnon = Math.max(peakAnon, st.anonBytes);
  }
  // A process that just died may not be reaped yet.
  if (p.dead.aborted) await Promise.race([p.proc.exited, sleep(1_000)]);
  const exit = p.proc.exit;
  return {
    attack,
    report,
    victim: v,
    health: h,
    peakWorkingSet,
    peakAnon,
    oomKills: (st?.oomKills ?? 0) - oomBefore,
    died: exit === undefined ? undefined : `${describeExit(exit)}; stderr: ${p.proc.stderrTail().slice(-600)}`,
    wallMs: performance.now() - t0,
  };
}

// ------------------------------------------------------------------ leaks and printing

/** Where a token or a secret marker of the run appears in the providers' output (named, never printed). */
export function hostileLeaks(run: HostileRun): string[] {
  const text = run.output.join('\n');
  const found: string[] = [];
  run.scene.tokens.forEach((t, i) => {
    const sig = t.split('.')[2] ?? t;
    if (text.includes(t) || (sig.length >= 16 && text.includes(sig))) found.push(`token #${i}`);
  });
  run.scene.markers.forEach((m, i) => {
    if (text.includes(m)) found.push(`secret marker #${i}`);
  });
  if (/eyJ[\w-]{10,}\.eyJ[\w-]{10,}\.[\w-]{10,}/.test(text)) found.push('something shaped like a JWT');
  return found;
}

/** The table of the run: one row per attack. */
export function hostileTable(run: HostileRun): string[] {
  const rows = run.results.map((r) => [
    r.attack.id,
    r.died !== undefined ? `DIED (${r.died.split(';')[0] ?? ''})` : answered(r.report.outcomes),
    r.report.problems.length === 0 ? 'as documented' : `NOT (${r.report.problems.length})`,
    Number.isFinite(r.peakWorkingSet) ? mib(r.peakWorkingSet) : 'no box',
    `${r.victim.ok}/${r.victim.mounts} (1st ` +
      `try ${r.victim.okFirstAttempt}; max ${(r.victim.slowestMs / 1000).toFixed(1)} s)`,
    `${r.health.ok}/${r.health.probes}${r.health.worstRun > 0 ? ` (${r.health.worstRun} in a row)` : ''}`,
    `${(r.wallMs / 1000).toFixed(0)} s`,
  ]);
  return table(
    [
      'attack',
      'provider answered the attacker',
      'vs README',
      'peak working set',
      'tenant-a mounts OK',
      '/healthz OK',
      'wall',
    ],
    rows,
  ).split('\n');
}

/** Lines below the table: what each attack sent and the first message of each answer (cut to fit). */
export function hostileNotes(run: HostileRun, width = 140): string[] {
  const cut = (s: string): string => (s.length <= width ? s : `${s.slice(0, width - 1)}…`);
  const lines: string[] = [];
  for (const r of run.results) {
    lines.push(cut(`${r.attack.id}: ${r.attack.title}; sent ${r.report.sent}; documented: ${r.attack.documented}`));
    if (r.report.note !== undefined) lines.push(cut(`  ${r.report.note}`));
    for (const m of firstMessages(r.report.outcomes)) lines.push(cut(`  ${m}`));
    for (const pr of r.report.problems.slice(0, 3)) lines.push(cut(`  PROBLEM: ${pr}`));
    for (const f of r.victim.failures.slice(0, 3)) lines.push(cut(`  tenant-a: ${f}`));
    for (const f of r.health.failures.slice(0, 2)) lines.push(cut(`  /healthz: ${f}`));
    if (r.oomKills > 0) lines.push(`  OOM kills in the box: ${r.oomKills}`);
    if (r.died !== undefined) lines.push(cut(`  the provider DIED: ${r.died.replace(/\s+/g, ' ')}`));
  }
  return lines;
}

/** `npm run bench -- --box-hostile`. */
export async function runHostileBench(o: BenchOptions, io: BenchIO): Promise<number> {
  const support = cgroupSupport();
  const limits: BoxLimits = { memoryBytes: o.boxSizes.memoryMiB * MiB, cpuMillis: o.boxSizes.cpuMillis };
  const t0 = performance.now();
  if (!support.ok)
    io.stderr(
      `bench: no cgroup box on this machine (${support.why}): the provider runs unboxed, so the memory column is empty`,
    );
  const run = await runHostile({
    node: o.node,
    mainJs: o.provider,
    limits: support.ok ? limits : undefined,
    quick: o.quick,
    nodeOptions: `${DOCKERFILE_NODE_OPTIONS} ${o.providerNodeOptions}`.trim(),
    progress: (l) => io.stderr(l),
  });
  try {
    const box = support.ok
      ? `cgroup v${support.version}, ${limits.cpuMillis}m CPU / ${mib(limits.memoryBytes)}`
      : 'NO BOX (no cgroup here)';
    io.stdout(
      `## Hostile tenant (${box}; NODE_OPTIONS ` +
        `"${`${DOCKERFILE_NODE_OPTIONS} ${o.providerNodeOptions}`.trim()}"; ${o.provider})`,
    );
    io.stdout(
      `tenant-b attacks; tenant-a mounts its 3-secret class every ${VICTIM_EVERY_MS} ms (UNAVAILABLE retried 1 s, 2 ` +
        `s, 4 s) and /healthz is polled every`,
    );
    io.stdout(
      `${VICTIM_EVERY_MS} ms with the liveness probe's ${PROBE_TIMEOUT_MS / 1000} s timeout. Peak working set = box ` +
        `charge − inactive page cache, sampled every 50 ms.`,
    );
    io.stdout('');
    for (const l of hostileTable(run)) io.stdout(l);
    io.stdout('');
    for (const l of hostileNotes(run)) io.stdout(l);
    const leaked = hostileLeaks(run);
    io.stdout(
      `Provider start-up in the box: ${run.startupS.toFixed(1)} s. Providers started: ${run.starts} (a restart ` +
        `after each death). Leaks in the provider's output: ${leaked.length === 0 ? 'none' : leaked.join(', ')}.`,
    );
    io.stdout(
      `Finished in ${((performance.now() - t0) / 1000).toFixed(0)} s on ${os.cpus().length} CPUs, ` +
        `node ${process.version}; load average (1 min) ${(os.loadavg()[0] ?? 0).toFixed(2)}.`,
    );
  } finally {
    await run.close();
  }
  return 0;
}

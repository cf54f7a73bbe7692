/**
 * Real SecretProviderClasses, as their authors wrote them (AWS's examples and docs, the driver's
 * end-to-end test, workshops, rendered charts, and classes users pasted when reporting a problem),
 * each opening with `# expect: ok | refused <why> | unknown`: what ASCP does with it. They are other
 * people's manifests, so they are kept beside the checkout (`shared/corpus` next to it) or wherever
 * SPC_CORPUS_DIR points, not in the repository; without them this file skips, saying why.
 *
 * Each class goes through `check` and through a real mount (the provider, its gRPC socket, the
 * emulator) with the secrets and parameters it names created as its author meant them: JSON with the
 * keys its jmesPath entries name, in the region its ARNs or its `region` name, under the account its
 * ARNs name. `ok` must mount with the files ASCP writes; `refused` must be refused, by `check` or by
 * the mount, naming why. Where we differ on purpose, DIFFERENCES says so and why (README, "Where we
 * differ from ASCP").
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { checkManifest } from '../../src/cli/check.js';
import { parseManifests, spcFields } from '../../src/cli/manifests.js';
import { parseObjects, type SecretDescriptor } from '../../src/spc/index.js';
import { fieldNames } from '../../src/spc/jmes.js';
import { REGION, startHarness, type Harness } from '../helpers/harness.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const DIR = process.env['SPC_CORPUS_DIR'] ?? path.resolve(ROOT, '..', 'shared', 'corpus');
const FILES = existsSync(DIR)
  ? readdirSync(DIR)
      .filter((f) => f.endsWith('.yaml'))
      .sort()
  : [];
if (FILES.length === 0)
  console.log(`corpus: no SecretProviderClasses at ${DIR} (set SPC_CORPUS_DIR): the corpus test is skipped`);

/** Where our outcome differs from ASCP's on purpose, by file-name prefix, with the reason. */
const DIFFERENCES: Record<string, { ours: 'refused' | 'ok'; why: string }> = {
  '10-': {
    ours: 'refused',
    why:
      'a kustomize patch has no spec.provider: check reads each file as a whole class and says the driver would ' +
      'not send it to us (its objects mount as ASCP mounts them)',
  },
  '36-': {
    ours: 'refused',
    why:
      'an empty objects list is refused up front: ASCP mounts nothing and the driver then fails the mount for ' +
      'want of object versions',
  },
};

interface Outcome {
  check: 'ok' | 'refused';
  checkErrors: string[];
  mount: 'ok' | 'refused' | 'not sent';
  mountDetail: string;
}

/**
 * One provider and emulator at a time, for the AWS account the classes' ARNs name (ARN lookups are
 * per account, and the in-process SDK reads one set of endpoints): the files run grouped by account.
 */
let current: { account: string; harness: Harness } | undefined;
afterAll(async () => current?.harness.close());

async function harnessFor(account: string): Promise<Harness> {
  if (current?.account === account) return current.harness;
  await current?.harness.close();
  const harness = await startHarness({
    emulator: { accountId: account },
    flags: (emu) => [`--pod-identity-endpoint=${emu.podIdentityUrl}`],
  });
  current = { account, harness };
  return harness;
}

const ARN = /\barn:aws:(secretsmanager|ssm):([a-z0-9-]*):([^:\s]*):(secret:|parameter\/)([^\s"',]+)/;
/** The account of a class's first ARN (as written, redacted or not), else the emulator's default. */
const accountOf = (text: string): string =>
  /\barn:aws:(?:secretsmanager|ssm):[a-z0-9-]*:([^:\s"'[\]]+):/.exec(text)?.[1] ?? '123456789012';
/** The region of a class's first ARN, however malformed the rest of it. */
const arnRegion = (text: string): string | undefined =>
  /\barn:aws:(?:secretsmanager|ssm):([a-z0-9-]+):/.exec(text)?.[1];

/**
 * Text as stored under an `objectEncoding` (our extension): a class that names one means its value is
 * stored encoded (ASCP ignores the key and mounts that text as is; we decode it, docs/extensions.md).
 */
function stored(text: string, encoding: string | undefined): string {
  if (encoding === 'base64') return Buffer.from(text).toString('base64');
  if (encoding === 'hex') return Buffer.from(text).toString('hex');
  return text;
}

/** JSON whose keys are the ones the object's jmesPath entries name, each leaf a string. */
function jsonFor(d: SecretDescriptor): string {
  const doc: Record<string, unknown> = {};
  for (const e of d.jmesPath) {
    const names = fieldNames(e.path);
    if (names === undefined) continue;
    let at = doc;
    names.forEach((n, i) => {
      if (i === names.length - 1) at[n] = stored(`${e.objectAlias}-value`, e.objectEncoding);
      else at = (at[n] ??= {}) as Record<string, unknown>;
    });
  }
  if (d.allKeys) doc['key'] = 'value';
  return JSON.stringify(doc);
}

/** Creates what the class names, as its author meant it. */
function seed(h: Harness, d: SecretDescriptor, region: string, objectName = d.objectName): void {
  const arn = ARN.exec(objectName);
  const where = arn?.[2] !== undefined && arn[2] !== '' ? arn[2] : region;
  const value = stored(d.jmesPath.length > 0 || d.allKeys ? jsonFor(d) : `${objectName}-value`, d.objectEncoding);
  if (d.objectType === 'secretsmanager') {
    const name = arn?.[5] ?? objectName;
    if (d.objectVersionLabel === 'AWSPREVIOUS') h.emu.putSecret(where, name, `${value}-previous`);
    const stages =
      d.objectVersionLabel !== '' && !d.objectVersionLabel.startsWith('AWS')
        ? [d.objectVersionLabel, 'AWSCURRENT']
        : undefined;
    h.emu.putSecret(where, name, value, stages ? { stages } : {});
  } else {
    const rest = arn?.[5];
    const name = rest === undefined ? objectName : rest.includes('/') ? `/${rest}` : rest;
    h.emu.putParameter(where, name, value, d.objectVersionLabel !== '' ? { labels: [d.objectVersionLabel] } : {});
  }
}

/** Quotes and backquotes dropped, so `'.username'` and `.username.` compare. */
const normal = (t: string): string => t.replace(/[`'"]/g, '');

/**
 * The reasons an `# expect: refused …` line gives: the text after `refused` (and after `as posted:`)
 * up to a parenthesis or semicolon, and each quoted part; each at least 12 characters.
 */
function reasonsIn(expectLine: string): string[] {
  const head = expectLine.replace(/^refused\s*/, '').replace(/^as (?:posted|pasted):\s*/, '');
  const parts = [head.split(/ \(|; /)[0] ?? '', ...[...head.matchAll(/'([^']+)'/g)].map((m) => m[1] ?? '')];
  // An elided quote (`Failed to load …: ... cannot unmarshal …`) is matched piece by piece.
  return parts
    .flatMap((p) => normal(p).split(/\.\.\.?/))
    .map((p) => p.trim().replace(/[.:]$/, ''))
    .filter((p) => p.length >= 12);
}

/** Where the corpus gives ASCP's reason in prose rather than in ASCP's words: the words ours must carry. */
const PROSE: Record<string, string> = {
  '03-': 'parameter objects is a list, not a string; the API server refuses the SecretProviderClass',
  '14-': 'Failed to load SecretProviderClass: error converting YAML to JSON: yaml:',
  '35-': 'YAML syntax error',
};
function reasonsFor(file: string, expectLine: string): string[] {
  const prose = Object.entries(PROSE).find(([prefix]) => file.startsWith(prefix))?.[1];
  return prose !== undefined ? [prose] : reasonsIn(expectLine);
}

async function filesUnder(dir: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    if (e.isDirectory()) out.push(...(await filesUnder(path.join(dir, e.name), `${prefix}${e.name}/`)));
    else out.push(`${prefix}${e.name}`);
  }
  return out.sort();
}

async function outcomeOf(text: string, file: string): Promise<Outcome> {
  const { findings } = checkManifest(text, file);
  const checkErrors = findings.filter((f) => f.severity === 'error').map((f) => `${f.path}: ${f.message}`);
  const out: Outcome = {
    check: checkErrors.length > 0 ? 'refused' : 'ok',
    checkErrors,
    mount: 'not sent',
    mountDetail: '',
  };
  const spc = parseManifests(text, file).objects.find((o) => o.kind === 'SecretProviderClass');
  if (spc === undefined) return out;
  const fields = spcFields(spc);
  // What the API server refuses never reaches a provider.
  if (fields.problems.length > 0 || fields.parameters['objects'] === undefined) return out;
  const params = fields.parameters;
  const account = accountOf(params['objects'] ?? '');
  const region = params['region'] || arnRegion(params['objects'] ?? '') || REGION;
  const failoverRegion = params['failoverRegion'] ?? '';
  const h = await harnessFor(account);
  h.emu.addNode(`node-${region}`, { 'topology.kubernetes.io/region': region });
  let descriptors: SecretDescriptor[] = [];
  try {
    descriptors = parseObjects(params['objects'] ?? '', {
      pathTranslation: '_',
      defaultMode: 0o644,
      region,
      failoverRegion: failoverRegion === region ? '' : failoverRegion,
    });
  } catch {
    // refused below by the provider itself, in its words
  }
  for (const d of descriptors) {
    seed(h, d, region);
    if (d.failoverObject !== undefined) seed(h, d, failoverRegion, d.failoverObject.objectName);
  }
  const pod = h.pod({ node: `node-${region}`, podIdentity: params['usePodIdentity'] === 'true' });
  const target = await h.target();
  try {
    await h.mountAndWrite(pod.attributes(params), target);
    out.mount = 'ok';
    const written = await filesUnder(target);
    const expected = descriptors.flatMap((d) => [d.fileName, ...d.jmesPath.map((e) => e.fileName)]).sort();
    out.mountDetail =
      JSON.stringify(written) === JSON.stringify(expected)
        ? `files ${written.join(', ')}`
        : `files ${written.join(', ')}, expected ${expected.join(', ')}`;
    // What each file holds: a plain object's value, a jmesPath entry's leaf, decoded where the class says it is
    // encoded.
    for (const d of descriptors) {
      const want: [string, string][] =
        d.jmesPath.length === 0 && !d.allKeys
          ? [[d.fileName, `${d.objectName}-value`]]
          : d.jmesPath
              .filter((e) => fieldNames(e.path) !== undefined)
              .map((e) => [e.fileName, `${e.objectAlias}-value`]);
      for (const [f, text] of want) {
        const got = await readFile(path.join(target, f), 'utf8').catch(() => undefined);
        if (got !== text)
          out.mountDetail += `; ${f} holds ${JSON.stringify(got?.slice(0, 60))}, expected ${JSON.stringify(text)}`;
      }
    }
  } catch (err) {
    out.mount = 'refused';
    out.mountDetail = (err as { details?: string }).details ?? String(err);
  }
  return out;
}

const byAccount = (f: string): string => accountOf(readFileSync(path.join(DIR, f), 'utf8'));
const ORDERED = [...FILES].sort((a, b) => byAccount(a).localeCompare(byAccount(b)) || a.localeCompare(b));

describe.skipIf(FILES.length === 0)('the corpus of real SecretProviderClasses', () => {
  it.each(ORDERED)('%s', async (file) => {
    const text = readFileSync(path.join(DIR, file), 'utf8');
    const expectLine = /^# expect: (.*)$/m.exec(text)?.[1] ?? 'unknown';
    const ascp = expectLine.startsWith('ok') ? 'ok' : expectLine.startsWith('refused') ? 'refused' : 'unknown';
    const got = await outcomeOf(text, file);
    const ours = got.check === 'refused' || got.mount === 'refused' ? 'refused' : 'ok';
    const diff = Object.entries(DIFFERENCES).find(([prefix]) => file.startsWith(prefix))?.[1];
    console.log(
      `${file}: ASCP ${ascp}; check ${got.check}${got.checkErrors.length > 0 ? ` (${got.checkErrors[0]})` : ''}; ` +
        `mount ${got.mount} (${got.mountDetail.slice(0, 200)})`,
    );
    if (ascp === 'unknown') return;
    expect(ours).toBe(diff?.ours ?? ascp);
    if (ascp === 'refused' && diff === undefined) {
      // ASCP's reason, in its words, is in ours (check's findings or the mount's status).
      const said = normal([...got.checkErrors, got.mountDetail].join('\n'));
      const reasons = reasonsFor(file, expectLine);
      expect(
        reasons.some((r) => said.includes(r)),
        `none of ${JSON.stringify(reasons)} in ${said.slice(0, 400)}`,
      ).toBe(true);
    }
    if (ours === 'ok' && got.mount === 'ok') expect(got.mountDetail).not.toContain('expected');
  });
});

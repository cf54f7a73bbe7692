/**
 * @module spc/attributes
 * The MountRequest `attributes` JSON and `permission` string → MountAttributes, with ASCP's texts
 * (docs/behaviour.md, "Attributes" and "Tokens"; docs/extensions.md). Every attribute problem is
 * reported in one ConfigError. Token text never appears in a message.
 */
import { quoteName } from './paths.js';
import { Buffer } from 'node:buffer';
import { ConfigError, ProviderError, type ConfigProblem } from '../errors.js';
import { regionProblem } from './regions.js';
import type { AddressPreference, AssumeRoleSpec, AudienceToken, MountAttributes } from './types.js';

export const ATTR = {
  podName: 'csi.storage.k8s.io/pod.name',
  podNamespace: 'csi.storage.k8s.io/pod.namespace',
  podUid: 'csi.storage.k8s.io/pod.uid',
  serviceAccountName: 'csi.storage.k8s.io/serviceAccount.name',
  tokens: 'csi.storage.k8s.io/serviceAccount.tokens',
  secretProviderClass: 'secretProviderClass',
  region: 'region',
  failoverRegion: 'failoverRegion',
  pathTranslation: 'pathTranslation',
  usePodIdentity: 'usePodIdentity',
  preferredAddressType: 'preferredAddressType',
  objects: 'objects',
  assumeRoleArn: 'assumeRoleArn',
  assumeRoleExternalId: 'assumeRoleExternalId',
  assumeRoleDurationSeconds: 'assumeRoleDurationSeconds',
} as const;

/** The class parameters the provider reads (docs/behaviour.md, "Attributes"; docs/extensions.md); ASCP and we ignore
 * any other. */
export const CLASS_PARAMETERS: readonly string[] = [
  ATTR.region,
  ATTR.failoverRegion,
  ATTR.pathTranslation,
  ATTR.usePodIdentity,
  ATTR.preferredAddressType,
  ATTR.objects,
  ATTR.assumeRoleArn,
  ATTR.assumeRoleExternalId,
  ATTR.assumeRoleDurationSeconds,
];

/** What the driver sets for each pod (docs/behaviour.md, "Attributes"), beside the class's parameters. */
export const DRIVER_ATTRIBUTES: readonly string[] = [
  ATTR.podName,
  ATTR.podNamespace,
  ATTR.podUid,
  ATTR.serviceAccountName,
  ATTR.tokens,
  'csi.storage.k8s.io/ephemeral',
  ATTR.secretProviderClass,
];

export const IRSA_AUDIENCE = 'sts.amazonaws.com';
export const POD_IDENTITY_AUDIENCE = 'pods.eks.amazonaws.com';

const GO_TRUE = new Set(['1', 't', 'T', 'TRUE', 'true', 'True']);
const GO_FALSE = new Set(['0', 'f', 'F', 'FALSE', 'false', 'False']);

/** Go strconv.ParseBool; undefined when the text is not one of its twelve spellings. */
export function goParseBool(s: string): boolean | undefined {
  if (GO_TRUE.has(s)) return true;
  if (GO_FALSE.has(s)) return false;
  return undefined;
}

function jsonTypeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'object') return 'object';
  if (typeof v === 'boolean') return 'bool';
  return typeof v; // string, number
}

/**
 * Most bytes of `attributes` read. Real requests carry the class parameters and two tokens (a few
 * KiB); the gRPC limit alone (4 MiB) would let one request cost the node's provider tens of MiB.
 */
export const MAX_ATTRIBUTES_BYTES = 512 * 1024;

/**
 * True when `text` nests arrays or objects deeper than `max` outside strings. Checked before
 * JSON.parse, which would build every level (a few MiB of `[` is millions of arrays) only for us
 * to refuse the shape afterwards: attributes are a flat map of strings, tokens two levels deep (one more is allowed, so
 * a value of the wrong shape still gets its precise message).
 */
function nestsDeeperThan(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return true;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return false;
}

/** JSON.parse whose failure message never quotes the input (it may hold tokens). */
function parseJsonQuietly(
  text: string,
  maxDepth: number,
): { ok: true; value: unknown } | { ok: false; reason: string } {
  if (text.trim() === '') return { ok: false, reason: 'unexpected end of JSON input' };
  if (nestsDeeperThan(text, maxDepth))
    return { ok: false, reason: `the value nests more than ${maxDepth} levels of arrays or objects` };
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch {
    return { ok: false, reason: 'the value is not valid JSON' };
  }
}

/**
 * The pod's namespace from the attributes JSON, '' when it cannot be read (the full parse then says
 * why). Only what admission needs to queue a mount fairly, read before anything else is parsed.
 */
export function podNamespaceOf(attributesJson: string): string {
  if (attributesJson.length > MAX_ATTRIBUTES_BYTES) return '';
  const parsed = parseJsonQuietly(attributesJson, 2);
  if (!parsed.ok || parsed.value === null || typeof parsed.value !== 'object') return '';
  const ns = (parsed.value as Record<string, unknown>)[ATTR.podNamespace];
  return typeof ns === 'string' ? ns : '';
}

/** `csi.storage.k8s.io/serviceAccount.tokens` → audience map; problems never include token text. */
function parseTokens(text: string, problems: ConfigProblem[]): ReadonlyMap<string, AudienceToken> | undefined {
  const fail = (reason: string): undefined => {
    problems.push({
      message:
        `CSI token error: failed to parse serviceAccount.tokens: ${reason} - ensure tokenRequests is ` +
        `configured in CSIDriver spec`,
      path: ATTR.tokens,
    });
    return undefined;
  };
  const parsed = parseJsonQuietly(text, 3);
  if (!parsed.ok) return fail(parsed.reason);
  const root = parsed.value;
  if (root === null) return new Map(); // Go: null → nil map, no error
  if (typeof root !== 'object' || Array.isArray(root)) {
    return fail(
      `json: cannot unmarshal ${jsonTypeName(root)} into Go value of type map[string]utils.ServiceAccountToken`,
    );
  }
  const out = new Map<string, AudienceToken>();
  for (const [audience, entry] of Object.entries(root as Record<string, unknown>)) {
    if (entry === null) {
      out.set(audience, { token: '', expirationTimestamp: '' });
      continue;
    }
    if (typeof entry !== 'object' || Array.isArray(entry)) {
      return fail(
        `json: cannot unmarshal ${jsonTypeName(entry)} into Go value of type utils.ServiceAccountToken ` +
          `(audience ${JSON.stringify(audience)})`,
      );
    }
    // Go struct fields match case-insensitively; the bytewise-later key wins.
    let token = '';
    let expirationTimestamp = '';
    const keys = Object.keys(entry).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    for (const k of keys) {
      const v = (entry as Record<string, unknown>)[k];
      const field =
        k.toLowerCase() === 'token'
          ? 'token'
          : k.toLowerCase() === 'expirationtimestamp'
            ? 'expirationTimestamp'
            : undefined;
      if (field === undefined || v === null) continue;
      if (typeof v !== 'string') {
        return fail(
          `json: cannot unmarshal ${jsonTypeName(v)} into Go struct field ServiceAccountToken.${field} of type ` +
            `string (audience ${JSON.stringify(audience)})`,
        );
      }
      if (field === 'token') token = v;
      else expirationTimestamp = v;
    }
    out.set(audience, { token, expirationTimestamp });
  }
  return out;
}

const ROLE_ARN = /^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@/-]+$/;
const EXTERNAL_ID = /^[\w+=,.@:/-]{2,1224}$/;

function parseAssumeRole(
  attrs: Readonly<Record<string, string>>,
  problems: ConfigProblem[],
): AssumeRoleSpec | undefined {
  const roleArn = attrs[ATTR.assumeRoleArn] ?? '';
  const externalId = attrs[ATTR.assumeRoleExternalId] ?? '';
  const duration = attrs[ATTR.assumeRoleDurationSeconds] ?? '';
  if (roleArn === '') {
    if (externalId !== '') {
      problems.push({
        message: 'assumeRoleExternalId is set but assumeRoleArn is not: set assumeRoleArn too or remove it',
        path: ATTR.assumeRoleExternalId,
      });
    }
    if (duration !== '') {
      problems.push({
        message: 'assumeRoleDurationSeconds is set but assumeRoleArn is not: set assumeRoleArn too or remove it',
        path: ATTR.assumeRoleDurationSeconds,
      });
    }
    return undefined;
  }
  const spec: AssumeRoleSpec = { roleArn };
  if (!ROLE_ARN.test(roleArn)) {
    problems.push({
      message:
        `assumeRoleArn must be an IAM role ARN like arn:aws:iam::123456789012:role/name, ` +
        `got ${JSON.stringify(roleArn.slice(0, 300))}`,
      path: ATTR.assumeRoleArn,
    });
  }
  if (externalId !== '') {
    if (!EXTERNAL_ID.test(externalId)) {
      // The external id is not echoed: it guards a cross-account trust.
      problems.push({
        message:
          `assumeRoleExternalId must be 2–1224 characters of letters, digits and +=,.@:/-_ ` +
          `(got ${externalId.length} characters)`,
        path: ATTR.assumeRoleExternalId,
      });
    }
    spec.externalId = externalId;
  }
  if (duration !== '') {
    const n = /^[0-9]{1,5}$/.test(duration) ? Number(duration) : Number.NaN;
    if (!(n >= 900 && n <= 3600)) {
      problems.push({
        message:
          `assumeRoleDurationSeconds must be a whole number of seconds from 900 to 3600 (AWS caps role ` +
          `chaining at one hour), got ${JSON.stringify(duration.slice(0, 40))}`,
        path: ATTR.assumeRoleDurationSeconds,
      });
    } else {
      spec.durationSeconds = n;
    }
  }
  return spec;
}

/** `pathTranslation`: '' → '_'; "false" any case → off; else exactly one byte (docs/behaviour.md, "Attributes"). */
export function parsePathTranslation(
  value: string,
): { ok: true; value: string | false } | { ok: false; message: string } {
  if (value === '') return { ok: true, value: '_' };
  if (value.toLowerCase() === 'false') return { ok: true, value: false };
  if (Buffer.byteLength(value, 'utf8') !== 1) {
    return { ok: false, message: "pathTranslation must be either 'False' or a single character string" };
  }
  return { ok: true, value };
}

/** ASCP refuses a failover region equal to the primary; call again once the primary is resolved from the node. */
export function failoverRegionProblem(region: string, failoverRegion: string): ConfigProblem | undefined {
  if (region === '' || failoverRegion === '' || region !== failoverRegion) return undefined;
  return { message: `${region}: failover region cannot be the same as the primary region`, path: ATTR.failoverRegion };
}

/**
 * Parses the `attributes` JSON (an object of strings; `null` → empty). Throws ConfigError with
 * every attribute problem found.
 */
export function parseAttributes(
  attributesJson: string,
  opts: { extraRegions?: ReadonlySet<string> | undefined } = {},
): MountAttributes {
  if (attributesJson.length > MAX_ATTRIBUTES_BYTES) {
    throw new ConfigError([
      {
        message:
          `attributes are ${Math.ceil(attributesJson.length / 1024)} KiB, more than ` +
          `the ${MAX_ATTRIBUTES_BYTES / 1024} KiB this provider reads (a class with its tokens takes a few KiB)`,
        path: 'attributes',
      },
    ]);
  }
  const parsed = parseJsonQuietly(attributesJson, 2);
  if (!parsed.ok) {
    throw new ConfigError([{ message: `failed to unmarshal attributes, error: ${parsed.reason}`, path: 'attributes' }]);
  }
  const root = parsed.value;
  const problems: ConfigProblem[] = [];
  const attrs: Record<string, string> = {};
  if (root !== null) {
    if (typeof root !== 'object' || Array.isArray(root)) {
      throw new ConfigError([
        {
          message:
            `failed to unmarshal attributes, error: json: cannot unmarshal ${jsonTypeName(root)} into Go ` +
            `value of type map[string]string`,
          path: 'attributes',
        },
      ]);
    }
    for (const [k, v] of Object.entries(root as Record<string, unknown>)) {
      if (v === null) attrs[k] = '';
      else if (typeof v === 'string') attrs[k] = v;
      else {
        problems.push({
          message:
            `failed to unmarshal attributes, error: json: cannot unmarshal ${jsonTypeName(v)} into Go value ` +
            `of type string (attribute ${JSON.stringify(k)})`,
          path: k,
        });
      }
    }
  }
  const get = (k: string): string => attrs[k] ?? '';

  const region = get(ATTR.region);
  const failoverRegion = get(ATTR.failoverRegion);
  const sameRegion = failoverRegionProblem(region, failoverRegion);
  if (sameRegion !== undefined) problems.push(sameRegion);
  // A region becomes an endpoint host name, an SDK client and a metric label: it must be one of an
  // AWS partition's (or one the operator allowed). The SDK would refuse most others, and the driver
  // would retry that refusal as if it were transient. Say it here, once, as a class problem.
  for (const [key, value] of [
    [ATTR.region, region],
    [ATTR.failoverRegion, failoverRegion],
  ] as const) {
    const problem = value === '' ? undefined : regionProblem(value, opts.extraRegions);
    if (problem !== undefined) problems.push({ message: `${key}: ${quoteName(value, 40)} ${problem}`, path: key });
  }

  const translation = parsePathTranslation(get(ATTR.pathTranslation));
  if (!translation.ok) problems.push({ message: translation.message, path: ATTR.pathTranslation });

  const podIdentityText = get(ATTR.usePodIdentity);
  let usePodIdentity = false;
  if (podIdentityText !== '') {
    const b = goParseBool(podIdentityText);
    if (b === undefined) {
      problems.push({
        message:
          `failed to parse usePodIdentity value, error: strconv.ParseBool: ` +
          `parsing ${JSON.stringify(podIdentityText)}: invalid syntax`,
        path: ATTR.usePodIdentity,
      });
    } else {
      usePodIdentity = b;
    }
  }

  const tokensText = get(ATTR.tokens);
  const tokens = tokensText === '' ? undefined : parseTokens(tokensText, problems);
  const assumeRole = parseAssumeRole(attrs, problems);

  if (problems.length > 0) throw new ConfigError(problems);
  return {
    podName: get(ATTR.podName),
    podNamespace: get(ATTR.podNamespace),
    podUid: get(ATTR.podUid),
    serviceAccountName: get(ATTR.serviceAccountName),
    region,
    failoverRegion,
    pathTranslation: translation.ok ? translation.value : '_',
    usePodIdentity,
    preferredAddressType: parseAddressPreference(get(ATTR.preferredAddressType)),
    tokens,
    objects: get(ATTR.objects),
    assumeRole,
    secretProviderClass: get(ATTR.secretProviderClass),
  };
}

/** `ipv4` / `ipv6` any case; anything else (including `auto` and '') is auto, as ASCP. */
export function parseAddressPreference(value: string): AddressPreference {
  const v = value.toLowerCase();
  return v === 'ipv4' || v === 'ipv6' ? v : 'auto';
}

/**
 * The request's default file mode: Go json.Unmarshal into a uint32 (docs/behaviour.md, "Attributes").
 * "420" → 420 (0644); "null" → 0 (ASCP quirk, kept); anything else → ConfigError.
 */
export function parsePermission(permission: string): number {
  const fail = (reason: string): never => {
    throw new ConfigError([{ message: `failed to unmarshal file permission, error: ${reason}`, path: 'permission' }]);
  };
  const text = permission.replace(/^[ \t\r\n]+|[ \t\r\n]+$/g, '');
  if (text === '') return fail('unexpected end of JSON input');
  let value: unknown;
  try {
    value = JSON.parse(text) as unknown;
  } catch {
    const num = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(text);
    const at = num !== null && num[0] !== '' ? num[0].length : 0;
    const c = text[at] ?? '';
    return fail(
      at > 0
        ? `invalid character ${JSON.stringify(c).replaceAll('"', "'")} after top-level value`
        : `invalid character ${JSON.stringify(c).replaceAll('"', "'")} looking for beginning of value`,
    );
  }
  if (value === null) return 0;
  if (typeof value === 'number') {
    if (/^(0|[1-9][0-9]*)$/.test(text) && value <= 0xffff_ffff) return value;
    return fail(`json: cannot unmarshal number ${text.slice(0, 40)} into Go value of type fs.FileMode`);
  }
  return fail(`json: cannot unmarshal ${jsonTypeName(value)} into Go value of type fs.FileMode`);
}

/**
 * The pod's service-account token for an audience (docs/behaviour.md, "Tokens"). Throws ProviderError
 * with ASCP's inner texts, prefixed as ASCP does; never with any token text.
 */
export function tokenFor(
  attrs: MountAttributes,
  audience: typeof IRSA_AUDIENCE | typeof POD_IDENTITY_AUDIENCE,
): string {
  if (attrs.tokens === undefined) {
    throw new ProviderError(
      'INVALID_ARGUMENT',
      'CSI token error: serviceAccount.tokens not provided - ensure tokenRequests is configured in CSIDriver',
      { field: ATTR.tokens, reason: 'TokenMissing' },
    );
  }
  const prefix =
    audience === POD_IDENTITY_AUDIENCE ? 'Pod Identity token extraction failed' : 'IRSA token extraction failed';
  const entry = attrs.tokens.get(audience);
  if (entry === undefined) {
    throw new ProviderError(
      'INVALID_ARGUMENT',
      `${prefix}: token for audience ${JSON.stringify(audience)} not found - ensure tokenRequests includes this ` +
        `audience in CSIDriver`,
      { field: ATTR.tokens, reason: 'TokenMissing' },
    );
  }
  if (entry.token === '') {
    throw new ProviderError('UNAUTHENTICATED', `${prefix}: token for audience ${JSON.stringify(audience)} is empty`, {
      field: ATTR.tokens,
      reason: 'TokenEmpty',
    });
  }
  return entry.token;
}

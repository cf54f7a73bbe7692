/**
 * @module mount/mount
 * The Mount pipeline: MountInput + signal → files and object versions. It orders the steps and owns
 * all-or-nothing (docs/behaviour.md, "Fetching"); every rule lives in spc/, every call in k8s/, identity/, aws/,
 * every write in files/.
 *
 * Order (ASCP reports config problems only after its Kubernetes and STS calls; we check everything
 * we can before any I/O, docs/behaviour.md, "Objects"):
 *   1. target path, attributes, permission, objects (all problems at once)
 *   2. region: `region` → AWS_REGION → the provider's node label (NODE_NAME) → the pod's node
 *      (only when the target is a pod's volume: a caller without a kubelet names a pod that is not
 *      the one the secrets are for, e.g. the Secrets Store Sync Controller names its own pod)
 *   3. identity: the token for the method's audience; IRSA also reads the service account's role
 *   4. fetch every object (failover only where the primary's error allows it)
 *   5. derive files (JMESPath, allKeys) within the mount's bounds; check path collisions across all of them
 *   6. write (provider-writes) or return them (driver-writes); versions for every file
 */
import { ConfigError, MountFailedError, ProviderError } from '../errors.js';
import type { Logger } from '../observability/index.js';
import {
  checkArnRegions,
  deriveFiles,
  driverWritesPathProblem,
  failoverRegionProblem,
  pathConflicts,
  parseAttributes,
  parsePermission,
  tokenFor,
} from '../spc/index.js';
import type { MountAttributes, OutputFile, SecretDescriptor } from '../spc/index.js';
import type { FetchOutcome, FetchPlan, RegionAccess } from '../aws/index.js';
import type { CachedCredentials, IdentityRequest } from '../identity/index.js';
import { valueKey, type ValueCache } from './value-cache.js';
import { setBounded } from '../bounded-map.js';
import { describeBytes } from '../bytes.js';
import { ParsedObjects } from './parsed-objects.js';
import type { Admission } from './admission.js';

export interface ObjectVersion {
  id: string;
  version: string;
}

export interface MountInput {
  attributes: string;
  /** Never logged: since driver v1.6 it may carry the service-account tokens. */
  secrets: string;
  targetPath: string;
  permission: string;
  currentObjectVersion: readonly ObjectVersion[];
  /** When the caller stops waiting (epoch ms), if it said: admission does not start what cannot finish. */
  deadline?: number | undefined;
  /**
   * Set when admission already let this mount through at its arrival (Admission.arrive): called
   * once the mount takes its place in admission's queue itself, so it is not counted twice.
   */
  entered?: (() => void) | undefined;
}

export interface MountFile {
  path: string;
  mode: number;
  contents: Uint8Array;
}

export interface MountResult {
  objectVersions: ObjectVersion[];
  /** Only in driver-writes mode. */
  files: MountFile[];
}

/** What one mount was about, for the caller's log line and metrics (no secret material). */
export interface MountSummary {
  pod: string;
  namespace: string;
  serviceAccount: string;
  secretProviderClass: string;
  objects: number;
  files: number;
  written: number;
  unchanged: number;
  regions: string[];
}

export type MountFn = (input: MountInput, signal: AbortSignal, summary?: Partial<MountSummary>) => Promise<MountResult>;

/** Files one mount may produce by default (--max-mount-files): far beyond real classes, small enough to hold in memory.
 * */
export const DEFAULT_MAX_MOUNT_FILES = 5_000;
/**
 * Bytes one mount may read, and bytes of files it may produce, by default (--max-mount-bytes): 4 MiB,
 * as aws/fetcher.ts MAX_MOUNT_BYTES. Only one value named again and again (aliases) makes more
 * files than it read; the files land in the pod's tmpfs, whose pages are charged to the provider's
 * own memory limit, so 1,700 aliases of one 64 KiB secret (106 MiB) had the provider killed by the
 * cgroup's OOM killer.
 */
export const DEFAULT_MAX_MOUNT_BYTES = 4 * 1024 * 1024;
/** What the driver accepts in one Mount answer (its gRPC message limit), less room for the versions. */
const DRIVER_MAX_ANSWER = 4 * 1024 * 1024 - 256 * 1024;

/** The parts the pipeline calls; main wires the real ones, tests may wire others. */
export interface MountDeps {
  driverWritesSecrets: boolean;
  /** env AWS_REGION, '' when unset. */
  awsRegion: string;
  /** env NODE_NAME, '' when unset. */
  nodeName: string;
  /**
   * Whether a target path is a pod's volume as the kubelet makes it, i.e. the pod the attributes
   * name is the one the secrets are for, in the namespace they name. Not so for a caller without a
   * kubelet: the Secrets Store Sync Controller sends its own pod's name with the SecretSync's
   * namespace and the fixed target `/mnt/secrets-store`. Absent: every target is one.
   */
  podVolume?: ((targetPath: string) => boolean) | undefined;
  /** Region names allowed beyond the AWS partitions' (--extra-regions). */
  extraRegions?: ReadonlySet<string> | undefined;
  /** Bytes one mount may read, and bytes of files it may make (--max-mount-bytes; default DEFAULT_MAX_MOUNT_BYTES). */
  maxMountBytes?: number | undefined;
  /** Files one mount may make (--max-mount-files; default DEFAULT_MAX_MOUNT_FILES). */
  maxMountFiles?: number | undefined;
  kube: {
    roleArn(ns: string, sa: string, signal: AbortSignal): Promise<string>;
    nodeRegion(node: string, signal: AbortSignal): Promise<string>;
    podRegion(ns: string, pod: string, signal: AbortSignal, uid?: string): Promise<string>;
  };
  identity: {
    credentials(req: IdentityRequest, region: string, signal: AbortSignal): Promise<CachedCredentials>;
    forget(req: IdentityRequest, region: string): void;
    /** Needed only with the value cache. */
    identityKey?(req: IdentityRequest, region: string): string;
    /** Per-role decisions (BatchGetSecretValue allowed or not); without it the batch is not used. */
    roleKey?(req: IdentityRequest, region: string): string;
  };
  /** Per-object outcomes (metrics); the name is only a label if the operator allows it, never a value. */
  observeObject?:
    ((type: SecretDescriptor['objectType'], outcome: 'success' | 'error', objectName: string) => void) | undefined;
  /** Bounds the mounts working at once (fair queue, deadline-aware); none = unbounded. */
  admission?: Admission | undefined;
  /** Opt-in value cache (--cache-ttl). */
  values?: ValueCache | undefined;
  fetcher: { fetchAll(plan: FetchPlan): Promise<FetchOutcome> };
  writer: {
    writeMount(
      targetDir: string,
      files: readonly MountFile[],
      opts: { signal: AbortSignal; remove?: readonly string[] },
    ): Promise<{ written: string[]; unchanged: string[]; removed: string[] }>;
    touchMount(targetDir: string): Promise<void>;
  };
  logger: Logger;
}

async function resolveRegion(
  deps: MountDeps,
  attrs: MountAttributes,
  targetPath: string,
  signal: AbortSignal,
): Promise<string> {
  if (attrs.region !== '') return attrs.region;
  if (deps.awsRegion !== '') return deps.awsRegion;
  // **better** (docs/behaviour.md, "Region"): our own node's label, looked up once per process.
  if (deps.nodeName !== '') return deps.kube.nodeRegion(deps.nodeName, signal);
  if (deps.podVolume !== undefined && !deps.podVolume(targetPath)) {
    // The pod named is not in the namespace named (or not the secrets' pod at all): looking it up
    // would fail with a misleading "not found", or find a tenant's pod of the same name.
    throw new ProviderError(
      'FAILED_PRECONDITION',
      `Region not found: this Mount names no pod volume (target path ${JSON.stringify(targetPath.slice(0, 200))}), ` +
        `so the region cannot come from the node of pod ${attrs.podNamespace}/${attrs.podName}: ` +
        "set region in the SecretProviderClass, or AWS_REGION or NODE_NAME (the node's name, from the downward API) " +
        'on the provider',
      { reason: 'RegionNotFound', field: 'region' },
    );
  }
  return deps.kube.podRegion(attrs.podNamespace, attrs.podName, signal, attrs.podUid);
}

/** 3. Who the pod is to AWS: the token for the method's audience; IRSA also reads the service account's role. */
async function identityFor(deps: MountDeps, attrs: MountAttributes, signal: AbortSignal): Promise<IdentityRequest> {
  const base = {
    namespace: attrs.podNamespace,
    serviceAccount: attrs.serviceAccountName,
    preference: attrs.preferredAddressType,
    assumeRole: attrs.assumeRole,
  };
  if (attrs.usePodIdentity) {
    // No STS call and no service-account lookup on this path.
    return { ...base, method: 'pod-identity', token: tokenFor(attrs, 'pods.eks.amazonaws.com') };
  }
  const token = tokenFor(attrs, 'sts.amazonaws.com');
  const roleArn = await deps.kube.roleArn(attrs.podNamespace, attrs.serviceAccountName, signal);
  return { ...base, method: 'irsa', token, roleArn };
}

/** One Mount as its steps see it: the request, parsed once, and what the steps report into. */
interface Mount {
  input: MountInput;
  signal: AbortSignal;
  summary: Partial<MountSummary>;
  attrs: MountAttributes;
  descriptors: readonly SecretDescriptor[];
  /** The region known before any I/O (the class's, or AWS_REGION), '' when it comes from a node. */
  knownRegion: string;
}

function aborted(signal: AbortSignal): ProviderError {
  const reason = signal.reason as { code?: string } | undefined;
  const deadline =
    reason?.code === 'DEADLINE_EXCEEDED' || (signal.reason instanceof Error && signal.reason.name === 'TimeoutError');
  return new ProviderError(
    deadline ? 'DEADLINE_EXCEEDED' : 'CANCELLED',
    deadline
      ? 'mount deadline exceeded before every object was fetched; nothing was written'
      : 'mount cancelled by the caller; nothing was written',
    {
      reason: deadline ? 'Deadline' : 'Cancelled',
    },
  );
}

export function createMount(deps: MountDeps): MountFn {
  /**
   * Per target path, the files each object produced at the last successful mount (provider-writes
   * mode): what lets us remove an optional object's files, allKeys files included, when it
   * disappears, and the file of a key removed from an allKeys secret. In memory only; after a
   * restart an absent optional object's own and jmesPath files are still known from the class.
   */
  const lastOutputs = new Map<string, Map<string, string[]>>();
  /** Optional objects already logged as absent, per target path (the log says so once per pod). */
  const loggedAbsent = new Set<string>();
  /** 256 classes or 1 MiB of class text, whichever comes first. */
  const parsedObjects = new ParsedObjects(256, 1024 * 1024);
  const maxMountBytes = deps.maxMountBytes ?? DEFAULT_MAX_MOUNT_BYTES;
  const maxMountFiles = deps.maxMountFiles ?? DEFAULT_MAX_MOUNT_FILES;

  return async (input, signal, summary = {}) => {
    // 1. Everything we can check without I/O, all problems at once.
    if (input.targetPath === '')
      throw new ProviderError('INVALID_ARGUMENT', 'Missing mount path', { reason: 'Request', field: 'target_path' });
    const attrs = parseAttributes(input.attributes, { extraRegions: deps.extraRegions });
    summary.pod = attrs.podName;
    summary.namespace = attrs.podNamespace;
    summary.serviceAccount = attrs.serviceAccountName;
    summary.secretProviderClass = attrs.secretProviderClass;
    // A mount that would be refused now is refused before its class is parsed: in an overload
    // hundreds arrive at once, and each refusal should cost next to nothing.
    input.entered?.();
    const refusal = deps.admission?.refusal(attrs.podNamespace, input.deadline);
    if (refusal !== undefined) throw refusal;
    const defaultMode = parsePermission(input.permission);
    const knownRegion = attrs.region !== '' ? attrs.region : deps.awsRegion;
    const descriptors = parsedObjects.get(attrs, defaultMode, knownRegion);
    summary.objects = descriptors.length;

    // Admission: wait for a working slot (fair across namespaces), or refuse now if this mount
    // could not finish before its deadline. Nothing below runs without a slot.
    const release = deps.admission
      ? await deps.admission.enter(attrs.podNamespace, input.deadline, signal, () => aborted(signal))
      : undefined;
    try {
      return await work({ input, signal, summary, attrs, descriptors, knownRegion });
    } finally {
      release?.();
    }
  };

  async function work(mount: Mount): Promise<MountResult> {
    const region = await regionOf(mount);
    const who = await identityFor(deps, mount.attrs, mount.signal);
    const outcome = await fetchObjects(mount, region, who);
    const { files, byObject, fileBytes } = await filesOf(mount, outcome);
    checkAnswer(files, fileBytes);
    return deliver(mount, outcome, files, byObject);
  }

  /** 2. The region: the class's, AWS_REGION, the node's; the ARN-region rule checked now if it came from the node. */
  async function regionOf({ input, signal, summary, attrs, descriptors, knownRegion }: Mount): Promise<string> {
    const region = await resolveRegion(deps, attrs, input.targetPath, signal);
    const sameRegion = failoverRegionProblem(region, attrs.failoverRegion);
    if (sameRegion) throw new ConfigError([sameRegion]);
    if (knownRegion === '') {
      const problems = checkArnRegions(descriptors, region, attrs.failoverRegion);
      if (problems.length > 0) throw new ConfigError(problems);
    }
    summary.regions = attrs.failoverRegion ? [region, attrs.failoverRegion] : [region];
    return region;
  }

  /**
   * 4. Every object's value: what the opt-in value cache does not already hold for this very identity
   * is fetched (failover where the primary's error allows it); credentials AWS refuses are exchanged
   * once more. Throws for any failure: all or nothing.
   */
  async function fetchObjects(
    { input, signal, attrs, descriptors }: Mount,
    region: string,
    who: IdentityRequest,
  ): Promise<FetchOutcome> {
    const access = (r: string): RegionAccess => ({
      region: r,
      credentials: (s) => deps.identity.credentials(who, r, s),
      identity: deps.identity.roleKey?.(who, r),
    });
    if (signal.aborted) throw aborted(signal);
    const cached = new Map<number, { value: Uint8Array; version: string; region: string }>();
    const keys = new Map<number, string>();
    const identityKey = deps.values ? deps.identity.identityKey?.(who, region) : undefined;
    const values = identityKey === undefined ? undefined : deps.values;
    if (values && identityKey !== undefined) {
      const regions = attrs.failoverRegion ? [region, attrs.failoverRegion] : [region];
      for (const d of descriptors) {
        const key = valueKey(identityKey, regions, d);
        keys.set(d.index, key);
        const hit = values.get(key);
        if (hit) cached.set(d.index, hit);
      }
    }
    const plan = {
      primary: access(region),
      failover: attrs.failoverRegion ? access(attrs.failoverRegion) : undefined,
      descriptors: cached.size > 0 ? descriptors.filter((d) => !cached.has(d.index)) : descriptors,
      signal,
      maxBytes: maxMountBytes,
    };
    let outcome = await deps.fetcher.fetchAll(plan);
    for (let retried = false; outcome.failures.some((f) => f.reason === 'BadCredentials'); retried = true) {
      // Cached credentials AWS no longer accepts (expired early, revoked): drop them, and try once
      // more with a fresh exchange rather than failing this mount (or until expiry).
      deps.identity.forget(who, region);
      if (attrs.failoverRegion) deps.identity.forget(who, attrs.failoverRegion);
      if (retried || signal.aborted) break;
      deps.logger.info('credentials refused by AWS: exchanging again', {
        pod: attrs.podName,
        namespace: attrs.podNamespace,
      });
      outcome = await deps.fetcher.fetchAll(plan);
    }
    if (values && outcome.failures.length === 0) {
      for (const [index, v] of outcome.values) {
        const key = keys.get(index);
        if (key) values.set(key, v);
      }
    }
    for (const [index, v] of cached) outcome.values.set(index, v);
    if (deps.observeObject) {
      const failed = new Set(outcome.failures.map((f) => f.object));
      for (const d of descriptors) {
        if (outcome.values.has(d.index)) deps.observeObject(d.objectType, 'success', d.objectName);
        else if (failed.has(d.objectName)) deps.observeObject(d.objectType, 'error', d.objectName);
      }
    }
    if (signal.aborted) {
      // Say what the deadline cut short (an agent refusing connections, a region timing out), not only that it passed.
      const base = aborted(signal);
      if (outcome.failures.length === 0) throw base;
      throw new ProviderError(base.code, `${base.message}: ${outcome.failures.map((f) => f.message).join('; ')}`, {
        reason: base.reason,
      });
    }
    for (const w of outcome.warnings)
      deps.logger.warn('failover region answered', { pod: attrs.podName, namespace: attrs.podNamespace, detail: w });
    if (outcome.failures.length > 0) throw new MountFailedError(outcome.failures);
    for (const d of outcome.missing) {
      const key = `${input.targetPath}\0${d.objectName}`;
      if (loggedAbsent.has(key)) continue;
      if (loggedAbsent.size >= 16_384) loggedAbsent.clear();
      loggedAbsent.add(key);
      deps.logger.info('optional object not found: skipped', {
        pod: attrs.podName,
        namespace: attrs.podNamespace,
        object: d.objectName,
      });
    }
    for (const d of descriptors)
      if (outcome.values.has(d.index)) loggedAbsent.delete(`${input.targetPath}\0${d.objectName}`);

    return outcome;
  }

  /** 5. The files of every fetched object (own file, jmesPath, allKeys), within the mount's file and byte bounds. */
  async function filesOf(
    { signal, descriptors }: Mount,
    outcome: FetchOutcome,
  ): Promise<{ files: OutputFile[]; byObject: Map<string, string[]>; fileBytes: number }> {
    const files: OutputFile[] = [];
    const derived: ProviderError[] = [];
    const byObject = new Map<string, string[]>();
    let fileBytes = 0;
    for (const d of descriptors) {
      const v = outcome.values.get(d.index);
      if (!v) continue;
      try {
        const own = await deriveFiles(d, v.value, v.version, v.region, {
          signal,
          files: { max: maxMountFiles, used: files.length },
        });
        byObject.set(
          d.fileName,
          own.map((f) => f.path),
        );
        files.push(...own);
        for (const f of own) fileBytes += f.contents.byteLength;
      } catch (err) {
        // The file bound ends the mount at once: the objects after it would only add to a refusal.
        if (err instanceof ProviderError && err.reason !== 'TooLarge') derived.push(err);
        else throw err;
      }
      if (fileBytes > maxMountBytes) {
        throw new ProviderError(
          'RESOURCE_EXHAUSTED',
          `the files of this class take more than ${describeBytes(maxMountBytes)} ` +
            `(reached at object ${d.objectName}): name fewer objects or aliases of the same one`,
          { object: d.objectName, reason: 'TooLarge' },
        );
      }
    }
    if (derived.length > 0) throw new MountFailedError(derived);
    return { files, byObject, fileBytes };
  }

  /**
   * 5b. What must hold across all the files before any is written or returned: no two on one path,
   * and in driver-writes mode what the driver accepts (its message size, its reserved names).
   */
  function checkAnswer(files: readonly OutputFile[], fileBytes: number): void {
    if (deps.driverWritesSecrets) {
      // The driver refuses an answer over its 4 MiB message limit with a transport error that names
      // nothing: say what and why first, before building it.
      // The contents are counted already (fileBytes); add each file's path and framing.
      let size = fileBytes;
      for (const f of files) size += f.path.length + 16;
      if (size > DRIVER_MAX_ANSWER) {
        throw new ProviderError(
          'RESOURCE_EXHAUSTED',
          `the files of this class take ${(size / 1048576).toFixed(1)} MiB, more than the driver accepts in one ` +
            `answer (4 MiB) in driver-writes mode: name fewer or smaller objects`,
          { reason: 'TooLarge' },
        );
      }
    }
    // Outputs of different objects (allKeys files are known only now) must not land on one path.
    const conflicts = pathConflicts(files.map((f) => f.path)).map((c) => {
      const a = files[c.otherIndex]?.origin;
      const b = files[c.index]?.origin;
      return a && b ? `${b} and ${a}: ${c.message}` : c.message;
    });
    if (deps.driverWritesSecrets) {
      // The driver refuses the whole answer for one such path (docs/behaviour.md, "Paths"): say which, and why, first.
      for (const f of files) {
        const problem = driverWritesPathProblem(f.path);
        if (problem !== undefined) conflicts.push(`${f.path}: ${problem}`);
      }
    }
    if (conflicts.length > 0) throw new ConfigError(conflicts.map((message) => ({ message })));
  }

  /** 6. Write the files (provider-writes) or return them (driver-writes), with a version for every file. */
  async function deliver(
    { input, signal, summary, descriptors }: Mount,
    outcome: FetchOutcome,
    files: OutputFile[],
    byObject: Map<string, string[]>,
  ): Promise<MountResult> {
    summary.files = files.length;
    const objectVersions: ObjectVersion[] = files.map((f) => ({ id: f.path, version: f.version }));
    // The driver fails a mount with no versions (docs/behaviour.md, "Transport"): an optional object that is absent
    // still reports itself, so a class whose only objects are all absent mounts empty.
    for (const d of outcome.missing) objectVersions.push({ id: d.fileName, version: 'absent' });

    if (signal.aborted) throw aborted(signal);
    if (deps.driverWritesSecrets) {
      await deps.writer.touchMount(input.targetPath).catch(() => {});
      return { objectVersions, files: files.map((f) => ({ path: f.path, mode: f.mode, contents: f.contents })) };
    }
    const current = new Set(files.map((f) => f.path));
    const before = lastOutputs.get(input.targetPath);
    const stale = new Set<string>();
    for (const d of outcome.missing) {
      for (const p of [d.fileName, ...d.jmesPath.map((j) => j.fileName), ...(before?.get(d.fileName) ?? [])])
        stale.add(p);
    }
    for (const d of descriptors) {
      // A key removed from an allKeys secret takes its file with it (the driver's writer does the same in driver-writes
      // mode).
      if (d.allKeys) for (const p of before?.get(d.fileName) ?? []) stale.add(p);
    }
    const removed = [...stale].filter((p) => !current.has(p));
    const result = await deps.writer.writeMount(input.targetPath, files, { signal, remove: removed });
    setBounded(lastOutputs, input.targetPath, byObject, 4096);
    summary.written = result.written.length;
    summary.unchanged = result.unchanged.length;
    return { objectVersions, files: [] };
  }
}

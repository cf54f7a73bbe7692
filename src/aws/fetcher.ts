/**
 * @module aws/fetcher
 * Fetches every object of a mount: Secrets Manager objects concurrently, SSM in batches of ten, each
 * from the primary region, and from the failover region only when the primary's error lets it answer
 * (**better**, docs/behaviour.md, "Failover": ASCP asks both regions for every object, always, one after another).
 * Collects a result or an error per object; the caller decides (all or nothing).
 */
import type { ProviderError } from '../errors.js';
import type { SecretDescriptor } from '../spc/index.js';
import type { AwsClientFactory, AwsCredentials } from './clients.js';
import { AwsCallError, classifyAwsError } from '../aws-errors.js';
import {
  batchable,
  batchGetSecretValues,
  BatchRefused,
  getSecretValue,
  selectorFor,
  SM_BATCH,
  type FetchedValue,
} from './secrets-manager.js';
import { getParameterBatch, parameterSelector, SSM_BATCH } from './ssm.js';
import { setBounded } from '../bounded-map.js';
import { describeSize } from '../bytes.js';
import { mapLimit } from '../map-limit.js';

/** A region and a way to get credentials for it (lazy: the failover region's are asked for only if needed). */
export interface RegionAccess {
  region: string;
  credentials: (signal: AbortSignal) => Promise<AwsCredentials>;
  /** The role the credentials act as (a key): remembers per role whether BatchGetSecretValue is allowed. */
  identity?: string | undefined;
}

export interface FetchPlan {
  primary: RegionAccess;
  failover?: RegionAccess | undefined;
  descriptors: readonly SecretDescriptor[];
  signal: AbortSignal;
  /** Most bytes of values one mount may read (default MAX_MOUNT_BYTES). */
  maxBytes?: number | undefined;
}

/**
 * Most bytes of secret values one mount reads: 64 times a full-size Secrets Manager secret, far
 * beyond real classes (a few KiB), and what the driver accepts in one answer in driver-writes mode.
 * A class naming many large secrets is refused instead of holding them all in the node's provider.
 */
export const MAX_MOUNT_BYTES = 4 * 1024 * 1024;

export interface FetchedObject extends FetchedValue {
  /** Region that answered. */
  region: string;
}

export interface FetchOutcome {
  /** By descriptor index. */
  values: Map<number, FetchedObject>;
  /** Optional objects that do not exist (skipped). */
  missing: SecretDescriptor[];
  /** Objects that failed, in list order. */
  failures: ProviderError[];
  /** Problems that did not fail the mount (primary error answered by the failover region). */
  warnings: string[];
}

/** Observes each AWS call (metrics). */
export type CallObserver = (
  service: 'secretsmanager' | 'ssm',
  operation: string,
  region: string,
  outcome: 'success' | 'error',
  code: string,
  seconds: number,
) => void;

/** Secrets Manager calls in flight per mount: a first mount of up to 32 objects is one round trip. */
const SM_CONCURRENCY = 32;

function isNotFound(err: AwsCallError): boolean {
  return err.code === 'NOT_FOUND';
}

/**
 * Credentials failed for a region: one error for every object that needed them, so the message says
 * which objects and which region could not be read, and why, once.
 */
class CredentialFailure extends AwsCallError {}

const credentialFailures = new WeakMap<object, CredentialFailure>();

function credentialError(err: unknown, region: string): AwsCallError {
  if (err !== null && typeof err === 'object') {
    const known = credentialFailures.get(err);
    if (known) return known;
  }
  let made: CredentialFailure;
  if (err instanceof AwsCallError) {
    made = new CredentialFailure(err.code, err.message, err.fatal, err.awsName, {
      region,
      reason: err.reason,
      cause: err,
    });
  } else {
    const e = err as ProviderError;
    if (e && typeof e === 'object' && 'code' in e && typeof e.code === 'string') {
      // Identity errors (a missing annotation, a refused token) cannot be fixed by another region.
      made = new CredentialFailure(e.code, e.message, true, e.reason ?? 'Credentials', {
        region,
        reason: e.reason ?? 'Credentials',
        cause: err,
      });
    } else {
      const c = classifyAwsError(err, { what: 'Failed getting credentials', region });
      made = new CredentialFailure(c.code, c.message, c.fatal, c.awsName, { region, reason: c.reason, cause: err });
    }
  }
  if (err !== null && typeof err === 'object') credentialFailures.set(err, made);
  return made;
}

function tooLarge(maxBytes: number, region: string, object: string, held?: number): AwsCallError {
  return new AwsCallError(
    'RESOURCE_EXHAUSTED',
    `the objects of this class hold ${held === undefined ? 'more than' : `${describeSize(held)}, more than`} the ` +
      `${describeSize(maxBytes)} one mount may read: split the class, or name fewer or smaller objects`,
    true,
    'TooLarge',
    { region, object, reason: 'TooLarge' },
  );
}

/** Memoizes each region's credentials for one mount, so every object shares one answer (or one failure). */
function once(access: RegionAccess): RegionAccess {
  let p: Promise<AwsCredentials> | undefined;
  return {
    region: access.region,
    identity: access.identity,
    credentials: (signal) => (p ??= access.credentials(signal)),
  };
}

/** How long an identity whose role may not call BatchGetSecretValue is not asked to again. */
const BATCH_REFUSED_MS = 60 * 60_000;

export class Fetcher {
  /**
   * Identity+region → whether BatchGetSecretValue is allowed (true), or refused until a time.
   * Unknown identities read one by one and probe the batch alongside, so a first mount never waits
   * for the probe; warm polls then use what it learned.
   */
  private readonly batchState = new Map<string, true | number>();
  /** Identity+region whose BatchGetSecretValue probe is in flight now. */
  private readonly probing = new Set<string>();

  constructor(
    private readonly clients: AwsClientFactory,
    private readonly observe: CallObserver = () => {},
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Reads the current versions of several secrets in one BatchGetSecretValue per 20 (one SDK call
   * instead of twenty: most of a warm poll's CPU is the SDK's per-call cost). The action needs
   * `secretsmanager:BatchGetSecretValue` beyond ASCP's permissions (docs/behaviour.md, "Fetching"): when the role
   * is refused it, we read one by one and do not ask that role again for an hour (one AccessDenied
   * in CloudTrail per role and hour, not per pod). Secrets the
   * batch did not answer are read one by one, so their errors are the exact ones.
   */
  private async batchCurrent(
    access: RegionAccess,
    ds: readonly SecretDescriptor[],
    signal: AbortSignal,
  ): Promise<Map<number, FetchedObject>> {
    const got = new Map<number, FetchedObject>();
    const key = `${access.region}\0${access.identity ?? ''}`;
    const eligible = ds.filter(batchable);
    const ids = [...new Set(eligible.map((d) => d.objectName))];
    if (ids.length < 2 || access.identity === undefined) return got;
    const state = this.batchState.get(key);
    if (typeof state === 'number' && state > this.now()) return got;
    let creds: AwsCredentials;
    try {
      creds = await access.credentials(signal);
    } catch {
      return got; // the one-by-one path reports it, per object
    }
    const client = await this.clients.secretsManager(access.region, creds);
    const chunks: string[][] = [];
    for (let i = 0; i < ids.length; i += SM_BATCH) chunks.push(ids.slice(i, i + SM_BATCH));
    const values = new Map<string, FetchedValue>();
    await Promise.all(
      chunks.map(async (chunk) => {
        try {
          const answered = await this.timed('secretsmanager', 'BatchGetSecretValue', access.region, () =>
            batchGetSecretValues(client, chunk, access.region, signal),
          );
          for (const [id, v] of answered) values.set(id, v);
        } catch (err) {
          if (err instanceof BatchRefused) setBounded(this.batchState, key, this.now() + BATCH_REFUSED_MS, 4096);
          // anything else: those secrets are read one by one below
        }
      }),
    );
    if (this.batchState.get(key) === undefined) setBounded(this.batchState, key, true, 4096);
    for (const d of eligible) {
      const v = values.get(d.objectName);
      if (v) got.set(d.index, { ...v, region: access.region });
    }
    return got;
  }

  async fetchAll(input: FetchPlan): Promise<FetchOutcome> {
    const plan: FetchPlan = {
      ...input,
      primary: once(input.primary),
      failover: input.failover ? once(input.failover) : undefined,
    };
    const outcome: FetchOutcome = { values: new Map(), missing: [], failures: [], warnings: [] };
    const errors = new Map<number, ProviderError>();
    const sm = plan.descriptors.filter((d) => d.objectType === 'secretsmanager');
    const ssm = plan.descriptors.filter((d) => d.objectType === 'ssmparameter');

    const settle = (
      d: SecretDescriptor,
      primaryErr: AwsCallError,
      failoverErr: AwsCallError | undefined,
      value?: FetchedObject,
    ): void => {
      if (value) {
        outcome.values.set(d.index, value);
        outcome.warnings.push(`${primaryErr.message} — served from failover region ${value.region}`);
        return;
      }
      if (d.optional && isNotFound(primaryErr) && (failoverErr === undefined || isNotFound(failoverErr))) {
        outcome.missing.push(d);
        return;
      }
      if (failoverErr) {
        const e = new AwsCallError(
          failoverErr.fatal ? failoverErr.code : primaryErr.code,
          `${primaryErr.message}; failover ${failoverErr.message}`,
          primaryErr.fatal || failoverErr.fatal,
          primaryErr.awsName,
          {
            region: primaryErr.region ?? plan.primary.region,
            object: d.objectName,
            reason: primaryErr.reason,
          },
        );
        errors.set(d.index, e);
      } else {
        errors.set(d.index, primaryErr);
      }
    };

    // One call per distinct secret, version and region, however many objects name it (under other
    // aliases, or with other jmesPath entries); none once the mount has read its byte budget.
    const maxBytes = plan.maxBytes ?? MAX_MOUNT_BYTES;
    let bytes = 0;
    const reads = new Map<string, Promise<FetchedObject>>();
    const read = (access: RegionAccess, d: SecretDescriptor, failover: boolean): Promise<FetchedObject> => {
      const sel = selectorFor(d, failover);
      const key = `${access.region}\0${sel.name}\0${sel.version}\0${sel.label}`;
      let p = reads.get(key);
      if (!p) {
        p =
          bytes > maxBytes
            ? Promise.reject(tooLarge(maxBytes, access.region, d.objectName))
            : this.secret(access, d, failover, plan.signal).then((v) => {
                bytes += v.value.byteLength;
                return v;
              });
        reads.set(key, p);
      }
      return p;
    };
    const readOneByOne = (list: readonly SecretDescriptor[]): Promise<void> =>
      mapLimit(list, SM_CONCURRENCY, async (d) => {
        let primaryErr: AwsCallError;
        try {
          const v = await read(plan.primary, d, false);
          outcome.values.set(d.index, v);
          return;
        } catch (err) {
          primaryErr = err as AwsCallError;
        }
        if (!plan.failover || primaryErr.fatal || plan.signal.aborted) return settle(d, primaryErr, undefined);
        try {
          const v = await read(plan.failover, d, true);
          settle(d, primaryErr, undefined, v);
        } catch (err) {
          settle(d, primaryErr, err as AwsCallError);
        }
      });
    const known = this.batchState.get(`${plan.primary.region}\0${plan.primary.identity ?? ''}`) === true;
    const secrets = async (): Promise<void> => {
      if (known) {
        // Warm path: one batch call; only what it did not answer goes one by one.
        const batched = await this.batchCurrent(plan.primary, sm, plan.signal);
        for (const [index, v] of batched) outcome.values.set(index, v);
        await readOneByOne(batched.size > 0 ? sm.filter((d) => !batched.has(d.index)) : sm);
      } else {
        // Unknown (first mount of an identity) or refused: one by one, probing the batch alongside,
        // once per role at a time: a node coming up full starts ten pods of one role together, and
        // one probe answers for all of them.
        const key = `${plan.primary.region}\0${plan.primary.identity ?? ''}`;
        if (this.probing.has(key)) return readOneByOne(sm);
        this.probing.add(key);
        const probe = this.batchCurrent(plan.primary, sm, plan.signal).finally(() => this.probing.delete(key));
        await Promise.all([readOneByOne(sm), probe.then(() => undefined)]);
      }
    };
    await Promise.all([secrets(), this.parameters(plan, ssm, settle, outcome)]);
    // Batch and SSM answers count too: the distinct values held, whoever read them.
    let held = 0;
    for (const v of new Set([...outcome.values.values()].map((x) => x.value))) held += v.byteLength;
    if (held > maxBytes && !plan.descriptors.some((d) => errors.get(d.index)?.reason === 'TooLarge')) {
      const first = plan.descriptors[0];
      if (first) errors.set(first.index, tooLarge(maxBytes, plan.primary.region, first.objectName, held));
    }

    const grouped = new Map<CredentialFailure, string[]>();
    let tooLargeSaid = false;
    for (const d of plan.descriptors) {
      const e = errors.get(d.index);
      if (!e) continue;
      if (e.reason === 'TooLarge') {
        // One budget for the whole mount: said once.
        if (!tooLargeSaid) outcome.failures.push(e);
        tooLargeSaid = true;
      } else if (e instanceof CredentialFailure) {
        const names = grouped.get(e);
        if (names) names.push(d.objectName);
        else {
          grouped.set(e, [d.objectName]);
          outcome.failures.push(e);
        }
      } else outcome.failures.push(e);
    }
    outcome.failures = outcome.failures.map((e) => {
      const names = e instanceof CredentialFailure ? grouped.get(e) : undefined;
      if (!names || !(e instanceof CredentialFailure)) return e;
      const list = names.length > 5 ? `${names.slice(0, 5).join(', ')} and ${names.length - 5} more` : names.join(', ');
      const prefix = e.message.startsWith(`${e.region}: `) ? '' : `${e.region}: `;
      return new AwsCallError(e.code, `${prefix}${e.message} (could not read ${list})`, e.fatal, e.awsName, {
        region: e.region ?? plan.primary.region,
        object: names[0],
        reason: e.reason,
        cause: e,
      });
    });
    return outcome;
  }

  private async timed<T>(
    service: 'secretsmanager' | 'ssm',
    op: string,
    region: string,
    fn: () => Promise<T>,
  ): Promise<T> {
    const t0 = performance.now();
    try {
      const v = await fn();
      this.observe(service, op, region, 'success', 'OK', (performance.now() - t0) / 1000);
      return v;
    } catch (err) {
      const code = err instanceof AwsCallError || err instanceof BatchRefused ? err.awsName : 'Error';
      this.observe(service, op, region, 'error', code, (performance.now() - t0) / 1000);
      throw err;
    }
  }

  private async secret(
    access: RegionAccess,
    d: SecretDescriptor,
    failover: boolean,
    signal: AbortSignal,
  ): Promise<FetchedObject> {
    let creds: AwsCredentials;
    try {
      creds = await access.credentials(signal);
    } catch (err) {
      throw credentialError(err, access.region);
    }
    const client = await this.clients.secretsManager(access.region, creds);
    const v = await this.timed('secretsmanager', 'GetSecretValue', access.region, () =>
      getSecretValue(client, d, access.region, failover, signal),
    );
    return { ...v, region: access.region };
  }

  /** Batches of ten distinct selectors per region; per-selector results fan back out to descriptors. */
  private async parameters(
    plan: FetchPlan,
    ssm: readonly SecretDescriptor[],
    settle: (d: SecretDescriptor, p: AwsCallError, f: AwsCallError | undefined, v?: FetchedObject) => void,
    outcome: FetchOutcome,
  ): Promise<void> {
    if (ssm.length === 0) return;
    const primary = await this.regionParameters(plan.primary, ssm, false, plan.signal);
    const retry: { d: SecretDescriptor; err: AwsCallError }[] = [];
    for (const d of ssm) {
      const r = primary.get(parameterSelector(d, false));
      if (r === undefined) continue;
      if (r instanceof AwsCallError) {
        if (plan.failover && !r.fatal) retry.push({ d, err: r });
        else settle(d, r, undefined);
      } else outcome.values.set(d.index, { ...r, region: plan.primary.region });
    }
    if (retry.length === 0 || !plan.failover || plan.signal.aborted) {
      for (const { d, err } of retry) settle(d, err, undefined);
      return;
    }
    const failover = await this.regionParameters(
      plan.failover,
      retry.map((x) => x.d),
      true,
      plan.signal,
    );
    for (const { d, err } of retry) {
      const r = failover.get(parameterSelector(d, true));
      if (r === undefined || r instanceof AwsCallError) settle(d, err, r);
      else settle(d, err, undefined, { ...r, region: plan.failover.region });
    }
  }

  private async regionParameters(
    access: RegionAccess,
    ds: readonly SecretDescriptor[],
    failover: boolean,
    signal: AbortSignal,
  ): Promise<Map<string, FetchedValue | AwsCallError>> {
    const selectors = [...new Set(ds.map((d) => parameterSelector(d, failover)))];
    const results = new Map<string, FetchedValue | AwsCallError>();
    let creds: AwsCredentials;
    try {
      creds = await access.credentials(signal);
    } catch (err) {
      const e = credentialError(err, access.region);
      for (const s of selectors) results.set(s, e);
      return results;
    }
    const client = await this.clients.ssm(access.region, creds);
    const batches: string[][] = [];
    for (let i = 0; i < selectors.length; i += SSM_BATCH) batches.push(selectors.slice(i, i + SSM_BATCH));
    await Promise.all(
      batches.map(async (batch) => {
        try {
          const got = await this.timed('ssm', 'GetParameters', access.region, () =>
            getParameterBatch(client, batch, access.region, signal),
          );
          for (const [k, v] of got) results.set(k, v);
        } catch (err) {
          const e =
            err instanceof AwsCallError
              ? err
              : classifyAwsError(err, { what: 'Failed fetching parameters', region: access.region });
          for (const s of batch) results.set(s, e);
        }
      }),
    );
    return results;
  }
}

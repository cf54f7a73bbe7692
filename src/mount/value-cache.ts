/**
 * @module mount/value-cache
 * Opt-in (`--cache-ttl`, default off): fetched values reused for a bounded time, so a rotation poll
 * inside the TTL makes no AWS call at all. Trades staleness (at most the TTL) for cost.
 *
 * Lifetime: an entry lives `ttlMs` from its fetch; at most `maxEntries` (oldest dropped first).
 * Key: the pod's identity key (the credential cache's: method, role, web identity, role chain) + the
 * object's region, type, name, version, label and failover object — so a value is only ever served
 * to a request that presents the very identity that fetched it (Pod Identity sessions carry per-pod
 * tags IAM policies may check: never share across identities). Values stay in process memory only.
 */
import { createHash } from 'node:crypto';
import type { SecretDescriptor } from '../spc/index.js';
import { setBounded } from '../bounded-map.js';

export interface CachedValue {
  value: Uint8Array;
  version: string;
  region: string;
}

export function valueKey(identityKey: string, regions: readonly string[], d: SecretDescriptor): string {
  const f = d.failoverObject;
  const parts = [
    identityKey,
    ...regions,
    d.objectType,
    d.objectName,
    d.objectVersion,
    d.objectVersionLabel,
    f?.objectName,
    f?.objectVersion,
    f?.objectVersionLabel,
  ];
  const h = createHash('sha256');
  for (const p of parts) h.update(p ?? '').update('\0');
  return h.digest('hex');
}

export class ValueCache {
  private readonly entries = new Map<string, { v: CachedValue; until: number }>();
  hits = 0;
  misses = 0;

  constructor(
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
    private readonly maxEntries = 4096,
  ) {}

  get(key: string): CachedValue | undefined {
    const e = this.entries.get(key);
    if (e && e.until > this.now()) {
      this.hits++;
      return e.v;
    }
    if (e) this.entries.delete(key);
    this.misses++;
    return undefined;
  }

  set(key: string, v: CachedValue): void {
    setBounded(this.entries, key, { v, until: this.now() + this.ttlMs }, this.maxEntries);
  }

  get size(): number {
    return this.entries.size;
  }
}

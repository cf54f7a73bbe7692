/**
 * @module identity/credential-cache
 * Credentials per identity, reused until shortly before they expire (**better**, docs/behaviour.md, "Identity").
 *
 * Lifetime: an entry lives until `expiration - margin` (margin = 5 minutes, at most half the
 * credentials' lifetime), or until `forget()` when AWS refuses them. Errors are never cached.
 * Key: built by the caller from everything that decides *who* the credentials are for — method,
 * role, region, the web identity the token presents (token-subject.ts) or a hash of the token, and
 * the role chain (external id included) — so credentials are never handed to another identity (no
 * confused deputy: a pod presenting a token the role does not trust misses the cache and is refused
 * by STS itself).
 * Concurrent misses for one key share one exchange in flight.
 */
import { createHash } from 'node:crypto';
import { setBounded } from '../bounded-map.js';

export interface CachedCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string | undefined;
  /** Epoch ms; undefined = does not expire (then kept for `defaultTtlMs`). */
  expiration?: number | undefined;
}

export interface CredentialCacheOptions {
  now?: () => number;
  /** Most entries kept (oldest dropped first). */
  maxEntries?: number;
  /** Lifetime of credentials that carry no expiration. */
  defaultTtlMs?: number;
  /** Told of every lookup (metrics). */
  onCache?: (hit: boolean) => void;
}

const MARGIN_MS = 5 * 60_000;

/** sha256 of the parts, so tokens never sit in memory as map keys or show up in a heap dump key. */
export function credentialKey(parts: readonly (string | number | undefined)[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(String(p ?? '')).update('\0');
  return h.digest('hex');
}

interface Entry {
  creds: CachedCredentials;
  until: number;
}

export class CredentialCache {
  private readonly entries = new Map<string, Entry>();
  private readonly inflight = new Map<string, Promise<CachedCredentials>>();
  private readonly now: () => number;
  private readonly maxEntries: number;
  private readonly defaultTtlMs: number;
  private readonly onCache: (hit: boolean) => void;
  hits = 0;
  misses = 0;

  constructor(opts: CredentialCacheOptions = {}) {
    this.now = opts.now ?? Date.now;
    this.maxEntries = opts.maxEntries ?? 2048;
    this.defaultTtlMs = opts.defaultTtlMs ?? 15 * 60_000;
    this.onCache = opts.onCache ?? (() => {});
  }

  /** The cached credentials for `key`, or the result of `load()` (shared with concurrent callers). */
  async get(key: string, load: () => Promise<CachedCredentials>): Promise<CachedCredentials> {
    const e = this.entries.get(key);
    const now = this.now();
    if (e && e.until > now) {
      this.hits++;
      this.onCache(true);
      return e.creds;
    }
    if (e) this.entries.delete(key);
    const pending = this.inflight.get(key);
    if (pending) {
      this.hits++;
      this.onCache(true);
      return pending;
    }
    this.misses++;
    this.onCache(false);
    const p = (async () => {
      try {
        const creds = await load();
        this.store(key, creds);
        return creds;
      } finally {
        this.inflight.delete(key);
      }
    })();
    this.inflight.set(key, p);
    return p;
  }

  private store(key: string, creds: CachedCredentials): void {
    const now = this.now();
    let until: number;
    if (creds.expiration === undefined) until = now + this.defaultTtlMs;
    else {
      const life = creds.expiration - now;
      until = creds.expiration - Math.min(MARGIN_MS, Math.max(0, life / 2));
    }
    if (until <= now) return;
    setBounded(this.entries, key, { creds, until }, this.maxEntries);
  }

  /** Drops an entry AWS refused (expired or revoked session). */
  forget(key: string): void {
    this.entries.delete(key);
  }

  get size(): number {
    return this.entries.size;
  }
}

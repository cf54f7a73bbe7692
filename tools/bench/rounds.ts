/**
 * @module bench/rounds
 * Call counts per service and sequential round trips, from the emulator's call log. With a latency
 * of L ms added to every answer, a call that depends on another starts at least L ms after it; calls
 * whose start times fall within L ms of the first call of a round are one round trip.
 *
 * Example, L = 20: starts at 0 (k8s), 21 (sts), 43, 43, 44 (secretsmanager ×3) → 3 round trips:
 * [k8s] [sts] [secretsmanager ×3].
 */
import type { CallRecord, ServiceName } from '../emulator/index.js';

export const SERVICES: readonly ServiceName[] = ['sts', 'pod-identity', 'k8s', 'secretsmanager', 'ssm'];

export interface Round {
  /** ms after the first call of the mount. */
  startMs: number;
  calls: number;
  /** `secretsmanager×10`, `k8s×1+sts×1`. */
  label: string;
}

export interface CallProfile {
  total: number;
  byService: Record<ServiceName, number>;
  /** Operations, e.g. `secretsmanager:GetSecretValue×10`. */
  operations: string;
  rounds: Round[];
  /** Rounds containing at least one call of this service. */
  roundsOf: Record<ServiceName, number>;
  /** Calls that were not answered with a 2xx. */
  errors: number;
}

function label(calls: readonly CallRecord[]): string {
  const by = new Map<string, number>();
  for (const c of calls) by.set(c.service, (by.get(c.service) ?? 0) + 1);
  return [...by].map(([s, n]) => `${s}×${n}`).join('+');
}

/** Profiles a mount's calls; `latencyMs` ≤ 0 gives no rounds (depth is meaningless without latency). */
export function profileCalls(calls: readonly CallRecord[], latencyMs: number): CallProfile {
  const byService = Object.fromEntries(SERVICES.map((s) => [s, 0])) as Record<ServiceName, number>;
  const roundsOf = Object.fromEntries(SERVICES.map((s) => [s, 0])) as Record<ServiceName, number>;
  const ops = new Map<string, number>();
  let errors = 0;
  for (const c of calls) {
    byService[c.service] = (byService[c.service] ?? 0) + 1;
    const k = `${c.service}:${c.operation}`;
    ops.set(k, (ops.get(k) ?? 0) + 1);
    if (c.status < 200 || c.status >= 300) errors++;
  }
  const rounds: Round[] = [];
  if (latencyMs > 0 && calls.length > 0) {
    const sorted = [...calls].sort((a, b) => a.at - b.at);
    const t0 = (sorted[0] as CallRecord).at;
    let current: CallRecord[] = [];
    let start = t0;
    const flush = (): void => {
      if (current.length === 0) return;
      rounds.push({ startMs: start - t0, calls: current.length, label: label(current) });
      for (const s of new Set(current.map((c) => c.service))) roundsOf[s] = (roundsOf[s] ?? 0) + 1;
    };
    for (const c of sorted) {
      if (current.length > 0 && c.at - start >= latencyMs) {
        flush();
        current = [];
      }
      if (current.length === 0) start = c.at;
      current.push(c);
    }
    flush();
  }
  return {
    total: calls.length,
    byService,
    operations: [...ops].map(([k, n]) => `${k}×${n}`).join(', ') || 'none',
    rounds,
    roundsOf,
    errors,
  };
}

/**
 * @module bench/report
 * Plain-text tables and the few statistics the bench prints. Pure.
 *
 * table(['a', 'b'], [['1', 'xyz']]) →
 *   a | b
 *   --+----
 *   1 | xyz
 */

export type Verdict = 'ok' | 'MISSED' | 'n/a';

/** `measured ≤ target` → ok, else MISSED; NaN → n/a. */
export function verdict(measured: number, target: number): Verdict {
  if (!Number.isFinite(measured)) return 'n/a';
  return measured <= target ? 'ok' : 'MISSED';
}

export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join(' | ')
      .trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('-+-'), ...rows.map(line)].join('\n');
}

export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  const i = Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1));
  return s[i] as number;
}

export function median(values: readonly number[]): number {
  return quantile(values, 0.5);
}

export function mib(bytes: number): string {
  return Number.isFinite(bytes) ? `${(bytes / 1024 / 1024).toFixed(1)} MiB` : 'n/a';
}

export function ms(v: number, digits = 1): string {
  return Number.isFinite(v) ? `${v.toFixed(digits)} ms` : 'n/a';
}

/** Least-squares slope of y over x (0 for fewer than two points). */
export function slope(points: readonly { x: number; y: number }[]): number {
  if (points.length < 2) return 0;
  const n = points.length;
  const mx = points.reduce((a, p) => a + p.x, 0) / n;
  const my = points.reduce((a, p) => a + p.y, 0) / n;
  let num = 0;
  let den = 0;
  for (const p of points) {
    num += (p.x - mx) * (p.y - my);
    den += (p.x - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

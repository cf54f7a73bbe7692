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

/**
 * Moves a column of long, repeated texts under the table as numbered notes: each distinct text
 * becomes `[n]` in its cells and one `[n] text` line. Keeps tables within a terminal's width.
 */
export function footnoteColumn(
  header: readonly string[],
  rows: readonly (readonly string[])[],
  column: string,
): { rows: string[][]; notes: string[] } {
  const i = header.indexOf(column);
  if (i < 0) return { rows: rows.map((r) => [...r]), notes: [] };
  const texts: string[] = [];
  const out = rows.map((r) => {
    const text = r[i] ?? '';
    if (text === '' || text === '-') return [...r];
    let n = texts.indexOf(text);
    if (n < 0) n = texts.push(text) - 1;
    const copy = [...r];
    copy[i] = `[${n + 1}]`;
    return copy;
  });
  return { rows: out, notes: texts.map((t, n) => `[${n + 1}] ${column}: ${t}`) };
}

/** Words of `text` on lines of at most `width` characters (a word longer than that stands alone). */
export function wrap(text: string, width: number, indent = ''): string {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line);
      line = indent + word;
    } else line = line === '' ? word : `${line} ${word}`;
  }
  if (line !== '') lines.push(line);
  return lines.join('\n');
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

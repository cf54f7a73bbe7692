/**
 * @module cli/duration
 * Go's time.ParseDuration grammar ("300ms", "1.5h", "2h45m", "-1.5s", "0"), because ASCP's flags
 * (`--pod-identity-http-timeout`) are Go durations and existing DaemonSets pass them verbatim.
 * Returns milliseconds (fractions kept) or throws with Go's wording.
 */

const UNIT_MS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  μs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/** `"2s"` → 2000, `"1m30s"` → 90000, `"100ms"` → 100. */
export function parseGoDuration(text: string): number {
  const bad = (): Error => new Error(`time: invalid duration ${JSON.stringify(text)}`);
  let s = text;
  let sign = 1;
  if (s.startsWith('-') || s.startsWith('+')) {
    if (s[0] === '-') sign = -1;
    s = s.slice(1);
  }
  if (s === '0') return 0;
  if (s === '') throw bad();
  let total = 0;
  const part = /^([0-9]*(?:\.[0-9]*)?)(ns|us|µs|μs|ms|s|m|h)/;
  while (s.length > 0) {
    const m = part.exec(s);
    if (!m || m[1] === undefined || m[2] === undefined || m[1] === '' || m[1] === '.') {
      if (/^[0-9.]+$/.test(s)) throw new Error(`time: missing unit in duration ${JSON.stringify(text)}`);
      throw bad();
    }
    total += Number(m[1]) * (UNIT_MS[m[2]] ?? NaN);
    s = s.slice(m[0].length);
  }
  if (!Number.isFinite(total)) throw bad();
  return sign * total;
}

/** Go's String() form for log lines: 100 → "100ms", 35000 → "35s", 90000 → "1m30s". */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  if (Math.abs(ms) < 1000) return `${ms}ms`;
  const neg = ms < 0 ? '-' : '';
  let rest = Math.abs(ms) / 1000;
  const h = Math.floor(rest / 3600);
  rest -= h * 3600;
  const m = Math.floor(rest / 60);
  rest -= m * 60;
  const sec = Number(rest.toFixed(3));
  return `${neg}${h ? `${h}h` : ''}${h || m ? `${m}m` : ''}${sec}s`;
}

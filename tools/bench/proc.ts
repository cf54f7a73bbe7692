/**
 * @module bench/proc
 * A process's own CPU and memory, read from Linux `/proc/<pid>/stat` (utime + stime, in clock
 * ticks) and `/proc/<pid>/status` (VmRSS, VmHWM = peak RSS). Coarse (one tick is usually 10 ms):
 * callers measure over many iterations.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

export interface ProcSample {
  /** user + system CPU since the process started, in ms. */
  cpuMs: number;
  /** Resident set size now, bytes. */
  rssBytes: number;
  /** Peak resident set size so far, bytes. */
  hwmBytes: number;
  /** Anonymous resident memory (heap, stacks, malloc): what the process itself allocated. */
  anonBytes: number;
  /** File-backed resident memory (the node binary, shared libraries, mapped files). */
  fileBytes: number;
}

let ticks: number | undefined;

/** `getconf CLK_TCK` (usually 100), asked once; 100 if getconf is missing. */
export function clockTicksPerSecond(): number {
  if (ticks === undefined) {
    try {
      const n = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
      ticks = Number.isFinite(n) && n > 0 ? n : 100;
    } catch {
      ticks = 100;
    }
  }
  return ticks;
}

/**
 * utime + stime in ticks from the text of `/proc/<pid>/stat`. The command name (field 2) sits in
 * parentheses and may hold spaces or parentheses, so fields are counted after the last `)`:
 * `"42 (node) S 1 … 17 3 …"` → fields 14 and 15 → 17 + 3 = 20.
 */
export function parseStatTicks(stat: string): number {
  const close = stat.lastIndexOf(')');
  if (close < 0) throw new Error('unexpected /proc/<pid>/stat format: no ")" after the command name');
  // After ")" come field 3 (state) onwards; utime is field 14, stime field 15.
  const rest = stat
    .slice(close + 1)
    .trim()
    .split(/\s+/);
  const utime = Number(rest[14 - 3]);
  const stime = Number(rest[15 - 3]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime))
    throw new Error('unexpected /proc/<pid>/stat format: utime/stime are not numbers');
  return utime + stime;
}

/** `VmRSS:   51234 kB` → bytes; undefined when the line is absent (a zombie has none). */
export function parseStatusKb(status: string, field: 'VmRSS' | 'VmHWM' | 'RssAnon' | 'RssFile'): number | undefined {
  const m = new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, 'm').exec(status);
  return m === null ? undefined : Number(m[1]) * 1024;
}

/** One reading of a live process. Throws when the process is gone. */
export function sampleProc(pid: number): ProcSample {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return {
    cpuMs: (parseStatTicks(stat) * 1000) / clockTicksPerSecond(),
    rssBytes: parseStatusKb(status, 'VmRSS') ?? 0,
    hwmBytes: parseStatusKb(status, 'VmHWM') ?? 0,
    anonBytes: parseStatusKb(status, 'RssAnon') ?? 0,
    fileBytes: parseStatusKb(status, 'RssFile') ?? 0,
  };
}

/** Samples RSS every `everyMs` until stopped; `max()` is the highest RSS seen (and VmHWM at the end). */
export function watchRss(pid: number, everyMs = 5): { stop(): { maxRssBytes: number; hwmBytes: number } } {
  let max = 0;
  const tick = (): void => {
    try {
      max = Math.max(max, sampleProc(pid).rssBytes);
    } catch {
      // the process went away; the caller notices elsewhere
    }
  };
  tick();
  const timer = setInterval(tick, everyMs);
  return {
    stop() {
      clearInterval(timer);
      tick();
      let hwm: number;
      try {
        hwm = sampleProc(pid).hwmBytes;
      } catch {
        hwm = 0;
      }
      return { maxRssBytes: max, hwmBytes: hwm };
    },
  };
}

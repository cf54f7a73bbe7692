/**
 * @module observability/logger
 * Structured logs: one JSON object per line on stderr (or `key=value` text), levels, and redaction.
 * Callers pass fields, never whole request objects; `redact` is the last line of defence: any field
 * whose name looks like it carries secret material is replaced, and JWT-shaped strings are masked.
 */

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFormat = 'json' | 'text';
export type LogFields = Record<string, unknown>;

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** Field names whose values are never printed. */
const SECRET_KEY = /(secret(?!ProviderClass)|token|password|contents|value|credential|authorization|sessiontoken)/i;
/** A JWT anywhere in a string (three base64url parts, the first starting like a JSON header). */
const JWT = /eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/g;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** A logger that adds `fields` to every line. */
  child(fields: LogFields): Logger;
}

export interface LoggerOptions {
  level?: LogLevel;
  format?: LogFormat;
  /** Where lines go; stderr by default. Tests capture them here. */
  write?: (line: string) => void;
  now?: () => Date;
}

/** Masks JWT-shaped substrings. Exported for error messages built from upstream text. */
export function scrub(text: string): string {
  return text.replace(JWT, '[REDACTED-TOKEN]');
}

function redactValue(key: string, value: unknown, depth: number): unknown {
  if (SECRET_KEY.test(key) && !/^(secretProviderClass|objects?|objectName)$/i.test(key)) return '[REDACTED]';
  if (typeof value === 'string') return scrub(value);
  if (value instanceof Error) return scrub(value.message);
  if (depth > 4) return '[…]';
  if (Array.isArray(value)) return value.map((v) => redactValue('', v, depth + 1));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = redactValue(k, v, depth + 1);
    return out;
  }
  return value;
}

export function redact(fields: LogFields): LogFields {
  const out: LogFields = {};
  for (const [k, v] of Object.entries(fields)) out[k] = redactValue(k, v, 0);
  return out;
}

function textValue(v: unknown): string {
  const s = typeof v === 'string' ? v : JSON.stringify(v);
  return /[\s"=]/.test(s ?? '') ? JSON.stringify(s) : (s ?? '');
}

export function createLogger(options: LoggerOptions = {}, base: LogFields = {}): Logger {
  const min = RANK[options.level ?? 'info'];
  const format = options.format ?? 'json';
  const write = options.write ?? ((line: string) => process.stderr.write(line + '\n'));
  const now = options.now ?? (() => new Date());

  const emit = (level: LogLevel, msg: string, fields: LogFields = {}): void => {
    if (RANK[level] < min) return;
    const all = redact({ ...base, ...fields });
    if (format === 'json') {
      write(JSON.stringify({ time: now().toISOString(), level, msg: scrub(msg), ...all }));
    } else {
      const kv = Object.entries(all)
        .map(([k, v]) => `${k}=${textValue(v)}`)
        .join(' ');
      write(`${now().toISOString()} ${level.toUpperCase()} ${scrub(msg)}${kv ? ' ' + kv : ''}`);
    }
  };

  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    child: (fields) => createLogger(options, { ...base, ...fields }),
  };
}

/** A logger that prints nothing (unit tests, library use). */
export const silentLogger: Logger = createLogger({ write: () => {} });

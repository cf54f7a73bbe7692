/**
 * @module errors
 * The one error type of the provider. Every refusal carries a gRPC status *name* (server/ alone maps
 * names to numbers), the fields a user needs to act on it, and the underlying cause. Messages never
 * contain a secret value or a token (docs/behaviour.md, "Errors").
 */

/** gRPC status names we use on purpose (UNAVAILABLE only for retry-worthy failures: docs/behaviour.md, "Transport"). */
export type StatusName =
  | 'CANCELLED'
  | 'INVALID_ARGUMENT'
  | 'DEADLINE_EXCEEDED'
  | 'NOT_FOUND'
  | 'PERMISSION_DENIED'
  | 'RESOURCE_EXHAUSTED'
  | 'FAILED_PRECONDITION'
  | 'INTERNAL'
  | 'UNAVAILABLE'
  | 'UNAUTHENTICATED';

export interface ErrorFields {
  /** The SecretProviderClass object (objectName) the error is about. */
  object?: string | undefined;
  /** The field or attribute at fault (`objects[2].filePermission`, `region`). */
  field?: string | undefined;
  /** The AWS region the failure came from. */
  region?: string | undefined;
  /** A short stable class for metrics and logs (`AccessDenied`, `ResourceNotFound`, `Config`...). */
  reason?: string | undefined;
  cause?: unknown;
}

export class ProviderError extends Error {
  readonly code: StatusName;
  readonly object: string | undefined;
  readonly field: string | undefined;
  readonly region: string | undefined;
  readonly reason: string;

  constructor(code: StatusName, message: string, fields: ErrorFields = {}) {
    super(message, fields.cause === undefined ? undefined : { cause: fields.cause });
    this.name = 'ProviderError';
    this.code = code;
    this.object = fields.object;
    this.field = fields.field;
    this.region = fields.region;
    this.reason = fields.reason ?? code;
  }
}

/** One problem found in a SecretProviderClass. `path` is where: `objects[1].jmesPath[0].path`. */
export interface ConfigProblem {
  message: string;
  /** The message without the position (`objects[2].objectType`), for tools that show the position apart. */
  detail?: string | undefined;
  path?: string | undefined;
  /** Index of the object in the `objects` list, when the problem is about one. */
  index?: number | undefined;
  severity?: 'error' | 'warning';
}

/** Problems or failures listed in one message at most. */
const MAX_LISTED = 20;

/**
 * A SecretProviderClass (or request) that cannot be used. Holds *every* problem found so the user
 * fixes them in one go. Status INVALID_ARGUMENT.
 */
export class ConfigError extends ProviderError {
  readonly problems: readonly ConfigProblem[];

  constructor(problems: readonly ConfigProblem[], prefix = 'invalid SecretProviderClass') {
    // The message goes into a gRPC status (an HTTP/2 header) and a pod event: list the first few.
    const list = problems.slice(0, MAX_LISTED).map((p) => p.message);
    const more =
      problems.length > MAX_LISTED ? `; and ${problems.length - MAX_LISTED} more (run the check command for all)` : '';
    const message =
      problems.length === 1
        ? `${prefix}: ${list[0]}`
        : `${prefix}: ${problems.length} problems: ${list.join('; ')}${more}`;
    super('INVALID_ARGUMENT', message, { reason: 'Config', field: problems[0]?.path });
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/** Order of precedence when several objects fail with different codes: the most actionable wins. */
const PRECEDENCE: readonly StatusName[] = [
  'INVALID_ARGUMENT',
  'UNAUTHENTICATED',
  'PERMISSION_DENIED',
  'NOT_FOUND',
  'FAILED_PRECONDITION',
  'RESOURCE_EXHAUSTED',
  'INTERNAL',
  'DEADLINE_EXCEEDED',
  'CANCELLED',
  'UNAVAILABLE',
];

/**
 * Several objects of one mount failed: one error lists them all (docs/behaviour.md, "Fetching"). The status is the
 * most actionable of theirs; UNAVAILABLE only when every failure was transient, so the driver's
 * retry (which replays the whole mount) can help.
 */
export class MountFailedError extends ProviderError {
  readonly failures: readonly ProviderError[];

  constructor(failures: readonly ProviderError[]) {
    const code = PRECEDENCE.find((c) => failures.some((f) => f.code === c)) ?? 'INTERNAL';
    const listed = failures.slice(0, MAX_LISTED).map((f) => f.message);
    const more = failures.length > MAX_LISTED ? `; and ${failures.length - MAX_LISTED} more` : '';
    const message =
      failures.length === 1
        ? (failures[0]?.message ?? 'mount failed')
        : `${failures.length} objects failed: ${listed.join('; ')}${more}`;
    super(code, message, { reason: failures[0]?.reason, object: failures[0]?.object, region: failures[0]?.region });
    this.name = 'MountFailedError';
    this.failures = failures;
  }
}

export function isProviderError(err: unknown): err is ProviderError {
  return err instanceof ProviderError;
}

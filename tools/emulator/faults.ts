/**
 * @module emulator/faults
 * Fault injection: rules that match a call (service, operation, region, target) and answer an
 * error, delay it, or hang it until the emulator closes; or play a broken upstream: a huge body
 * (streamed, never held), a body that trickles in, a body that is not the service's format, or a
 * real answer with a field of the wrong type. Each rule fires `times` times or forever.
 */
import { randomUUID } from 'node:crypto';

export type ServiceName = 'secretsmanager' | 'ssm' | 'sts' | 'iam' | 'eks' | 'kms' | 'k8s' | 'pod-identity';

export interface Fault {
  service?: ServiceName;
  operation?: string;
  region?: string;
  /** Secret or parameter name as requested (selector ignored), or a substring of the Kubernetes path, or `ns/sa` for
   * the agent. */
  target?: string;
  /** HTTP status; default from `code` (throttling → 400, Internal… → 500) or 500. */
  status?: number;
  /** Error code; default from `status`. */
  code?: string;
  message?: string;
  /** How many calls it hits; default forever. */
  times?: number;
  /** Delay before answering (alone: the call then proceeds normally). */
  delayMs?: number;
  /** Never answer (until the client goes or the emulator closes). */
  hang?: boolean;
  /** Adds `Retry-After`. */
  retryAfterSeconds?: number;
  /**
   * Answers (HTTP `status`, default 200) with exactly this body text, in the service's content type
   * (not the service's error shape): a proxy's page, a truncated answer, text that is not JSON.
   */
  rawBody?: string;
  /**
   * Answers (HTTP `status`, default 200) with a body of this many bytes, streamed as the client reads
   * (the emulator never holds it): `rawBody` first if given, else `{"Padding":"AAA…"}` (valid JSON).
   */
  bodyBytes?: number;
  /** With `bodyBytes`: no Content-Length (chunked), so only counting while reading can stop it. */
  chunked?: boolean;
  /** Sends the answer (the real one or the fault's) one byte every `trickleMs` after the headers, until done or the
   * client goes. */
  trickleMs?: number;
  /** With `trickleMs`: the first this many bytes go at once, then the rest trickles (an answer that stalls part way).
   * */
  burstBytes?: number;
  /**
   * Merged into the real JSON answer's top level when it succeeds (Secrets Manager, SSM, the Pod
   * Identity agent, Kubernetes): a field of the wrong type, e.g. `{ VersionId: 5 }`.
   */
  answerFields?: Record<string, unknown>;
  /** Merged into each entry of the answer's list: BatchGetSecretValue `SecretValues`, GetParameters `Parameters`. */
  entryFields?: Record<string, unknown>;
}

/** True when the fault replaces the answer with a body of its own (not an error, not the real answer). */
export function replacesBody(f: Fault): boolean {
  return f.rawBody !== undefined || f.bodyBytes !== undefined;
}

export interface CallKey {
  service: ServiceName;
  operation: string;
  region: string;
  names: readonly string[];
  path: string;
}

export class FaultTable {
  private readonly rules = new Map<string, { fault: Fault; left: number }>();

  add(fault: Fault): string {
    if (fault.times !== undefined && (!Number.isInteger(fault.times) || fault.times < 1)) {
      throw new RangeError(`addFault: times must be a positive integer, got ${fault.times}`);
    }
    if (fault.bodyBytes !== undefined && (!Number.isSafeInteger(fault.bodyBytes) || fault.bodyBytes < 0)) {
      throw new RangeError(`addFault: bodyBytes must be a non-negative integer, got ${fault.bodyBytes}`);
    }
    if (
      fault.burstBytes !== undefined &&
      (fault.trickleMs === undefined || !Number.isSafeInteger(fault.burstBytes) || fault.burstBytes < 0)
    ) {
      throw new RangeError(
        `addFault: burstBytes must be a non-negative integer, with trickleMs, got ${fault.burstBytes}`,
      );
    }
    if (fault.trickleMs !== undefined && (!Number.isFinite(fault.trickleMs) || fault.trickleMs <= 0)) {
      throw new RangeError(`addFault: trickleMs must be a positive number of ms, got ${fault.trickleMs}`);
    }
    if (replacesBody(fault) && fault.code !== undefined) {
      throw new RangeError('addFault: rawBody/bodyBytes replace the answer; give a status, not an error code');
    }
    const id = randomUUID();
    this.rules.set(id, { fault: { ...fault }, left: fault.times ?? Number.POSITIVE_INFINITY });
    return id;
  }

  remove(id: string): void {
    this.rules.delete(id);
  }

  clear(): void {
    this.rules.clear();
  }

  /** The first rule matching the call, consumed once. */
  take(call: CallKey): Fault | undefined {
    for (const [id, rule] of this.rules) {
      const f = rule.fault;
      if (f.service !== undefined && f.service !== call.service) continue;
      if (f.operation !== undefined && f.operation !== call.operation) continue;
      if (f.region !== undefined && f.region !== call.region) continue;
      if (f.target !== undefined && !targetMatches(f.target, call)) continue;
      rule.left -= 1;
      if (rule.left <= 0) this.rules.delete(id);
      return f;
    }
    return undefined;
  }
}

function targetMatches(target: string, call: CallKey): boolean {
  if (call.service === 'k8s') return call.path.includes(target);
  return call.names.some((n) => {
    if (n === target) return true;
    const base = n.startsWith('arn:') ? n : (n.split(':')[0] ?? n);
    if (base === target) return true;
    // ARNs: match on the name they carry (`…:secret:<name>[-xxxxxx]`, `…:parameter/<name>`).
    if (n.startsWith('arn:')) {
      const res = n.split(':').slice(5).join(':');
      const name = res.replace(/^secret:/, '').replace(/^parameter\//, '');
      return name === target || name.startsWith(`${target}-`) || `/${name}` === target || name.split(':')[0] === target;
    }
    return false;
  });
}

/** Default code and status of a fault's error answer, per service. */
export function faultError(service: ServiceName, f: Fault): { status: number; code: string; message: string } {
  let status = f.status;
  let code = f.code;
  if (status === undefined) {
    if (code === undefined) status = 500;
    else if (/^Internal|ServiceUnavailable|^InternalServerException/.test(code))
      status = code === 'ServiceUnavailable' ? 503 : 500;
    else if (service === 'k8s' || service === 'pod-identity') status = /Throttl|TooMany/.test(code) ? 429 : 400;
    else status = 400;
  }
  if (code === undefined) {
    const throttle = status === 429 || (status === 400 && service !== 'k8s' && service !== 'pod-identity');
    switch (service) {
      case 'secretsmanager':
        code = throttle ? 'ThrottlingException' : status === 503 ? 'ServiceUnavailable' : 'InternalServiceError';
        break;
      case 'eks':
        code = throttle ? 'ThrottlingException' : 'ServerException';
        break;
      case 'kms':
        code = throttle ? 'ThrottlingException' : 'KMSInternalException';
        break;
      case 'ssm':
        code = throttle ? 'ThrottlingException' : 'InternalServerError';
        break;
      case 'sts':
      case 'iam':
        code = throttle ? 'Throttling' : 'InternalFailure';
        break;
      case 'k8s':
        code = status === 429 ? 'TooManyRequests' : status >= 500 ? 'InternalError' : 'BadRequest';
        break;
      case 'pod-identity':
        code =
          status === 429
            ? 'ThrottlingException'
            : status >= 500
              ? 'InternalServerException'
              : 'InvalidRequestException';
        break;
    }
  }
  const message = f.message ?? (/Throttl|TooMany/.test(code) ? 'Rate exceeded' : `injected fault: ${code}`);
  return { status, code, message };
}

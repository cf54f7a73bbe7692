/**
 * @module emulator/faults
 * Fault injection: rules that match a call (service, operation, region, target) and answer an
 * error, delay it, or hang it until the emulator closes; each rule fires `times` times or forever.
 */
import { randomUUID } from 'node:crypto';

export type ServiceName = 'secretsmanager' | 'ssm' | 'sts' | 'k8s' | 'pod-identity';

export interface Fault {
  service?: ServiceName;
  operation?: string;
  region?: string;
  /** Secret or parameter name as requested (selector ignored), or a substring of the Kubernetes path, or `ns/sa` for the agent. */
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
    else if (/^Internal|ServiceUnavailable|^InternalServerException/.test(code)) status = code === 'ServiceUnavailable' ? 503 : 500;
    else if (service === 'k8s' || service === 'pod-identity') status = /Throttl|TooMany/.test(code) ? 429 : 400;
    else status = 400;
  }
  if (code === undefined) {
    const throttle = status === 429 || (status === 400 && service !== 'k8s' && service !== 'pod-identity');
    switch (service) {
      case 'secretsmanager':
        code = throttle ? 'ThrottlingException' : status === 503 ? 'ServiceUnavailable' : 'InternalServiceError';
        break;
      case 'ssm':
        code = throttle ? 'ThrottlingException' : 'InternalServerError';
        break;
      case 'sts':
        code = throttle ? 'Throttling' : 'InternalFailure';
        break;
      case 'k8s':
        code = status === 429 ? 'TooManyRequests' : status >= 500 ? 'InternalError' : 'BadRequest';
        break;
      case 'pod-identity':
        code = status === 429 ? 'ThrottlingException' : status >= 500 ? 'InternalServerException' : 'InvalidRequestException';
        break;
    }
  }
  const message = f.message ?? (/Throttl|TooMany/.test(code) ? 'Rate exceeded' : `injected fault: ${code}`);
  return { status, code, message };
}

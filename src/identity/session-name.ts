/**
 * @module identity/session-name
 * The STS RoleSessionName: namespace and service account, so CloudTrail shows which workload read a
 * secret (docs/behaviour.md, "Identity"; ASCP sends a nanosecond timestamp). STS allows 2–64 characters of
 * `[\w+=,.@-]`; anything else becomes '-', and a name too long keeps its start and a short hash.
 *   ("default", "app")                → "default.app"
 *   ("team/x", "sa:1")                → "team-x.sa-1"
 */
import { createHash } from 'node:crypto';

export function sessionName(namespace: string, serviceAccount: string): string {
  const clean = (s: string): string => s.replace(/[^\w+=,.@-]/g, '-');
  let name = `${clean(namespace)}.${clean(serviceAccount)}`;
  if (name.length < 2) name = `csi-${name}`.slice(0, 64);
  if (name.length > 64) {
    const hash = createHash('sha256').update(name).digest('hex').slice(0, 8);
    name = `${name.slice(0, 55)}-${hash}`;
  }
  return name;
}

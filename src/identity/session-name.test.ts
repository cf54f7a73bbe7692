/** The STS RoleSessionName: namespace and service account, within STS's 2–64 characters of [\w+=,.@-]. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { sessionName } from './session-name.js';

const STS_NAME = /^[\w+=,.@-]{2,64}$/;

describe('sessionName', () => {
  it.each([
    ['default', 'app', 'default.app'],
    ['team-a', 'reader', 'team-a.reader'],
    ['team/x', 'sa:1', 'team-x.sa-1'],
    ['ns', 'süß', 'ns.s--'],
    ['', '', 'csi-.'],
  ])('(%j, %j) → %j', (ns, sa, want) => {
    expect(sessionName(ns, sa)).toBe(want);
  });

  it('a name longer than 64 characters keeps its start and a short hash, and stays distinct', () => {
    const ns = 'n'.repeat(63); // Kubernetes allows 63-character namespaces
    const a = sessionName(ns, 'service-account-one');
    const b = sessionName(ns, 'service-account-two');
    expect(a).toHaveLength(64);
    expect(a.startsWith(`${ns.slice(0, 55)}-`)).toBe(true);
    expect(a).toMatch(STS_NAME);
    expect(a).not.toBe(b);
  });

  it('property: always within STS limits, deterministic', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), fc.string({ maxLength: 300 }), (ns, sa) => {
        const n = sessionName(ns, sa);
        expect(n).toMatch(STS_NAME);
        expect(sessionName(ns, sa)).toBe(n);
      }),
    );
  });

  it('property: Kubernetes names (DNS labels) short enough to fit are kept verbatim', () => {
    const label = fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?$/);
    fc.assert(
      fc.property(label, label, (ns, sa) => {
        expect(sessionName(ns, sa)).toBe(`${ns}.${sa}`);
      }),
    );
  });
});

/**
 * The integration harness for identity, failover and caching tests: `harness.ts` with the Pod
 * Identity agent of the emulator as `--pod-identity-endpoint` unless the test builds its own flags
 * (an agent listener that can fail or start late), and pods with Pod Identity associations and
 * tokens of a chosen lifetime.
 */
import { startHarness, type Harness, type HarnessOptions, type PodSpec } from './harness.js';

export { ACCOUNT, FAILOVER_REGION, REGION, type Pod } from './harness.js';

export type IdentityHarnessOptions = HarnessOptions;
export type IdentityPodSpec = PodSpec;
export type IdentityHarness = Harness;

export function startIdentityHarness(o: IdentityHarnessOptions = {}): Promise<IdentityHarness> {
  return startHarness({ ...o, flags: o.flags ?? ((emu) => [`--pod-identity-endpoint=${emu.podIdentityUrl}`]) });
}

/**
 * @module aws
 * AWS access for the mount pipeline: the client factory, the fetcher (SM + SSM, failover), errors.
 */
export { AwsClientFactory, type AwsClientOptions, type AwsCredentials } from './clients.js';
export { AwsCallError, classifyAwsError } from '../aws-errors.js';
export {
  Fetcher,
  type FetchOutcome,
  type FetchPlan,
  type FetchedObject,
  type RegionAccess,
  type CallObserver,
} from './fetcher.js';
export { proxyAgentsFromEnv, type ProxyAgents, type ProxyOptions } from './proxy.js';
export type { Existence } from './describe.js';
export type { DoctorCallError } from './doctor-call.js';

/**
 * `doctor`'s AWS reads (IAM, EKS, KMS, existence without values), loaded only when it runs: the
 * server's bundle keeps them, and the IAM, EKS and KMS SDK packages they load, out of its start-up chunk.
 */
export async function loadDoctorReads(): Promise<typeof import('./doctor-reads.js')> {
  return import('./doctor-reads.js');
}

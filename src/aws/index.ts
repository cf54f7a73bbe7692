/**
 * @module aws
 * AWS access for the mount pipeline: the client factory, the fetcher (SM + SSM, failover), errors.
 */
export { AwsClientFactory, type AwsClientOptions, type AwsCredentials } from './clients.js';
export { AwsCallError, classifyAwsError } from '../aws-errors.js';
export { Fetcher, type FetchOutcome, type FetchPlan, type FetchedObject, type RegionAccess, type CallObserver } from './fetcher.js';
export { proxyAgentsFromEnv, type ProxyAgents, type ProxyOptions } from './proxy.js';
export { objectExists, type Existence } from './describe.js';
export { getRole, listOidcProviders, IamCallError } from './iam.js';

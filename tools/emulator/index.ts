/**
 * @module emulator
 * The AWS (Secrets Manager, SSM, STS; IAM's, EKS's and KMS's reads) + Kubernetes API + EKS Pod
 * Identity agent emulator the tests, the demo and the tools run against, and the driver-side gRPC
 * client. No provider module imports it.
 */
export { CLUSTER_NAME, DEFAULT_ISSUER, POD_IDENTITY_AUDIENCE, startEmulator } from './emulator.js';
export type {
  AgentListener,
  AgentMode,
  CallRecord,
  Emulator,
  EmulatorOptions,
  Fault,
  IssuedCredentials,
  IssueTokenInput,
  RoleAllow,
  RoleSpec,
  ServiceName,
  SessionInfo,
} from './emulator.js';
export { DEFAULT_ACCOUNT } from './state.js';
export type { ParameterType } from './state.js';
export {
  createDriverClient,
  driverPathProblem,
  mountAttributes,
  PROTO_PATH,
  writeFilesLikeDriver,
} from './driver-client.js';
export type { DriverClient, DriverFile, MountRequestInput, MountResult, ObjectVersion } from './driver-client.js';
export { EXAMPLE_ROLE, exampleSeed, loadSeed, parseSeed } from './seed.js';
export type { Seed } from './seed.js';
export { pointAwsSdkAt } from './sdk-env.js';

/**
 * @module aws/doctor-reads
 * What `doctor` reads from AWS, in one module loaded on demand (aws/index.ts, loadDoctorReads); the
 * IAM, EKS and KMS SDK packages load on the first call that needs each.
 */
export { objectExists } from './describe.js';
export { DoctorCallError } from './doctor-call.js';
export { getRole, listOidcProviders, partitionOf, simulate, type SimulatedDecision } from './iam.js';
export { podIdentityRole } from './eks.js';
export { describeKey, getKeyPolicy, type KeyFacts } from './kms.js';

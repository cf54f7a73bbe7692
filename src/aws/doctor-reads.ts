/**
 * @module aws/doctor-reads
 * What `doctor` reads from AWS, in one module loaded on demand (aws/index.ts, loadDoctorReads).
 */
export { objectExists } from './describe.js';
export { getRole, listOidcProviders, simulate, IamCallError, type SimulatedDecision } from './iam.js';
export { podIdentityRole, EksCallError } from './eks.js';

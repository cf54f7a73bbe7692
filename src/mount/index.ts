/**
 * @module mount
 * The Mount pipeline (what server/ calls).
 */
export {
  createMount,
  type MountDeps,
  type MountFn,
  type MountFile,
  type MountInput,
  type MountResult,
  type MountSummary,
  type ObjectVersion,
} from './mount.js';
export { Admission, AtCapacityError, type AdmissionOptions, type AdmissionStats } from './admission.js';
export { ValueCache, valueKey, type CachedValue } from './value-cache.js';

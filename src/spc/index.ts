/**
 * @module spc
 * Pure parsing of a Mount request: attributes, the `objects` YAML, file-name rules, and the files a
 * fetched value yields. No I/O (also used by the offline `check` command).
 */
export {
  parseAttributes,
  parsePermission,
  tokenFor,
  failoverRegionProblem,
  parseAddressPreference,
  parsePathTranslation,
  goParseBool,
  ATTR,
  CLASS_PARAMETERS,
  DRIVER_ATTRIBUTES,
  IRSA_AUDIENCE,
  POD_IDENTITY_AUDIENCE,
} from './attributes.js';
export {
  parseObjects,
  checkArnRegions,
  declaredFiles,
  OBJECT_FIELDS,
  ObjectsError,
  type ParseObjectsOptions,
} from './objects.js';
export { deriveFiles, type FileBudget } from './values.js';
export {
  findPathConflicts,
  pathConflicts,
  filePathProblem,
  driverWritesPathProblem,
  translatePath,
  MAX_PATH_BYTES,
  MAX_SEGMENT_BYTES,
} from './paths.js';
export { lintObjects } from './lint.js';
export type * from './types.js';
export { secretObjectsProblems, type SecretObjectSpec, type SecretObjectsProblem } from './secret-objects.js';

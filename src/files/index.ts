/**
 * @module files
 * Provider-writes mode: atomic, change-only writes into the pod's target directory, safe reads
 * back, and the target mtime touch the driver's rotation gate depends on.
 */
export { writeMount, readMountedFile, touchMount, MODE_MASK, DIR_MODE } from './write-mount.js';
export type { FileToWrite, WriteResult, WriteMountOptions } from './write-mount.js';

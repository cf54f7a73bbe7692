/**
 * @module files
 * Provider-writes mode: atomic, change-only writes into the pod's target directory, safe reads
 * back, and the target mtime touch the driver's rotation gate depends on; which targets the
 * driver's Mounts may name (a kubelet CSI volume mount, reached through no link).
 */
export { writeMount, readMountedFile, touchMount, MODE_MASK, DIR_MODE } from './write-mount.js';
export type { FileToWrite, WriteResult, WriteMountOptions } from './write-mount.js';
export {
  checkTargetPath,
  isKubeletTarget,
  kubeletTargetWriter,
  targetPathProblem,
  DEFAULT_KUBELET_ROOT,
  NO_KUBELET_HINT,
  TARGET_RULE,
} from './target-path.js';

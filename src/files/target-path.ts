/**
 * @module files/target-path
 * Which directories the provider writes into, and touches. The driver hands every Mount the
 * kubelet's mount directory of the pod's CSI volume,
 * `<kubelet-root>/pods/<pod-uid>/volumes/kubernetes.io~csi/<volume>/mount`; a target of any other
 * shape, or one reached through a symbolic link below the kubelet root, did not come from the
 * kubelet, and the provider (running as root) must not write into it or set its times. Callers
 * without a kubelet (the `mount` command writes where its operator says) use files/'s writer
 * directly, not this rule.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { setBounded } from '../bounded-map.js';
import { ProviderError } from '../errors.js';
import { touchMount, writeMount } from './write-mount.js';

/** The kubelet's default `--root-dir`. */
export const DEFAULT_KUBELET_ROOT = '/var/lib/kubelet';

/** The rule, as messages state it. */
export const TARGET_RULE = '<kubelet-root>/pods/<pod-uid>/volumes/kubernetes.io~csi/<volume>/mount';

/** A pod uid directory: a UUID, or the hex hash the kubelet gives a static pod. */
const POD_UID = /^[0-9A-Za-z-]{1,64}$/;
/** A volume directory: the pod's volume name or a PersistentVolume's name (a DNS subdomain). */
const VOLUME = /^[0-9A-Za-z._-]{1,253}$/;

/**
 * The shape rule alone (no file system): undefined when `targetPath` is a CSI volume mount
 * directory under `kubeletRoot` (absolute and normalized both), else what is wrong.
 */
export function targetPathProblem(targetPath: string, kubeletRoot: string): string | undefined {
  if (targetPath.includes('\0')) return 'it contains a NUL byte';
  if (!path.posix.isAbsolute(targetPath)) return 'it is not an absolute path';
  if (path.posix.normalize(targetPath) !== targetPath || (targetPath.length > 1 && targetPath.endsWith('/')))
    return 'it is not a normalized path (".", "..", "//" or a trailing "/")';
  const prefix = kubeletRoot === '/' ? '/' : `${kubeletRoot}/`;
  if (!targetPath.startsWith(prefix)) return `it is not under the kubelet root ${kubeletRoot}`;
  const parts = targetPath.slice(prefix.length).split('/');
  const [pods, uid, volumes, plugin, volume, mount] = parts;
  if (
    parts.length !== 6 ||
    pods !== 'pods' ||
    !POD_UID.test(uid ?? '') ||
    volumes !== 'volumes' ||
    plugin !== 'kubernetes.io~csi' ||
    !VOLUME.test(volume ?? '') ||
    volume === '.' ||
    volume === '..' ||
    mount !== 'mount'
  ) {
    return 'it is not a CSI volume mount directory of a pod';
  }
  return undefined;
}

/**
 * What a caller without a kubelet must do instead. The Secrets Store Sync Controller (secrets
 * synced into a Kubernetes Secret without a pod) names the fixed `/mnt/secrets-store`, which is
 * no pod's volume but the provider container's own directory: it reads the files from the answer,
 * so the provider must return them rather than write anything.
 */
export const NO_KUBELET_HINT =
  'a caller without a kubelet, such as the Secrets Store Sync Controller (target /mnt/secrets-store), needs the ' +
  'provider started with --driver-writes-secrets: the files are then returned in the answer and nothing is written';

function refused(targetPath: string, kubeletRoot: string, why: string, hint = false): ProviderError {
  return new ProviderError(
    'INVALID_ARGUMENT',
    `target path ${JSON.stringify(targetPath)} refused: ${why}; the provider writes only ` +
      `into ${TARGET_RULE} (--kubelet-root=${kubeletRoot}), reached through no symbolic ` +
      `link${hint ? `; ${NO_KUBELET_HINT}` : ''}`,
    { field: 'target_path', reason: 'TargetPath' },
  );
}

/** How long the kubelet root's real path is reused (it changes only when a node is reconfigured). */
const ROOT_TTL_MS = 10_000;
const realRoots = new Map<string, { at: number; real: Promise<string> }>();

/**
 * The kubelet root's real path, resolved at most every ROOT_TTL_MS: every mount checks its target
 * twice (the server before any AWS call, the writer just before writing), and resolving the root
 * each time was two of the mount's five realpath calls. A failed resolution is not kept.
 */
function realRoot(root: string): Promise<string> {
  const now = Date.now();
  const hit = realRoots.get(root);
  if (hit !== undefined && now - hit.at < ROOT_TTL_MS) return hit.real;
  const real = fsp.realpath(root);
  setBounded(realRoots, root, { at: now, real }, 8);
  real.catch(() => realRoots.delete(root));
  return real;
}

/**
 * The whole rule: the shape, and no symbolic link on the way from the kubelet root to the target
 * (its real path must be the real kubelet root joined with the same components). Resolves when the
 * target may be written; otherwise rejects INVALID_ARGUMENT naming the path and the rule (or
 * FAILED_PRECONDITION when the target cannot be resolved at all, as when it does not exist).
 */
export async function checkTargetPath(targetPath: string, kubeletRoot: string): Promise<void> {
  const problem = targetPathProblem(targetPath, kubeletRoot);
  // A target of another shape did not come from a kubelet at all: say what such a caller needs.
  if (problem !== undefined) throw refused(targetPath, kubeletRoot, problem, true);
  let real: string;
  let realRootPath: string;
  try {
    [real, realRootPath] = await Promise.all([fsp.realpath(targetPath), realRoot(kubeletRoot)]);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new ProviderError('FAILED_PRECONDITION', `target path ${targetPath} cannot be used: ${code}`, {
      reason: 'TargetPath',
      cause: err,
    });
  }
  const rel = path.posix.relative(kubeletRoot, targetPath);
  if (real !== path.posix.join(realRootPath, rel))
    throw refused(targetPath, kubeletRoot, 'it is reached through a symbolic link');
}

/** True when `targetPath` passes {@link checkTargetPath}. */
export async function isKubeletTarget(targetPath: string, kubeletRoot: string): Promise<boolean> {
  try {
    await checkTargetPath(targetPath, kubeletRoot);
    return true;
  } catch {
    return false;
  }
}

/**
 * files/'s writer behind the rule, for the driver's Mounts: `writeMount` refuses a target that
 * breaks it (nothing is written, nothing touched); `touchMount` (driver-writes mode, where the
 * driver writes the files) leaves such a target alone and tells `onSkip`, and the mount goes on.
 */
export function kubeletTargetWriter(
  kubeletRoot: string,
  onSkip: (targetPath: string) => void = () => {},
): { writeMount: typeof writeMount; touchMount: typeof touchMount } {
  return {
    async writeMount(targetDir, files, opts) {
      await checkTargetPath(targetDir, kubeletRoot);
      return writeMount(targetDir, files, opts);
    },
    async touchMount(targetDir) {
      if (await isKubeletTarget(targetDir, kubeletRoot)) await touchMount(targetDir);
      else onSkip(targetDir);
    },
  };
}

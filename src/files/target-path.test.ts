import { mkdir, mkdtemp, readdir, rm, stat, symlink, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  checkTargetPath,
  isKubeletTarget,
  kubeletTargetWriter,
  NO_KUBELET_HINT,
  targetPathProblem,
  TARGET_RULE,
} from './target-path.js';

const ROOT = '/var/lib/kubelet';
const UID = '0f3c6f0e-8e3b-4f7e-9f55-1d2b3c4d5e6f';
const GOOD = `${ROOT}/pods/${UID}/volumes/kubernetes.io~csi/secrets-store-inline/mount`;

describe('targetPathProblem (the shape)', () => {
  it.each([
    GOOD,
    // a static pod's uid, a PV name
    `${ROOT}/pods/6d4b0a6b1f0e4c1f8f2d7e3a9b5c1d2e/volumes/kubernetes.io~csi/pvc-1234.example/mount`,
    `/var/snap/microk8s/common/var/lib/kubelet/pods/${UID}/volumes/kubernetes.io~csi/v/mount`,
  ])('accepts %s', (t) => {
    const root = t.startsWith('/var/snap') ? '/var/snap/microk8s/common/var/lib/kubelet' : ROOT;
    expect(targetPathProblem(t, root)).toBeUndefined();
  });

  it.each<[string, RegExp]>([
    ['relative/pods/x/volumes/kubernetes.io~csi/v/mount', /not an absolute path/],
    [`${ROOT}/pods/${UID}/volumes/kubernetes.io~csi/v/mount/`, /not a normalized path/],
    [`${ROOT}/pods/${UID}/volumes/kubernetes.io~csi/v/../v/mount`, /not a normalized path/],
    [`${ROOT}//pods/${UID}/volumes/kubernetes.io~csi/v/mount`, /not a normalized path/],
    [`/etc/pods/${UID}/volumes/kubernetes.io~csi/v/mount`, /not under the kubelet root \/var\/lib\/kubelet/],
    [`${ROOT}-evil/pods/${UID}/volumes/kubernetes.io~csi/v/mount`, /not under the kubelet root/],
    [ROOT, /not under the kubelet root/],
    [`${ROOT}/pods`, /not a CSI volume mount directory of a pod/],
    [`${ROOT}/pods/${UID}`, /not a CSI volume mount directory/],
    [`${ROOT}/pods/${UID}/volumes/kubernetes.io~secret/v/mount`, /not a CSI volume mount directory/],
    [`${ROOT}/pods/${UID}/volumes/kubernetes.io~csi/v`, /not a CSI volume mount directory/],
    [`${ROOT}/pods/${UID}/volumes/kubernetes.io~csi/v/mount/deeper`, /not a CSI volume mount directory/],
    [`${ROOT}/plugins/${UID}/volumes/kubernetes.io~csi/v/mount`, /not a CSI volume mount directory/],
    [`${ROOT}/pods/a b/volumes/kubernetes.io~csi/v/mount`, /not a CSI volume mount directory/],
    [`${ROOT}/pods/${UID}/volumes/kubernetes.io~csi/v\0/mount`, /NUL/],
  ])('refuses %j (%s)', (t, why) => {
    expect(targetPathProblem(t, ROOT)).toMatch(why);
  });
});

describe('checkTargetPath and the writer behind it (on disk)', () => {
  let dir: string;
  let root: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'target-path-'));
    root = path.join(dir, 'kubelet');
    await mkdir(path.join(root, 'pods'), { recursive: true });
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const mountDir = async (uid = UID, volume = 'v'): Promise<string> => {
    const t = path.join(root, 'pods', uid, 'volumes', 'kubernetes.io~csi', volume, 'mount');
    await mkdir(t, { recursive: true });
    return t;
  };
  const write = (w: ReturnType<typeof kubeletTargetWriter>, t: string) =>
    w.writeMount(t, [{ path: 'f', mode: 0o644, contents: Buffer.from('v') }], { signal: new AbortController().signal });

  it('accepts a real kubelet mount directory and writes into it', async () => {
    const t = await mountDir();
    await expect(checkTargetPath(t, root)).resolves.toBeUndefined();
    await write(kubeletTargetWriter(root), t);
    expect(await readdir(t)).toEqual(['f']);
  });

  it('accepts a kubelet root that is itself a link (only what lies below it must be real)', async () => {
    const t = await mountDir();
    const linkedRoot = path.join(dir, 'kubelet-link');
    await symlink(root, linkedRoot);
    await expect(checkTargetPath(t.replace(root, linkedRoot), linkedRoot)).resolves.toBeUndefined();
  });

  it('refuses a target reached through a symbolic link, naming the path and the rule; nothing written', async () => {
    const elsewhere = path.join(dir, 'elsewhere');
    await mkdir(elsewhere);
    // The volume's mount directory is a link to a directory outside the pods tree.
    const volumeDir = path.join(root, 'pods', UID, 'volumes', 'kubernetes.io~csi', 'v');
    await mkdir(volumeDir, { recursive: true });
    await symlink(elsewhere, path.join(volumeDir, 'mount'));
    const t = path.join(volumeDir, 'mount');
    const err = await checkTargetPath(t, root).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'INVALID_ARGUMENT', reason: 'TargetPath' });
    expect(String((err as Error).message)).toBe(
      `target path ${JSON.stringify(t)} refused: it is reached through a symbolic link; the provider writes only ` +
        `into ${TARGET_RULE} (--kubelet-root=${root}), reached through no symbolic link`,
    );
    await expect(write(kubeletTargetWriter(root), t)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(await readdir(elsewhere)).toEqual([]);
    // A link higher up (the pod's directory) is found the same way.
    await rm(path.join(root, 'pods', UID), { recursive: true });
    const realPod = path.join(dir, 'real-pod');
    await mkdir(path.join(realPod, 'volumes', 'kubernetes.io~csi', 'v', 'mount'), { recursive: true });
    await symlink(realPod, path.join(root, 'pods', UID));
    expect(await isKubeletTarget(t, root)).toBe(false);
  });

  it("refuses the Sync Controller's fixed /mnt/secrets-store, saying it needs --driver-writes-secrets", async () => {
    const err = await checkTargetPath('/mnt/secrets-store', root).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'INVALID_ARGUMENT', reason: 'TargetPath', field: 'target_path' });
    expect(String((err as Error).message)).toBe(
      `target path "/mnt/secrets-store" refused: it is not under the kubelet root ${root}; the provider writes only ` +
        `into ${TARGET_RULE} (--kubelet-root=${root}), reached through no symbolic link; ${NO_KUBELET_HINT}`,
    );
    expect(NO_KUBELET_HINT).toContain('--driver-writes-secrets');
  });

  it('refuses a directory outside the pods tree, and a missing target as FAILED_PRECONDITION', async () => {
    const outside = path.join(dir, 'outside');
    await mkdir(outside);
    await expect(write(kubeletTargetWriter(root), outside)).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: expect.stringContaining('not under the kubelet root'),
    });
    expect(await readdir(outside)).toEqual([]);
    const missing = path.join(root, 'pods', UID, 'volumes', 'kubernetes.io~csi', 'gone', 'mount');
    await expect(checkTargetPath(missing, root)).rejects.toMatchObject({
      code: 'FAILED_PRECONDITION',
      message: `target path ${missing} cannot be used: ENOENT`,
    });
  });

  it('touchMount leaves a target that breaks the rule untouched and says so; a good one gets its mtime', async () => {
    const outside = path.join(dir, 'outside');
    await mkdir(outside);
    const old = new Date('2001-01-01T00:00:00Z');
    await utimes(outside, old, old);
    const skipped: string[] = [];
    const w = kubeletTargetWriter(root, (t) => skipped.push(t));
    await w.touchMount(outside);
    expect((await stat(outside)).mtime.getTime()).toBe(old.getTime());
    expect(skipped).toEqual([outside]);
    const t = await mountDir();
    await utimes(t, old, old);
    await w.touchMount(t);
    expect((await stat(t)).mtime.getTime()).toBeGreaterThan(old.getTime());
    expect(skipped).toEqual([outside]);
  });
});

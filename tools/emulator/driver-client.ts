/**
 * @module emulator/driver-client
 * Plays the Secrets Store CSI driver against a provider: a gRPC client built from `proto/` dialing
 * the provider's unix socket as the driver does, the attributes the driver sends, and the driver's
 * atomic writer (simplified) for `--driver-writes-secrets` responses (docs/behaviour.md, "Attributes", "Paths").
 */
import { randomBytes } from 'node:crypto';
import { chmod, lstat, mkdir, readdir, readFile, readlink, rename, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { repoRoot } from '../repo-root.js';
import { decodeJwt } from './jwt.js';

/** The repository's `proto/service.proto`, found from tools/emulator (vitest) and build/tools/emulator alike. */
export const PROTO_PATH = path.join(repoRoot(import.meta.url), 'proto', 'service.proto');

export interface ObjectVersion {
  id: string;
  version: string;
}

export interface DriverFile {
  path: string;
  mode: number;
  contents: Buffer;
}

export interface MountRequestInput {
  /** A map (JSON-encoded for you) or the JSON string itself. */
  attributes: Record<string, string> | string;
  /** JSON of the nodePublishSecretRef; default `"null"` as driver v1.6 sends without one. */
  secrets?: string;
  targetPath: string;
  /** Default `"420"` (0644), as the driver always sends. */
  permission?: string;
  currentObjectVersion?: ObjectVersion[];
}

export interface MountResult {
  objectVersion: ObjectVersion[];
  files: DriverFile[];
}

export interface DriverClient {
  version(): Promise<{ version: string; runtime_name: string; runtime_version: string }>;
  /** Rejects with the grpc-js ServiceError (`code`, `details`). */
  mount(req: MountRequestInput, o?: { deadlineMs?: number; signal?: AbortSignal }): Promise<MountResult>;
  close(): void;
}

interface RawMountResponse {
  object_version?: ObjectVersion[];
  files?: Array<{ path: string; mode: number; contents: Buffer }>;
  error?: { code: string } | null;
}

type Unary<Req, Res> = (
  req: Req,
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
  cb: (err: grpc.ServiceError | null, res?: Res) => void,
) => grpc.ClientUnaryCall;

interface ProviderStub extends grpc.Client {
  Version: Unary<{ version: string }, { version: string; runtime_name: string; runtime_version: string }>;
  Mount: Unary<Record<string, unknown>, RawMountResponse>;
}

let cachedCtor:
  (new (address: string, creds: grpc.ChannelCredentials, options?: grpc.ChannelOptions) => ProviderStub) | undefined;

function stubConstructor(): new (
  address: string,
  creds: grpc.ChannelCredentials,
  options?: grpc.ChannelOptions,
) => ProviderStub {
  if (cachedCtor === undefined) {
    const def = protoLoader.loadSync(PROTO_PATH, {
      keepCase: true,
      longs: String,
      enums: String,
      defaults: true,
      oneofs: true,
    });
    const pkg = grpc.loadPackageDefinition(def) as unknown as { v1alpha1: { CSIDriverProvider: typeof cachedCtor } };
    cachedCtor = pkg.v1alpha1.CSIDriverProvider;
    if (cachedCtor === undefined) throw new Error(`${PROTO_PATH} does not define v1alpha1.CSIDriverProvider`);
  }
  return cachedCtor;
}

/** A client dialing `unix:<socketPath>` with `:authority` localhost, insecure, waitForReady (docs/behaviour.md,
 * "Transport"). */
export function createDriverClient(socketPath: string): DriverClient {
  const Ctor = stubConstructor();
  const stub = new Ctor(`unix:${socketPath}`, grpc.credentials.createInsecure(), {
    'grpc.default_authority': 'localhost',
  });
  // grpc-js carries waitForReady on the metadata; the driver sets it on every call.
  const metadata = (): grpc.Metadata => {
    const md = new grpc.Metadata();
    md.setOptions({ waitForReady: true });
    return md;
  };
  const options = (deadlineMs?: number): grpc.CallOptions =>
    deadlineMs === undefined ? {} : { deadline: new Date(Date.now() + deadlineMs) };
  return {
    version() {
      return new Promise((resolve, reject) => {
        stub.Version({ version: 'v1alpha1' }, metadata(), options(), (err, res) =>
          err !== null || res === undefined ? reject(err ?? new Error('empty Version response')) : resolve(res),
        );
      });
    },
    mount(req, o = {}) {
      const request = {
        attributes: typeof req.attributes === 'string' ? req.attributes : JSON.stringify(req.attributes),
        secrets: req.secrets ?? 'null',
        target_path: req.targetPath,
        permission: req.permission ?? '420',
        current_object_version: req.currentObjectVersion ?? [],
      };
      return new Promise((resolve, reject) => {
        if (o.signal?.aborted === true) return reject(o.signal.reason as Error);
        const call = stub.Mount(request, metadata(), options(o.deadlineMs), (err, res) => {
          o.signal?.removeEventListener('abort', onAbort);
          if (err !== null || res === undefined) return reject(err ?? new Error('empty Mount response'));
          resolve({
            objectVersion: (res.object_version ?? []).map((v) => ({ id: v.id, version: v.version })),
            files: (res.files ?? []).map((f) => ({ path: f.path, mode: f.mode, contents: Buffer.from(f.contents) })),
          });
        });
        const onAbort = (): void => call.cancel();
        o.signal?.addEventListener('abort', onAbort, { once: true });
      });
    },
    close() {
      stub.close();
    },
  };
}

/**
 * The attributes the driver sends: SecretProviderClass parameters, then the kubelet's pod info
 * (which wins on the same key), then the tokens JSON
 * (`{"sts.amazonaws.com":{"token":"…","expirationTimestamp":"2026-01-01T00:00:00Z"}}`).
 */
export function mountAttributes(o: {
  podName: string;
  namespace: string;
  serviceAccount: string;
  podUid?: string;
  tokens?: Record<string, string>;
  parameters: Record<string, string>;
  /** Default `true`: the kubelet marks inline volumes ephemeral; set false for ≤1.5 reconciler-style requests. */
  ephemeral?: boolean;
  secretProviderClass?: string;
}): Record<string, string> {
  const out: Record<string, string> = { ...o.parameters };
  if (o.secretProviderClass !== undefined) out['secretProviderClass'] = o.secretProviderClass;
  out['csi.storage.k8s.io/pod.name'] = o.podName;
  out['csi.storage.k8s.io/pod.namespace'] = o.namespace;
  out['csi.storage.k8s.io/pod.uid'] = o.podUid ?? '6f5c7e1a-0000-4000-a000-000000000000';
  out['csi.storage.k8s.io/serviceAccount.name'] = o.serviceAccount;
  if (o.ephemeral !== false) out['csi.storage.k8s.io/ephemeral'] = 'true';
  if (o.tokens !== undefined && Object.keys(o.tokens).length > 0) {
    const tokens: Record<string, { token: string; expirationTimestamp: string }> = {};
    for (const [audience, token] of Object.entries(o.tokens)) {
      const exp = decodeJwt(token)?.exp;
      const when = typeof exp === 'number' ? new Date(exp * 1000) : new Date(Date.now() + 3600_000);
      tokens[audience] = { token, expirationTimestamp: when.toISOString().replace(/\.\d{3}Z$/, 'Z') };
    }
    out['csi.storage.k8s.io/serviceAccount.tokens'] = JSON.stringify(tokens);
  }
  return out;
}

/** The driver's path checks; it rejects the whole response on the first bad path (docs/behaviour.md, "Paths"). */
export function driverPathProblem(p: string): string | undefined {
  if (p === '') return 'empty path';
  if (path.isAbsolute(p)) return 'absolute path';
  if (p.length > 4096) return 'path longer than 4096';
  const parts = p.split('/');
  if (parts.some((e) => e === '..')) return "path contains '..'";
  if (parts.some((e) => e.length > 255)) return 'path element longer than 255';
  if ((parts[0] ?? '').startsWith('..')) return "path starts with '..'";
  if (path.posix.normalize(p) !== p || p.endsWith('/') || p === '.') return 'path is not clean';
  return undefined;
}

async function isSymlink(p: string): Promise<boolean | undefined> {
  try {
    return (await lstat(p)).isSymbolicLink();
  } catch {
    return undefined;
  }
}

async function readOld(dataDir: string, files: readonly DriverFile[]): Promise<Map<string, Buffer> | undefined> {
  try {
    const out = new Map<string, Buffer>();
    for (const f of files) out.set(f.path, await readFile(path.join(dataDir, f.path)));
    return out;
  } catch {
    return undefined;
  }
}

async function listFiles(dir: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const rel = prefix === '' ? e.name : `${prefix}/${e.name}`;
    if (e.isDirectory()) out.push(...(await listFiles(path.join(dir, e.name), rel)));
    else out.push(rel);
  }
  return out;
}

/**
 * The driver's atomic writer, simplified: files go into a fresh `..<timestamp>` directory, `..data`
 * is swapped to it through `..data_tmp` + rename, top-level names are symlinks into `..data`, names
 * no longer present are removed, and nothing is written when no content changed and no path went away.
 */
export async function writeFilesLikeDriver(targetDir: string, files: readonly DriverFile[]): Promise<void> {
  for (const f of files) {
    const problem = driverPathProblem(f.path);
    if (problem !== undefined) throw new Error(`driver refuses file path ${JSON.stringify(f.path)}: ${problem}`);
  }
  const byPath = new Map(files.map((f) => [f.path, f] as const)); // duplicates: the last one wins, as in the driver
  const payload = [...byPath.values()];
  const dataLink = path.join(targetDir, '..data');
  const oldDir = (await isSymlink(dataLink)) === true ? await readlink(dataLink) : undefined;

  if (oldDir !== undefined) {
    const oldPaths = await listFiles(path.join(targetDir, oldDir));
    const old = await readOld(path.join(targetDir, oldDir), payload);
    const same = old !== undefined && payload.every((f) => old.get(f.path)?.equals(f.contents) === true);
    if (same && oldPaths.every((p) => byPath.has(p))) return;
  }

  // Migration from provider-writes: top-level entries that are not our symlinks go.
  const tops = new Set(payload.map((f) => f.path.split('/')[0] as string));
  for (const top of tops) {
    if ((await isSymlink(path.join(targetDir, top))) === false)
      await rm(path.join(targetDir, top), { recursive: true, force: true });
  }

  const stamp = new Date().toISOString().replace(/[:]/g, '_');
  const tsName = `..${stamp}.${randomBytes(4).toString('hex')}`;
  const tsDir = path.join(targetDir, tsName);
  await mkdir(tsDir, { mode: 0o755 });
  await chmod(tsDir, 0o755);
  for (const f of payload) {
    const dest = path.join(tsDir, f.path);
    await mkdir(path.dirname(dest), { recursive: true });
    await writeFile(dest, f.contents);
    await chmod(dest, f.mode & 0o777);
  }
  const tmpLink = path.join(targetDir, '..data_tmp');
  await rm(tmpLink, { force: true });
  await symlink(tsName, tmpLink);
  await rename(tmpLink, dataLink);

  for (const top of tops) {
    const link = path.join(targetDir, top);
    if ((await isSymlink(link)) !== true) await symlink(path.join('..data', top), link);
  }
  for (const e of await readdir(targetDir)) {
    if (e.startsWith('..') || tops.has(e)) continue;
    if ((await isSymlink(path.join(targetDir, e))) === true) await rm(path.join(targetDir, e), { force: true });
  }
  if (oldDir !== undefined && oldDir !== tsName)
    await rm(path.join(targetDir, oldDir), { recursive: true, force: true });
}

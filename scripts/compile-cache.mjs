// Fills Node's compile cache for the server at image build time (the Dockerfile runs it in the
// runtime stage, with NODE_COMPILE_CACHE set as at run time): starts the server, waits for its
// socket, stops it with SIGTERM, and Node writes the V8 code of every function compiled so far
// (module bodies, flag parsing, start-up) into the cache when the process exits.
//
// At run time Node reads that code instead of compiling the sources again. It checks each entry
// against the file's content, so a stale or foreign cache is never used, only ignored. The chart
// runs with a read-only root filesystem: the cache is only read then (Node ignores failures to
// write it). Entries are kept per uid (Node's cache directory name ends in the uid): this script
// runs as root, as the chart runs the container; another uid (`docker run` as the image's USER)
// finds no entries for it and compiles as without a cache.
//
//   NODE_COMPILE_CACHE=DIR node scripts/compile-cache.mjs [SERVER]   (SERVER: dist/bundle/main.js)
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const cacheDir = process.env.NODE_COMPILE_CACHE;
if (cacheDir === undefined || cacheDir === '') {
  process.stderr.write('compile-cache: set NODE_COMPILE_CACHE to the directory the image reads it from\n');
  process.exit(2);
}
const server = process.argv[2] ?? 'dist/bundle/main.js';
const volume = mkdtempSync(path.join(os.tmpdir(), 'compile-cache-'));
const socket = path.join(volume, 'aws.sock');

// No Kubernetes API here: the server logs that and starts anyway. Health and metrics on loopback
// ports the kernel picks, so their start-up code is compiled too.
const child = spawn(
  process.execPath,
  [server, `--provider-volume=${volume}`, '--health-addr=127.0.0.1:0', '--metrics-addr=127.0.0.1:0'],
  {
    env: { ...process.env, KUBERNETES_SERVICE_HOST: '', KUBECONFIG: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  },
);
// Its log, printed only when something went wrong.
let log = '';
for (const stream of [child.stdout, child.stderr])
  stream.setEncoding('utf8').on('data', (chunk) => (log = (log + chunk).slice(-8000)));
const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));

const deadline = Date.now() + 60_000;
while (!existsSync(socket)) {
  if (child.exitCode !== null || child.signalCode !== null) break;
  if (Date.now() > deadline) {
    child.kill('SIGKILL');
    break;
  }
  await new Promise((r) => setTimeout(r, 10));
}
child.kill('SIGTERM');
const { code, signal } = await exited;
rmSync(volume, { recursive: true, force: true });

/** Files and bytes under a directory. */
function size(dir) {
  let files = 0;
  let bytes = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) {
      const s = size(p);
      files += s.files;
      bytes += s.bytes;
    } else {
      files++;
      bytes += statSync(p).size;
    }
  }
  return { files, bytes };
}
const got = existsSync(cacheDir) ? size(cacheDir) : { files: 0, bytes: 0 };
if (code !== 0 || got.files === 0) {
  process.stderr.write(
    `${log}compile-cache: the server ended with ${signal ?? code} and left ${got.files} cache files in ${cacheDir}\n`,
  );
  process.exit(1);
}
process.stdout.write(`compile-cache: ${got.files} files, ${Math.round(got.bytes / 1024)} KiB in ${cacheDir}\n`);

#!/usr/bin/env node
/**
 * @module main
 * The program, and its only entry point: the image (`node dist/bundle/main.js`, the bundle of this
 * file), `npm start` and the `csi-secrets-provider-aws` bin all start here. Runs the command the
 * arguments name (cli/: the provider server by default) with this process's streams and
 * environment, then exits with the command's code: the only place that exits.
 */
import { main, wantsColor } from './cli/index.js';
import { NAME } from './version.js';

// Output piped into `head` and closed: stop writing, let the command finish. Watched from a
// command's first write of its own output: the server writes its log to stdout directly, as before.
let stdoutClosed = false;
let watchingStdout = false;
const stdout = (text: string): void => {
  if (!watchingStdout) {
    watchingStdout = true;
    process.stdout.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE') stdoutClosed = true;
      else throw err;
    });
  }
  if (!stdoutClosed) process.stdout.write(text);
};

main(process.argv.slice(2), {
  stdout,
  stderr: (text) => process.stderr.write(text),
  env: process.env,
  cwd: process.cwd(),
  color: wantsColor(process.stdout.isTTY, process.env),
}).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`${NAME}: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);

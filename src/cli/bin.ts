#!/usr/bin/env node
/**
 * @module cli/bin
 * The `csi-secrets-provider-aws` command: `serve` (the provider; default when the first argument is a
 * flag), `check`, `mount`, `version`, `help`. Each subcommand module exports
 * `run(argv, io) → exit code` and is loaded only when used.
 */
import { NAME, VERSION } from '../version.js';
import { isMain } from '../entry.js';

/** Where a command writes; tests capture both. */
export interface CommandIO {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  env: Record<string, string | undefined>;
  cwd: string;
  /** The whole of standard input (for `check -`); process.stdin when absent. */
  readStdin?: () => Promise<string>;
  /** Colour the output (a terminal, NO_COLOR unset); plain text when absent or false. */
  color?: boolean;
}

/** Colour for a terminal: stdout is one, NO_COLOR is unset or empty and TERM is not dumb; FORCE_COLOR forces it. */
export function wantsColor(isTTY: boolean | undefined, env: Record<string, string | undefined>): boolean {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  if (env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== '' && env.FORCE_COLOR !== '0') return true;
  return isTTY === true && env.TERM !== 'dumb';
}

const USAGE = `Usage: ${NAME} <command> [options]

Commands:
  serve [flags]       run the provider (what the DaemonSet runs; see serve --help)
  check FILE...|-     check SecretProviderClass manifests offline against every rule the provider applies
  mount --class FILE --pod-namespace NS --service-account SA [--out DIR]
                      fetch what a pod would get, with your own AWS credentials
  version             print name and version
`;

export async function main(argv: readonly string[], io: CommandIO): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      io.stdout(USAGE);
      return 0;
    case 'version':
    case '--version':
      io.stdout(`${NAME} ${VERSION} (node ${process.version})\n`);
      return 0;
    case 'serve':
      return (await import('../main.js')).run(rest, io.env);
    case 'check':
      return (await import('./check.js')).run(rest, io);
    case 'mount':
      return (await import('./mount-command.js')).run(rest, io);
    default:
      if (cmd.startsWith('-')) return (await import('../main.js')).run(argv, io.env);
      io.stderr(`${NAME}: unknown command ${JSON.stringify(cmd)}\n\n${USAGE}`);
      return 2;
  }
}

if (isMain(import.meta.url)) {
  // Output piped into `head` and closed: stop writing, let the command finish.
  let stdoutClosed = false;
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') stdoutClosed = true;
    else throw err;
  });
  main(process.argv.slice(2), {
    stdout: (t) => {
      if (!stdoutClosed) process.stdout.write(t);
    },
    stderr: (t) => process.stderr.write(t),
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
}

/**
 * @module cli
 * The commands of the `csi-secrets-provider-aws` program (src/main.ts runs them): `serve`, the
 * provider server and the default (no command, or a flag first: the DaemonSet's and the image's
 * arguments), `check`, `mount`, `doctor`, `version`, `help`. Each command module exports
 * `run(argv, io) → exit code`; `check`, `mount` and `doctor` are loaded only when used, so the server's
 * start-up reads none of them.
 */
import { NAME, VERSION } from '../version.js';
import type { CommandIO } from './io.js';
import { run as serve } from './serve.js';

export { wantsColor, type CommandIO } from './io.js';
export { start, type Running } from './serve.js';
export { parseFlags, type Flags } from './flags.js';

const USAGE = `Usage: ${NAME} [<command>] [options]

Commands:
  serve [flags]       run the provider (what the DaemonSet runs; the default when no command is given; see --help)
  check FILE...|-     check SecretProviderClass manifests offline against every rule the provider applies
  mount --class FILE --pod-namespace NS --service-account SA [--out DIR]
                      fetch what a pod would get, with your own AWS credentials
  doctor --class FILE --namespace NS --service-account SA | --pod NS/NAME
                      say why a pod's secrets would not mount (driver, provider, IRSA role and trust, objects)
  version             print name and version
  help                print this
`;

/** Runs the command argv names; the exit code it ends with. */
export async function main(argv: readonly string[], io: CommandIO): Promise<number> {
  const [cmd, ...rest] = argv;
  // The server's arguments as ASCP's: none, or its flags (--help and --version among them).
  if (cmd === undefined || cmd.startsWith('-')) return serve(argv, io);
  switch (cmd) {
    case 'serve':
      return serve(rest, io);
    case 'help':
      io.stdout(USAGE);
      return 0;
    case 'version':
      io.stdout(`${NAME} ${VERSION} (node ${process.version})\n`);
      return 0;
    case 'check':
      return (await import('./check.js')).run(rest, io);
    case 'mount':
      return (await import('./mount-command.js')).run(rest, io);
    case 'doctor':
      return (await import('./doctor.js')).run(rest, io);
    default:
      io.stderr(`${NAME}: unknown command ${JSON.stringify(cmd)}\n\n${USAGE}`);
      return 2;
  }
}

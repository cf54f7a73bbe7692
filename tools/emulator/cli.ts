/**
 * @module emulator/cli
 * `node build/tools/emulator/cli.js [--port N] [--host H] [--seed FILE.json] [--latency MS]`: starts the
 * emulator with a seed (the built-in example when none is given), writes a kubeconfig to a temp
 * dir, prints how to point a provider at it and sample tokens, and runs until SIGINT/SIGTERM.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { POD_IDENTITY_AUDIENCE, startEmulator, type Emulator } from './emulator.js';
import { exampleSeed, loadSeed, parseSeed, type Seed } from './seed.js';
import { isMain } from '../entry.js';

export interface CliOptions {
  port: number;
  host: string;
  seedFile?: string;
  latencyMs: number;
}

const USAGE = 'usage: emulator [--port N] [--host H] [--seed FILE.json] [--latency MS]';

/** argv (without node and script) → options; throws with the usage on a bad flag. */
export function parseCliArgs(argv: readonly string[]): CliOptions | 'help' {
  const o: CliOptions = { port: 0, host: '127.0.0.1', latencyMs: 0 };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '-h' || arg === '--help') return 'help';
    const eq = arg.indexOf('=');
    const name = eq < 0 ? arg : arg.slice(0, eq);
    const value = eq < 0 ? argv[++i] : arg.slice(eq + 1);
    if (value === undefined) throw new Error(`${name} needs a value; ${USAGE}`);
    const int = (): number => {
      if (!/^\d+$/.test(value))
        throw new Error(`${name}: expected a non-negative integer, got ${JSON.stringify(value)}`);
      return Number(value);
    };
    switch (name) {
      case '--port':
        o.port = int();
        if (o.port > 65535) throw new Error(`--port: ${o.port} is not a port`);
        break;
      case '--host':
        o.host = value;
        break;
      case '--seed':
        o.seedFile = value;
        break;
      case '--latency':
        o.latencyMs = int();
        break;
      default:
        throw new Error(`unknown flag ${name}; ${USAGE}`);
    }
  }
  return o;
}

export interface RunningCli {
  emu: Emulator;
  kubeconfig: string;
  close(): Promise<void>;
}

/** Starts the emulator as the CLI does and writes the banner through `print`. */
export async function startCli(o: CliOptions, print: (line: string) => void): Promise<RunningCli> {
  const seed: Seed =
    o.seedFile === undefined ? exampleSeed() : parseSeed(JSON.parse(await readFile(o.seedFile, 'utf8')) as unknown);
  const emu = await startEmulator({ port: o.port, host: o.host, latencyMs: o.latencyMs });
  loadSeed(emu, seed);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'csi-aws-emulator-'));
  const kubeconfig = path.join(dir, 'kubeconfig');
  await emu.writeKubeconfig(kubeconfig);

  print(`emulator listening on ${emu.url} (seed: ${o.seedFile ?? 'built-in example'})`);
  print('');
  print('Point a provider at it:');
  print(`  export AWS_ENDPOINT_URL=${emu.url}`);
  print(`  export KUBECONFIG=${kubeconfig}`);
  print(`  export AWS_EC2_METADATA_DISABLED=true`);
  print(`  pod identity agent: --pod-identity-endpoint ${emu.podIdentityUrl}`);
  print('');
  print('Sample service-account tokens (valid 1 h; emulator-signed, worthless elsewhere):');
  for (const sa of seed.serviceAccounts ?? []) {
    for (const audience of ['sts.amazonaws.com', POD_IDENTITY_AUDIENCE]) {
      print(
        `  ${sa.namespace}/${sa.name} ${audience}: ` +
          emu.issueToken({ namespace: sa.namespace, serviceAccount: sa.name, audience }),
      );
    }
  }
  return {
    emu,
    kubeconfig,
    async close() {
      await emu.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function main(argv: readonly string[]): Promise<number> {
  let o: CliOptions | 'help';
  try {
    o = parseCliArgs(argv);
  } catch (e) {
    process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
    return 2;
  }
  if (o === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const running = await startCli(o, (line) => process.stdout.write(`${line}\n`));
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await running.close();
  return 0;
}

if (isMain(import.meta.url)) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`emulator: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}

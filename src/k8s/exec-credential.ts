/**
 * @module k8s/exec-credential
 * A kubeconfig user's `exec` plugin, run as kubectl runs it (the client.authentication.k8s.io
 * ExecCredential protocol): the command prints an ExecCredential whose `status.token` is the bearer
 * token, valid until `status.expirationTimestamp` when it gives one. This is how `aws eks
 * update-kubeconfig` authenticates (`aws eks get-token`), so an operator's own kubeconfig works with
 * the commands that read the cluster as the operator (`doctor`). The provider server never runs one:
 * in a pod it uses its service account.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { ProviderError } from '../errors.js';

/** The `exec` stanza of a kubeconfig user, resolved against the file it came from. */
export interface ExecCredentialConfig {
  /** The program; a relative path with a separator is resolved against the kubeconfig's directory. */
  command: string;
  args: readonly string[];
  /** Added to the environment the plugin inherits. */
  env: Readonly<Record<string, string>>;
  apiVersion: string;
  /** Printed when the program is not found (e.g. how to install the AWS CLI). */
  installHint?: string;
  /** The kubeconfig file, named in messages. */
  file: string;
}

export interface ExecToken {
  token: string;
  /** Epoch ms; Infinity when the plugin gives no expiry. */
  expiresAt: number;
}

const API_VERSIONS = ['client.authentication.k8s.io/v1', 'client.authentication.k8s.io/v1beta1'];
/** How long a plugin may take: `aws eks get-token` signs locally in well under a second. */
const TIMEOUT_MS = 30_000;
/** An ExecCredential is a few KiB; more is not one. */
const MAX_OUTPUT_BYTES = 1024 * 1024;

function precondition(message: string, cause?: unknown): ProviderError {
  return new ProviderError('FAILED_PRECONDITION', message, { reason: 'KubeConfig', cause });
}

type YamlMap = Record<string, unknown>;
const isMap = (v: unknown): v is YamlMap => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Reads a kubeconfig user's `exec` map; throws naming the field that is wrong. */
export function parseExecConfig(exec: YamlMap, file: string, user: string): ExecCredentialConfig {
  const where = `kubeconfig ${file}: user "${user}" exec`;
  const command = exec['command'];
  if (typeof command !== 'string' || command === '') throw precondition(`${where} has no command`);
  const apiVersion = exec['apiVersion'];
  if (typeof apiVersion !== 'string' || !API_VERSIONS.includes(apiVersion)) {
    throw precondition(`${where}: apiVersion ${JSON.stringify(apiVersion)} is not one of ${API_VERSIONS.join(', ')}`);
  }
  const rawArgs = exec['args'] ?? [];
  if (!Array.isArray(rawArgs) || !rawArgs.every((a) => typeof a === 'string')) {
    throw precondition(`${where}: args must be a list of strings`);
  }
  const env: Record<string, string> = {};
  const rawEnv = exec['env'] ?? [];
  if (!Array.isArray(rawEnv)) throw precondition(`${where}: env must be a list of {name, value}`);
  for (const e of rawEnv as unknown[]) {
    if (!isMap(e) || typeof e['name'] !== 'string' || typeof e['value'] !== 'string') {
      throw precondition(`${where}: env must be a list of {name, value}`);
    }
    env[e['name']] = e['value'];
  }
  if (exec['interactiveMode'] === 'Always') {
    throw precondition(`${where} wants a terminal (interactiveMode: Always), which this command does not give it`);
  }
  // As kubectl: a relative path with a separator is relative to the kubeconfig; a bare name is looked up in PATH.
  const resolved =
    command.includes('/') && !path.isAbsolute(command) ? path.resolve(path.dirname(file), command) : command;
  const config: ExecCredentialConfig = { command: resolved, args: rawArgs, env, apiVersion, file };
  if (typeof exec['installHint'] === 'string' && exec['installHint'] !== '') config.installHint = exec['installHint'];
  return config;
}

/** The last line of a plugin's error output, cut short: enough to say why, never its standard output. */
function lastLine(text: string): string {
  const line = text.trim().split('\n').pop()?.trim() ?? '';
  return line.length > 200 ? `${line.slice(0, 200)}…` : line;
}

/**
 * Runs the plugin once and reads its token. The plugin's standard output holds the token: no part
 * of it goes into a message. Its standard error (the reason it failed, such as expired AWS
 * credentials) does, as kubectl shows it.
 */
export async function runExecCredential(
  cfg: ExecCredentialConfig,
  baseEnv: Readonly<Record<string, string | undefined>>,
): Promise<ExecToken> {
  const what = `the kubeconfig's exec plugin ${JSON.stringify(cfg.command)} (${cfg.file})`;
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(baseEnv)) if (v !== undefined) env[k] = v;
  Object.assign(env, cfg.env);
  env['KUBERNETES_EXEC_INFO'] = JSON.stringify({
    apiVersion: cfg.apiVersion,
    kind: 'ExecCredential',
    spec: { interactive: false },
  });
  const stdout = await new Promise<string>((resolve, reject) => {
    execFile(
      cfg.command,
      [...cfg.args],
      { env, timeout: TIMEOUT_MS, maxBuffer: MAX_OUTPUT_BYTES, encoding: 'utf8', windowsHide: true },
      (err, out, errOut) => {
        if (err === null) return resolve(out);
        const e = err as NodeJS.ErrnoException & { killed?: boolean; code?: string | number };
        if (e.code === 'ENOENT') {
          const hint = cfg.installHint !== undefined ? `: ${cfg.installHint.trim()}` : ': install it or fix the path';
          return reject(precondition(`${what} was not found${hint}`, err));
        }
        const why =
          e.killed === true ? `did not finish within ${TIMEOUT_MS / 1000} s` : `failed (exit ${e.code ?? '?'})`;
        const said = lastLine(errOut);
        // No cause: the error object may carry the plugin's output, and with it a token.
        reject(precondition(`${what} ${why}${said !== '' ? `: ${said}` : ''}`));
      },
    );
  });
  let doc: unknown;
  try {
    doc = JSON.parse(stdout);
  } catch {
    throw precondition(`${what} did not print an ExecCredential (its output is not JSON)`);
  }
  const status = isMap(doc) ? doc['status'] : undefined;
  const token = isMap(status) ? status['token'] : undefined;
  if (typeof token !== 'string' || token === '') {
    const certs = isMap(status) && typeof status['clientCertificateData'] === 'string';
    throw precondition(
      certs
        ? `${what} gives a client certificate, not a token: use a kubeconfig whose plugin gives a token`
        : `${what} printed an ExecCredential without status.token`,
    );
  }
  const expiry = isMap(status) ? status['expirationTimestamp'] : undefined;
  const expiresAt = typeof expiry === 'string' ? Date.parse(expiry) : Number.NaN;
  return { token, expiresAt: Number.isFinite(expiresAt) ? expiresAt : Infinity };
}

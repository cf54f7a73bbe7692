/**
 * @module cli/io
 * Where a command writes and what it reads of its process, given to it by main.ts (the process) or by
 * a test (captured), so no command touches process.stdout or exits.
 */

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

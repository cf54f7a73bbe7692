import { describe, expect, it } from 'vitest';
import { NAME, VERSION } from '../version.js';
import { main } from './index.js';

async function run(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await main(argv, {
    stdout: (t) => (stdout += t),
    stderr: (t) => (stderr += t),
    env: {},
    cwd: process.cwd(),
  });
  return { code, stdout, stderr };
}

describe('the dispatcher', () => {
  it('help lists the commands, serve the default; no demo (a tool, npm run demo)', async () => {
    const r = await run(['help']);
    expect(r.code).toBe(0);
    for (const c of ['serve', 'check', 'mount', 'version', 'help'])
      expect(r.stdout).toMatch(new RegExp(`^  ${c}\\b`, 'm'));
    expect(r.stdout).not.toMatch(/demo/);
  });

  it('version prints name and version', async () => {
    expect(await run(['version'])).toEqual({
      code: 0,
      stdout: `${NAME} ${VERSION} (node ${process.version})\n`,
      stderr: '',
    });
  });

  it.each([[['--help']], [['serve', '--help']]])(
    "%j is the server's flag help (a flag first: the server, as the DaemonSet runs it)",
    async (argv) => {
      const r = await run(argv);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^Usage: ${NAME} \\[flags\\]`));
      expect(r.stdout).toContain('-provider-volume');
    },
  );

  it("the server's flag errors exit 2, on stderr", async () => {
    const r = await run(['--no-such-flag']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(new RegExp(`^${NAME}: `));
  });

  it.each([['demo'], ['bogus']])('%s is an unknown command: exit 2 with the usage', async (cmd) => {
    const r = await run([cmd]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`unknown command "${cmd}"`);
    expect(r.stderr).toContain('Commands:');
  });
});

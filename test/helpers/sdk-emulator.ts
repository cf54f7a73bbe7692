/**
 * The emulator with every AWS SDK client of this process pointed at it (no shared config files, no
 * instance metadata), for tests that build SDK clients through the provider's factory; and a
 * role's credentials in the provider's form.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { AwsCredentials } from '../../src/aws/clients.js';
import { startEmulator, type Emulator } from '../../tools/emulator/index.js';
import { pointAwsSdkAt } from '../../tools/emulator/sdk-env.js';

export interface SdkEmulator {
  emu: Emulator;
  /** Stops the emulator and gives the environment back. */
  close(): Promise<void>;
}

export async function startSdkEmulator(): Promise<SdkEmulator> {
  const emu = await startEmulator();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sdk-emulator-'));
  const undoEnv = pointAwsSdkAt(emu.url, dir);
  return {
    emu,
    async close() {
      undoEnv();
      await emu.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Fresh credentials of `role`, as STS would give them. */
export function credentialsOf(emu: Emulator, role: string): AwsCredentials {
  const c = emu.issueCredentials(role);
  return {
    accessKeyId: c.accessKeyId,
    secretAccessKey: c.secretAccessKey,
    sessionToken: c.sessionToken,
    expiration: c.expiration.getTime(),
  };
}

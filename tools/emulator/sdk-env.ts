/**
 * @module emulator/sdk-env
 * Points every AWS SDK client this process builds at the emulator, through the variables the SDK
 * reads itself (AWS_ENDPOINT_URL; no shared config or credentials files, no instance metadata, no
 * AWS_REGION or AWS_PROFILE from the caller's shell). Returns the undo. Used by the demo and tests.
 */
import path from 'node:path';

const KEYS = [
  'AWS_ENDPOINT_URL',
  'AWS_EC2_METADATA_DISABLED',
  'AWS_CONFIG_FILE',
  'AWS_SHARED_CREDENTIALS_FILE',
  'AWS_REGION',
  'AWS_PROFILE',
] as const;

/** `dir` holds nothing: the config and credentials file paths inside it do not exist. */
export function pointAwsSdkAt(url: string, dir: string): () => void {
  const saved = new Map(KEYS.map((k) => [k, process.env[k]] as const));
  process.env['AWS_ENDPOINT_URL'] = url;
  process.env['AWS_EC2_METADATA_DISABLED'] = 'true';
  process.env['AWS_CONFIG_FILE'] = path.join(dir, 'no-aws-config');
  process.env['AWS_SHARED_CREDENTIALS_FILE'] = path.join(dir, 'no-aws-credentials');
  delete process.env['AWS_REGION'];
  delete process.env['AWS_PROFILE'];
  return () => {
    for (const [k, v] of saved) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  };
}
